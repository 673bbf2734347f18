"""Build the serving artifact that `MODEL_WEIGHTS=DIR` loads without building a Keras model.

    python infra/build_model.py --weights {imagenet|random|PATH} --out DIR [--precision fp32|int8]
        [--engine both|openvino]

fp32 (default) writes DIR/saved_model/ (a SavedModel holding only the graph: `serve(batch,
*weights)`, batch (N, 224, 224, 3) float32 preprocessed as Keras's VGG16 expects),
DIR/weights.bin (every weight once, float32, 64-byte aligned, memory-mapped at load),
DIR/openvino/model.xml + model.bin (the same weights as an OpenVINO IR, fp32, not compressed,
converted from the same Keras model; served by MODEL_ENGINE=openvino|auto without
TensorFlow), DIR/openvino-fp16/ (the same IR with fc1's kernel stored as fp16, 0.63x the
bytes: MODEL_PRECISION=fp16) and DIR/manifest.json, which records which weights went in
(`vgg16/random(seed=0)` for random ones), where each tensor lies in weights.bin, the IRs' files,
and `files`: every file's size and sha256 (a gs:// fetch verifies each one it reads).

`--engine openvino` (fp32) writes only the OpenVINO IR and the manifest: what `deploy.sh` ships
with MODEL_ENGINE=openvino, at half the disk and build time (tests that craft one artifact per
answer use it); the artifact then has no SavedModel and serves under MODEL_ENGINE=openvino|auto.

Every model has two outputs from one forward: `probabilities` (N, 1000) and `embedding`
(N, 512): block5_pool global-average-pooled and L2-normalised, float32; the manifest's
`embedding` entry (`{"name": "vgg16/block5_pool/gap/l2", "dim": 512, ...}`) says so. An
artifact without that entry (built before) serves labels only.

int8 writes DIR/model.tflite, VGG16 with dynamic-range quantization (int8 weights; activations
quantized on the fly) for LiteRT, served without TensorFlow; `manifest.json` says
`format: "tflite"`, `precision: "int8"`. PATH may then also be an fp32 artifact directory (no
Keras model is built). Check it against fp32 with `infra/compare_models.py` before using it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from autotagger import model as model_module
from autotagger.model import build as model_build

BUILD_ENGINES = ("both", "openvino")
INPUT = {"shape": [None, 224, 224, 3], "dtype": "float32", "preprocessing": "caffe"}


def _write_fp32(weights: str, directory: Path, engine: str = "both") -> dict[str, Any]:
    plain, name = model_build.build_keras_vgg16(weights)
    keras_model = model_build.with_embedding(plain)  # probabilities + embedding, one forward
    if engine == "openvino":
        return {
            "name": name,
            "format": "saved_model",
            "openvino": model_build.export_openvino(keras_model, directory),
            "embedding": model_build.embedding_entry(),
        }
    entry = model_build.export_saved_model(keras_model, directory / "saved_model")
    return {
        "name": name,
        "format": "saved_model",
        "path": "saved_model",
        "weights": entry,
        "openvino": model_build.export_openvino(keras_model, directory),
        "openvino_fp16": model_build.export_openvino_fp16(directory),
        "embedding": model_build.embedding_entry(),
    }


def _write_int8(weights: str, directory: Path) -> dict[str, Any]:
    content, name = model_build.convert_int8(weights)
    (directory / "model.tflite").write_bytes(content)
    written: dict[str, Any] = {
        "name": name + model_module.INT8_SUFFIX,
        "format": "tflite",
        "path": "model.tflite",
        "quantization": "dynamic-range (int8 weights, float activations)",
    }
    # int8 of an fp32 artifact built before the embedding existed has none: say only what is
    if model_build.tflite_embedding_dim(content) == model_module.EMBEDDING_DIM:
        written["embedding"] = model_build.embedding_entry()
    return written


def build(
    weights: str, out: Path, precision: str = "fp32", engine: str = "both"
) -> dict[str, object]:
    """Write the artifact for `weights` into `out` (replaced atomically); return the manifest."""
    if precision not in model_module.PRECISIONS:
        raise SystemExit(f"build_model: precision {precision!r} is not supported")
    if engine not in BUILD_ENGINES or (engine == "openvino" and precision != "fp32"):
        raise SystemExit(f"build_model: --engine {engine} is for fp32 only (both|openvino)")
    started = time.perf_counter()
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    written = (
        _write_fp32(weights, tmp, engine) if precision == "fp32" else _write_int8(weights, tmp)
    )
    served = written.pop("path", None)
    manifest: dict[str, object] = {
        "name": written.pop("name"),
        "architecture": "vgg16",
        "format": written.pop("format"),
        **({"path": served} if served else {}),
        "precision": precision,
        "input": INPUT,
        **written,
        "built_in_s": round(time.perf_counter() - started, 1),
    }
    weights_file = tmp / str(
        written.get("weights", {}).get("path")
        or manifest.get("path")
        or written["openvino"]["bin"]  # IR only: its weights are the model
    )
    manifest["sha256"] = model_build.sha256_file(
        weights_file
    )  # the served name carries its first 12 digits
    manifest["files"] = model_build.file_entries(tmp)  # what a gs:// fetch verifies
    (tmp / model_module.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--weights", required=True, help="imagenet | random | weights file | fp32 artifact (int8)"
    )
    parser.add_argument("--out", required=True, type=Path, help="artifact directory to write")
    parser.add_argument("--precision", default="fp32", choices=list(model_module.PRECISIONS))
    parser.add_argument(
        "--engine",
        default="both",
        choices=list(BUILD_ENGINES),
        help="fp32: both engines' models (default), or only the OpenVINO IR",
    )
    args = parser.parse_args(argv)
    manifest = build(args.weights, args.out.resolve(), args.precision, args.engine)
    summary = {
        k: v
        for k, v in manifest.items()
        if k not in ("weights", "openvino", "openvino_fp16", "files")
    }
    print(json.dumps({"out": str(args.out), **summary}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
