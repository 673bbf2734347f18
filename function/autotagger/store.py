"""Firestore: one document per Cloudinary asset (id = `asset_id`), claims, and queries.

Idempotency: before classifying, a delivery *claims* (asset_id, version). The first claim of an
asset is a `create()` (atomic on Firestore and on every emulator); taking over a newer version or
an expired claim runs in a transaction. A claim left by a crashed instance expires after
`CLAIM_TTL_S`, so the asset is never stuck.

Writes name every field (null when it does not apply) instead of relying on `set()` dropping
absent ones: correct on Firestore, and on emulators whose `set()` merges.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from google.api_core import exceptions as google_exceptions
from google.cloud import firestore

from autotagger.config import Settings
from autotagger.retry import with_retries
from autotagger.webhook import Upload

CALL_TIMEOUT_S = 10.0
# Our own bounded retry (`_call`) is the only one: the client's default would retry each call
# for up to 60 s, so an outage would hold a request for minutes.
NO_RETRY: dict[str, Any] = {"retry": None, "timeout": CALL_TIMEOUT_S}
FINAL_STATUSES = ("done", "failed")
_TRANSIENT = (
    google_exceptions.ServiceUnavailable,
    google_exceptions.DeadlineExceeded,
    google_exceptions.InternalServerError,
    google_exceptions.Aborted,
    google_exceptions.ResourceExhausted,
    google_exceptions.Unknown,
    google_exceptions.RetryError,
)
_clients: dict[tuple[str | None, str, str | None], firestore.Client] = {}
_clients_lock = threading.Lock()


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, _TRANSIENT)


def _call(what: str, call: Any) -> Any:
    return with_retries(f"Firestore {what}", call, _is_transient)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def client(settings: Settings) -> firestore.Client:
    """One Firestore client per (project, database, emulator), created on first use."""
    key = (
        settings.google_cloud_project,
        settings.firestore_database,
        settings.firestore_emulator_host,
    )
    with _clients_lock:
        if key not in _clients:
            _clients[key] = firestore.Client(
                project=settings.google_cloud_project, database=settings.firestore_database
            )
        return _clients[key]


def collection(settings: Settings) -> firestore.CollectionReference:
    return client(settings).collection(settings.firestore_collection)


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming (asset_id, version).

    `state` is `claimed` (we classify), `duplicate` (already final for this version),
    `in_progress` (another delivery holds a live claim) or `superseded` (a newer version exists).
    """

    state: str
    claim_id: str | None = None
    existing: dict[str, Any] | None = None
    created_at: dt.datetime | None = None
    previous_tags: tuple[str, ...] = ()


def _claim_document(upload: Upload, claim_id: str, ttl_s: int, at: dt.datetime) -> dict[str, Any]:
    return {
        "asset_id": upload.asset_id,
        "public_id": upload.public_id,
        "version": upload.version,
        "secure_url": upload.secure_url,
        "status": "processing",
        "claim": {"id": claim_id, "expires_at": at + dt.timedelta(seconds=ttl_s)},
        "created_at": at,
        "updated_at": at,
    }


def _decide(
    current: dict[str, Any], upload: Upload, at: dt.datetime, model: str | None = None
) -> Claim | None:
    """What an existing document means for this delivery; None = we may take it over.

    `model` (re-classification): a `done` document made by another model is taken over."""
    version = int(current.get("version") or 0)
    if version > upload.version:
        return Claim("superseded", existing=current)
    if version == upload.version:
        status = current.get("status")
        stale_model = model is not None and status == "done" and current.get("model") != model
        if status in FINAL_STATUSES and not stale_model:
            return Claim("duplicate", existing=current)
        expires = (current.get("claim") or {}).get("expires_at")
        if status == "processing" and isinstance(expires, dt.datetime) and expires > at:
            return Claim("in_progress", existing=current)
    return None


def claim(settings: Settings, upload: Upload, model: str | None = None) -> Claim:
    """Claim (asset_id, version) for classification; see `Claim` for the outcomes. With `model`
    (re-classification), a final document made by a different model is claimed again."""
    ref = collection(settings).document(upload.asset_id)
    claim_id = uuid.uuid4().hex
    at = now()
    try:
        _call(
            "claim",
            lambda: ref.create(
                _claim_document(upload, claim_id, settings.claim_ttl_s, at),
                **NO_RETRY,
            ),
        )
        return Claim("claimed", claim_id=claim_id, created_at=at)
    except google_exceptions.AlreadyExists:
        pass

    @firestore.transactional
    def take_over(transaction: firestore.Transaction) -> Claim:
        snapshot = ref.get(transaction=transaction, **NO_RETRY)
        current = snapshot.to_dict() if snapshot.exists else None
        if current is not None:
            decided = _decide(current, upload, at, model)
            if decided is not None:
                return decided
        document = _claim_document(upload, claim_id, settings.claim_ttl_s, at)
        created_at = (current or {}).get("created_at") or at
        document["created_at"] = created_at
        transaction.set(ref, document)
        previous = tuple((current or {}).get("tags") or ())
        return Claim("claimed", claim_id=claim_id, created_at=created_at, previous_tags=previous)

    result: Claim = _call("claim", lambda: take_over(client(settings).transaction()))
    return result


def save(settings: Settings, record: dict[str, Any], fields: tuple[str, ...]) -> None:
    """Write the final record: every one of `fields` (None where absent), and no claim."""
    document = {name: record.get(name) for name in fields} | {"claim": None}
    ref = collection(settings).document(record["asset_id"])
    _call("write", lambda: ref.set(document, **NO_RETRY))


def release(settings: Settings, asset_id: str, reason: str) -> None:
    """Let the next delivery take over at once (after a transient failure). Best effort."""
    ref = collection(settings).document(asset_id)
    at = now()
    ref.update({"claim": {"expires_at": at}, "updated_at": at, "error": reason[:500]}, **NO_RETRY)


def get(settings: Settings, asset_id: str) -> dict[str, Any] | None:
    snapshot = _call("read", lambda: collection(settings).document(asset_id).get(**NO_RETRY))
    return snapshot.to_dict() if snapshot.exists else None


def query(
    settings: Settings, field: str | None, value: str | None, limit: int
) -> list[dict[str, Any]]:
    """Documents where `field == value` (or all), newest first, at most `limit`."""
    base: Any = collection(settings)
    if field is not None:
        base = base.where(filter=firestore.FieldFilter(field, "==", value))
    ordered = base.order_by("created_at", direction=firestore.Query.DESCENDING).limit(limit)
    return _call("query", lambda: [doc.to_dict() for doc in ordered.stream(**NO_RETRY)])


def get_many(settings: Settings, asset_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The documents of `asset_ids` that exist, in one batched read (`get_all`), by asset_id."""
    if not asset_ids:
        return {}
    refs = [collection(settings).document(asset_id) for asset_id in dict.fromkeys(asset_ids)]

    def read() -> dict[str, dict[str, Any]]:
        snapshots = client(settings).get_all(refs, **NO_RETRY)
        return {s.id: s.to_dict() or {} for s in snapshots if s.exists}

    result: dict[str, dict[str, Any]] = _call("batched read", read)
    return result
