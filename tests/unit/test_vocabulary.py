"""Serving the account's vocabulary (numpy only): scores and per-tag thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from autotagger import vocabulary
from tests.support.vocabularies import synthetic_vocabulary


def test_apply_is_a_sigmoid_over_a_product_with_per_tag_thresholds() -> None:
    weights = np.zeros((4, 3), np.float32)
    weights[0, 0], weights[1, 1], weights[2, 2] = 4.0, 4.0, -4.0
    voc = synthetic_vocabulary(["a", "b", "c"], weights, [0.0, -1.0, 0.0], [0.9, 0.5, 0.5])
    embedding = np.array([1.0, 1.0, 0.0, 0.0], np.float32)
    expected = 1 / (1 + np.exp(-np.array([4.0, 3.0, 0.0])))
    np.testing.assert_allclose(vocabulary.scores(voc, embedding), expected, rtol=1e-6)
    # a: 0.982 >= 0.9, b: 0.953 >= 0.5, c: 0.5 >= 0.5 (at the threshold counts): best first.
    assert vocabulary.apply(voc, embedding) == [
        {"tag": "a", "score": round(float(expected[0]), 6)},
        {"tag": "b", "score": round(float(expected[1]), 6)},
        {"tag": "c", "score": 0.5},
    ]
    # a: 0.5 < 0.9, b: 0.27 < 0.5, c: 0.018 < 0.5.
    assert vocabulary.apply(voc, np.array([0.0, 0.0, 1.0, 0.0], np.float32)) == []
    high = synthetic_vocabulary(["a", "b", "c"], weights, [0.0, -1.0, 0.0], [0.99, 0.99, 0.99])
    assert vocabulary.apply(high, embedding) == []
    with pytest.raises(ValueError, match="needs"):
        vocabulary.apply(voc, np.zeros(5, np.float32))
