"""Synthetic vocabularies and embeddings: clusters on the unit sphere, no model needed."""

from __future__ import annotations

import numpy as np

from autotagger.vocabulary_store import Vocabulary

MODEL = "vgg16/synthetic@0123456789ab"
DIM = 512


def unit_length(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def clusters(rng: np.random.Generator, names: list[str]) -> dict[str, np.ndarray]:
    return {name: rng.normal(size=DIM) for name in names}


def draw(rng: np.random.Generator, center: np.ndarray, n: int) -> np.ndarray:
    return unit_length(center + rng.normal(scale=1.2, size=(n, DIM)))


def synthetic_vocabulary(
    tags: list[str], weights: np.ndarray, bias: list[float], thresholds: list[float]
) -> Vocabulary:
    return Vocabulary(
        version=0,
        model=MODEL,
        tags=tuple(tags),
        weights=weights.astype(np.float32),
        bias=np.asarray(bias, np.float32),
        thresholds=np.asarray(thresholds, np.float32),
    )
