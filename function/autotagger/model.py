"""VGG16 (ImageNet): the one lazy, thread-safe getter, and label decoding.

Only this module imports TensorFlow/Keras, and only inside functions, so everything else (and
most tests) runs without it. The int8 fast path imports LiteRT (`ai_edge_litert`), never
TensorFlow. `MODEL_WEIGHTS` selects the weights:

- `imagenet`: Keras downloads the official weights (needs internet on cold start).
- a directory written by `infra/build_model.py` (`manifest.json` + the model): loaded directly,
  no Keras model is built. fp32: a SavedModel whose forward takes the weights as inputs, fed
  zero-copy from the memory-mapped `weights.bin` (older artifacts with the weights in SavedModel
  variables load too). int8: a dynamic-range quantized LiteRT model (`model.tflite`), served by
  LiteRT without importing TensorFlow. This is what deployment ships.
- any other SavedModel directory, a `.tflite` file, a `.keras` model file, or a `.h5` /
  `.weights.h5` weights file.
- `gs://bucket/path`: copied once to a local cache, then loaded as above.
- `random`: the real VGG16 graph with seeded random weights (tests and offline demos), always
  recorded as `vgg16/random(seed=N)`.

`MODEL_PRECISION=int8` asks for the int8 model: an int8 artifact is used as is; anything else is
converted at load time (imports TensorFlow and takes tens of seconds: build an artifact instead).
"""

from __future__ import annotations

import json
import os
import queue
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from autotagger import logs

CLASS_INDEX_PATH = Path(__file__).with_name("imagenet_class_index.json")
MANIFEST = "manifest.json"
RANDOM_SEED = 0
PRECISIONS = ("fp32", "int8")
INPUT_SHAPE = (224, 224, 3)
WEIGHTS_ALIGNMENT = 64  # bytes; what TensorFlow's CPU kernels want for zero-copy inputs
INT8_SUFFIX = "/int8"


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


def cores() -> int:
    """CPUs this process may run on (the container's share, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class _TensorFlowClassifier:
    """A compiled forward pass with a fixed input signature (no `predict()` overhead).

    TensorFlow runs concurrent calls safely (they share its intra-op thread pool).
    """

    def __init__(self, forward: Any, name: str, keep: Any = None) -> None:
        self._forward = forward
        self._keep = keep  # what `forward` needs alive: the loaded SavedModel, mapped weights
        self.name = name

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self._forward(batch))


class _LiteRTClassifier:
    """Dynamic-range int8 VGG16 under LiteRT (XNNPACK), without TensorFlow.

    An interpreter is not thread-safe: each is used by one thread at a time, taken from a small
    pool (by default one interpreter using every core; each extra one packs its own copy of the
    weights, +140 MB, for no throughput gain on a few cores). Images of a batch run one by one
    on the batch-1 graph: batching gives LiteRT no per-image gain here, and resizing the input
    would re-plan the graph.
    """

    def __init__(self, make: Any, name: str, pool_size: int = 1) -> None:
        self.name = name
        self._pool: queue.SimpleQueue[Any] = queue.SimpleQueue()
        first = make()
        self._input = first.get_input_details()[0]["index"]
        self._output = first.get_output_details()[0]["index"]
        self._pool.put(first)
        for _ in range(pool_size - 1):
            self._pool.put(make())

    def predict(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        interpreter = self._pool.get()
        try:
            out = np.empty((len(batch), 1000), dtype=np.float32)
            for i in range(len(batch)):
                interpreter.set_tensor(self._input, batch[i : i + 1])
                interpreter.invoke()
                out[i] = interpreter.get_tensor(self._output)[0]
            return out
        finally:
            self._pool.put(interpreter)


@dataclass
class _Pending:
    batch: np.ndarray
    done: bool = False
    result: np.ndarray | None = None
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
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._busy = False
        self.batches: list[int] = []  # sizes of the recent forwards (for tests and logs)

    def predict(self, batch: np.ndarray) -> np.ndarray:
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
            out = self.inner.predict(stacked)
            start = 0
            for item in group:
                item.result = out[start : start + item.images]
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
    def _result(pending: _Pending) -> np.ndarray:
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result


_lock = threading.Lock()
_models: dict[tuple[str, str, int], Classifier] = {}
load_count = 0  # how many times a model was actually loaded (tests check it stays at one)


def get_model(weights: str, precision: str = "fp32", max_batch: int = 1) -> Classifier:
    """The warm model for `weights`, loaded on first use; concurrent first calls load it once.

    `max_batch` > 1 wraps a TensorFlow model in a `MicroBatcher` (LiteRT models ignore it).
    """
    key = (weights, precision, max_batch)
    model = _models.get(key)
    if model is not None:
        return model
    with _lock:
        model = _models.get(key)
        if model is None:
            global load_count
            started = time.perf_counter()
            model = _load(weights, precision)
            if max_batch > 1 and isinstance(model, _TensorFlowClassifier):
                model = MicroBatcher(model, max_batch)
            load_count += 1
            logs.info(
                "model loaded",
                model=model.name,
                load_ms=round((time.perf_counter() - started) * 1e3, 1),
            )
            _models[key] = model
    return model


def is_loaded(weights: str, precision: str = "fp32", max_batch: int = 1) -> bool:
    return (weights, precision, max_batch) in _models


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

    @tf.function(input_signature=[tf.TensorSpec([None, *INPUT_SHAPE], tf.float32)])
    def forward(batch: Any) -> Any:
        return keras_model(batch, training=False)

    return forward


def export_saved_model(keras_model: Any, directory: Path) -> dict[str, Any]:
    """Write the fp32 serving artifact's model: `directory` (a SavedModel) + `weights.bin` beside.

    The SavedModel holds only the graph: its `serve(batch, *weights)` is Keras's stateless call,
    taking every weight as an input. The weights go, once each, into one flat float32 file with
    every tensor aligned to 64 bytes, so the loader memory-maps it and hands the pages straight
    to TensorFlow (zero copy). Returns the manifest's `weights` entry (path relative to the
    artifact directory, i.e. `directory`'s parent).
    """
    import tensorflow as tf

    if keras_model.non_trainable_variables:
        raise ValueError("export_saved_model expects a model without non-trainable variables")
    variables = list(keras_model.trainable_variables)
    specs = [tf.TensorSpec(v.shape, tf.float32) for v in variables]

    @tf.function(input_signature=[tf.TensorSpec([None, *INPUT_SHAPE], tf.float32), *specs])
    def serve(batch: Any, *weights: Any) -> Any:
        outputs, _ = keras_model.stateless_call(list(weights), [], batch, training=False)
        return outputs

    module = tf.Module()
    module.serve = serve
    tf.saved_model.save(module, str(directory))

    weights_path = directory.parent / "weights.bin"
    tensors = []
    offset = 0
    with weights_path.open("wb") as out:
        for variable in variables:
            array = np.ascontiguousarray(variable.numpy(), dtype="<f4")
            padding = -offset % WEIGHTS_ALIGNMENT
            out.write(b"\0" * padding)
            offset += padding
            tensors.append({"name": variable.path, "shape": list(array.shape), "offset": offset})
            out.write(array.tobytes())
            offset += array.nbytes
    return {
        "path": weights_path.name,
        "dtype": "float32",
        "alignment": WEIGHTS_ALIGNMENT,
        "bytes": offset,
        "tensors": tensors,
    }


def export_variables_saved_model(keras_model: Any, directory: Path) -> None:
    """A self-contained SavedModel (weights in variables, one `serve` endpoint), each variable
    stored once. What TFLiteConverter reads; older fp32 artifacts were this.

    (`keras.Model.export` tracks every variable twice: a 1.1 GB artifact instead of 528 MB.)
    """
    import tensorflow as tf

    module = tf.Module()
    module.variables_ = [weight.value for weight in keras_model.weights]
    module.serve = compiled_forward(keras_model)
    tf.saved_model.save(module, str(directory))


def _converter_source(weights: str, scratch: Path) -> tuple[Path, str]:
    """A self-contained SavedModel (weights in variables, `serving_default`) of `weights` for
    TFLiteConverter, and the model's name. `weights` is `imagenet`, `random`, a Keras file, a
    SavedModel, or an fp32 artifact (no Keras model is built for the last two)."""
    import tensorflow as tf

    path = Path(weights)
    if path.is_dir() and not (path / MANIFEST).exists():
        return path, f"vgg16/savedmodel:{path.name}"
    if not path.is_dir():
        keras_model, name = build_keras_vgg16(weights)
        export_variables_saved_model(keras_model, scratch)
        return scratch, name
    manifest = json.loads((path / MANIFEST).read_text())
    if manifest.get("format") != "saved_model":
        raise ValueError(f"{path}: not an fp32 artifact (format {manifest.get('format')!r})")
    name = str(manifest["name"])
    if "weights" not in manifest:  # the older layout is already self-contained
        return path / manifest["path"], name
    loaded = tf.saved_model.load(str(path / manifest["path"]))
    module = tf.Module()
    arrays = _mapped_weights(path, manifest["weights"])
    module.variables_ = [tf.Variable(np.array(a), trainable=False) for a in arrays]

    @tf.function(input_signature=[tf.TensorSpec([None, *INPUT_SHAPE], tf.float32)])
    def serve(batch: Any) -> Any:
        return loaded.serve(batch, *module.variables_)

    module.serve = serve
    tf.saved_model.save(module, str(scratch), signatures={"serving_default": serve})
    return scratch, name


def convert_int8(weights: str) -> tuple[bytes, str]:
    """Dynamic-range int8 quantization (int8 weights, float activations quantized on the fly)
    with TFLiteConverter; returns (the LiteRT flatbuffer, the fp32 model's name)."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="autotagger-int8-") as tmp:
        source, name = _converter_source(weights, Path(tmp) / "saved_model")
        converter = tf.lite.TFLiteConverter.from_saved_model(
            str(source), signature_keys=["serving_default"]
        )
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        return bytes(converter.convert()), name


def _mapped_weights(artifact: Path, entry: dict[str, Any]) -> list[np.ndarray]:
    """The artifact's weights as read-only views of one private memory map (no copy, no read:
    pages come from the page cache when first touched)."""
    if entry.get("dtype", "float32") != "float32":
        raise ValueError(f"{artifact}: unsupported weights dtype {entry.get('dtype')!r}")
    # mode "c" (private, copy-on-write): writable views, which DLPack can export; nothing writes.
    raw = np.memmap(artifact / entry["path"], dtype=np.uint8, mode="c")
    arrays = []
    for tensor in entry["tensors"]:
        shape = tuple(int(d) for d in tensor["shape"])
        start = int(tensor["offset"])
        size = int(np.prod(shape)) * 4
        if start + size > raw.size:
            raise ValueError(f"{artifact}: weights file is truncated")
        arrays.append(raw[start : start + size].view("<f4").reshape(shape))
    return arrays


def _warm_up(classifier: Classifier) -> Classifier:
    """One forward on zeros, so the first request gets a traced, planned graph."""
    classifier.predict(np.zeros((1, *INPUT_SHAPE), dtype=np.float32))
    return classifier


def _load_saved_model(directory: Path, name: str, weights: dict[str, Any] | None) -> Classifier:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(directory))
    if weights is None:  # weights inside the SavedModel (variables): restored, i.e. copied
        restored = getattr(loaded, "serve", None) or loaded.signatures["serving_default"]
        return _TensorFlowClassifier(restored, name, keep=loaded)
    arrays = _mapped_weights(directory.parent, weights)
    tensors = [tf.experimental.dlpack.from_dlpack(a.__dlpack__()) for a in arrays]
    serve = loaded.serve

    def forward(batch: np.ndarray) -> Any:
        return serve(batch, *tensors)

    return _TensorFlowClassifier(forward, name, keep=(loaded, tensors, arrays))


def _load_litert(name: str, path: Path | None = None, content: bytes | None = None) -> Classifier:
    """LiteRT only (no TensorFlow import): `path` is memory-mapped by the interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    def make() -> Any:
        if path is not None:
            interpreter = Interpreter(model_path=str(path), num_threads=cores())
        else:
            interpreter = Interpreter(model_content=content, num_threads=cores())
        interpreter.allocate_tensors()
        return interpreter

    return _LiteRTClassifier(make, name)


def artifact_name(manifest: dict[str, Any]) -> str:
    """The served name of an artifact: the manifest's `name`, plus `@` and the first 12 hex
    digits of the weights file's sha256 when the manifest records it (so a retrained or
    re-quantized model is a different model); older artifacts keep their plain name."""
    name = str(manifest["name"])
    digest = manifest.get("sha256")
    return f"{name}@{digest[:12]}" if isinstance(digest, str) and len(digest) >= 12 else name


def _load_artifact(path: Path, precision: str) -> Classifier:
    manifest = json.loads((path / MANIFEST).read_text())
    fmt = manifest.get("format")
    name = artifact_name(manifest)
    if fmt == "tflite":
        return _load_litert(name, path=path / manifest["path"])
    if fmt != "saved_model":
        raise ValueError(f"{path / MANIFEST}: unsupported artifact format {fmt!r}")
    if precision == "int8":
        return _convert_at_load(str(path))
    return _load_saved_model(path / manifest["path"], name, manifest.get("weights"))


def _convert_at_load(weights: str) -> Classifier:
    logs.warning(
        "MODEL_PRECISION=int8 without an int8 artifact: converting now (imports TensorFlow, "
        "takes tens of seconds); build one with infra/build_model.py --precision int8",
        weights=weights,
    )
    content, name = convert_int8(weights)
    return _load_litert(name + INT8_SUFFIX, content=content)


def _load(weights: str, precision: str = "fp32") -> Classifier:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if weights.startswith("gs://"):
        from autotagger import gcs

        return _load(str(gcs.fetch(weights)), precision)
    path = Path(weights)
    if path.is_dir() and (path / MANIFEST).exists():
        return _warm_up(_load_artifact(path, precision))
    if path.suffix == ".tflite" and path.is_file():
        return _warm_up(_load_litert(f"vgg16/tflite:{path.name}", path=path))
    if precision == "int8":
        return _warm_up(_convert_at_load(weights))
    if path.is_dir():
        return _warm_up(_load_saved_model(path, f"vgg16/savedmodel:{path.name}", None))
    keras_model, name = build_keras_vgg16(weights)
    return _warm_up(_TensorFlowClassifier(compiled_forward(keras_model), name))


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
