"""The per-asset descriptor stored for "more like this": checks, a video's mean, distances.

The model gives each image a 512-number embedding (VGG16's block5_pool, global-average-pooled,
L2-normalised) in the forward that yields its labels. A video's embedding is the mean of its
frames', normalised again. Two assets are compared by cosine distance (1 - cosine similarity,
0 to 2), which is what Firestore's `find_nearest` answers with `DistanceMeasure.COSINE`.
"""

from __future__ import annotations

import numpy as np

# Firestore's vector limit is 2048 numbers; fewer than 64 would describe nothing useful.
MIN_DIMENSIONS = 64
MAX_DIMENSIONS = 2048
NORM_TOLERANCE = 1e-3


def normalised(vector: np.ndarray) -> np.ndarray | None:
    """`vector` as float32 of norm 1, or None when it has no direction (all zero) or holds
    non-finite numbers: such a vector is left out rather than stored as nonsense."""
    vector = np.asarray(vector, dtype=np.float64).reshape(-1)
    if not MIN_DIMENSIONS <= vector.size <= MAX_DIMENSIONS or not np.all(np.isfinite(vector)):
        return None
    norm = float(np.linalg.norm(vector))
    if norm < 1e-12:
        return None
    return (vector / norm).astype(np.float32)


def of_image(embeddings: np.ndarray | None) -> np.ndarray | None:
    """The first (only) row of a forward's embeddings, checked; None without any."""
    return None if embeddings is None else normalised(embeddings[0])


def of_frames(embeddings: np.ndarray | None) -> np.ndarray | None:
    """A video's embedding: the normalised mean of its frames' (each of norm 1)."""
    if embeddings is None or len(embeddings) == 0:
        return None
    return normalised(np.asarray(embeddings, dtype=np.float64).mean(axis=0))


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 - cos(a, b): 0 for the same direction, 1 for orthogonal, 2 for opposite."""
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(1.0 - a64 @ b64 / (np.linalg.norm(a64) * np.linalg.norm(b64)))
