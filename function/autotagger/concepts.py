"""Concept tags: the words people search by (dog, cat, car, food), scored from WordNet's tree.

`concepts.json` (built by `infra/build_concepts.py` from WordNet 3.0, shipped with the function)
lists about 80 curated concepts, each with the ImageNet classes ("leaves") below it. A concept's
score is the sum of its leaves' probabilities over the whole 1000-way softmax, i.e. the model's
own probability that the picture shows *some* member of the concept: a dog photo whose mass is
spread over 30 breeds at 1-3% each is still `dog` at 0.86. All concepts are one matrix product,
`probabilities @ M` with M the 1000xC 0/1 membership matrix (a few microseconds per image).

A concept is kept when its score reaches `CONCEPT_THRESHOLD` (0.5 by default: more likely than
not; two concepts without a shared leaf, such as dog and cat, can then never both be kept, short
of a dead heat at exactly 0.5). Since a concept's leaves include those of every concept below it,
`animal` always scores at least as high as `dog`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

VOCABULARY_PATH = Path(__file__).with_name("concepts.json")
CLASSES = 1000


@dataclass(frozen=True)
class Vocabulary:
    version: str
    source: str
    wnids: tuple[str, ...]
    names: tuple[str, ...]
    matrix: np.ndarray  # (CLASSES, C) float32 0/1: matrix[i, c] = class i is below concept c


@dataclass(frozen=True)
class Concept:
    name: str
    wnid: str
    score: float


def parse(raw: dict[str, Any]) -> Vocabulary:
    """The vocabulary of a `concepts.json` document; ValueError when it is malformed."""
    if raw.get("classes") != CLASSES:
        raise ValueError(f"concepts.json: expected {CLASSES} classes, got {raw.get('classes')}")
    entries = list(raw["concepts"].items())
    matrix = np.zeros((CLASSES, len(entries)), dtype=np.float32)
    for column, (_wnid, entry) in enumerate(entries):
        leaves = entry["leaves"]
        if not leaves or min(leaves) < 0 or max(leaves) >= CLASSES:
            raise ValueError(f"concepts.json: {entry['name']} has leaves out of range")
        matrix[leaves, column] = 1.0
    return Vocabulary(
        version=str(raw["version"]),
        source=str(raw["source"]),
        wnids=tuple(wnid for wnid, _ in entries),
        names=tuple(entry["name"] for _, entry in entries),
        matrix=matrix,
    )


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    """The shipped vocabulary, read once per process."""
    return parse(json.loads(VOCABULARY_PATH.read_text()))


def scores(probabilities: np.ndarray, vocab: Vocabulary | None = None) -> np.ndarray:
    """Every concept's score: (1000,) -> (C,), or (N, 1000) -> (N, C)."""
    vocab = vocab or vocabulary()
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.shape[-1] != CLASSES:
        raise ValueError(f"expected {CLASSES} probabilities, got shape {probabilities.shape}")
    result: np.ndarray = probabilities @ vocab.matrix
    return result


def score(
    probabilities: np.ndarray, threshold: float, vocab: Vocabulary | None = None
) -> list[Concept]:
    """The concepts of one (1000,) probability vector scoring at least `threshold`, best first
    (ties by name, so the order is stable)."""
    vocab = vocab or vocabulary()
    if np.asarray(probabilities).ndim != 1:
        raise ValueError("score takes one probability vector; use `scores` for a batch")
    values = scores(probabilities, vocab)
    kept = [
        Concept(vocab.names[c], vocab.wnids[c], round(float(values[c]), 6))
        for c in np.flatnonzero(values >= threshold)
    ]
    return sorted(kept, key=lambda concept: (-concept.score, concept.name))


def fields(probabilities: np.ndarray, threshold: float) -> dict[str, Any]:
    """What a document stores about concepts: `concepts` ({name, wnid, score}, best first) and
    `concept_vocabulary` (the vocabulary's version, so a later vocabulary can be told apart)."""
    vocab = vocabulary()
    return {
        "concepts": [
            {"name": c.name, "wnid": c.wnid, "score": c.score}
            for c in score(probabilities, threshold, vocab)
        ],
        "concept_vocabulary": vocab.version,
    }
