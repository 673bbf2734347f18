"""infra/deploy.sh gives each function its own service account with only what it needs, and
Firestore access only to the one database (read from DRY_RUN's commands;
tests/system/test_deploy_gcloud.py runs every one of them through the real gcloud parser)."""

from __future__ import annotations

import shlex
from collections import defaultdict

from tests.system.test_infra import _deploy

PROJECT = "demo-proj"


def _sa(suffix: str) -> str:
    return f"serviceAccount:autotagger-fn-{suffix}@{PROJECT}.iam.gserviceaccount.com"


def _grants(output: str) -> tuple[dict[str, set[str]], dict[str, str], list[list[str]]]:
    """(member -> "resource role" grants, function name -> its service account, commands)."""
    grants: dict[str, set[str]] = defaultdict(set)
    runs_as: dict[str, str] = {}
    commands = []
    for line in output.splitlines():
        if not line.startswith("+ gcloud "):
            continue
        words = shlex.split(line[2:], comments=True)
        words = words[: words.index("|")] if "|" in words else words
        commands.append(words)
        flags = dict(w[2:].split("=", 1) for w in words if w.startswith("--") and "=" in w)
        verb = next((w for w in words if w.endswith("-policy-binding")), None)
        if verb is not None:
            target = words[words.index(verb) + 1]
            target = f"project {target}" if words[1] == "projects" else target
            grants[flags["member"]].add(f"{target} {flags.get('role', 'invoker')}")
        if words[1:3] == ["functions", "deploy"]:
            runs_as[words[3]] = f"serviceAccount:{flags['service-account']}"
            if "trigger-service-account" in flags:
                runs_as[f"{words[3]} trigger"] = (
                    f"serviceAccount:{flags['trigger-service-account']}"
                )
    return grants, runs_as, commands


def test_each_function_runs_as_its_own_account_with_only_what_it_needs(tmp_path) -> None:
    done = _deploy(tmp_path, DRY_RUN="1", WEBHOOK_MODE="queue")
    assert done.returncode == 0, done.stderr
    grants, runs_as, commands = _grants(done.stdout)
    assert runs_as == {
        "autotagger-on-upload": _sa("upload"),
        "autotagger-results": _sa("results"),
        "autotagger-on-message": _sa("worker"),
        "autotagger-on-message trigger": _sa("trigger"),
    }
    project = f"project {PROJECT}"
    assert grants[_sa("upload")] == {
        f"{project} roles/datastore.user",
        "autotagger-cloudinary-url roles/secretmanager.secretAccessor",
        "gs://demo-models roles/storage.objectViewer",
        "autotagger-uploads roles/pubsub.publisher",
    }
    assert grants[_sa("results")] == {  # the public page: reads, signs; no queue, no model
        f"{project} roles/datastore.viewer",
        "autotagger-cloudinary-url roles/secretmanager.secretAccessor",
        "autotagger-results-token roles/secretmanager.secretAccessor",
    }
    assert grants[_sa("worker")] == {
        f"{project} roles/datastore.user",
        "autotagger-cloudinary-url roles/secretmanager.secretAccessor",
        "gs://demo-models roles/storage.objectViewer",
    }
    assert grants[_sa("trigger")] == {"autotagger-on-message invoker"}
    # Firestore: every grant conditioned to the one database.
    database = f'resource.name=="projects/{PROJECT}/databases/(default)"'
    firestore_grants = [c for c in commands if c[1:3] == ["projects", "add-iam-policy-binding"]]
    assert len(firestore_grants) == 3
    for command in firestore_grants:
        (condition,) = [w for w in command if w.startswith("--condition=")]
        assert condition.startswith(f"--condition=expression={database},title="), condition
    assert not any("--condition=None" in " ".join(c) for c in commands)


def test_a_too_long_prefix_and_a_short_claim_ttl_are_refused(tmp_path) -> None:
    long = _deploy(tmp_path, DRY_RUN="1", SERVICE_ACCOUNT="a" * 23)
    assert long.returncode == 1 and "SERVICE_ACCOUNT" in long.stderr
    short = _deploy(tmp_path, DRY_RUN="1", CLAIM_TTL_S="120")
    assert short.returncode == 1 and "CLAIM_TTL_S" in short.stderr
    few = _deploy(tmp_path, DRY_RUN="1", MAX_DELIVERY_ATTEMPTS="5")
    assert few.returncode == 1 and "MAX_DELIVERY_ATTEMPTS" in few.stderr
    assert _deploy(tmp_path, DRY_RUN="1", MAX_DELIVERY_ATTEMPTS="5", CLAIM_TTL_S="301").returncode
