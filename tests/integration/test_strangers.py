"""Whatever a stranger sends, before any authentication, answers 4xx with a clear message and
logs at most a WARNING: never a 500, never an ERROR with a traceback."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tests.support.helpers import sign_body

DEEP = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECT = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
SMALL_DEEP = b"[" * 8_000 + b"]" * 8_000  # under sign-upload's 16 KB body limit
LONG_INT = b'{"public_id": "x", "version": ' + b"9" * 5000 + b', "signature": "' + b"0" * 40 + b'"}'
SIG = "0" * 40
TOKEN = "t" * 40
ARABIC_DIGITS = "\u0661\u0667\u0660\u0660"  # 1700 in Arabic-Indic digits: isdigit() is true
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def _forward(**fields: Any) -> bytes:
    return json.dumps({"public_id": "x", "version": 1, "signature": SIG, **fields}).encode()


# (function, method, path, body or query, headers, expected status)
REQUESTS: list[tuple[str, str, str, Any, dict[str, str], int]] = [
    ("on_upload", "POST", "/forward", DEEP, {}, 400),
    ("on_upload", "POST", "/forward", DEEP_OBJECT, {}, 400),
    ("on_upload", "POST", "/forward", LONG_INT, {}, 400),
    ("on_upload", "POST", "/forward", _forward(version="²"), {}, 400),
    ("on_upload", "POST", "/forward", _forward(version="\u0661\u0662\u0663"), {}, 400),
    ("on_upload", "POST", "/forward", _forward(version=1e400), {}, 400),
    (
        "on_upload",
        "POST",
        "/forward",
        b'{"public_id": "\\ud800", "version": 1, "signature": "' + SIG.encode() + b'"}',
        {},
        400,
    ),
    ("on_upload", "POST", "/forward", b'{"version": NaN}', {}, 400),
    ("on_upload", "POST", "/forward", b"\xff\xfe", {}, 400),
    ("on_upload", "POST", "/", b"{}", {"X-Cld-Timestamp": "²", "X-Cld-Signature": SIG}, 401),
    (
        "on_upload",
        "POST",
        "/",
        b"{}",
        {"X-Cld-Timestamp": ARABIC_DIGITS, "X-Cld-Signature": SIG},
        401,
    ),
    ("on_upload", "POST", "/", b"{}", {"X-Cld-Timestamp": "9" * 5000, "X-Cld-Signature": SIG}, 401),
    ("results", "POST", "/api/sign-upload", SMALL_DEEP, {}, 400),
    ("results", "POST", "/api/sign-upload", b'{"a":' * 2500 + b"1" + b"}" * 2500, {}, 400),
    ("results", "POST", "/api/sign-upload", b'{"params_to_sign": {"t": "\\udfff"}}', {}, 400),
    ("results", "POST", "/api/sign-upload", LONG_INT, {}, 400),
    ("results", "GET", "/api/results", {"limit": "²"}, BEARER, 400),
    ("results", "GET", "/api/results", {"limit": "\u0663"}, BEARER, 400),
    ("results", "GET", "/api/results", {"limit": "9" * 5000}, BEARER, 400),
    ("results", "GET", "/api/results", {"asset_id": "__x__"}, {}, 400),
    ("results", "GET", "/api/results", {"asset_id": "__name__"}, {}, 400),
    ("results", "GET", "/api/results", {"asset_id": "a" * 129}, {}, 400),
    ("results", "GET", "/api/results", {"asset_id": "é"}, {}, 400),
]


@pytest.mark.parametrize("target", ["on_upload", "results"])
def test_strangers_get_4xx_and_at_most_a_warning(
    make_client, standin, caplog, capsys, target: str
) -> None:
    client = make_client(target, RESULTS_ACCESS="private", RESULTS_TOKEN=TOKEN)
    caplog.set_level(logging.DEBUG)
    tried = 0
    for function, method, path, payload, headers, expected in REQUESTS:
        if function != target:
            continue
        if method == "GET":
            response = client.get(path, query_string=payload, headers=headers)
        else:
            response = client.post(
                path, data=payload, headers={"Content-Type": "application/json", **headers}
            )
        tried += 1
        shown = (path, str(payload)[:60])
        assert response.status_code == expected, (shown, response.get_data(as_text=True)[:300])
        error = response.get_json()["error"]
        assert error and len(error) < 400 and "Traceback" not in error, shown
    assert tried >= 10
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert loud == [], [r.getMessage() for r in loud]
    assert '"severity": "ERROR"' not in capsys.readouterr().out


def test_a_signed_notification_with_unicode_digit_version_is_a_400(make_client, standin) -> None:
    client = make_client("on_upload")
    body = json.dumps(
        {
            "notification_type": "upload",
            "resource_type": "image",
            "asset_id": "a" * 32,
            "public_id": "p",
            "version": "²",
            "secure_url": "https://res.cloudinary.com/x.jpg",
        }
    ).encode()
    response = client.post("/", data=body, headers=sign_body(body, standin.api_secret))
    assert response.status_code == 400
    assert "version" in response.get_json()["error"]
