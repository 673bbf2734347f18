"""VGG16 (ImageNet): the one lazy, thread-safe getter, the engine choice, and label decoding.

Only this package (its engine loaders, `autotagger.model.engines`) imports an inference runtime,
and only inside functions, so everything else (and most tests) runs without one. `MODEL_WEIGHTS`
selects the weights:

- a directory written by `infra/build_model.py` (`manifest.json` + the models): loaded directly,
  no Keras model is built. This is what deployment ships. fp32: the same weights twice, as a
  graph-only SavedModel fed zero-copy from the memory-mapped `weights.bin` (TensorFlow), and as
  an OpenVINO IR (`openvino/model.xml` + `.bin`); older artifacts (no IR, or the weights in
  SavedModel variables) load too. int8: a dynamic-range quantized LiteRT model
  (`model.tflite`).
- any other SavedModel directory, a `.tflite` file, a `.keras` model file, or a `.h5` /
  `.weights.h5` weights file.
- `gs://bucket/path`: an artifact in Cloud Storage; only the files the chosen engine reads are
  fetched (`autotagger.clients.gcs`: parallel ranged reads, each file's sha256 checked against the
  manifest) to `MODEL_CACHE_DIR`, then loaded as above.
- `imagenet` (Keras downloads the official weights: needs internet on cold start) or `random`
  (the real VGG16 graph with seeded random weights, for tests and offline demos, always recorded
  as `vgg16/random(seed=N)`): a Keras model built at load time by `autotagger.model.build`.

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
`MODEL_PRECISION=fp16` serves the artifact's IR whose fc1 kernel is stored as fp16 with OpenVINO
(0.63x the bytes to fetch; decompressed to fp32 at compile, so those weights rounded to fp16:
named `…/fp16`).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from autotagger import logs
from autotagger.config import Settings
from autotagger.domain import Manifest
from autotagger.logs import Timings
from autotagger.model import artifact, engines
from autotagger.model.artifact import (
    artifact_files,
    artifact_name,
    choose_engine,
    openvino_available,
)
from autotagger.model.batching import MicroBatcher
from autotagger.model.spec import (
    CLASS_INDEX_PATH,
    EMBEDDING_DIM,
    EMBEDDING_NAME,
    ENGINES,
    FP16_SUFFIX,
    INPUT_SHAPE,
    INT8_SUFFIX,
    MANIFEST,
    PRECISIONS,
    RANDOM_SEED,
    WEIGHTS_ALIGNMENT,
    Classifier,
    Prediction,
    class_index,
    embedding_dim,
    infer,
    top_k,
)

__all__ = [
    "CLASS_INDEX_PATH",
    "EMBEDDING_DIM",
    "EMBEDDING_NAME",
    "ENGINES",
    "INPUT_SHAPE",
    "MANIFEST",
    "PRECISIONS",
    "RANDOM_SEED",
    "WEIGHTS_ALIGNMENT",
    "Classifier",
    "MicroBatcher",
    "Prediction",
    "artifact_files",
    "artifact_name",
    "choose_engine",
    "class_index",
    "embedding_dim",
    "fetch_artifact",
    "for_settings",
    "get_model",
    "infer",
    "is_loaded",
    "load_in_background",
    "openvino_available",
    "release",
    "release_all",
    "top_k",
]
cores = engines.cores
Inference = engines.Inference


_lock = threading.Lock()
_models: dict[tuple[str, str, int, str, str], Classifier] = {}
load_count = 0  # how many times a model was actually loaded (tests check it stays at one)
warm_ups_skipped = 0  # loads whose warm-up forward was left to a waiting request (tests)
_waiting = 0  # requests inside get_model for a model not loaded yet (the preload is not one)
_waiting_lock = threading.Lock()


def get_model(
    weights: str,
    precision: str = "fp32",
    max_batch: int = 1,
    engine: str = "auto",
    openvino_hint: str = "latency",
    background: bool = False,
) -> Classifier:
    """The warm model for `weights`, loaded on first use; concurrent first calls load it once.

    `max_batch` > 1 wraps the model in a `MicroBatcher` when its engine gains from batches
    (TensorFlow; OpenVINO under the latency hint), else it is ignored. `background`: a load
    nobody waits for (the preload); a request waiting for the model is counted, so the load
    can leave its warm-up forward to that request's own forward (`_warm_up`).
    """
    key = (weights, precision, max_batch, engine, openvino_hint)
    model = _models.get(key)
    if model is not None:
        return model
    global _waiting
    if background:
        return _get_locked(key)
    with _waiting_lock:
        _waiting += 1
    try:
        return _get_locked(key)
    finally:
        with _waiting_lock:
            _waiting -= 1


def _get_locked(key: tuple[str, str, int, str, str]) -> Classifier:
    weights, precision, max_batch, engine, openvino_hint = key
    with _lock:
        model = _models.get(key)
        if model is None:
            # One compiled model per artifact, engine and hint: batch sizes share it.
            loaded = _models.get((weights, precision, 1, engine, openvino_hint))
            if loaded is None:
                loaded = _load_logged(weights, precision, engine, openvino_hint)
                _models[(weights, precision, 1, engine, openvino_hint)] = loaded
            model = loaded
            if max_batch > 1 and getattr(loaded, "batching", False):
                model = MicroBatcher(loaded, max_batch)
            _models[key] = model
    return model


def _load_logged(weights: str, precision: str, engine: str, openvino_hint: str) -> Classifier:
    global load_count
    started = time.perf_counter()
    skipped = warm_ups_skipped
    model = _load(weights, precision, engine, openvino_hint)
    load_count += 1
    logs.info(
        "model loaded",
        model=model.name,
        engine=getattr(model, "engine", "?"),
        load_ms=round((time.perf_counter() - started) * 1e3, 1),
        warm_up="left to the waiting request" if warm_ups_skipped > skipped else "done",
    )
    return model


def is_loaded(
    weights: str,
    precision: str = "fp32",
    max_batch: int = 1,
    engine: str = "auto",
    openvino_hint: str = "latency",
) -> bool:
    return (weights, precision, max_batch, engine, openvino_hint) in _models


def release(weights: str) -> int:
    """Forget every warm model loaded from `weights` (whatever its precision, batching or
    engine); return how many. The cache never evicts on its own (a serving instance keeps its
    one model): this is for processes that go through several models, one at a time (tests,
    benchmarks). The memory is freed once no request still holds the model."""
    with _lock:
        keys = [key for key in _models if key[0] == weights]
        for key in keys:
            del _models[key]
    return len(keys)


def _spec(settings: Settings) -> tuple[str, str, int, str, str]:
    return (
        settings.model_weights,
        settings.model_precision,
        settings.model_max_batch,
        settings.model_engine,
        settings.model_openvino_hint,
    )


def for_settings(settings: Settings, timings: Timings) -> Classifier:
    """The warm classifier `settings` name (weights, precision, batching, engine); a cold load is
    timed as the `model_load` stage."""
    spec = _spec(settings)
    if is_loaded(*spec):
        return get_model(*spec)
    with timings.stage("model_load"):
        return get_model(*spec)


def load_in_background(settings: Settings) -> Classifier:
    """`for_settings` for a load nobody waits for (the preload): see `get_model`'s
    `background`."""
    return get_model(*_spec(settings), background=True)


def _warm_up(classifier: Classifier) -> Classifier:
    """One forward on zeros, so the first request gets a traced, planned graph; it also finds
    whether the model has the embedding output (`embedding_dim`), and says so when it has not.

    When a request is already waiting for this model and the engine knows its outputs without a
    forward (OpenVINO), the forward is left out: that request's own forward does the same first
    run, and a warm-up before it would only make it wait one forward longer."""
    global warm_ups_skipped
    if getattr(classifier, "outputs_known", False) and _requests_waiting():
        dim = embedding_dim(classifier)
        warm_ups_skipped += 1
    else:
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


def _requests_waiting() -> bool:
    with _waiting_lock:
        return _waiting > 0


def _load_artifact(path: Path, precision: str, engine: str, openvino_hint: str) -> Classifier:
    manifest = Manifest.read(path)
    name = manifest.served_name
    if manifest.format == "tflite":
        return engines.load_litert(name, path=path / str(manifest.path))
    if precision == "int8":
        return _convert_at_load(str(path))
    if precision == "fp16":
        entry = artifact.fp16_entry(manifest, engine)
        return engines.load_openvino(path / entry.xml, name + FP16_SUFFIX, openvino_hint)
    if choose_engine(manifest, engine) == "openvino":
        assert manifest.openvino is not None  # choose_engine said so
        return engines.load_openvino(path / manifest.openvino.xml, name, openvino_hint)
    weights = None if manifest.weights is None else dict(manifest.weights)
    return engines.load_tensorflow(path / str(manifest.path), name, weights)


def fetch_artifact(uri: str, precision: str = "fp32", engine: str = "auto") -> Path:
    """The local copy of the gs:// artifact `uri`, holding the files serving it at `precision`
    with `engine` reads (fetched and verified unless already cached)."""
    from autotagger.clients import gcs

    return gcs.fetch(uri, lambda m: artifact_files(m, precision, engine)).path


def _convert_at_load(weights: str) -> Classifier:
    from autotagger.model import build

    logs.warning(
        "MODEL_PRECISION=int8 without an int8 artifact: converting now (imports TensorFlow, "
        "takes tens of seconds); build one with infra/build_model.py --precision int8",
        weights=weights,
    )
    content, name = build.convert_int8(weights)
    return engines.load_litert(name + INT8_SUFFIX, content=content)


def _load(
    weights: str, precision: str = "fp32", engine: str = "auto", openvino_hint: str = "latency"
) -> Classifier:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if weights.startswith("gs://"):
        local = fetch_artifact(weights, precision, engine)
        return _load(str(local), precision, engine, openvino_hint)
    path = Path(weights)
    if path.is_dir() and (path / MANIFEST).exists():
        return _warm_up(_load_artifact(path, precision, engine, openvino_hint))
    if path.suffix == ".tflite" and path.is_file():
        return _warm_up(engines.load_litert(f"vgg16/tflite:{path.name}", path=path))
    if precision == "int8":
        return _warm_up(_convert_at_load(weights))
    if precision == "fp16":
        raise ValueError("MODEL_PRECISION=fp16 needs an artifact with an fp16 IR (build_model.py)")
    if engine == "openvino":
        raise ValueError(
            "MODEL_ENGINE=openvino needs an artifact with an OpenVINO IR (infra/build_model.py)"
        )
    if path.is_dir():
        return _warm_up(engines.load_tensorflow(path, f"vgg16/savedmodel:{path.name}", None))
    from autotagger.model import build

    keras_model, name = build.build_keras_vgg16(weights)
    keras_model = build.with_embedding(keras_model)
    forward = build.compiled_forward(keras_model)
    return _warm_up(engines.TensorFlowClassifier(forward, name, keep=keras_model))


def compiled_count() -> int:
    """How many distinct models are warm (batch sizes of one model count once)."""
    with _lock:
        return len({(w, p, e, h) for w, p, _, e, h in _models})


def release_all() -> None:
    """Forget every warm model, so its memory can go (a process serves one model; tests load
    many, one module at a time)."""
    with _lock:
        _models.clear()
