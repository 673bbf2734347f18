"""deploy.sh's part in access control: the results token as a secret, mounted, created once
through stdin and never on a command line; the access mode passed through."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from autotagger.config import load_settings
from tests.system.test_infra import FAKE_GCLOUD, _commands, _deploy

RESULTS = "autotagger-results"


def test_deploy_dry_run_creates_and_mounts_the_token_secret(tmp_path) -> None:
    done = _deploy(tmp_path, DRY_RUN="1")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    (create,) = _commands(out, "gcloud secrets create autotagger-results-token")
    assert "--replication-policy=automatic" in create
    (add,) = [line for line in out.splitlines() if "versions add autotagger-results-token" in line]
    assert add.startswith("+ ") and "secrets.token_urlsafe" in add and "--data-file=-" in add
    (results,) = _commands(out, "gcloud functions deploy autotagger-results")
    assert "RESULTS_TOKEN=autotagger-results-token:latest" in results
    secrets_flag = next(w for w in results.split() if w.startswith("--set-secrets="))
    assert secrets_flag.count("=") == 3  # CLOUDINARY_URL and RESULTS_TOKEN, both from secrets
    env = results.split("'--set-env-vars=^|^")[1].rstrip("'").split("|")
    assert "RESULTS_ACCESS=private" in env
    assert not any(e.startswith("RESULTS_TOKEN=") for e in env)
    (on_upload, _) = _commands(out, "gcloud functions deploy autotagger-on-upload")
    assert "RESULTS_TOKEN" not in on_upload
    assert any(
        "add-iam-policy-binding autotagger-results-token" in line for line in out.splitlines()
    )


def test_deploy_public_only_when_asked(tmp_path) -> None:
    done = _deploy(tmp_path, DRY_RUN="1", RESULTS_ACCESS="public")
    assert done.returncode == 0, done.stderr
    (results,) = _commands(done.stdout, "gcloud functions deploy autotagger-results")
    assert "RESULTS_ACCESS=public" in results and "RESULTS_TOKEN" not in results
    assert "autotagger-results-token" not in done.stdout
    bad = _deploy(tmp_path, DRY_RUN="1", RESULTS_ACCESS="open")
    assert bad.returncode == 1 and "RESULTS_ACCESS must be private or public" in bad.stderr


def test_deploy_creates_a_random_token_through_stdin_once(tmp_path) -> None:
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    (bin_dir / "gcloud").write_text(f"#!{sys.executable}\n{FAKE_GCLOUD}")
    (bin_dir / "gcloud").chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_GCLOUD_STATE": str(state)}

    def calls() -> list[dict[str, Any]]:
        log = state / "calls.jsonl"
        lines = log.read_text().splitlines()
        log.unlink()
        return [json.loads(line) for line in lines]

    first = _deploy(tmp_path, **env)
    assert first.returncode == 0, first.stderr + first.stdout
    log = calls()
    add = ["secrets", "versions", "add", "autotagger-results-token"]
    (added,) = [c for c in log if c["args"][:4] == add]
    token = added["stdin"]
    assert len(token) >= 43 and token.strip() == token  # 32 random bytes, url-safe base64
    assert load_settings({"RESULTS_TOKEN": token}).results_token == token  # a valid token
    assert all(token not in " ".join(c["args"]) for c in log)  # never on a command line
    assert token not in first.stdout + first.stderr  # never printed
    (results,) = [c["args"] for c in log if c["args"][:3] == ["functions", "deploy", RESULTS]]
    assert (
        "--set-secrets=CLOUDINARY_URL=autotagger-cloudinary-url:latest,RESULTS_TOKEN="
        "autotagger-results-token:latest" in results
    )

    second = _deploy(tmp_path, **env)
    assert second.returncode == 0, second.stderr
    assert [c for c in calls() if c["args"][:4] == add] == []  # the key is kept
    assert "access key exists: keeping it" in second.stdout
    assert (state / "secret-value_autotagger-results-token").read_text() == token
