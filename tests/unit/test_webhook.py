"""Signature verification and notification parsing (no network, no model)."""

from __future__ import annotations

import json
import time

import pytest

from autotagger.config import parse_cloudinary_url
from autotagger.errors import BadRequest, Unauthorized
from autotagger.web.webhook import Ignored, Upload, parse_json, parse_notification, verify_signature
from tests.support.helpers import load_payload, sign_body

ACCOUNT = parse_cloudinary_url("cloudinary://123456789012345:top-secret@demo")
ACCOUNT_256 = parse_cloudinary_url(
    "cloudinary://123456789012345:top-secret@demo?signature_algorithm=sha256"
)
BODY = json.dumps(load_payload("upload_notification.json"), separators=(",", ":")).encode()


def _verify(body: bytes, headers: dict[str, str], account=ACCOUNT, max_age: int = 7200) -> None:
    verify_signature(
        body, headers.get("X-Cld-Timestamp"), headers.get("X-Cld-Signature"), account, max_age
    )


@pytest.mark.parametrize("account", [ACCOUNT, ACCOUNT_256])
def test_valid_signature_passes(account) -> None:
    headers = sign_body(BODY, account.api_secret, account.signature_algorithm)
    _verify(BODY, headers, account)


def test_uppercase_hex_is_accepted() -> None:
    headers = sign_body(BODY, "top-secret")
    headers["X-Cld-Signature"] = headers["X-Cld-Signature"].upper()
    _verify(BODY, headers)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda body, h: (body.replace(b"samples/dog", b"samples/cat"), h),  # body changed
        lambda body, h: (body, {**h, "X-Cld-Signature": "0" * 40}),  # forged
        lambda body, h: (body, sign_body(body, "wrong-secret")),  # wrong secret
        lambda body, h: (body, {**h, "X-Cld-Timestamp": str(int(h["X-Cld-Timestamp"]) + 1)}),
        lambda body, h: (body, {"X-Cld-Timestamp": h["X-Cld-Timestamp"]}),  # no signature
        lambda body, h: (body, {"X-Cld-Signature": h["X-Cld-Signature"]}),  # no timestamp
        lambda body, h: (body, {**h, "X-Cld-Timestamp": "12abc"}),
        lambda body, h: (body, {**h, "X-Cld-Signature": "zz" * 20}),
    ],
)
def test_tampered_requests_are_rejected(tamper) -> None:
    body, headers = tamper(BODY, sign_body(BODY, "top-secret"))
    with pytest.raises(Unauthorized):
        _verify(body, headers)


def test_sha1_signature_is_rejected_for_a_sha256_account() -> None:
    with pytest.raises(Unauthorized):
        _verify(BODY, sign_body(BODY, "top-secret", "sha1"), ACCOUNT_256)


def test_stale_and_future_timestamps_are_rejected() -> None:
    old = sign_body(BODY, "top-secret", timestamp=int(time.time()) - 7300)
    with pytest.raises(Unauthorized, match="stale"):
        _verify(BODY, old)
    _verify(BODY, sign_body(BODY, "top-secret", timestamp=int(time.time()) - 7000))
    future = sign_body(BODY, "top-secret", timestamp=int(time.time()) + 3600)
    with pytest.raises(Unauthorized, match="future"):
        _verify(BODY, future)


def test_upload_is_parsed() -> None:
    event = parse_notification(parse_json(BODY))
    assert isinstance(event, Upload)
    assert event.asset_id == "3515c6000a548515f1134043f9785c2f"
    assert event.public_id == "samples/dog"
    assert event.version == 1763979303
    assert event.secure_url.startswith("https://res.cloudinary.com/")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("audio_upload_notification.json", "audio-only"),
        ("resource_tags_changed_notification.json", "not an upload"),
    ],
)
def test_other_notifications_are_ignored(name: str, reason: str) -> None:
    event = parse_notification(load_payload(name))
    assert isinstance(event, Ignored)
    assert reason in event.reason


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b"\xff\xfe", b'"upload"'],
)
def test_malformed_json_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_json(body)


@pytest.mark.parametrize(
    "change",
    [
        {"asset_id": None},
        {"asset_id": "../../etc"},
        {"public_id": ""},
        {"version": "v12"},
        {"version": True},
        {"secure_url": 42},
        {"notification_type": 7},
    ],
)
def test_malformed_upload_fields_are_bad_requests(change: dict) -> None:
    with pytest.raises(BadRequest):
        parse_notification(load_payload("upload_notification.json", **change))
