"""VGG16 (ImageNet): the one lazy, thread-safe getter, and label decoding.

Only this module imports TensorFlow/Keras, and only inside functions, so everything else (and
most tests) runs without it. `MODEL_WEIGHTS` selects the weights:

- `imagenet`: Keras downloads the official weights (needs internet on cold start).
- a directory written by `infra/build_model.py` (`manifest.json` + `saved_model/`): loaded
  directly as a SavedModel, no Keras model is built. This is what deployment ships.
- any other SavedModel directory, a `.keras` model file, or a `.h5` / `.weights.h5` weights file.
- `gs://bucket/path`: copied once to a local cache, then loaded as above.
- `random`: the real VGG16 graph with seeded random weights (tests and offline demos), always
  recorded as `vgg16/random(seed=N)`.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from autotagger import logs

CLASS_INDEX_PATH = Path(__file__).with_name("imagenet_class_index.json")
MANIFEST = "manifest.json"
RANDOM_SEED = 0


class Classifier(Protocol):
    name: str

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(N, 224, 224, 3) preprocessed float32 -> (N, 1000) class probabilities."""
        ...


@dataclass(frozen=True)
class Prediction:
    label: str
    wnid: str
    score: float


class _TensorFlowClassifier:
    """A compiled forward pass with a fixed input signature (no `predict()` overhead)."""

    def __init__(self, forward: Any, name: str) -> None:
        self._forward = forward
        self.name = name

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self._forward(batch))


_lock = threading.Lock()
_models: dict[str, Classifier] = {}
load_count = 0  # how many times a model was actually loaded (tests check it stays at one)


def get_model(weights: str) -> Classifier:
    """The warm model for `weights`, loaded on first use; concurrent first calls load it once."""
    model = _models.get(weights)
    if model is not None:
        return model
    with _lock:
        model = _models.get(weights)
        if model is None:
            global load_count
            started = time.perf_counter()
            model = _load(weights)
            load_count += 1
            logs.info(
                "model loaded",
                model=model.name,
                load_ms=round((time.perf_counter() - started) * 1e3, 1),
            )
            _models[weights] = model
    return model


def is_loaded(weights: str) -> bool:
    return weights in _models


def random_weights(model: Any, seed: int = RANDOM_SEED) -> None:
    """Overwrite `model`'s weights with seeded He-uniform kernels and zero biases (deterministic).

    The last kernel is scaled down so the softmax is not saturated (logit std ~3, not ~300):
    scores then spread like a real classifier's, which makes thresholds testable.
    """
    rng = np.random.default_rng(seed)
    weights = model.get_weights()
    last_kernel = max(i for i, w in enumerate(weights) if w.ndim > 1)
    values = []
    for i, weight in enumerate(weights):
        if weight.ndim > 1:
            fan_in = int(np.prod(weight.shape[:-1]))
            limit = np.sqrt(6.0 / fan_in) * (0.01 if i == last_kernel else 1.0)
            values.append(rng.uniform(-limit, limit, weight.shape).astype(np.float32))
        else:
            values.append(np.zeros(weight.shape, dtype=np.float32))
    model.set_weights(values)


def build_keras_vgg16(weights: str) -> tuple[Any, str]:
    """Build Keras's VGG16 for `imagenet`, `random` or a weights file; return (model, name)."""
    import keras

    if weights == "random":
        model = keras.applications.VGG16(weights=None)
        random_weights(model)
        return model, f"vgg16/random(seed={RANDOM_SEED})"
    if weights == "imagenet":
        return keras.applications.VGG16(weights="imagenet"), "vgg16/imagenet"
    path = Path(weights)
    if path.suffix == ".keras":
        return keras.models.load_model(path, compile=False), f"vgg16/file:{path.name}"
    return keras.applications.VGG16(weights=str(path)), f"vgg16/file:{path.name}"


def compiled_forward(keras_model: Any) -> Any:
    """A tf.function over the Keras model with a fixed (N, 224, 224, 3) float32 signature."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, 224, 224, 3], tf.float32)])
    def forward(batch: Any) -> Any:
        return keras_model(batch, training=False)

    return forward


def export_saved_model(keras_model: Any, directory: Path) -> None:
    """Save a SavedModel with one `serve` endpoint and each variable stored once.

    (`keras.Model.export` tracks every variable twice: a 1.1 GB artifact instead of 528 MB.)
    """
    import tensorflow as tf

    module = tf.Module()
    module.variables_ = [weight.value for weight in keras_model.weights]
    module.serve = compiled_forward(keras_model)
    tf.saved_model.save(module, str(directory))


def _load_saved_model(directory: Path, name: str) -> Classifier:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(directory))
    forward = getattr(loaded, "serve", None) or loaded.signatures["serving_default"]
    classifier = _TensorFlowClassifier(forward, name)
    classifier._loaded = loaded  # type: ignore[attr-defined]  # keep the variables alive
    return classifier


def _load(weights: str) -> Classifier:
    if weights.startswith("gs://"):
        from autotagger import gcs

        return _load(str(gcs.fetch(weights)))
    path = Path(weights)
    if path.is_dir():
        manifest_path = path / MANIFEST
        if manifest_path.exists():
            manifest = json.loads(manifest_path.read_text())
            fmt = manifest.get("format")
            if fmt != "saved_model":
                raise ValueError(f"{manifest_path}: unsupported artifact format {fmt!r}")
            return _load_saved_model(path / manifest["path"], manifest["name"])
        return _load_saved_model(path, f"vgg16/savedmodel:{path.name}")
    keras_model, name = build_keras_vgg16(weights)
    return _TensorFlowClassifier(compiled_forward(keras_model), name)


@lru_cache(maxsize=1)
def class_index() -> tuple[tuple[str, str], ...]:
    """The 1000 ImageNet classes as (wnid, label), from the copy shipped with the function."""
    raw = json.loads(CLASS_INDEX_PATH.read_text())
    return tuple((raw[str(i)][0], raw[str(i)][1]) for i in range(len(raw)))


def top_k(probabilities: np.ndarray, k: int) -> list[Prediction]:
    """Decode one (1000,) probability vector like Keras's `decode_predictions`, best first."""
    classes = class_index()
    if probabilities.shape != (len(classes),):
        raise ValueError(f"expected {len(classes)} probabilities, got shape {probabilities.shape}")
    best = probabilities.argsort()[-k:][::-1]
    return [
        Prediction(label=classes[i][1], wnid=classes[i][0], score=float(probabilities[i]))
        for i in best
    ]
