"""Cloudinary notifications: signature verification and parsing.

Cloudinary signs a notification as hex(SHA(body + X-Cld-Timestamp + api_secret)), with the account's
signature algorithm (SHA-1 by default, SHA-256 opt-in): a plain hash, not an HMAC. The SDK's
`verify_notification_signature` compares with `==`; here the comparison is constant time and the
signature is checked over the raw bytes before anything else is parsed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Any

from autotagger import parsing
from autotagger.config import CloudinaryAccount
from autotagger.domain import InvalidField, Upload, parse_upload, required_text
from autotagger.errors import BadRequest, Unauthorized

MAX_CLOCK_SKEW_S = 300
_HEX_RE = re.compile(r"^[0-9a-fA-F]+$")
_DIGEST_LENGTH = {"sha1": 40, "sha256": 64}


@dataclass(frozen=True)
class Ignored:
    """A notification we answer 2xx without classifying (not an upload, not an image/video)."""

    reason: str
    notification_type: str | None = None


def is_hex_digest(value: str, algorithm: str) -> bool:
    """True when `value` has the shape of a hex digest of `algorithm` (sha1 or sha256)."""
    return len(value) == _DIGEST_LENGTH[algorithm] and bool(_HEX_RE.match(value))


def sign(body: bytes, timestamp: str, api_secret: str, algorithm: str) -> str:
    """The hex digest Cloudinary sends in X-Cld-Signature."""
    digest = hashlib.new(algorithm)
    digest.update(body + timestamp.encode("ascii") + api_secret.encode("utf-8"))
    return digest.hexdigest()


def verify_signature(
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    account: CloudinaryAccount,
    max_age_s: int,
    now: float | None = None,
) -> None:
    """Raise Unauthorized unless the signature is valid and the timestamp fresh."""
    if not timestamp or not signature:
        raise Unauthorized("missing X-Cld-Signature or X-Cld-Timestamp header")
    if not parsing.is_ascii_int(timestamp, max_digits=12):
        raise Unauthorized("malformed X-Cld-Timestamp header")
    if not is_hex_digest(signature, account.signature_algorithm):
        raise Unauthorized("malformed X-Cld-Signature header")
    expected = sign(body, timestamp, account.api_secret, account.signature_algorithm)
    if not hmac.compare_digest(expected, signature.lower()):
        raise Unauthorized("signature does not match")
    now = time.time() if now is None else now
    age = now - int(timestamp)
    if age > max_age_s:
        raise Unauthorized(f"stale notification: signed {int(age)} s ago (limit {max_age_s} s)")
    if age < -MAX_CLOCK_SKEW_S:
        raise Unauthorized("notification timestamp is in the future")


def parse_json(body: bytes) -> dict[str, Any]:
    """Parse a JSON object or raise BadRequest (`parsing.parse_json`)."""
    return parsing.parse_json(body)


def _worded(exc: InvalidField) -> BadRequest:
    return BadRequest(f"notification field {exc.field!r} {exc.problem}")


def upload_from_resource(payload: dict[str, Any]) -> Upload:
    """Build an Upload from a notification or an API resource; raise BadRequest if malformed."""
    try:
        return parse_upload(payload)
    except InvalidField as exc:
        raise _worded(exc) from None


def parse_notification(payload: dict[str, Any]) -> Upload | Ignored:
    """Classify a verified notification: an image or video upload to process, or something to
    ignore (other notification types, raw files, audio-only uploads)."""
    notification_type = payload.get("notification_type")
    if not isinstance(notification_type, str):
        raise BadRequest("notification field 'notification_type' must be a string")
    if notification_type != "upload":
        return Ignored(
            f"notification_type {notification_type!r} is not an upload", notification_type
        )
    try:
        resource_type = required_text(payload, "resource_type")
    except InvalidField as exc:
        raise _worded(exc) from None
    if resource_type not in ("image", "video"):
        return Ignored(
            f"resource_type {resource_type!r} is not an image or a video", notification_type
        )
    if payload.get("is_audio") is True:
        return Ignored("audio-only upload (is_audio): no frames to classify", notification_type)
    return upload_from_resource(payload)
