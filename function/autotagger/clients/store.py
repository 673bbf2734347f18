"""Firestore: one document per Cloudinary asset (id = `asset_id`), claims, and queries.

Idempotency: before classifying, a delivery *claims* (asset_id, version). The first claim of an
asset is a `create()` (atomic on Firestore and on every emulator); taking over a newer version or
an expired claim runs in a transaction. A claim left by a crashed instance expires after
`CLAIM_TTL_S`, so the asset is never stuck. A delivery recognises its own claim by its id (a
`create()` retried after a lost answer, a redelivered Pub/Sub message).

`tags` is what this project wrote on the asset: a take-over claim carries it, and `record_tags`
adds the new tags to it before they are written, so whichever delivery finishes (or fails) next
knows every tag of ours to remove.

Claim-guarded writes (`record_tags`, `save`) after a claim this process created are one write
with an update-time precondition (`_write_if_unchanged`): one round trip instead of a
transaction's three, and no billed read. Anything else takes the transaction.

Writes name every field (null when it does not apply) instead of relying on `set()` dropping
absent ones: correct on Firestore, and on emulators whose `set()` merges.
"""

from __future__ import annotations

import datetime as dt
import enum
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from google.api_core import exceptions as google_exceptions
from google.cloud import firestore
from google.cloud.firestore_v1.base_vector_query import DistanceMeasure
from google.cloud.firestore_v1.vector import Vector

from autotagger import logs
from autotagger.clients import claim_writes, firestore_vectors
from autotagger.config import Settings
from autotagger.domain import (
    CLAIM_DOCUMENT_FIELDS,
    EMBEDDING_FIELD,
    Upload,
    claim_document,
    is_final,
    is_live_claim,
    is_superseded,
)
from autotagger.retry import GOOGLE_TRANSIENT, with_retries

firestore_vectors.install()  # a 512-number embedding encoded in 0.04 ms, not 3

CALL_TIMEOUT_S = 10.0
# Our own bounded retry (`_call`) is the only one: the client's default would retry each call
# for up to 60 s, so an outage would hold a request for minutes.
NO_RETRY: dict[str, Any] = {"retry": None, "timeout": CALL_TIMEOUT_S}
# The field `nearest` writes each result's cosine distance into.
DISTANCE_FIELD = "distance"
_TRANSIENT = (
    *GOOGLE_TRANSIENT,
    google_exceptions.RetryError,
    google_exceptions.Cancelled,  # our own close of a failed channel (`_forget`)
)
# The precondition failed (someone wrote since) or the document is gone: the transaction decides.
_CHANGED_SINCE = (google_exceptions.FailedPrecondition, google_exceptions.NotFound)
T = TypeVar("T")
_clients: dict[tuple[str | None, str, str | None], firestore.Client] = {}
_clients_lock = threading.Lock()


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, _TRANSIENT)


def _call(settings: Settings, what: str, call: Callable[[firestore.Client], T]) -> T:
    """`call(client)` with bounded retries. A connection failure (UNAVAILABLE) drops the client:
    its gRPC channel would wait out its reconnect backoff (seconds, growing with the outage)
    before trying again, so the next attempt, or request, connects on a fresh channel at once."""

    def attempt() -> T:
        db = client(settings)
        try:
            try:
                return call(db)
            except ValueError as exc:
                hidden = _hidden_by_the_transaction(exc)
                if hidden is None:
                    raise
                raise hidden from exc
        except google_exceptions.ServiceUnavailable:
            _forget(settings, db)
            raise

    return with_retries(f"Firestore {what}", attempt, _is_transient)


def _hidden_by_the_transaction(exc: ValueError) -> google_exceptions.GoogleAPICallError | None:
    """The RPC failure the SDK's transaction wrapper reports as the ValueError `exc`, if any.

    Two of its ValueErrors hide an RPC failure: a transaction still contended after its own
    attempts (the last ABORTED is the cause), and a failure before the transaction began (an
    outage at BeginTransaction: its rollback then raises "no transaction ID", the failure
    being the context). Both are what they hide: transient, so retried, and named as
    Firestore's when they persist."""
    hidden = exc.__cause__ or exc.__context__
    return hidden if isinstance(hidden, google_exceptions.GoogleAPICallError) else None


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _client_key(settings: Settings) -> tuple[str | None, str, str | None]:
    return (
        settings.google_cloud_project,
        settings.firestore_database,
        settings.firestore_emulator_host,
    )


def _forget(settings: Settings, failed: firestore.Client) -> None:
    """Drop `failed` (unless another thread replaced it already) and close its gRPC channel.

    Closing matters: gRPC shares connections ("subchannels") between channels to the same
    address, backoff state included, so a new client only connects at once when the old
    channel is gone (calls still on it end CANCELLED, which is retried like UNAVAILABLE).
    """
    with _clients_lock:
        if _clients.get(_client_key(settings)) is not failed:
            return
        del _clients[_client_key(settings)]
    api: Any = getattr(failed, "_firestore_api_internal", None)  # the GAPIC client, if made
    try:
        if api is not None:
            api.transport.close()
    except Exception as exc:  # best effort: the channel then closes when collected
        logs.warning("could not close the failed Firestore channel", error=str(exc)[:300])


def client(settings: Settings) -> firestore.Client:
    """One Firestore client per (project, database, emulator), created on first use (and again
    after a connection failure)."""
    key = _client_key(settings)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = firestore.Client(
                project=settings.google_cloud_project, database=settings.firestore_database
            )
        return _clients[key]


def collection(
    settings: Settings, db: firestore.Client | None = None
) -> firestore.CollectionReference:
    """The documents' collection (on `db`, else the current client)."""
    return (db or client(settings)).collection(settings.firestore_collection)


class ClaimState(enum.StrEnum):
    """What claiming (asset_id, version) found."""

    CLAIMED = "claimed"  # ours: classify
    DUPLICATE = "duplicate"  # already final for this version
    IN_PROGRESS = "in_progress"  # another delivery holds a live claim
    SUPERSEDED = "superseded"  # a newer version is stored


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming (asset_id, version). CLAIMED: `claim_id` is ours, `created_at`
    the document's, `previous_tags` ours still on the asset; otherwise `existing` is the stored
    document that refused the claim."""

    state: ClaimState
    claim_id: str = ""
    existing: dict[str, Any] | None = None
    created_at: dt.datetime | None = None
    previous_tags: tuple[str, ...] = ()


class Saved(enum.StrEnum):
    """The outcome of the final write."""

    WRITTEN = "written"
    CLAIM_LOST = "claim_lost"  # another delivery took over: nothing written


class Released(enum.StrEnum):
    """The outcome of releasing a claim."""

    RELEASED = "released"
    NOT_HELD = "not_held"  # another delivery's claim by now (or no document): left alone


def _decide(
    current: dict[str, Any],
    upload: Upload,
    at: dt.datetime,
    model: str | None = None,
    missing_embedding: bool = False,
) -> Claim | None:
    """What an existing document means for this delivery; None = we may take it over.

    `model` (re-classification): a `done` document made by another model is taken over.
    `missing_embedding` (backfill): so is a `done` document without an embedding."""
    if is_superseded(current, upload.version):
        return Claim(ClaimState.SUPERSEDED, existing=current)
    if is_final(current, upload.version, model=model, needs_embedding=missing_embedding):
        return Claim(ClaimState.DUPLICATE, existing=current)
    if current.get("version") == upload.version and is_live_claim(current, at):
        return Claim(ClaimState.IN_PROGRESS, existing=current)
    return None


def claim(
    settings: Settings,
    upload: Upload,
    model: str | None = None,
    claim_id: str | None = None,
    missing_embedding: bool = False,
) -> Claim:
    """Claim (asset_id, version) for classification; see `Claim` for the outcomes. With `model`
    (re-classification), a final document made by a different model is claimed again; with
    `missing_embedding`, a `done` one without an embedding.

    `claim_id`: the delivery's own id (a Pub/Sub message's), so its redelivery after a crash
    continues its own claim at once; a random one otherwise. Either way the id is fixed before
    the first attempt, so a `create()` retried after a lost answer finds its own claim."""
    claim_id = claim_id or uuid.uuid4().hex
    at = now()
    document = claim_document(upload, claim_id, settings.claim_ttl_s, at)
    try:
        created = _call(
            settings,
            "claim",
            lambda db: (
                collection(settings, db).document(upload.asset_id).create(document, **NO_RETRY)
            ),
        )
        claim_writes.remember(upload.asset_id, claim_id, created.update_time, ())
        return Claim(ClaimState.CLAIMED, claim_id=claim_id, created_at=at)
    except google_exceptions.AlreadyExists:
        pass

    @firestore.transactional
    def take_over(transaction: firestore.Transaction, ref: Any) -> Claim:
        snapshot = ref.get(transaction=transaction, **NO_RETRY)
        current = snapshot.to_dict() if snapshot.exists else None
        if current is not None and not _holds(current, claim_id):  # our own claim is ours
            decided = _decide(current, upload, at, model, missing_embedding)
            if decided is not None:
                return decided
        previous = tuple((current or {}).get("tags") or ())
        document = claim_document(upload, claim_id, settings.claim_ttl_s, at, previous)
        created_at = (current or {}).get("created_at") or at
        document["created_at"] = created_at
        transaction.set(ref, document)
        return Claim(
            ClaimState.CLAIMED, claim_id=claim_id, created_at=created_at, previous_tags=previous
        )

    return _call(
        settings,
        "claim",
        lambda db: take_over(db.transaction(), collection(settings, db).document(upload.asset_id)),
    )


def _holds(current: dict[str, Any] | None, claim_id: str) -> bool:
    return ((current or {}).get("claim") or {}).get("id") == claim_id


def _write_if_unchanged(
    settings: Settings,
    asset_id: str,
    claim_id: str,
    known: claim_writes.OurWrite,
    changes: dict[str, Any],
    tags: tuple[str, ...],
) -> bool:
    """Update `changes` only if the document still has `known`'s update time (our last write:
    our claim still stands), in one round trip. False: written since by someone (a take-over,
    a rescore): nothing written, the caller's transaction decides."""

    def write(db: firestore.Client) -> Any:
        option = db.write_option(last_update_time=known.update_time)
        ref = collection(settings, db).document(asset_id)
        return ref.update(changes, option=option, **NO_RETRY)

    try:
        result = _call(settings, "write", write)
    except _CHANGED_SINCE:
        claim_writes.forget(asset_id, claim_id)
        return False
    claim_writes.remember(asset_id, claim_id, result.update_time, tags)
    return True


def holds_claim(settings: Settings, asset_id: str, claim_id: str) -> bool:
    """Whether `claim_id` is still the asset's current claim (no other delivery took over)."""
    current = get(settings, asset_id)
    return _holds(current, claim_id)


def record_tags(settings: Settings, asset_id: str, claim_id: str, tags: list[str]) -> bool:
    """Before writing `tags` to the asset: add them to the document's `tags` (ours on the asset),
    while `claim_id` is still the current claim (a transaction). False: the claim was lost, write
    nothing. With no new tags it is the same check without a write (or, on the fast path, a
    write of the same tags: the write is the check)."""
    known = claim_writes.recall(asset_id, claim_id)
    if known is not None:
        merged = list(dict.fromkeys([*known.tags, *tags]))
        changes = {"tags": merged}
        if _write_if_unchanged(settings, asset_id, claim_id, known, changes, tuple(merged)):
            return True

    @firestore.transactional
    def add_if_ours(transaction: firestore.Transaction, ref: Any) -> bool:
        snapshot = ref.get(transaction=transaction, **NO_RETRY)
        current = snapshot.to_dict() if snapshot.exists else None
        if not _holds(current, claim_id):
            return False
        known = list((current or {}).get("tags") or [])
        merged = list(dict.fromkeys([*known, *tags]))
        if merged != known:
            transaction.update(ref, {"tags": merged})
        return True

    return _call(
        settings,
        "write",
        lambda db: add_if_ours(db.transaction(), collection(settings, db).document(asset_id)),
    )


def save(
    settings: Settings, record: dict[str, Any], fields: tuple[str, ...], claim_id: str
) -> Saved:
    """Write the final record: every one of `fields` (None where absent), and no claim, only
    while `claim_id` is still the current claim (a transaction): an instance that stalled past
    CLAIM_TTL_S must not replace what the delivery that took over wrote."""
    document = {name: _stored(record.get(name)) for name in fields} | {"claim": None}
    asset_id = record["asset_id"]
    # Unchanged since our claim's create, the document holds only the claim's fields: updating
    # every field and deleting the claim's others writes what `set()` would.
    replaced = {name: firestore.DELETE_FIELD for name in CLAIM_DOCUMENT_FIELDS} | document
    known = claim_writes.recall(asset_id, claim_id)
    written = known is not None and _write_if_unchanged(
        settings, asset_id, claim_id, known, replaced, ()
    )
    claim_writes.forget(asset_id, claim_id)  # the claim ends with this write, whichever it is
    if written:
        return Saved.WRITTEN

    @firestore.transactional
    def write_if_ours(transaction: firestore.Transaction, ref: Any) -> Saved:
        snapshot = ref.get(transaction=transaction, **NO_RETRY)
        current = snapshot.to_dict() if snapshot.exists else None
        if not _holds(current, claim_id):
            return Saved.WRITTEN if _landed(current, document) else Saved.CLAIM_LOST
        transaction.set(ref, document)
        return Saved.WRITTEN

    return _call(
        settings,
        "write",
        lambda db: write_if_ours(db.transaction(), collection(settings, db).document(asset_id)),
    )


def _landed(current: dict[str, Any] | None, document: dict[str, Any]) -> bool:
    """Whether `current` is our final `document` already: a write that committed though its
    answer was lost, found (without its claim) by the retry."""
    stamp = document.get("updated_at")
    return (
        current is not None
        and stamp is not None
        and current.get("claim") is None
        and (current.get("version"), current.get("updated_at")) == (document["version"], stamp)
    )


def _stored(value: Any) -> Any:
    """A record's value as Firestore stores it: a numpy vector becomes a `Vector`, a status
    its plain string."""
    if isinstance(value, np.ndarray):
        return Vector([float(x) for x in value.reshape(-1)])
    if isinstance(value, enum.Enum):
        return value.value
    return value


def nearest(
    settings: Settings, vector: Any, limit: int, where: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """The `limit` documents whose embedding is nearest `vector` (cosine), nearest first, each
    with `distance`; `where` (field -> value, equality) pre-filters. Firestore bills one read per
    100 index entries scanned (at least one), so a query over N embeddings costs about N/100."""
    query_vector = vector if isinstance(vector, Vector) else Vector([float(x) for x in vector])

    def run(db: firestore.Client) -> list[dict[str, Any]]:
        base: Any = collection(settings, db)
        for field, value in (where or {}).items():
            base = base.where(filter=firestore.FieldFilter(field, "==", value))
        query = base.find_nearest(
            vector_field=EMBEDDING_FIELD,
            query_vector=query_vector,
            distance_measure=DistanceMeasure.COSINE,
            limit=limit,
            distance_result_field=DISTANCE_FIELD,
        )
        return [doc.to_dict() or {} for doc in query.stream(**NO_RETRY)]

    return _call(settings, "vector query", run)


def release(settings: Settings, asset_id: str, reason: str, claim_id: str) -> Released:
    """Let the next delivery take over at once (after a transient failure), only while
    `claim_id` is still the current claim (never someone else's). One attempt: the caller treats
    a failure as best effort (the claim then expires after CLAIM_TTL_S)."""
    claim_writes.forget(asset_id, claim_id)
    ref = collection(settings).document(asset_id)
    at = now()
    changes = {"claim": {"expires_at": at}, "updated_at": at, "error": reason[:500]}

    @firestore.transactional
    def release_if_ours(transaction: firestore.Transaction) -> Released:
        snapshot = ref.get(transaction=transaction, **NO_RETRY)
        if not _holds(snapshot.to_dict() if snapshot.exists else None, claim_id):
            return Released.NOT_HELD
        transaction.update(ref, changes)
        return Released.RELEASED

    return release_if_ours(client(settings).transaction())


def get(settings: Settings, asset_id: str) -> dict[str, Any] | None:
    snapshot = _call(
        settings, "read", lambda db: collection(settings, db).document(asset_id).get(**NO_RETRY)
    )
    return snapshot.to_dict() if snapshot.exists else None


def query(
    settings: Settings, field: str | None, value: str | None, limit: int
) -> list[dict[str, Any]]:
    """Documents where `field == value` (or all), newest first, at most `limit`."""

    def run(db: firestore.Client) -> list[dict[str, Any]]:
        base: Any = collection(settings, db)
        if field is not None:
            base = base.where(filter=firestore.FieldFilter(field, "==", value))
        ordered = base.order_by("created_at", direction=firestore.Query.DESCENDING).limit(limit)
        return [doc.to_dict() for doc in ordered.stream(**NO_RETRY)]

    return _call(settings, "query", run)


def query_tag(settings: Settings, tag: str, limit: int) -> list[dict[str, Any]]:
    """Documents whose written `tags` contain `tag` (a label or a concept), newest first, at
    most `limit`: one `array_contains` query, served by the composite index (tags
    array-contains, created_at descending) in infra/firestore.indexes.json, never a scan."""

    def run(db: firestore.Client) -> list[dict[str, Any]]:
        found = (
            collection(settings, db)
            .where(filter=firestore.FieldFilter("tags", "array_contains", tag))
            .order_by("created_at", direction=firestore.Query.DESCENDING)
            .limit(limit)
        )
        return [doc.to_dict() or {} for doc in found.stream(**NO_RETRY)]

    return _call(settings, "query", run)


def get_many(settings: Settings, asset_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The documents of `asset_ids` that exist, in one batched read (`get_all`), by asset_id."""
    if not asset_ids:
        return {}
    unique = list(dict.fromkeys(asset_ids))

    def read(db: firestore.Client) -> dict[str, dict[str, Any]]:
        refs = [collection(settings, db).document(asset_id) for asset_id in unique]
        snapshots = db.get_all(refs, **NO_RETRY)
        return {s.id: s.to_dict() or {} for s in snapshots if s.exists}

    result: dict[str, dict[str, Any]] = _call(settings, "batched read", read)
    return result
