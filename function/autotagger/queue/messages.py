"""Pub/Sub messages: one asset per message (build, parse, validate). No I/O here.

`data` is compact JSON describing the asset (the fields of `domain.Upload`: for videos also
`duration` when known and `is_audio`); attributes `asset_id`, `version` and `origin` (`webhook` |
`backfill` | `reclassify` | `vocabulary`) let subscribers filter and logs correlate without
decoding `data`. A `vocabulary` message (re-score the stored embedding, no classification) also
carries `vocabulary_version`, the version it was sent for.
Parsing accepts any `resource_type` (the pipeline decides what it classifies) and ignores unknown
fields, so newer publishers stay readable by older workers.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from autotagger import parsing
from autotagger.domain import InvalidField, Upload, parse_upload
from autotagger.errors import BadRequest, MalformedMessage

ORIGINS = ("webhook", "backfill", "reclassify", "vocabulary")
MAX_DATA_BYTES = 64 * 1024  # one asset's description is well under 2 KB
MAX_TAGS_BYTES = 32 * 1024  # an asset may hold 1000 tags of 255 characters: carry at most this


@dataclass(frozen=True)
class AssetMessage:
    """One queued asset: what to classify (a video's `duration` is in `upload`) and why."""

    upload: Upload
    origin: str
    vocabulary_version: int | None = None  # origin `vocabulary`: the version to re-score with


@dataclass(frozen=True)
class Received:
    """A message as delivered: its id (for logs) and the parsed content."""

    message_id: str
    message: AssetMessage


def build(message: AssetMessage) -> tuple[bytes, dict[str, str]]:
    """(data, attributes) to publish for `message`."""
    if message.origin not in ORIGINS:
        raise ValueError(f"origin must be one of {', '.join(ORIGINS)}, got {message.origin!r}")
    fields = asdict(message.upload)
    if not fields.get("is_audio"):
        del fields["is_audio"]  # said only of audio files
    if not fields.get("tags"):
        del fields["tags"]  # said only when there are some
    while len(json.dumps(fields.get("tags") or [])) > MAX_TAGS_BYTES:
        fields["tags"] = fields["tags"][: len(fields["tags"]) // 2]  # 1000 long tags: a part
    payload: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    attributes = {
        "asset_id": message.upload.asset_id,
        "version": str(message.upload.version),
        "origin": message.origin,
    }
    if message.vocabulary_version is not None:
        attributes["vocabulary_version"] = str(message.vocabulary_version)
    return data, attributes


def _check_duration(value: Any) -> None:
    """A notification's odd `duration` is dropped (then read from the Admin API); a message is
    ours, so an odd one means a broken publisher."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedMessage("field 'duration' must be a number of seconds")
    if not math.isfinite(value) or value < 0:
        raise MalformedMessage("field 'duration' must be a finite, non-negative number")


def parse(data: bytes, attributes: Mapping[str, str]) -> AssetMessage:
    """Validate one message; raise MalformedMessage (it can never succeed) when it is wrong."""
    if len(data) > MAX_DATA_BYTES:
        raise MalformedMessage(f"data is {len(data)} bytes, over {MAX_DATA_BYTES}")
    try:
        payload = parsing.parse_json(data, "data")
    except BadRequest as exc:
        raise MalformedMessage(exc.message) from None
    try:
        upload = parse_upload(payload)
    except InvalidField as exc:
        raise MalformedMessage(f"field {exc.field!r} {exc.problem}") from None
    origin = attributes.get("origin")
    if origin not in ORIGINS:
        raise MalformedMessage(f"attribute 'origin' must be one of {', '.join(ORIGINS)}")
    if attributes.get("asset_id") != upload.asset_id:
        raise MalformedMessage("attribute 'asset_id' does not match the data")
    if attributes.get("version") != str(upload.version):
        raise MalformedMessage("attribute 'version' does not match the data")
    _check_duration(payload.get("duration"))
    raw_version = attributes.get("vocabulary_version")
    if raw_version is not None and not (raw_version.isdigit() and int(raw_version) >= 1):
        raise MalformedMessage("attribute 'vocabulary_version' must be a positive integer")
    vocabulary_version = int(raw_version) if raw_version is not None else None
    return AssetMessage(upload=upload, origin=origin, vocabulary_version=vocabulary_version)


def from_cloud_event(data: Any) -> Received:
    """Parse the `data` of a `google.cloud.pubsub.topic.v1.messagePublished` CloudEvent
    (`{"message": {"data": base64, "attributes": {...}, "messageId": ...}, "subscription": ...}`);
    raise MalformedMessage naming what is wrong."""
    message = data.get("message") if isinstance(data, dict) else None
    if not isinstance(message, dict):
        raise MalformedMessage("event data has no Pub/Sub 'message'")
    message_id = str(message.get("messageId") or message.get("message_id") or "")
    raw = message.get("data")
    if not isinstance(raw, str):
        raise MalformedMessage("message has no base64 'data'")
    try:
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedMessage("message 'data' is not base64") from None
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
        raise MalformedMessage("message 'attributes' must map names to strings")
    return Received(message_id=message_id, message=parse(decoded, attributes))


def message_id_of(data: Any) -> str:
    """The messageId of a delivery, best effort (for logging a malformed one)."""
    message = data.get("message") if isinstance(data, dict) else None
    if isinstance(message, dict):
        return str(message.get("messageId") or message.get("message_id") or "")
    return ""
