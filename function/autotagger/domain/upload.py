"""The uploaded asset, as a Cloudinary notification, an Admin API resource or a queue message
describes it, and the one parser every entry point shares.

A malformed field raises `InvalidField`, which names the field and what is wrong with it; each
caller words the message for its own audience (a webhook's sender, a queue's publisher).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from autotagger import parsing
from autotagger.errors import BadRequest

MAX_PUBLIC_ID_CHARS = 1024
MAX_TAG_CHARS = 255
MAX_VERSION = 10**12


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


class InvalidField(BadRequest):
    """A described asset's `field` is missing or malformed; `problem` says how ("must be an
    integer"). A BadRequest (400) wherever nobody words it otherwise."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"field {field!r} {problem}")
        self.field = field
        self.problem = problem


def required_text(payload: dict[str, Any], name: str) -> str:
    """`payload[name]`, a non-empty string, else InvalidField."""
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidField(name, "must be a non-empty string")
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
        raise InvalidField("version", "must be an integer")
    if isinstance(value, int):
        version = value
    elif parsing.is_ascii_int(value):
        version = int(value)
    else:
        raise InvalidField("version", "must be an integer")
    if not 0 < version < MAX_VERSION:
        raise InvalidField("version", "is out of range")
    return version


def _tags(value: Any) -> tuple[str, ...]:
    """A notification's `tags` (a list of strings); anything else counts as none."""
    if not isinstance(value, list):
        return ()
    return tuple(
        dict.fromkeys(t for t in value if isinstance(t, str) and 0 < len(t) <= MAX_TAG_CHARS)
    )


def parse_upload(payload: dict[str, Any]) -> Upload:
    """The Upload a notification, an Admin API resource or a message's data describes; raise
    InvalidField if a field we rely on is malformed (unknown fields are ignored)."""
    asset_id = required_text(payload, "asset_id")
    if not parsing.is_document_id(asset_id):
        raise InvalidField("asset_id", "has unexpected characters")
    public_id = required_text(payload, "public_id")
    if len(public_id) > MAX_PUBLIC_ID_CHARS:
        raise InvalidField("public_id", "is too long")
    fmt = payload.get("format")
    return Upload(
        asset_id=asset_id,
        public_id=public_id,
        version=_version(payload.get("version")),
        secure_url=required_text(payload, "secure_url"),
        resource_type=required_text(payload, "resource_type"),
        type=str(payload.get("type") or "upload"),
        format=fmt if isinstance(fmt, str) else None,
        bytes=_optional_int(payload, "bytes"),
        width=_optional_int(payload, "width"),
        height=_optional_int(payload, "height"),
        duration=_optional_seconds(payload, "duration"),
        is_audio=payload.get("is_audio") is True,
        tags=_tags(payload.get("tags")),
    )
