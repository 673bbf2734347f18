"""Build-time half of the model: Keras VGG16, seeded random weights, and the artifact's models
(fp32 SavedModel + `weights.bin`, LiteRT int8, OpenVINO IR).

Imports TensorFlow/Keras (and OpenVINO's converter) inside functions. `infra/build_model.py`
uses it; serving an artifact never imports it. `autotagger.model` falls back to it only when
`MODEL_WEIGHTS` is not an artifact (`imagenet`, `random`, a Keras file, a plain SavedModel) or
int8 is asked of an fp32 model: building a Keras model or converting at load time is exactly
the build-time work an artifact saves.
"""

from __future__ import annotations

import functools
import hashlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from autotagger.domain import Manifest
from autotagger.model.engines import import_openvino, mapped_weights
from autotagger.model.spec import (
    EMBEDDING_DIM,
    EMBEDDING_NAME,
    FP16_IR_PRECISION,
    INPUT_SHAPE,
    MANIFEST,
    RANDOM_SEED,
    WEIGHTS_ALIGNMENT,
)

OPENVINO_DIR = "openvino"
OPENVINO_FP16_DIR = "openvino-fp16"
EMBEDDING_LAYER = "block5_pool"
# The outputs of an artifact's model, by name: what `engines.split_outputs` looks for.
OUTPUT_NAMES = ("probabilities", "embedding")


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


def with_embedding(keras_model: Any) -> Any:
    """The same VGG16 (same layers, same weights, in the same order) with a second output: the
    512-number descriptor `block5_pool` -> global average pool -> L2 normalisation, computed in
    the forward that yields the probabilities. fc2's 4096 numbers would exceed Firestore's
    2048-dimension vector limit; block5 is the last layer that still sees the whole picture."""
    import keras

    pooled = keras_model.get_layer(EMBEDDING_LAYER).output
    averaged = keras.layers.GlobalAveragePooling2D(name="embedding_gap")(pooled)
    normalised = keras.layers.UnitNormalization(name="embedding_l2")(averaged)
    two = keras.Model(keras_model.inputs, [keras_model.outputs[0], normalised], name="vgg16_emb")
    if int(normalised.shape[-1]) != EMBEDDING_DIM:
        raise ValueError(f"{EMBEDDING_LAYER} has {normalised.shape[-1]} channels, not 512")
    return two


def _named(outputs: Any) -> Any:
    """A two-output Keras result as `{"probabilities": ..., "embedding": ...}`; one output as is."""
    if isinstance(outputs, list | tuple):
        return dict(zip(OUTPUT_NAMES, outputs, strict=True))
    return outputs


def compiled_forward(keras_model: Any) -> Any:
    """A tf.function over the Keras model with a fixed (N, 224, 224, 3) float32 signature (a
    `with_embedding` model returns a dict of its two outputs)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, *INPUT_SHAPE], tf.float32)])
    def forward(batch: Any) -> Any:
        return _named(keras_model(batch, training=False))

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
        return _named(outputs)

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


def converter_source(weights: str, scratch: Path) -> tuple[Path, str]:
    """A self-contained SavedModel (weights in variables, `serving_default`) of `weights` for
    the converters (TFLite, OpenVINO), and the model's name. `weights` is `imagenet`, `random`,
    a Keras file, a SavedModel, or an fp32 artifact (no Keras model is built for the last two)."""
    import tensorflow as tf

    path = Path(weights)
    if path.is_dir() and not (path / MANIFEST).exists():
        return path, f"vgg16/savedmodel:{path.name}"
    if not path.is_dir():
        keras_model, name = build_keras_vgg16(weights)
        export_variables_saved_model(with_embedding(keras_model), scratch)
        return scratch, name
    manifest = Manifest.read(path)
    if manifest.format != "saved_model" or manifest.path is None:
        raise ValueError(f"{path}: not an fp32 artifact (format {manifest.format!r})")
    name = manifest.name
    if manifest.weights is None:  # the older layout is already self-contained
        return path / manifest.path, name
    loaded = tf.saved_model.load(str(path / manifest.path))
    module = tf.Module()
    arrays = mapped_weights(path, dict(manifest.weights))
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
        source, name = converter_source(weights, Path(tmp) / "saved_model")
        converter = tf.lite.TFLiteConverter.from_saved_model(
            str(source), signature_keys=["serving_default"]
        )
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        return bytes(converter.convert()), name


def tflite_embedding_dim(content: bytes) -> int | None:
    """The width of a LiteRT model's embedding output (the one that is not the 1000
    probabilities), or None when it has only the probabilities."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    widths = [int(d["shape"][-1]) for d in interpreter.get_output_details()]
    others = [w for w in widths if w != 1000]
    return others[0] if others else None


def embedding_entry() -> dict[str, Any]:
    """The manifest's `embedding` entry: what the model's second output is."""
    return {
        "name": EMBEDDING_NAME,
        "dim": EMBEDDING_DIM,
        "layer": EMBEDDING_LAYER,
        "pooling": "global average",
        "normalisation": "l2",
        "dtype": "float32",
        "output": OUTPUT_NAMES[1],
    }


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file. A build asks for some files' digests twice (an IR's entry, then
    every file's): the same file, unchanged since, is not read again."""
    stat = path.stat()
    return _sha256_of(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for chunk in iter(lambda: data.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def export_openvino(keras_model: Any, artifact: Path) -> dict[str, Any]:
    """Convert `keras_model` (the one whose weights just went into `weights.bin`) to an OpenVINO
    IR in `artifact/openvino/` (`model.xml` + `model.bin`, fp32, weights not compressed: the
    same numbers as the SavedModel). Returns the manifest's `openvino` entry; its `sha256` is
    the `.bin`'s, so a changed IR is a changed file."""
    ov = import_openvino()
    directory = artifact / OPENVINO_DIR
    with tempfile.TemporaryDirectory(prefix="autotagger-openvino-") as tmp:
        export_variables_saved_model(keras_model, Path(tmp))
        converted = ov.convert_model(tmp)
        ov.save_model(converted, str(directory / "model.xml"), compress_to_fp16=False)
    return _ir_entry(artifact, OPENVINO_DIR, "fp32")


def _ir_entry(artifact: Path, folder: str, precision: str) -> dict[str, Any]:
    """The manifest's entry for the IR written into `artifact/folder/`."""
    ov = import_openvino()
    binary = artifact / folder / "model.bin"
    return {
        "xml": f"{folder}/model.xml",
        "bin": f"{folder}/model.bin",
        "precision": precision,
        "bytes": binary.stat().st_size,
        "sha256": sha256_file(binary),
        "openvino": ov.get_version(),
    }


def export_openvino_fp16(artifact: Path) -> dict[str, Any]:
    """The fp32 IR again with its largest weight tensor stored as fp16 (`artifact/openvino-fp16/`):
    fc1's kernel, 411 of the IR's 553 MB, so 0.63x the bytes to ship and fetch. The CPU plugin
    decompresses it to fp32 at compile, so only the rounding of those weights to fp16 changes the
    numbers. Only that one: on the seeded weights (8 noise images) its rounding moved
    probabilities by 6.7e-5, fp16 everywhere by 6.8e-4, the convolutions' alone by 6.1e-4, fc1
    and fc2 by 1.2e-4, and the labels must stay within 1e-4 (`tests/integration/test_fp16.py`).
    Served by MODEL_PRECISION=fp16."""
    ov = import_openvino()
    from openvino._offline_transformations import compress_model_transformation

    graph = ov.Core().read_model(str(artifact / OPENVINO_DIR / "model.xml"))
    # the fp32 weights: the nodes outlive their place in the graph, and go back into it
    originals = {
        op.get_friendly_name(): op for op in graph.get_ops() if op.get_type_name() == "Constant"
    }
    # what save_model(compress_to_fp16=True) runs: every fp32 weight becomes fp16 + a Convert
    # marked as its decompression, which the CPU plugin folds at compile
    compress_model_transformation(graph)
    decompressions = [
        op
        for op in graph.get_ordered_ops()
        if op.get_type_name() == "Convert" and "decompression_0" in op.get_rt_info()
    ]
    largest = max(decompressions, key=lambda op: _elements(op.input_value(0).get_node()))
    for decompression in decompressions:
        if decompression is largest:
            continue
        fp32 = originals[decompression.get_friendly_name()].output(0)
        for target in list(decompression.output(0).get_target_inputs()):
            target.replace_source_output(fp32)
    directory = artifact / OPENVINO_FP16_DIR
    ov.save_model(graph, str(directory / "model.xml"), compress_to_fp16=False)
    return _ir_entry(artifact, OPENVINO_FP16_DIR, FP16_IR_PRECISION)


def _elements(node: Any) -> int:
    return int(np.prod(node.get_output_partial_shape(0).to_shape()))


def file_entries(artifact: Path) -> dict[str, dict[str, Any]]:
    """Every file of the artifact but the manifest, by relative path: its size and sha256, which
    a fetch from Cloud Storage checks before anything is served."""
    return {
        path.relative_to(artifact).as_posix(): {
            "bytes": path.stat().st_size,
            "sha256": sha256_file(path),
        }
        for path in sorted(artifact.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }
