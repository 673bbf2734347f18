"""Cloudinary's signatures: the string to sign, signed Upload API requests, the Admin API's basic
auth and the ``X-Cld-Signature`` of notifications."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request

from infra.local_cloudinary.responses import Fail, JsonDict

HASHES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
# Never part of an Upload API signature (documented: file, cloud_name, resource_type, api_key).
UNSIGNED_KEYS = {"file", "api_key", "resource_type", "cloud_name", "signature"}
# The tags/context/metadata endpoints accept these but leave them out of the signature (the SDK's
# uploader._NON_SIGNABLE_NOTIFICATION_PARAMS says so).
NOTIFICATION_KEYS = {"notification_url", "batch_id"}


def string_to_sign(params: Mapping[str, Any], signature_version: int = 2) -> str:
    """Cloudinary's string to sign: non-empty ``k=v`` pairs (lists comma-joined), sorted, ``&``."""
    pairs = []
    for key, value in params.items():
        if not value:
            continue
        if isinstance(value, list):
            text = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            text = str(value).lower()
        else:
            text = str(value)
        pair = f"{key}={text}"
        # Version 2 escapes "&" inside values so parameters cannot be smuggled.
        pairs.append(pair.replace("&", "%26") if signature_version >= 2 else pair)
    return "&".join(sorted(pairs))


def sign(params: Mapping[str, Any], secret: str, algorithm: str = "sha1", version: int = 2) -> str:
    """Hex digest of ``string_to_sign(params) + secret`` (a plain hash, not an HMAC)."""
    return HASHES[algorithm]((string_to_sign(params, version) + secret).encode()).hexdigest()


def check_signature(
    params: JsonDict, excluded: set[str], api_key: str, api_secret: str, algorithm: str
) -> None:
    """Signed-request rules: known api_key, matching signature, timestamp under 1 hour old."""
    given_key = params.get("api_key")
    if not given_key:
        raise Fail(401, "Must supply api_key")
    if given_key != api_key:
        raise Fail(401, f"Unknown API key {given_key}")
    to_sign = {k: v for k, v in params.items() if k not in UNSIGNED_KEYS | excluded}
    given = str(params.get("signature") or "")
    # The SDK signs with version 2 ("&" escaped) by default; version 1 is still accepted.
    expected = [sign(to_sign, api_secret, algorithm, v) for v in (2, 1)]
    if not any(hmac.compare_digest(given.encode(), e.encode()) for e in expected):
        to_sign_text = string_to_sign(to_sign)
        raise Fail(401, f"Invalid Signature {given}. String to sign - '{to_sign_text}'.")
    try:
        timestamp = int(params.get("timestamp") or "")
    except ValueError:
        raise Fail(400, "Missing required parameter - timestamp") from None
    if timestamp < time.time() - 3600:
        when = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S +0000")
        message = f"Stale request - reported time is {when} which is more than 1 hour ago"
        raise Fail(401, message)


def check_basic_auth(request: Request, api_key: str, api_secret: str) -> None:
    """Admin API: HTTP basic auth with api_key:api_secret."""
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username:
        raise Fail(401, "Must supply api_key")
    if auth.username != api_key:
        raise Fail(401, f"Unknown API key {auth.username}")
    if not hmac.compare_digest(str(auth.password or "").encode(), api_secret.encode()):
        raise Fail(401, "api_secret mismatch")


def sign_notification(
    payload: JsonDict, api_secret: str, algorithm: str
) -> tuple[bytes, dict[str, str]]:
    """Compact JSON body; ``X-Cld-Signature`` = hex(hash(body + timestamp + api_secret))."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    timestamp = str(int(time.time()))
    digest = HASHES[algorithm](body + (timestamp + api_secret).encode())
    headers = {
        "Content-Type": "application/json",
        "X-Cld-Timestamp": timestamp,
        "X-Cld-Signature": digest.hexdigest(),
    }
    return body, headers
