"""Re-scoring stored embeddings against the current vocabulary (`backfill --vocabulary-changed`,
inline or through `on_message`): only learned tags are added or removed; no model, no download.

A change is written so that the document never under-states what we wrote on Cloudinary (the
learner must never mistake one of our tags for a person's): first the document's `tags` gains
the tags about to be added, then Cloudinary is changed, then `tags` loses the removed ones and
`vocabulary` becomes the new version. A failure in between leaves the old `vocabulary` field, so
the next run plans the same change again (adding a present tag is a no-op). Every document write
is conditional on the document being unchanged since it was read: a re-classification that
happened meanwhile applied the current vocabulary itself and wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from google.api_core import exceptions as google_exceptions
from google.cloud import firestore

from autotagger import logs, vocabulary, vocabulary_store
from autotagger.clients import cloudinary_client, store
from autotagger.config import Settings
from autotagger.domain import Status, embedding_space, status_of
from autotagger.vocabulary_store import Vocabulary

FIELDS = (
    "asset_id",
    "public_id",
    "version",
    "secure_url",
    "status",
    "resource_type",
    "model",
    "embedding",
    "tags",
    "vocabulary",
)


@dataclass(frozen=True)
class Change:
    """The learned tags of one document before and after re-scoring."""

    asset_id: str
    public_id: str
    resource_type: str
    add: tuple[str, ...]
    remove: tuple[str, ...]
    field: dict[str, Any]  # the new `vocabulary` field

    @property
    def changes_tags(self) -> bool:
        return bool(self.add or self.remove)


def written_learned(document: dict[str, Any], prefix: str) -> list[str]:
    """The learned tags this document says we wrote (as written: with TAG_PREFIX)."""
    field = document.get("vocabulary") or {}
    return [prefix + str(t["tag"]) for t in field.get("tags") or () if isinstance(t, dict)]


def plan(
    document: dict[str, Any], current: Vocabulary, prefix: str, present: Iterable[str] = ()
) -> Change | str:
    """The change re-scoring makes to `document`, or why it is skipped (a short reason).
    `present`: the asset's tags on Cloudinary; those not recorded as ours are people's, and a
    learned tag a person already put there is neither written nor recorded."""
    if status_of(document) is not Status.DONE:
        return "not done"
    embedding = vocabulary_store.embedding_of(document)
    if embedding is None:
        return "no embedding (run backfill)"
    if embedding_space(document.get("model")) != embedding_space(current.model):
        return "embedding of another model"
    if len(embedding) != current.dim:
        return "embedding of another size"
    old = written_learned(document, prefix)
    ours = {str(t) for t in document.get("tags") or ()}
    kept_away = (set(present) - ours) | (ours - set(old))  # people's, and our labels/concepts
    scored = [t for t in vocabulary.apply(current, embedding) if prefix + t["tag"] not in kept_away]
    new = [prefix + t["tag"] for t in scored]
    previous = (document.get("vocabulary") or {}).get("version")
    if set(new) == set(old) and previous == current.version:
        return "unchanged"
    return Change(
        asset_id=str(document.get("asset_id")),
        public_id=str(document.get("public_id")),
        resource_type=str(document.get("resource_type") or "image"),
        add=tuple(t for t in new if t not in old),
        remove=tuple(t for t in old if t not in new),
        field={"version": current.version, "tags": scored},
    )


def stream(settings: Settings) -> Iterator[Any]:
    """Every `done` document's snapshot, only the fields re-scoring needs."""
    query = (
        store.collection(settings)
        .where(filter=firestore.FieldFilter("status", "==", Status.DONE.value))
        .select(list(FIELDS))
    )
    yield from query.stream(**store.NO_RETRY)


def write(settings: Settings, change: Change, snapshot: Any) -> bool:
    """Apply `change` (see the module doc for the order); False when the document changed
    since `snapshot` was read (nothing more is written)."""
    db = store.client(settings)
    ref = store.collection(settings, db).document(change.asset_id)
    tags = list(snapshot.get("tags") or [])
    update_time = snapshot.update_time
    try:
        if change.add:
            tags += [t for t in change.add if t not in tags]
            result = ref.update(
                {"tags": tags, "updated_at": store.now()},
                option=db.write_option(last_update_time=update_time),
                **store.NO_RETRY,
            )
            update_time = result.update_time
        cloudinary_client.write_tags(
            change.public_id,
            add=list(change.add),
            remove=list(change.remove),
            resource_type=change.resource_type,
        )
        ref.update(
            {
                "tags": [t for t in tags if t not in change.remove],
                "vocabulary": change.field,
                "updated_at": store.now(),
            },
            option=db.write_option(last_update_time=update_time),
            **store.NO_RETRY,
        )
    except (google_exceptions.FailedPrecondition, google_exceptions.NotFound):
        logs.info("re-scoring skipped: the document changed meanwhile", asset_id=change.asset_id)
        return False
    return True


def rescore(
    settings: Settings,
    asset_id: str,
    min_version: int | None = None,
    present: Iterable[str] = (),
) -> str:
    """Re-score one stored document against the current vocabulary (a queued message, with
    the asset's tags that matter in `present`); the outcome: `changed`, `unchanged`, `lost`
    or why it was skipped."""
    current = vocabulary.current(settings, min_version=min_version)
    if current is None:
        return "no vocabulary"
    snapshot = store.collection(settings).document(asset_id).get(**store.NO_RETRY)
    if not snapshot.exists:
        return "no document"
    planned = plan(snapshot.to_dict() or {}, current, settings.tag_prefix, present)
    if isinstance(planned, str):
        return planned
    return "changed" if write(settings, planned, snapshot) else "lost"
