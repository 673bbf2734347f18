"""Cloudinary notifications: signature verification and parsing.

Cloudinary signs a notification as hex(SHA(body + X-Cld-Timestamp + api_secret)), with the account's
signature algorithm (SHA-1 by default, SHA-256 opt-in): a plain hash, not an HMAC. The SDK's
`verify_notification_signature` compares with `==`; here the comparison is constant time and the
signature is checked over the raw bytes before anything else is parsed.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from autotagger import parsing
from autotagger.config import CloudinaryAccount
from autotagger.errors import BadRequest, Unauthorized

MAX_CLOCK_SKEW_S = 300
_HEX_RE = re.compile(r"^[0-9a-fA-F]+$")
_DIGEST_LENGTH = {"sha1": 40, "sha256": 64}


@dataclass(frozen=True)
class Upload:
    """An uploaded asset, as the notification (or the Admin API) describes it."""

    asset_id: str
    public_id: str
    version: int
    secure_url: str
    resource_type: str = "image"
    type: str = "upload"
    format: str | None = None
    bytes: int | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None  # seconds, videos only
    is_audio: bool = False  # an audio file (Cloudinary stores audio as resource_type video)
    # The asset's tags as the notification or resource listed them (people's, at upload time):
    # a learned tag a person already put there is never written (nor later removed) by us.
    tags: tuple[str, ...] = ()


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


def _field(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"notification field {name!r} must be a non-empty string")
    return value


def _optional_int(payload: dict[str, Any], name: str) -> int | None:
    value = payload.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _optional_seconds(payload: dict[str, Any], name: str) -> float | None:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _version(value: Any) -> int:
    if isinstance(value, bool):
        raise BadRequest("notification field 'version' must be an integer")
    if isinstance(value, int):
        version = value
    elif parsing.is_ascii_int(value):
        version = int(value)
    else:
        raise BadRequest("notification field 'version' must be an integer")
    if not 0 < version < 10**12:
        raise BadRequest("notification field 'version' is out of range")
    return version


def upload_from_resource(payload: dict[str, Any]) -> Upload:
    """Build an Upload from a notification or an API resource; raise BadRequest if malformed."""
    asset_id = _field(payload, "asset_id")
    if not parsing.is_document_id(asset_id):
        raise BadRequest("notification field 'asset_id' has unexpected characters")
    public_id = _field(payload, "public_id")
    if len(public_id) > 1024:
        raise BadRequest("notification field 'public_id' is too long")
    fmt = payload.get("format")
    return Upload(
        asset_id=asset_id,
        public_id=public_id,
        version=_version(payload.get("version")),
        secure_url=_field(payload, "secure_url"),
        resource_type=_field(payload, "resource_type"),
        type=str(payload.get("type") or "upload"),
        format=fmt if isinstance(fmt, str) else None,
        bytes=_optional_int(payload, "bytes"),
        width=_optional_int(payload, "width"),
        height=_optional_int(payload, "height"),
        duration=_optional_seconds(payload, "duration"),
        is_audio=payload.get("is_audio") is True,
        tags=_tags(payload.get("tags")),
    )


def _tags(value: Any) -> tuple[str, ...]:
    """A notification's `tags` (a list of strings); anything else counts as none."""
    if not isinstance(value, list):
        return ()
    return tuple(dict.fromkeys(t for t in value if isinstance(t, str) and 0 < len(t) <= 255))


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
    resource_type = _field(payload, "resource_type")
    if resource_type not in ("image", "video"):
        return Ignored(
            f"resource_type {resource_type!r} is not an image or a video", notification_type
        )
    if payload.get("is_audio") is True:
        return Ignored("audio-only upload (is_audio): no frames to classify", notification_type)
    return upload_from_resource(payload)
