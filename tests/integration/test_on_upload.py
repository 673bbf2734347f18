"""on_upload through the real Flask app: rejections and ignored events (no model needed)."""

from __future__ import annotations

import json
import time

import pytest

from autotagger import model
from infra.local_cloudinary import CloudinaryStandin
from tests.support.helpers import image_bytes, load_payload, notification_from, sign_body


def _post(client, body: bytes, headers: dict[str, str]):
    return client.post("/", data=body, headers=headers)


def test_forged_wrong_secret_and_stale_are_401_and_store_nothing(
    make_client, standin: CloudinaryStandin, stored
) -> None:
    client = make_client("on_upload")
    resource = standin.add_asset(image_bytes(), public_id="cats/one")
    body = notification_from(resource)
    good = sign_body(body, standin.api_secret)
    attempts = {
        "forged": {**good, "X-Cld-Signature": "ab" * 20},
        "wrong secret": sign_body(body, "not-the-secret"),
        "stale": sign_body(body, standin.api_secret, timestamp=int(time.time()) - 3 * 3600),
        "unsigned": {"Content-Type": "application/json"},
        "body swapped": good,
    }
    for name, headers in attempts.items():
        sent = body.replace(b"cats/one", b"cats/two") if name == "body swapped" else body
        response = _post(client, sent, headers)
        assert response.status_code == 401, name
        assert "error" in response.get_json()
    assert stored() == {}
    assert not [c for c in standin.calls if "/tags" in c["path"] or "/image/upload/" in c["path"]]


def test_signed_malformed_json_is_400(make_client, standin: CloudinaryStandin, stored) -> None:
    client = make_client("on_upload")
    for body in (b"{oops", b"[]", json.dumps({"notification_type": "upload"}).encode()):
        response = _post(client, body, sign_body(body, standin.api_secret))
        assert response.status_code == 400
    assert stored() == {}


@pytest.mark.parametrize(
    "name", ["audio_upload_notification.json", "resource_tags_changed_notification.json"]
)
def test_other_notifications_are_ignored_with_2xx(
    make_client, standin: CloudinaryStandin, stored, name: str
) -> None:
    client = make_client("on_upload")
    body = json.dumps(load_payload(name), separators=(",", ":")).encode()
    loads_before = model.load_count
    response = _post(client, body, sign_body(body, standin.api_secret))
    assert response.status_code == 200
    assert response.get_json()["status"] == "ignored"
    assert response.get_json()["reason"]
    assert stored() == {}
    assert model.load_count == loads_before
    assert standin.calls == []


def test_sha256_account(make_client, standin: CloudinaryStandin, monkeypatch) -> None:
    url = standin.cloudinary_url + "&signature_algorithm=sha256"
    client = make_client("on_upload", CLOUDINARY_URL=url)
    body = json.dumps(load_payload("audio_upload_notification.json")).encode()
    assert _post(client, body, sign_body(body, standin.api_secret, "sha256")).status_code == 200
    assert _post(client, body, sign_body(body, standin.api_secret, "sha1")).status_code == 401


def test_only_post(make_client) -> None:
    assert make_client("on_upload").get("/").status_code == 405


def test_oversized_body_is_413(make_client, standin: CloudinaryStandin) -> None:
    client = make_client("on_upload", MAX_BODY_BYTES="2048")
    body = json.dumps(load_payload("upload_notification.json", padding="x" * 4096)).encode()
    assert _post(client, body, sign_body(body, standin.api_secret)).status_code == 413


def test_without_cloudinary_url_on_upload_says_what_is_missing(make_client, monkeypatch) -> None:
    monkeypatch.delenv("CLOUDINARY_URL")
    client = make_client("on_upload")
    body = b"{}"
    response = _post(client, body, sign_body(body, "x"))
    assert response.status_code == 503
    assert "CLOUDINARY_URL" in response.get_json()["error"]
