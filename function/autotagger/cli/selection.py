"""Which of the account's assets still need work: not final for their version, or no embedding."""

from __future__ import annotations

import argparse
from typing import Any

from autotagger.clients import store
from autotagger.config import Settings
from autotagger.domain import Upload, is_final, is_superseded

FIRESTORE_BATCH = 300  # documents per batched read


def classified(existing: dict[str, Any] | None, version: int) -> bool:
    """True when the stored document is final for `version` (or for a newer version)."""
    return is_superseded(existing, version) or is_final(existing, version)


def lacks_embedding(existing: dict[str, Any] | None, version: int) -> bool:
    """True for a `done` document of `version` stored without an embedding (classified before
    embeddings existed, or by a model without one): backfill redoes it."""
    return is_final(existing, version) and not is_final(existing, version, needs_embedding=True)


def wanted(document: dict[str, Any] | None, upload: Upload, model_name: str | None) -> str | None:
    """The origin to publish `upload` with, or None when it needs nothing.

    Missing or not final for its current version, or `done` without an embedding: `backfill`.
    With `model_name` (--model-changed), a `done` document of the current version made by
    another model: `reclassify`."""
    if not classified(document, upload.version):
        return "backfill"
    final = is_final(document, upload.version)
    if (
        final
        and model_name is not None
        and not is_final(document, upload.version, model=model_name)
    ):
        return "reclassify"  # done, by another model
    if lacks_embedding(document, upload.version):
        return "backfill"
    return None


def final_documents(settings: Settings, uploads: list[Upload]) -> dict[str, Any]:
    """The stored documents of `uploads`, read in batches (`get_all`), not one read each."""
    found: dict[str, Any] = {}
    ids = [u.asset_id for u in uploads]
    for start in range(0, len(ids), FIRESTORE_BATCH):
        found.update(store.get_many(settings, ids[start : start + FIRESTORE_BATCH]))
    return found


def kind(args: argparse.Namespace) -> str:
    """The resource type backfill lists: `video` with --videos, else `image`."""
    return "video" if args.videos else "image"
