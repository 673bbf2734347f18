"""Where the account's learned vocabulary lives: versioned Firestore documents every instance reads.

Collection `<FIRESTORE_COLLECTION>-vocabulary` (apart from the classifications, so listings
never see it):

- `current`: `{current_version, published_at, tags}`, the one document instances poll;
- `v00000007`: the header of version 7 (model, embedding size, shard count, training summary);
- `v00000007-s0000`, `-s0001`, ...: up to `SHARD_TAGS` tags each: names, thresholds, biases,
  per-tag figures, and the weights as little-endian float32 bytes (`SHARD_TAGS` x dim).

Why Firestore: every instance already holds a Firestore client, a read is one round trip, the
pointer flip is a transaction, and no bucket or IAM binding is added. Why shards: a document holds
at most 1 MiB; one tag costs 2 KiB of float32 weights (512 dims), so 256 tags (512 KiB plus names)
fit with room, and thousands of tags are a few documents. Why float32, not float16: thresholds are
chosen on held-out scores at full precision; float16's 1e-3 relative error moves scores near a
threshold across it, float32's 1e-7 does not.

A version is written completely (shards, then header) before `current` points at it, so a reader
never sees half a vocabulary; old versions are pruned after `KEEP_VERSIONS`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from google.cloud import firestore

from autotagger.clients import store
from autotagger.config import Settings
from autotagger.retry import with_retries

SHARD_TAGS = 256
KEEP_VERSIONS = 3  # the current one and two before it (a reader mid-load keeps its version)
CURRENT = "current"
META = "meta"
DTYPE = "<f4"
FORMAT = 1
_FIGURES = ("positives", "ap", "precision", "recall")


class VocabularyError(ValueError):
    """A published vocabulary that cannot be read as one (missing shard, wrong sizes)."""


@dataclass(frozen=True)
class Vocabulary:
    """A learned vocabulary: `sigmoid(embedding @ weights + bias) >= thresholds` per tag.

    `model` is the served model whose embeddings it was trained on (its space); `figures` holds
    each tag's cross-validated positives, AP, precision and recall, for people to read."""

    version: int
    model: str
    tags: tuple[str, ...]
    weights: np.ndarray  # (dim, T) float32
    bias: np.ndarray  # (T,) float32
    thresholds: np.ndarray  # (T,) float32, probabilities
    figures: tuple[dict[str, Any], ...] = ()
    created_at: dt.datetime | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.weights.shape[0])


def collection(settings: Settings, db: firestore.Client | None = None) -> Any:
    return (db or store.client(settings)).collection(f"{settings.firestore_collection}-vocabulary")


def _header_id(version: int) -> str:
    return f"v{version:08d}"


def _shard_id(version: int, index: int) -> str:
    return f"{_header_id(version)}-s{index:04d}"


def _call(settings: Settings, what: str, call: Any) -> Any:
    return with_retries(
        f"Firestore {what}", lambda: call(store.client(settings)), store._is_transient
    )


# -- encoding --------------------------------------------------------------------------------


def encode(vocabulary: Vocabulary) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(header, shards) of `vocabulary` as Firestore documents."""
    count = len(vocabulary.tags)
    weights = np.ascontiguousarray(vocabulary.weights.T, dtype=DTYPE)  # (T, dim): a row per tag
    shards = []
    for index, start in enumerate(range(0, count, SHARD_TAGS)):
        end = min(count, start + SHARD_TAGS)
        figures = vocabulary.figures[start:end] if vocabulary.figures else ()
        shards.append(
            {
                "version": vocabulary.version,
                "index": index,
                "tags": list(vocabulary.tags[start:end]),
                "thresholds": [float(v) for v in vocabulary.thresholds[start:end]],
                "bias": [float(v) for v in vocabulary.bias[start:end]],
                "weights": weights[start:end].tobytes(),
                **{name: [f.get(name) for f in figures] for name in _FIGURES if figures},
            }
        )
    header = {
        "version": vocabulary.version,
        "format": FORMAT,
        "model": vocabulary.model,
        "dim": vocabulary.dim,
        "dtype": DTYPE,
        "tag_count": count,
        "shards": len(shards),
        "created_at": vocabulary.created_at,
        "summary": vocabulary.summary,
    }
    return header, shards


def decode(header: dict[str, Any], shards: Sequence[dict[str, Any] | None]) -> Vocabulary:
    """The vocabulary of `header` and its shards (in order); VocabularyError when they are not
    one consistent version."""
    try:
        version, dim, count = int(header["version"]), int(header["dim"]), int(header["tag_count"])
        if header.get("format") != FORMAT or header.get("dtype") != DTYPE:
            raise VocabularyError(f"unknown format {header.get('format')}/{header.get('dtype')}")
        if len(shards) != int(header["shards"]):
            raise VocabularyError(f"{len(shards)} shards, header says {header['shards']}")
        tags: list[str] = []
        thresholds: list[float] = []
        bias: list[float] = []
        rows: list[np.ndarray] = []
        figures: list[dict[str, Any]] = []
        for index, shard in enumerate(shards):
            if shard is None or shard.get("version") != version or shard.get("index") != index:
                raise VocabularyError(f"shard {index} of version {version} missing or foreign")
            names = list(shard["tags"])
            block = np.frombuffer(shard["weights"], dtype=DTYPE)
            if block.size != len(names) * dim or not (
                len(names) == len(shard["thresholds"]) == len(shard["bias"])
            ):
                raise VocabularyError(f"shard {index} of version {version} has wrong sizes")
            tags += names
            thresholds += shard["thresholds"]
            bias += shard["bias"]
            rows.append(block.reshape(len(names), dim))
            figures += [
                {"tag": name, **{f: (shard.get(f) or [None] * len(names))[i] for f in _FIGURES}}
                for i, name in enumerate(names)
            ]
        if len(tags) != count:
            raise VocabularyError(f"{len(tags)} tags, header says {count}")
        weights = np.concatenate(rows).T if rows else np.zeros((dim, 0), dtype=DTYPE)
        return Vocabulary(
            version=version,
            model=str(header["model"]),
            tags=tuple(tags),
            weights=np.ascontiguousarray(weights, dtype=np.float32),
            bias=np.asarray(bias, dtype=np.float32),
            thresholds=np.asarray(thresholds, dtype=np.float32),
            figures=tuple(figures),
            created_at=header.get("created_at"),
            summary=dict(header.get("summary") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, VocabularyError):
            raise
        raise VocabularyError(f"unreadable vocabulary: {type(exc).__name__}: {exc}") from None


# -- reading (serving) -----------------------------------------------------------------------


def current_version(settings: Settings) -> int | None:
    """The published version, or None when nothing was ever published (one document read)."""
    snapshot = _call(
        settings,
        "vocabulary read",
        lambda db: collection(settings, db).document(CURRENT).get(**store.NO_RETRY),
    )
    if not snapshot.exists:
        return None
    version = (snapshot.to_dict() or {}).get("current_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise VocabularyError(f"'current' names no version ({version!r})")
    return version


def read(settings: Settings, version: int) -> Vocabulary:
    """Version `version`: its header, then all its shards in one batched read."""

    def fetch(db: firestore.Client) -> Vocabulary:
        documents = collection(settings, db)
        snapshot = documents.document(_header_id(version)).get(**store.NO_RETRY)
        if not snapshot.exists:
            raise VocabularyError(f"version {version} has no header (pruned or unfinished)")
        header = snapshot.to_dict() or {}
        count = int(header.get("shards") or 0)
        refs = [documents.document(_shard_id(version, i)) for i in range(count)]
        found = {s.id: s.to_dict() for s in db.get_all(refs, **store.NO_RETRY) if s.exists}
        return decode(header, [found.get(_shard_id(version, i)) for i in range(count)])

    result: Vocabulary = _call(settings, "vocabulary read", fetch)
    return result


def read_current(settings: Settings) -> Vocabulary | None:
    version = current_version(settings)
    return None if version is None else read(settings, version)


# -- writing (learn) -------------------------------------------------------------------------


def _allocate(settings: Settings) -> int:
    """A version number no other publisher will use (a transaction on `meta`)."""

    @firestore.transactional
    def bump(transaction: firestore.Transaction, ref: Any) -> int:
        snapshot = ref.get(transaction=transaction, **store.NO_RETRY)
        last = int((snapshot.to_dict() or {}).get("last_version") or 0) if snapshot.exists else 0
        transaction.set(ref, {"last_version": last + 1, "updated_at": store.now()})
        return last + 1

    result: int = _call(
        settings,
        "vocabulary version",
        lambda db: bump(db.transaction(), collection(settings, db).document(META)),
    )
    return result


def publish(settings: Settings, vocabulary: Vocabulary) -> int:
    """Write `vocabulary` as a new version, point `current` at it, prune old versions; return
    the version. (`vocabulary.version` is ignored: the store allocates it.)"""
    version = _allocate(settings)
    header, shards = encode(_with_version(vocabulary, version))
    for shard in shards:  # each up to ~600 KiB: one write each keeps requests small
        _call(
            settings,
            "vocabulary write",
            lambda db, s=shard: (
                collection(settings, db)
                .document(_shard_id(version, s["index"]))
                .set(s, **store.NO_RETRY)
            ),
        )
    _call(
        settings,
        "vocabulary write",
        lambda db: (
            collection(settings, db).document(_header_id(version)).set(header, **store.NO_RETRY)
        ),
    )

    @firestore.transactional
    def point(transaction: firestore.Transaction, ref: Any) -> None:
        snapshot = ref.get(transaction=transaction, **store.NO_RETRY)
        shown = (snapshot.to_dict() or {}).get("current_version") if snapshot.exists else None
        if isinstance(shown, int) and shown > version:
            return  # a later publish won meanwhile: never go back
        transaction.set(
            ref,
            {"current_version": version, "published_at": store.now(), "tags": len(vocabulary.tags)},
        )

    _call(
        settings,
        "vocabulary publish",
        lambda db: point(db.transaction(), collection(settings, db).document(CURRENT)),
    )
    prune(settings, version - KEEP_VERSIONS + 1)
    return version


def _with_version(vocabulary: Vocabulary, version: int) -> Vocabulary:
    return replace(vocabulary, version=version)


def prune(settings: Settings, oldest_kept: int) -> int:
    """Delete the headers and shards of versions below `oldest_kept`; how many documents."""
    if oldest_kept <= 1:
        return 0

    def delete(db: firestore.Client) -> int:
        query = collection(settings, db).where(
            filter=firestore.FieldFilter("version", "<", oldest_kept)
        )
        refs = [snapshot.reference for snapshot in query.stream(**store.NO_RETRY)]
        for start in range(0, len(refs), 400):
            batch = db.batch()
            for ref in refs[start : start + 400]:
                batch.delete(ref)
            batch.commit(**store.NO_RETRY)
        return len(refs)

    deleted: int = _call(settings, "vocabulary prune", delete)
    return deleted


# -- training rows (learn) -------------------------------------------------------------------

TRAINING_FIELDS = ("status", "version", "model", "embedding", "tags", "vocabulary")


def training_documents(
    settings: Settings, asset_ids: Iterable[str], batch: int = 300, parallel: int = 8
) -> dict[str, dict[str, Any]]:
    """The fields of the stored documents that learning needs (embedding, what we wrote, ...),
    by asset_id: batched reads, `parallel` at a time, that leave everything else out."""
    ids = list(dict.fromkeys(asset_ids))

    def read(chunk: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = _call(
            settings, "batched read", lambda db: _read_fast(settings, db, chunk)
        )
        return found

    chunks = [ids[start : start + batch] for start in range(0, len(ids), batch)]
    found: dict[str, dict[str, Any]] = {}
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="training-read") as pool:
        for part in pool.map(read, chunks):
            found.update(part)
    return found


def _read_fast(settings: Settings, db: firestore.Client, ids: list[str]) -> dict[str, Any]:
    """`get_all` of `ids` (TRAINING_FIELDS only), the embeddings decoded straight from the
    protobuf into numpy: the client's generic decoding (a Python object, then a deep copy, per
    number) costs ~4 ms a document, 40 s for 10k; this ~0.4 ms. The other fields go through the
    client's own decoder. Falls back to the public path if the client's internals moved."""
    from google.cloud.firestore_v1 import _helpers

    refs = [store.collection(settings, db).document(asset_id) for asset_id in ids]
    try:
        api, database, metadata = db._firestore_api, db._database_string, db._rpc_metadata
        paths = [ref._document_path for ref in refs]
    except AttributeError:
        snapshots = db.get_all(refs, field_paths=list(TRAINING_FIELDS), **store.NO_RETRY)
        return {s.id: s.to_dict() or {} for s in snapshots if s.exists}
    request = {
        "database": database,
        "documents": paths,
        "mask": {"field_paths": list(TRAINING_FIELDS)},
    }
    found: dict[str, dict[str, Any]] = {}
    responses = api.batch_get_documents(
        request=request, metadata=metadata, timeout=store.CALL_TIMEOUT_S
    )
    for response in responses:
        if not response._pb.HasField("found"):
            continue
        document = response.found
        fields = document._pb.fields
        decoded: dict[str, Any] = {
            name: _helpers.decode_value(document.fields[name], db)
            for name in fields
            if name != "embedding"
        }
        if "embedding" in fields:
            vector = fields["embedding"].map_value.fields.get("value")
            values = vector.array_value.values if vector is not None else ()
            decoded["embedding"] = np.fromiter(
                (v.double_value for v in values), dtype=np.float32, count=len(values)
            )
        found[document.name.rsplit("/", 1)[-1]] = decoded
    return found


def embedding_of(document: dict[str, Any]) -> np.ndarray | None:
    """A document's stored embedding as float32, or None when it has none (or a broken one)."""
    value = document.get("embedding")
    if value is None:
        return None
    try:
        vector = np.asarray(value if isinstance(value, np.ndarray) else list(value), np.float32)
    except (TypeError, ValueError):
        return None
    if vector.ndim != 1 or not vector.size or not all(math.isfinite(v) for v in vector[:4]):
        return None
    return vector if np.isfinite(vector).all() else None
