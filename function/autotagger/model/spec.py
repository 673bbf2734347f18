"""What a VGG16 artifact is: its constants, the classifier protocol, and label decoding.

A leaf of the model package: the serving getter and the build-time code both import it, and it
imports no inference runtime.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from autotagger import domain
from autotagger.model.engines import Inference

CLASS_INDEX_PATH = Path(__file__).with_name("imagenet_class_index.json")
MANIFEST = domain.MANIFEST
RANDOM_SEED = 0
PRECISIONS = ("fp32", "int8", "fp16")
ENGINES = ("auto", "openvino", "tensorflow")
INPUT_SHAPE = (224, 224, 3)
WEIGHTS_ALIGNMENT = 64  # bytes; what TensorFlow's CPU kernels want for zero-copy inputs
INT8_SUFFIX = "/int8"
FP16_SUFFIX = domain.FP16_SUFFIX
# The manifest's word for what MODEL_PRECISION=fp16's IR holds: a cached artifact built with
# another one (every weight in fp16) is rebuilt.
FP16_IR_PRECISION = "fc1's kernel stored as fp16, fp32 inference"
EMBEDDING_NAME = "vgg16/block5_pool/gap/l2"
EMBEDDING_DIM = 512


class Classifier(Protocol):
    name: str

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(N, 224, 224, 3) preprocessed float32 -> (N, 1000) class probabilities."""
        ...


def infer(classifier: Classifier, batch: np.ndarray) -> Inference:
    """Probabilities and embeddings of `batch` from one forward (`embeddings` None when the
    model has no embedding output); a classifier with only `predict` gives no embedding."""
    method = getattr(classifier, "infer", None)
    if method is None:
        return Inference(np.asarray(classifier.predict(batch), dtype=np.float32), None)
    result: Inference = method(batch)
    return result


def embedding_dim(classifier: Classifier) -> int | None:
    """The width of the model's embedding (found by the warm-up forward), or None."""
    return getattr(classifier, "embedding_dim", None)


@dataclass(frozen=True)
class Prediction:
    label: str
    wnid: str
    score: float


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
