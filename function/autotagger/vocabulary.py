"""The account's learned vocabulary at serve time: the current published version, and its tags
for an embedding (`sigmoid(e . W + b) >= threshold`, a 512 x T product: numpy only).

Every instance keeps one copy, re-checked at most every `VOCABULARY_REFRESH_S` (one document
read; the shards only when the version changed), so a newly published vocabulary is served
within that time without a restart. The check runs in the request that finds the copy stale,
while every other request keeps using the copy it has: no request waits on another's refresh,
and a version is swapped in whole. A missing or unreadable vocabulary never fails a
classification: there are then no learned tags, said once in the log (and again only when
that changes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from autotagger import logs, vocabulary_store
from autotagger.config import Settings
from autotagger.domain import embedding_space
from autotagger.vocabulary_store import Vocabulary

__all__ = ["Vocabulary", "apply", "current", "for_model", "learned_tags", "reset", "scores"]

clock: Callable[[], float] = time.monotonic  # tests move time forward
ERROR_RETRY_S = 30.0  # after a failed read, the next try comes this soon (or the refresh interval)


def scores(vocabulary: Vocabulary, embeddings: np.ndarray) -> np.ndarray:
    """Probabilities, (T,) for one embedding or (N, T) for a stack of them."""
    vectors = np.asarray(embeddings, dtype=np.float32)
    if vectors.ndim == 1:  # one image: numpy's own loop; BLAS's threads cost more than they save
        product = np.einsum("d,dt->t", vectors, vocabulary.weights)
    else:
        product = vectors @ vocabulary.weights
    logits = product + vocabulary.bias
    return 1.0 / (1.0 + np.exp(-np.clip(logits, -60.0, 60.0)))


def apply(vocabulary: Vocabulary, embedding: np.ndarray) -> list[dict[str, Any]]:
    """The learned tags of one embedding: `{tag, score}` at or above each tag's threshold, best
    first."""
    if np.shape(embedding) != (vocabulary.dim,):
        raise ValueError(
            f"embedding of shape {np.shape(embedding)}, the vocabulary needs ({vocabulary.dim},)"
        )
    probabilities = scores(vocabulary, embedding)
    chosen = np.flatnonzero(probabilities >= vocabulary.thresholds)
    ranked = chosen[np.argsort(-probabilities[chosen], kind="stable")]
    return [{"tag": vocabulary.tags[i], "score": round(float(probabilities[i]), 6)} for i in ranked]


class _Cache:
    """The instance's copy of the published vocabulary and what the log was last told."""

    def __init__(self) -> None:
        self.lock = threading.Lock()  # held only by the request that refreshes
        self.vocabulary: Vocabulary | None = None
        self.due: float | None = None  # when to check the published version next
        self.said: str | None = None  # the last state logged ("missing", "error: ...", "v3")
        self.said_lock = threading.Lock()


_cache = _Cache()


def reset() -> None:
    """Forget the copy (tests; a new collection)."""
    global _cache
    _cache = _Cache()


def _tell_once(cache: _Cache, state: str, severity: str, message: str, **fields: Any) -> None:
    with cache.said_lock:
        if cache.said == state:
            return
        cache.said = state
    logs.log(severity, message, **fields)


def _refresh(settings: Settings, cache: _Cache) -> None:
    wait = float(settings.vocabulary_refresh_s)
    try:
        version = vocabulary_store.current_version(settings)
        if version is None:
            cache.vocabulary = None
            _tell_once(cache, "missing", "INFO", "no vocabulary published: no learned tags")
        elif cache.vocabulary is None or cache.vocabulary.version != version:
            cache.vocabulary = vocabulary_store.read(settings, version)
            _tell_once(
                cache,
                f"v{version}",
                "INFO",
                "vocabulary loaded",
                version=version,
                tags=len(cache.vocabulary.tags),
                model=cache.vocabulary.model,
            )
    except Exception as exc:  # keep what we have; try again soon (an outage is brief)
        wait = min(wait, ERROR_RETRY_S)
        detail = f"{type(exc).__name__}: {str(exc)[:300]}"
        _tell_once(
            cache,
            f"error: {type(exc).__name__}",
            "WARNING",
            "vocabulary unreadable: serving "
            + (f"version {cache.vocabulary.version}" if cache.vocabulary else "no learned tags"),
            error=detail,
        )
    finally:
        cache.due = clock() + wait


def _behind(cache: _Cache, min_version: int | None) -> bool:
    have = cache.vocabulary.version if cache.vocabulary else 0
    return min_version is not None and have < min_version


def current(settings: Settings, min_version: int | None = None) -> Vocabulary | None:
    """The published vocabulary as this instance last read it (None: none usable). Never
    raises. The first call of a process reads it (others wait for that one read); later calls
    refresh it when older than VOCABULARY_REFRESH_S (after a failed read, within 30 s), one
    request at a time, without blocking.
    `min_version` (a re-scoring message names the version it was sent for): a copy older than
    that is refreshed now."""
    cache = _cache
    if cache.due is None or _behind(cache, min_version):
        with cache.lock:
            if cache.due is None or _behind(cache, min_version):
                _refresh(settings, cache)
        return cache.vocabulary
    if clock() >= cache.due and cache.lock.acquire(blocking=False):
        try:
            if clock() >= (cache.due or 0.0):
                _refresh(settings, cache)
        finally:
            cache.lock.release()
    return cache.vocabulary


def for_model(settings: Settings, model_name: str) -> Vocabulary | None:
    """The current vocabulary when it was trained on `model_name`'s embeddings, else None
    (another model's embedding space: its weights mean nothing here; logged once)."""
    vocabulary = current(settings)
    if vocabulary is None or embedding_space(vocabulary.model) == embedding_space(model_name):
        return vocabulary
    cache = _cache
    _tell_once(
        cache,
        f"v{vocabulary.version} other model {model_name}",
        "WARNING",
        "vocabulary trained on another model's embeddings: no learned tags until "
        "`cli.py learn` runs on this model's",
        version=vocabulary.version,
        trained_on=vocabulary.model,
        serving=model_name,
    )
    return None


def learned_tags(
    settings: Settings, embedding: np.ndarray | None, model_name: str
) -> dict[str, Any] | None:
    """The document's `vocabulary` field for a new embedding: `{version, tags: [{tag, score}]}`,
    or None when there is no embedding or no usable vocabulary. Never raises."""
    if embedding is None:
        return None
    vocabulary = for_model(settings, model_name)
    if vocabulary is None:
        return None
    try:
        tags = apply(vocabulary, embedding)
    except Exception as exc:
        _tell_once(
            _cache,
            f"v{vocabulary.version} apply error",
            "WARNING",
            "vocabulary cannot score this embedding: no learned tags",
            version=vocabulary.version,
            error=f"{type(exc).__name__}: {str(exc)[:300]}",
        )
        return None
    return {"version": vocabulary.version, "tags": tags}


def with_learned_tags(
    settings: Settings, result: dict[str, Any], present: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A classification `result` plus the learned tags of its embedding: the `vocabulary`
    field, and their names (with TAG_PREFIX) appended to the tags we write and record. A tag
    already `present` on the asset (a person's) is neither written nor recorded: it stays
    theirs, and a later vocabulary can never remove it."""
    field = learned_tags(settings, result.get("embedding"), str(result.get("model") or ""))
    if field is None:
        return {**result, "vocabulary": None}
    tags = list(result.get("tags") or [])
    written = [t for t in field["tags"] if settings.tag_prefix + t["tag"] not in {*present, *tags}]
    tags += [settings.tag_prefix + t["tag"] for t in written]
    return {**result, "vocabulary": {**field, "tags": written}, "tags": tags}
