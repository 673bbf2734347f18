"""The stored record: one Firestore document per asset, its fields and its statuses, and the one
place that decides what a record means for a version (final, superseded, being classified).

The document's field names and status strings are the stored format: existing documents must
keep reading, so they change only with a migration.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from typing import Any

from autotagger.domain.upload import Upload


class Status(enum.StrEnum):
    """A document's `status`. `processing`: a delivery holds a claim (`claim`); `done` and
    `failed` are final for the document's `version`."""

    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


FINAL = frozenset({Status.DONE, Status.FAILED})

# What the fp16 IR's model name adds to its fp32 model's (`MODEL_PRECISION=fp16`).
FP16_SUFFIX = "/fp16"


def embedding_space(model: object) -> str:
    """The model whose embeddings a record's `model` made: the fp16 IR only rounds fc1, which
    comes after the embedding's pool, so its embeddings are its fp32 model's, bit for bit, and
    search, learning and vocabularies treat the two as one."""
    return str(model or "").removesuffix(FP16_SUFFIX)


PUBLIC_FIELDS = (
    "asset_id",
    "public_id",
    "version",
    "secure_url",
    "status",
    "label",
    "score",
    "predictions",
    "tags",  # ours, written on the asset (labels, concepts, learned tags)
    "model",
    "timings",
    "error",
    "created_at",
    "updated_at",
    # videos (resource_type is set on every document)
    "resource_type",
    "type",  # the delivery type: upload, private, authenticated
    "duration",
    "frames",
    # concept tags (autotagger/concepts.py) and the vocabulary's version
    "concepts",
    "concept_vocabulary",
    # the account's learned vocabulary: {version, tags: [{tag, score}]}
    "vocabulary",
)
# The top-level vector field (the emulator mishandles nested ones): the descriptor "more like
# this" searches on. Stored, never served by the JSON API.
EMBEDDING_FIELD = "embedding"
STORED_FIELDS = (*PUBLIC_FIELDS, EMBEDDING_FIELD)
# Only while `processing`: {id, expires_at}; null on a final document.
CLAIM_FIELD = "claim"

# The fields of a claim's document (`claim_document`).
CLAIM_DOCUMENT_FIELDS = (
    "asset_id",
    "public_id",
    "version",
    "secure_url",
    "status",
    CLAIM_FIELD,
    "tags",
    "created_at",
    "updated_at",
)


def claim_document(
    upload: Upload, claim_id: str, ttl_s: int, at: dt.datetime, tags: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The document of a fresh claim of `upload` (`claim_id`, expiring `ttl_s` after `at`),
    carrying `tags`: ours still on the asset until this claim's outcome replaces them."""
    return {
        "asset_id": upload.asset_id,
        "public_id": upload.public_id,
        "version": upload.version,
        "secure_url": upload.secure_url,
        "status": Status.PROCESSING.value,
        CLAIM_FIELD: {"id": claim_id, "expires_at": at + dt.timedelta(seconds=ttl_s)},
        "tags": list(tags),
        "created_at": at,
        "updated_at": at,
    }


def status_of(record: Mapping[str, Any] | None) -> Status | None:
    """The record's status, None when absent or unknown."""
    value = (record or {}).get("status")
    try:
        return Status(value) if isinstance(value, str) else None
    except ValueError:
        return None


def version_of(record: Mapping[str, Any] | None) -> int:
    """The record's version (0 when it has none)."""
    value = (record or {}).get("version")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def is_final(
    record: Mapping[str, Any] | None,
    version: int | None = None,
    *,
    model: str | None = None,
    needs_embedding: bool = False,
) -> bool:
    """Whether `record` is a final outcome nothing must redo: `done` or `failed` for exactly
    `version` (any version when None). A `done` record stops being final for a re-classification
    by another `model` and, with `needs_embedding`, for a backfill when it has no embedding; a
    `failed` one stays final either way (the file, not the model, was the problem)."""
    status = status_of(record)
    if record is None or status not in FINAL:
        return False
    if version is not None and version_of(record) != version:
        return False
    if status is Status.DONE:
        if model is not None and record.get("model") != model:
            return False
        if needs_embedding and record.get(EMBEDDING_FIELD) is None:
            return False
    return True


def is_superseded(record: Mapping[str, Any] | None, version: int) -> bool:
    """Whether the stored record is of a newer version than `version`."""
    return version_of(record) > version


def is_live_claim(record: Mapping[str, Any] | None, at: dt.datetime) -> bool:
    """A `processing` record whose claim has not expired at `at`."""
    expires = ((record or {}).get(CLAIM_FIELD) or {}).get("expires_at")
    live = isinstance(expires, dt.datetime) and expires > at
    return status_of(record) is Status.PROCESSING and live


def to_public(record: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON view of a stored document: known, non-null fields; timestamps as ISO 8601.
    The embedding itself never; a `done` document says whether it has one (`has_embedding`:
    whether `/api/similar` can answer for it)."""
    out: dict[str, Any] = {}
    for key in PUBLIC_FIELDS:
        value = record.get(key)
        if value is None:
            continue
        if isinstance(value, dt.datetime):
            value = value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        elif isinstance(value, enum.Enum):
            value = value.value
        out[key] = value
    if status_of(record) is Status.DONE:
        out["has_embedding"] = record.get(EMBEDDING_FIELD) is not None
    return out
