"""Taking features out of the pipeline, for the bench's feature pairs: what `BENCH_WITHOUT`
names (comma-separated, `FEATURES`) and how each is taken out. Used by the "off" server's entry
module (`infra/bench/without_features.py`) and checked by the unit tests; bench only.

- `concepts`: no concept scores, fields or tags;
- `embedding`: none stored (so no learned tags either);
- `vocabulary`: the learned tags are neither looked up nor applied.
"""

from __future__ import annotations

from typing import Any

from autotagger import concepts, embeddings, vocabulary
from autotagger.config import Settings

FEATURES = ("concepts", "embedding", "vocabulary")
VARIABLE = "BENCH_WITHOUT"


def without(names: str) -> tuple[str, ...]:
    """The features `names` (BENCH_WITHOUT's value) lists, checked."""
    chosen = tuple(n.strip() for n in names.split(",") if n.strip())
    unknown = sorted(set(chosen) - set(FEATURES))
    if unknown:
        raise SystemExit(f"{VARIABLE}: unknown feature(s) {unknown}; known: {FEATURES}")
    return chosen


def _no_concepts(probabilities: Any, threshold: float) -> dict[str, Any]:
    return {"concepts": [], "concept_vocabulary": None}


def _no_embedding(found: Any) -> None:
    return None


def _no_learned_tags(
    settings: Settings, result: dict[str, Any], present: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {**result, "vocabulary": None}


def take_out(names: tuple[str, ...]) -> None:
    """Replace what the pipeline calls for each feature in `names` by its absence."""
    if "concepts" in names:
        concepts.fields = _no_concepts
    if "embedding" in names:
        embeddings.of_image = _no_embedding  # type: ignore[assignment]
    if "vocabulary" in names:
        vocabulary.with_learned_tags = _no_learned_tags
