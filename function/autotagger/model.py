"""VGG16 (ImageNet): the one lazy, thread-safe getter, the engine choice, and label decoding.

Only this module and its engine loaders (`autotagger.engines`) import an inference runtime, and
only inside functions, so everything else (and most tests) runs without one. `MODEL_WEIGHTS`
selects the weights:

- a directory written by `infra/build_model.py` (`manifest.json` + the models): loaded directly,
  no Keras model is built. This is what deployment ships. fp32: the same weights twice, as a
  graph-only SavedModel fed zero-copy from the memory-mapped `weights.bin` (TensorFlow), and as
  an OpenVINO IR (`openvino/model.xml` + `.bin`); older artifacts (no IR, or the weights in
  SavedModel variables) load too. int8: a dynamic-range quantized LiteRT model
  (`model.tflite`).
- any other SavedModel directory, a `.tflite` file, a `.keras` model file, or a `.h5` /
  `.weights.h5` weights file.
- `gs://bucket/path`: copied once to a local cache, then loaded as above.
- `imagenet` (Keras downloads the official weights: needs internet on cold start) or `random`
  (the real VGG16 graph with seeded random weights, for tests and offline demos, always recorded
  as `vgg16/random(seed=N)`): a Keras model built at load time by `autotagger.model_build`.

Every model built here (`infra/build_model.py`, or at load time) answers, in one forward, the
1000 probabilities and a 512-number embedding (block5_pool, global-average-pooled,
L2-normalised: `infer`); an artifact built before the embedding existed serves labels only
(`embedding_dim` None, said once in the log when it loads).

`MODEL_ENGINE` picks fp32's engine: `openvino` serves the artifact's IR (TensorFlow is never
imported), `tensorflow` the SavedModel, `auto` the IR when the artifact has one and OpenVINO is
installed, else TensorFlow. The engine changes how fast, not what: the model's `name` is the
same under both. `MODEL_PRECISION=int8` asks for the int8 model (LiteRT): an int8 artifact is
used as is; anything else is converted at load time (imports TensorFlow and takes tens of
seconds: build an artifact instead).
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from autotagger import engines, logs
from autotagger.config import Settings
from autotagger.logs import Timings

CLASS_INDEX_PATH = Path(__file__).with_name("imagenet_class_index.json")
MANIFEST = "manifest.json"
RANDOM_SEED = 0
PRECISIONS = ("fp32", "int8")
ENGINES = ("auto", "openvino", "tensorflow")
INPUT_SHAPE = (224, 224, 3)
WEIGHTS_ALIGNMENT = 64  # bytes; what TensorFlow's CPU kernels want for zero-copy inputs
INT8_SUFFIX = "/int8"
EMBEDDING_NAME = "vgg16/block5_pool/gap/l2"
EMBEDDING_DIM = 512
cores = engines.cores
Inference = engines.Inference


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


@dataclass
class _Pending:
    batch: np.ndarray
    done: bool = False
    result: Inference | None = None
    error: BaseException | None = None
    images: int = field(init=False)

    def __post_init__(self) -> None:
        self.images = len(self.batch)


class MicroBatcher:
    """Coalesce concurrent `predict` calls into one forward of at most `max_batch` images.

    No timer: a call that finds the model idle runs at once (a lone request waits for nothing);
    calls arriving while a forward runs queue up, and the next forward takes them together, in
    arrival order. Only the forward is serialised; everything else of a request runs in parallel.
    """

    def __init__(self, inner: Classifier, max_batch: int) -> None:
        self.inner = inner
        self.name = inner.name
        self.embedding_dim = embedding_dim(inner)
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._busy = False
        self.batches: list[int] = []  # sizes of the recent forwards (for tests and logs)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.infer(batch).probabilities

    def infer(self, batch: np.ndarray) -> Inference:
        pending = _Pending(batch)
        with self._cond:
            self._queue.append(pending)
            while not pending.done and (self._busy or self._queue[0] is not pending):
                self._cond.wait()
            if pending.done:
                return self._result(pending)
            self._busy = True
            group = [self._queue.pop(0)]
            images = group[0].images
            while self._queue and images + self._queue[0].images <= self.max_batch:
                images += self._queue[0].images
                group.append(self._queue.pop(0))
        try:
            stacked = (
                group[0].batch if len(group) == 1 else np.concatenate([p.batch for p in group])
            )
            out = infer(self.inner, stacked)
            start = 0
            for item in group:
                item.result = out.rows(start, start + item.images)
                start += item.images
        except BaseException as exc:
            for item in group:
                item.error = exc
        finally:
            with self._cond:
                for item in group:
                    item.done = True
                self._busy = False
                self.batches = [*self.batches[-99:], images]
                self._cond.notify_all()
        return self._result(pending)

    @staticmethod
    def _result(pending: _Pending) -> Inference:
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result


_lock = threading.Lock()
_models: dict[tuple[str, str, int, str, str], Classifier] = {}
load_count = 0  # how many times a model was actually loaded (tests check it stays at one)


def get_model(
    weights: str,
    precision: str = "fp32",
    max_batch: int = 1,
    engine: str = "auto",
    openvino_hint: str = "latency",
) -> Classifier:
    """The warm model for `weights`, loaded on first use; concurrent first calls load it once.

    `max_batch` > 1 wraps the model in a `MicroBatcher` when its engine gains from batches
    (TensorFlow; OpenVINO under the latency hint), else it is ignored.
    """
    key = (weights, precision, max_batch, engine, openvino_hint)
    model = _models.get(key)
    if model is not None:
        return model
    with _lock:
        model = _models.get(key)
        if model is None:
            global load_count
            started = time.perf_counter()
            model = _load(weights, precision, engine, openvino_hint)
            served_by = getattr(model, "engine", "?")
            if max_batch > 1 and getattr(model, "batching", False):
                model = MicroBatcher(model, max_batch)
            load_count += 1
            logs.info(
                "model loaded",
                model=model.name,
                engine=served_by,
                load_ms=round((time.perf_counter() - started) * 1e3, 1),
            )
            _models[key] = model
    return model


def is_loaded(
    weights: str,
    precision: str = "fp32",
    max_batch: int = 1,
    engine: str = "auto",
    openvino_hint: str = "latency",
) -> bool:
    return (weights, precision, max_batch, engine, openvino_hint) in _models


def for_settings(settings: Settings, timings: Timings) -> Classifier:
    """The warm classifier `settings` name (weights, precision, batching, engine); a cold load is
    timed as the `model_load` stage."""
    spec = (
        settings.model_weights,
        settings.model_precision,
        settings.model_max_batch,
        settings.model_engine,
        settings.model_openvino_hint,
    )
    if is_loaded(*spec):
        return get_model(*spec)
    with timings.stage("model_load"):
        return get_model(*spec)


def openvino_available() -> bool:
    """Whether the `openvino` package is installed (looked up, not imported)."""
    return importlib.util.find_spec("openvino") is not None


def choose_engine(manifest: dict[str, Any], engine: str) -> str:
    """`tensorflow` or `openvino` for an fp32 artifact's manifest under MODEL_ENGINE=`engine`."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    has_ir = "openvino" in manifest
    if engine == "auto":
        return "openvino" if has_ir and openvino_available() else "tensorflow"
    if engine == "openvino" and not has_ir:
        raise ValueError(
            "MODEL_ENGINE=openvino: the artifact has no OpenVINO IR; rebuild it with "
            "infra/build_model.py"
        )
    if engine == "tensorflow" and "weights" not in manifest and "path" not in manifest:
        raise ValueError("MODEL_ENGINE=tensorflow: the artifact has no SavedModel")
    return engine


def _warm_up(classifier: Classifier) -> Classifier:
    """One forward on zeros, so the first request gets a traced, planned graph; it also finds
    whether the model has the embedding output (`embedding_dim`), and says so when it has not."""
    out = infer(classifier, np.zeros((1, *INPUT_SHAPE), dtype=np.float32))
    dim = None if out.embeddings is None else int(out.embeddings.shape[-1])
    classifier.embedding_dim = dim  # type: ignore[attr-defined]
    if dim is None:
        logs.warning(
            "model has no embedding output: labels are served, but no embedding is stored and "
            "similar-asset search finds nothing new; rebuild the artifact with "
            "infra/build_model.py",
            model=classifier.name,
        )
    return classifier


def artifact_name(manifest: dict[str, Any]) -> str:
    """The served name of an artifact: the manifest's `name`, plus `@` and the first 12 hex
    digits of the weights file's sha256 when the manifest records it (so a retrained or
    re-quantized model is a different model); older artifacts keep their plain name."""
    name = str(manifest["name"])
    digest = manifest.get("sha256")
    return f"{name}@{digest[:12]}" if isinstance(digest, str) and len(digest) >= 12 else name


def _load_artifact(path: Path, precision: str, engine: str, openvino_hint: str) -> Classifier:
    manifest = json.loads((path / MANIFEST).read_text())
    fmt = manifest.get("format")
    name = artifact_name(manifest)
    if fmt == "tflite":
        return engines.load_litert(name, path=path / manifest["path"])
    if fmt != "saved_model":
        raise ValueError(f"{path / MANIFEST}: unsupported artifact format {fmt!r}")
    if precision == "int8":
        return _convert_at_load(str(path))
    if choose_engine(manifest, engine) == "openvino":
        xml = path / manifest["openvino"]["xml"]
        return engines.load_openvino(xml, name, openvino_hint)
    return engines.load_tensorflow(path / manifest["path"], name, manifest.get("weights"))


def _convert_at_load(weights: str) -> Classifier:
    from autotagger import model_build

    logs.warning(
        "MODEL_PRECISION=int8 without an int8 artifact: converting now (imports TensorFlow, "
        "takes tens of seconds); build one with infra/build_model.py --precision int8",
        weights=weights,
    )
    content, name = model_build.convert_int8(weights)
    return engines.load_litert(name + INT8_SUFFIX, content=content)


def _load(
    weights: str, precision: str = "fp32", engine: str = "auto", openvino_hint: str = "latency"
) -> Classifier:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if weights.startswith("gs://"):
        from autotagger import gcs

        return _load(str(gcs.fetch(weights)), precision, engine, openvino_hint)
    path = Path(weights)
    if path.is_dir() and (path / MANIFEST).exists():
        return _warm_up(_load_artifact(path, precision, engine, openvino_hint))
    if path.suffix == ".tflite" and path.is_file():
        return _warm_up(engines.load_litert(f"vgg16/tflite:{path.name}", path=path))
    if precision == "int8":
        return _warm_up(_convert_at_load(weights))
    if engine == "openvino":
        raise ValueError(
            "MODEL_ENGINE=openvino needs an artifact with an OpenVINO IR (infra/build_model.py)"
        )
    if path.is_dir():
        return _warm_up(engines.load_tensorflow(path, f"vgg16/savedmodel:{path.name}", None))
    from autotagger import model_build

    keras_model, name = model_build.build_keras_vgg16(weights)
    keras_model = model_build.with_embedding(keras_model)
    forward = model_build.compiled_forward(keras_model)
    return _warm_up(engines.TensorFlowClassifier(forward, name, keep=keras_model))


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
