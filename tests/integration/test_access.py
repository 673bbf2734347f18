"""Access control (function/autotagger/access.py): private listings, signed uploads, the forward
budget, the settings, and the parts of deploy.sh and cloudinary_setup.py that serve them.

Browser tests of the private page are in tests/e2e/test_private_page.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
import uuid
from typing import Any

import cloudinary.exceptions
import cloudinary.uploader
import cloudinary.utils
import pytest
import requests
from google.cloud import firestore

from autotagger.config import load_settings
from autotagger.errors import ConfigError, TooManyRequests
from autotagger.web import access, forward, page
from infra import cloudinary_setup
from infra.local_cloudinary import CloudinaryStandin
from tests.support.helpers import image_bytes
from tests.system.test_infra import FAKE_GCLOUD, _commands, _deploy

TOKEN = "t0k3n-" + "A1b2C3d4" * 5  # 46 visible characters
PRESET = "autotagger_signed"
FOLDER = "team/uploads"
PRIVATE = {"RESULTS_ACCESS": "private", "RESULTS_TOKEN": TOKEN}
SIGNED = {**PRIVATE, "CLOUDINARY_UPLOAD_PRESET": PRESET, "UPLOAD_FOLDER": FOLDER}
RESULTS = "autotagger-results"
LISTINGS = ["/api/results", "/api/results?label=tabby", "/api/results?public_id=folder/p0"]


def _auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def seeded(base_env: dict[str, str]) -> list[str]:
    """Three documents straight in the emulator; returns their asset_ids, newest first."""
    client = firestore.Client(project=base_env["GOOGLE_CLOUD_PROJECT"])
    collection = client.collection(base_env["FIRESTORE_COLLECTION"])
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    ids = []
    for i, label in enumerate(["tabby", "goldfish", "tabby"]):
        asset_id = uuid.uuid4().hex
        collection.document(asset_id).set(
            {
                "asset_id": asset_id,
                "public_id": f"folder/p{i}",
                "version": 100 + i,
                "status": "done",
                "label": label,
                "score": 0.5,
                "predictions": [{"label": label, "wnid": "n0", "score": 0.5}],
                "tags": [label],
                "created_at": start + dt.timedelta(minutes=i),
                "updated_at": start + dt.timedelta(minutes=i),
            }
        )
        ids.append(asset_id)
    return ids[::-1]


# -- settings ------------------------------------------------------------------------------------


def test_private_and_signed_by_default() -> None:
    settings = load_settings({})
    assert settings.results_access == "private"
    assert settings.upload_mode == "signed"
    assert settings.results_token is None
    assert settings.upload_folder == "autotagger"
    assert "jpg" in settings.upload_allowed_formats
    assert settings.upload_max_bytes == settings.max_image_bytes
    assert settings.forward_budget_per_min == 10


def test_public_means_unsigned_unless_told_otherwise() -> None:
    assert load_settings({"RESULTS_ACCESS": "public"}).upload_mode == "unsigned"
    both = load_settings({"RESULTS_ACCESS": "public", "UPLOAD_MODE": "signed"})
    assert both.upload_mode == "signed"
    assert load_settings({"UPLOAD_MODE": "unsigned"}).results_access == "private"
    settings = load_settings(
        {
            "UPLOAD_FOLDER": "/a/b/",
            "UPLOAD_ALLOWED_FORMATS": "JPG, png,,",
            "UPLOAD_MAX_BYTES": "2048",
            "FORWARD_BUDGET_PER_MIN": "3",
        }
    )
    assert settings.upload_folder == "a/b"
    assert settings.upload_allowed_formats == ("jpg", "png")
    assert (settings.upload_max_bytes, settings.forward_budget_per_min) == (2048, 3)


def test_the_token_is_kept_out_of_repr_and_errors() -> None:
    settings = load_settings({"RESULTS_TOKEN": f"  {TOKEN} "})
    assert settings.results_token == TOKEN
    assert TOKEN not in repr(settings) and "t0k3n" not in str(settings)
    weak = "short-but-secret"
    with pytest.raises(ConfigError, match="RESULTS_TOKEN") as caught:
        load_settings({"RESULTS_TOKEN": weak})
    assert weak not in caught.value.message
    with pytest.raises(ConfigError, match="RESULTS_TOKEN"):
        load_settings({"RESULTS_TOKEN": "x" * 20 + " " + "y" * 20})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RESULTS_ACCESS", "open"),
        ("UPLOAD_MODE", "maybe"),
        ("UPLOAD_FOLDER", "../etc"),
        ("UPLOAD_FOLDER", "a b"),
        ("UPLOAD_ALLOWED_FORMATS", "jpg,*.exe"),
        ("UPLOAD_MAX_BYTES", "12"),
        ("FORWARD_BUDGET_PER_MIN", "0"),
    ],
)
def test_bad_access_settings_name_themselves(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


# -- listing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", LISTINGS)
@pytest.mark.parametrize(
    ("headers", "query", "error"),
    [
        ({}, "", None),
        (_auth("wrong-" + TOKEN[6:]), "", "invalid_token"),
        (_auth(TOKEN[:-1]), "", "invalid_token"),
        ({"Authorization": f"Basic {TOKEN}"}, "", None),
        ({}, f"token={TOKEN}", "invalid_request"),
        ({}, f"access_token={TOKEN}", "invalid_request"),
        (_auth(), f"key={TOKEN}", "invalid_request"),
        (_auth(), f"limit=5&x={TOKEN}", "invalid_request"),
    ],
    ids=["none", "wrong", "prefix", "basic", "query", "access_token", "query+header", "value"],
)
def test_private_listings_need_the_token_in_the_header(
    make_client, seeded, path: str, headers: dict[str, str], query: str, error: str | None
) -> None:
    client = make_client("results", **PRIVATE)
    url = f"{path}{'&' if '?' in path else '?'}{query}" if query else path
    response = client.get(url, headers=headers)
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.get_json()["error"]
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert (f'error="{error}"' in challenge) if error else ("error=" not in challenge)
    assert TOKEN not in response.get_data(as_text=True)


def test_private_listings_with_the_token(make_client, seeded) -> None:
    client = make_client("results", **PRIVATE)
    recent, by_label, by_public_id = (client.get(path, headers=_auth()) for path in LISTINGS)
    assert [r["asset_id"] for r in recent.get_json()["results"]] == seeded
    assert [r["asset_id"] for r in by_label.get_json()["results"]] == [seeded[0], seeded[2]]
    assert by_public_id.get_json()["count"] == 1
    assert client.get("/api/results?limit=1", headers=_auth()).get_json()["count"] == 1
    # a lowercase scheme is still the Bearer scheme (RFC 7235: case-insensitive)
    lower = client.get("/api/results", headers={"Authorization": f"bearer {TOKEN}"})
    assert lower.status_code == 200


def test_lookup_by_asset_id_stays_open(make_client, seeded) -> None:
    client = make_client("results", **PRIVATE)
    found = client.get(f"/api/results?asset_id={seeded[1]}")
    assert found.status_code == 200
    assert [r["asset_id"] for r in found.get_json()["results"]] == [seeded[1]]
    # a guessed id is the same single point read as any miss: an empty list, not an error
    guessed = client.get(f"/api/results?asset_id={uuid.uuid4().hex}")
    assert guessed.status_code == 200
    assert guessed.get_json() == {"results": [], "count": 0}
    # ... but it cannot be combined with a listing filter to list without the key
    mixed = client.get(f"/api/results?asset_id={seeded[1]}&label=tabby")
    assert mixed.status_code == 401


def test_public_mode_is_todays_behaviour(make_client, seeded) -> None:
    client = make_client("results", RESULTS_ACCESS="public", RESULTS_TOKEN=TOKEN)
    for path in LISTINGS:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "WWW-Authenticate" not in response.headers
    assert client.get("/api/results").get_json()["count"] == 3
    assert client.get("/api/results?colour=red").status_code == 400


def test_private_without_a_configured_token_lists_nothing(make_client, seeded) -> None:
    client = make_client("results", RESULTS_ACCESS="private")
    response = client.get("/api/results", headers=_auth())
    assert response.status_code == 503
    assert "RESULTS_TOKEN is not set" in response.get_json()["error"]
    assert client.get(f"/api/results?asset_id={seeded[0]}").status_code == 200


def test_the_token_is_never_logged(make_client, seeded, capfd) -> None:
    client = make_client("results", **PRIVATE, LOG_LEVEL="DEBUG")
    wrong = "W" * 40
    client.get("/api/results", headers=_auth(wrong))
    client.get(f"/api/results?token={TOKEN}")
    client.get("/api/results", headers=_auth())
    client.post("/api/sign-upload", json={"params_to_sign": {"eager": "x"}}, headers=_auth())
    logged = "".join(capfd.readouterr())
    assert "listing results" in logged or "access key" in logged  # the 401s were logged ...
    assert TOKEN not in logged and wrong not in logged  # ... without any key


def test_cli_results_is_unaffected(seeded, monkeypatch, capsys) -> None:
    from autotagger import cli

    monkeypatch.setenv("RESULTS_ACCESS", "private")  # no RESULTS_TOKEN: the CLI needs none
    assert cli.main(["results", "--json"]) == 0
    assert [r["asset_id"] for r in json.loads(capsys.readouterr().out)["results"]] == seeded
    assert cli.main(["results", "--label", "tabby", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 2


def test_preflight_allows_the_authorization_header(make_client) -> None:
    client = make_client("results", **PRIVATE, ALLOWED_ORIGINS="https://photos.example.com")
    response = client.options(
        "/api/results",
        headers={
            "Origin": "https://photos.example.com",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status_code == 204
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]


# -- signed uploads ------------------------------------------------------------------------------


def _widget_params(**changes: Any) -> dict[str, Any]:
    """What the Upload widget asks to sign for our options (cf. tests/e2e/widget_standin.js)."""
    params: dict[str, Any] = {
        "timestamp": int(time.time()),
        "source": "uw",
        "upload_preset": PRESET,
        "folder": FOLDER,
    }
    params.update(changes)
    return {k: v for k, v in params.items() if v is not None}


def _signed_preset(standin: CloudinaryStandin, max_file_size: int = 25 * 1024 * 1024) -> None:
    argv = ["--preset", PRESET, "--folder", FOLDER, "--mode", "signed"]
    assert cloudinary_setup.main([*argv, "--max-file-size", str(max_file_size)]) == 0
    assert standin.preset(PRESET)["unsigned"] is False


def _upload(standin: CloudinaryStandin, params: dict[str, Any], signature: str, data: bytes) -> Any:
    """The widget's upload request: the signed params, api_key, signature and the file."""
    form = {**{k: str(v) for k, v in params.items()}, "api_key": standin.api_key}
    form["signature"] = signature
    return requests.post(
        f"{standin.url}/v1_1/{standin.cloud_name}/image/upload",
        data=form,
        files={"file": ("photo.jpg", data, "image/jpeg")},
        timeout=30,
    )


def test_a_signed_upload_goes_through_with_the_servers_signature(make_client, standin) -> None:
    _signed_preset(standin)
    client = make_client("results", **SIGNED)
    params = _widget_params()
    response = client.post("/api/sign-upload", json={"params_to_sign": params}, headers=_auth())
    assert response.status_code == 200, response.get_data(as_text=True)
    signature = response.get_json()["signature"]
    assert set(response.get_json()) == {"signature"}

    uploaded = _upload(standin, params, signature, image_bytes())
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["public_id"].startswith(f"{FOLDER}/")

    # the local Cloudinary checks the signature: the same one over other params is refused
    moved = _upload(standin, {**params, "folder": "elsewhere"}, signature, image_bytes())
    assert moved.status_code == 401 and "Invalid Signature" in moved.json()["error"]["message"]
    forged = _upload(standin, params, "0" * 40, image_bytes())
    assert forged.status_code == 401
    assert [pid.split("/")[0] for pid in standin.public_ids()] == ["team"]  # only the first


@pytest.mark.parametrize(
    "changes",
    [
        {"folder": "elsewhere"},
        {"folder": None},
        {"allowed_formats": "svg"},
        {"allowed_formats": "jpg,pdf"},
        {"eager": "c_fill,w_4000,h_4000"},
        {"transformation": "e_pixelate"},
        {"notification_url": "https://attacker.example/hook"},
        {"public_id": "team/uploads/overwrite-me"},
        {"upload_preset": "ml_default"},
        {"upload_preset": None},
        {"max_file_size": 10**12},
        {"source": "api"},
        {"timestamp": int(time.time()) - 2 * 3600},
        {"timestamp": int(time.time()) + 86400},
        {"timestamp": "now"},
        {"folder": {"nested": "object"}},
    ],
    ids=lambda c: "-".join(f"{k}={str(v)[:12]}" for k, v in c.items()),
)
def test_tampered_params_are_refused_and_nothing_is_uploaded(
    make_client, standin, changes: dict[str, Any]
) -> None:
    _signed_preset(standin)
    client = make_client("results", **SIGNED)
    params = _widget_params(**changes)
    response = client.post("/api/sign-upload", json={"params_to_sign": params}, headers=_auth())
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "signature" not in response.get_json() and response.get_json()["error"]
    assert standin.public_ids() == []
    assert not [c for c in standin.calls if c["path"].endswith("/upload")]


def test_allowed_formats_and_size_within_ours_may_be_signed(make_client, standin) -> None:
    _signed_preset(standin, max_file_size=4000)
    client = make_client("results", **SIGNED, UPLOAD_MAX_BYTES="4000")
    params = _widget_params(allowed_formats="jpg,png", max_file_size=4000)
    response = client.post("/api/sign-upload", json={"params_to_sign": params}, headers=_auth())
    assert response.status_code == 200
    signature = response.get_json()["signature"]
    assert _upload(standin, params, signature, image_bytes((32, 32))).status_code == 200
    # the preset's size cap holds for what was signed
    too_big = _upload(standin, params, signature, image_bytes((900, 900), fmt="PNG"))
    assert too_big.status_code == 400 and "File size too large" in too_big.text


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), (_auth("x" * 40), 401), ({"Authorization": "Bearer"}, 401)],
)
def test_signing_needs_the_token(make_client, standin, headers, status: int) -> None:
    client = make_client("results", **SIGNED)
    response = client.post("/api/sign-upload", json={"params_to_sign": _widget_params()})
    assert response.status_code == 401
    response = client.post(
        "/api/sign-upload", json={"params_to_sign": _widget_params()}, headers=headers
    )
    assert response.status_code == status
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "signature" not in response.get_json()


def test_signing_is_off_in_unsigned_mode_and_only_posts(make_client) -> None:
    client = make_client("results", **SIGNED, UPLOAD_MODE="unsigned")
    body = {"params_to_sign": _widget_params()}
    assert client.post("/api/sign-upload", json=body, headers=_auth()).status_code == 404
    signed = make_client("results", **SIGNED)
    assert signed.get("/api/sign-upload", headers=_auth()).status_code == 404
    assert signed.post("/api/results", headers=_auth()).status_code == 405
    bad = signed.post("/api/sign-upload", data=b"not json", headers=_auth())
    assert bad.status_code == 400
    big = signed.post("/api/sign-upload", data=b"{" + b" " * 20000 + b"}", headers=_auth())
    assert big.status_code == 413


def test_no_secret_in_any_byte_served(make_client, standin, seeded) -> None:
    client = make_client("results", **SIGNED)
    served = b""
    assets = [f"/assets/{name}" for name in page.static_files()]
    for path in ("/", *assets, "/healthz"):
        response = client.get(path)
        assert response.status_code == 200, path
        served += response.get_data() + json.dumps(dict(response.headers)).encode()
    for path in [f"/api/results?asset_id={seeded[0]}", *LISTINGS]:
        for headers in ({}, _auth()):
            response = client.get(path, headers=headers)
            served += response.get_data() + json.dumps(dict(response.headers)).encode()
    for headers in ({}, _auth()):
        response = client.post(
            "/api/sign-upload", json={"params_to_sign": _widget_params()}, headers=headers
        )
        served += response.get_data() + json.dumps(dict(response.headers)).encode()
    assert standin.api_secret.encode() not in served
    assert TOKEN.encode() not in served
    assert b"cloudinary://" not in served
    config = client.get("/").get_data(as_text=True)
    assert '"access":"private"' in config and '"uploadMode":"signed"' in config
    assert f'"apiKey":"{standin.api_key}"' in config  # public by design, needed by the widget


# -- the forward budget --------------------------------------------------------------------------


def test_budget_window_slides() -> None:
    now = [1000.0]
    budget = access.ForwardBudget(2, clock=lambda: now[0])
    budget.spend()
    now[0] += 10
    budget.spend()
    with pytest.raises(TooManyRequests) as caught:
        budget.spend()
    assert caught.value.headers == {"Retry-After": "50"}
    now[0] += 50  # the first call leaves the window
    budget.spend()
    with pytest.raises(TooManyRequests) as caught:
        budget.spend()
    assert caught.value.retry_after_s == 10


def test_a_forward_flood_spends_at_most_the_budget(make_client, standin) -> None:
    client = make_client("on_upload", FORWARD_BUDGET_PER_MIN="3")
    account = load_settings().cloudinary
    assert account is not None
    answers = []
    for i in range(8):  # validly signed forwards of assets Cloudinary does not have
        public_id, version = f"flood/{i}", 1_700_000_000 + i
        signature = forward.expected_signature(public_id, version, account)
        body = {"public_id": public_id, "version": version, "signature": signature}
        answers.append(client.post("/forward", json=body))
    assert [a.status_code for a in answers] == [400] * 3 + [429] * 5
    for answer in answers[3:]:
        assert 1 <= int(answer.headers["Retry-After"]) <= 60
        assert "budget" in answer.get_json()["error"]
    admin_calls = [c for c in standin.calls if "/resources/" in c["path"]]
    assert len(admin_calls) == 3
    # a forged forward is refused before the budget: it spends nothing and says 401
    forged = client.post("/forward", json={"public_id": "x", "version": 1, "signature": "0" * 40})
    assert forged.status_code == 401


# -- cloudinary_setup.py: the signed preset ------------------------------------------------------


def test_setup_creates_a_signed_preset_that_refuses_unsigned_uploads(
    base_env, standin, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("RESULTS_ACCESS", "private")  # the default mode is then signed
    assert cloudinary_setup.main(["--preset", "team", "--dry-run"]) == 0
    assert "  unsigned: None -> False" in capsys.readouterr().out
    assert cloudinary_setup.main(["--preset", "team"]) == 0
    preset = standin.preset("team")
    assert preset["unsigned"] is False
    assert preset["settings"]["allowed_formats"] == ",".join(cloudinary_setup.ALLOWED_FORMATS)
    assert preset["settings"]["max_file_size"] == 25 * 1024 * 1024
    with pytest.raises(cloudinary.exceptions.Error, match="whitelisted for unsigned"):
        cloudinary.uploader.unsigned_upload(image_bytes(), "team")
    assert cloudinary_setup.main(["--preset", "team"]) == 0
    assert "is up to date" in capsys.readouterr().out
    # switching an existing preset to unsigned is a visible change
    assert cloudinary_setup.main(["--preset", "team", "--mode", "unsigned"]) == 0
    assert "  unsigned: False -> True" in capsys.readouterr().out
    assert standin.preset("team")["unsigned"] is True


# -- deploy.sh: the token secret and the access mode ---------------------------------------------


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
