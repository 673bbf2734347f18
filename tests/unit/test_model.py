"""The lazy model getter and label decoding (no TensorFlow needed)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from autotagger import model
from autotagger.tagging import choose_tags


def test_concurrent_first_calls_load_once(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str] = []

    class Fake:
        name = "fake"

        def predict(self, batch: np.ndarray) -> np.ndarray:
            return np.zeros((len(batch), 1000))

    def slow_load(weights: str, *_: str) -> Fake:
        loads.append(weights)
        time.sleep(0.3)
        return Fake()

    monkeypatch.setattr(model, "_load", slow_load)
    monkeypatch.setattr(model, "_models", {})
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(model.get_model("w"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loads == ["w"]
    assert len(got) == 8 and all(g is got[0] for g in got)
    assert model.get_model("w") is got[0]


def test_top_k_matches_the_class_index() -> None:
    probabilities = np.full(1000, 1e-4)
    probabilities[[207, 281, 1]] = [0.6, 0.3, 0.05]
    predictions = model.top_k(probabilities, 5)
    assert [p.label for p in predictions[:3]] == ["golden_retriever", "tabby", "goldfish"]
    assert predictions[0].wnid == "n02099601"
    assert len(predictions) == 5


def test_top_k_rejects_wrong_shapes() -> None:
    with pytest.raises(ValueError, match="1000"):
        model.top_k(np.zeros(10), 5)


def test_tags_above_threshold_and_always_the_top_one() -> None:
    predictions = [
        model.Prediction("a", "n1", 0.1),
        model.Prediction("b", "n2", 0.05),
    ]
    assert choose_tags(predictions, 0.2, "") == ["a"]
    predictions = [model.Prediction("a", "n1", 0.5), model.Prediction("b", "n2", 0.3)]
    assert choose_tags(predictions, 0.2, "auto:") == ["auto:a", "auto:b"]
    assert choose_tags(predictions, 0.4, "") == ["a"]


def test_shipped_class_index_is_keras_file() -> None:
    """The shipped copy is byte for byte Keras's `imagenet_class_index.json` (its md5 is what
    Keras's own download checks), so labels can never drift from `decode_predictions`."""
    import hashlib

    digest = hashlib.md5(model.CLASS_INDEX_PATH.read_bytes(), usedforsecurity=False).hexdigest()
    assert digest == "c2c37ea517e94d9795004a39431a14cb"
    assert model.class_index()[285] == ("n02124075", "Egyptian_cat")
