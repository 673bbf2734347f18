"""Signed uploads (function/autotagger/web/access.py): the server signs only what the widget
may ask for, the local Cloudinary checks the signature, no secret in any byte served; and the
signed preset that cloudinary_setup.py creates.

Browser tests of the private page are in tests/e2e/test_private_page.py.
"""

from __future__ import annotations

import json
import time
from typing import Any

import cloudinary.exceptions
import cloudinary.uploader
import pytest
import requests

from autotagger.web import page
from infra import cloudinary_setup
from infra.local_cloudinary import CloudinaryStandin
from tests.support.access import FOLDER, LISTINGS, PRESET, SIGNED, TOKEN, auth, seed_documents
from tests.support.helpers import image_bytes


@pytest.fixture
def seeded(base_env: dict[str, str]) -> list[str]:
    """Three documents straight in the emulator; returns their asset_ids, newest first."""
    return seed_documents(base_env)


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
    response = client.post("/api/sign-upload", json={"params_to_sign": params}, headers=auth())
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
        # ids that do not depend on the clock: each pytest worker collects at its own second
        pytest.param({"timestamp": int(time.time()) - 2 * 3600}, id="timestamp=2h-ago"),
        pytest.param({"timestamp": int(time.time()) + 86400}, id="timestamp=tomorrow"),
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
    response = client.post("/api/sign-upload", json={"params_to_sign": params}, headers=auth())
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "signature" not in response.get_json() and response.get_json()["error"]
    assert standin.public_ids() == []
    assert not [c for c in standin.calls if c["path"].endswith("/upload")]


def test_allowed_formats_and_size_within_ours_may_be_signed(make_client, standin) -> None:
    _signed_preset(standin, max_file_size=4000)
    client = make_client("results", **SIGNED, UPLOAD_MAX_BYTES="4000")
    params = _widget_params(allowed_formats="jpg,png", max_file_size=4000)
    response = client.post("/api/sign-upload", json={"params_to_sign": params}, headers=auth())
    assert response.status_code == 200
    signature = response.get_json()["signature"]
    assert _upload(standin, params, signature, image_bytes((32, 32))).status_code == 200
    # the preset's size cap holds for what was signed
    too_big = _upload(standin, params, signature, image_bytes((900, 900), fmt="PNG"))
    assert too_big.status_code == 400 and "File size too large" in too_big.text


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), (auth("x" * 40), 401), ({"Authorization": "Bearer"}, 401)],
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
    assert client.post("/api/sign-upload", json=body, headers=auth()).status_code == 404
    signed = make_client("results", **SIGNED)
    assert signed.get("/api/sign-upload", headers=auth()).status_code == 404
    assert signed.post("/api/results", headers=auth()).status_code == 405
    bad = signed.post("/api/sign-upload", data=b"not json", headers=auth())
    assert bad.status_code == 400
    big = signed.post("/api/sign-upload", data=b"{" + b" " * 20000 + b"}", headers=auth())
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
        for headers in ({}, auth()):
            response = client.get(path, headers=headers)
            served += response.get_data() + json.dumps(dict(response.headers)).encode()
    for headers in ({}, auth()):
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
