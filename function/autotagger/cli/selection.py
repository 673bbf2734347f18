"""Which of the account's assets still need work: not final for their version, or no embedding."""

from __future__ import annotations

import argparse
from typing import Any

from autotagger.clients import store
from autotagger.config import Settings
from autotagger.web import webhook

FIRESTORE_BATCH = 300  # documents per batched read


def classified(existing: dict[str, Any] | None, version: int) -> bool:
    """True when the stored document is final for `version` (or for a newer version)."""
    if existing is None:
        return False
    stored = int(existing.get("version") or 0)
    return stored > version or (
        stored == version and existing.get("status") in store.FINAL_STATUSES
    )


def lacks_embedding(existing: dict[str, Any] | None, version: int) -> bool:
    """True for a `done` document of `version` stored without an embedding (classified before
    embeddings existed, or by a model without one): backfill redoes it."""
    return (
        existing is not None
        and int(existing.get("version") or 0) == version
        and existing.get("status") == "done"
        and existing.get(store.EMBEDDING_FIELD) is None
    )


def wanted(
    document: dict[str, Any] | None, upload: webhook.Upload, model_name: str | None
) -> str | None:
    """The origin to publish `upload` with, or None when it needs nothing.

    Missing or not final for its current version, or `done` without an embedding: `backfill`.
    With `model_name` (--model-changed), a `done` document of the current version made by
    another model: `reclassify`."""
    if not classified(document, upload.version):
        return "backfill"

    assert document is not None
    if (
        model_name is not None
        and int(document.get("version") or 0) == upload.version
        and document.get("status") == "done"
        and document.get("model") != model_name
    ):
        return "reclassify"
    if lacks_embedding(document, upload.version):
        return "backfill"
    return None


def final_documents(settings: Settings, uploads: list[webhook.Upload]) -> dict[str, Any]:
    """The stored documents of `uploads`, read in batches (`get_all`), not one read each."""
    found: dict[str, Any] = {}
    ids = [u.asset_id for u in uploads]
    for start in range(0, len(ids), FIRESTORE_BATCH):
        found.update(store.get_many(settings, ids[start : start + FIRESTORE_BATCH]))
    return found


def kind(args: argparse.Namespace) -> str:
    """The resource type backfill lists: `video` with --videos, else `image`."""
    return "video" if args.videos else "image"
