"""Build the serving artifact that `MODEL_WEIGHTS=DIR` loads without building a Keras model.

    python infra/build_model.py --weights {imagenet|random|PATH} --out DIR [--precision fp32]

Writes DIR/saved_model/ (a SavedModel with one `serve` endpoint taking
(N, 224, 224, 3) float32, preprocessed as Keras's VGG16 expects) and DIR/manifest.json, which
records which weights went in (`vgg16/random(seed=0)` for random ones).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "function"))

from autotagger import model as model_module


def build(weights: str, out: Path, precision: str = "fp32") -> dict[str, object]:
    """Write the artifact for `weights` into `out` (replaced atomically); return the manifest."""
    if precision != "fp32":
        raise SystemExit(f"build_model: precision {precision!r} is not supported yet")
    started = time.perf_counter()
    keras_model, name = model_module.build_keras_vgg16(weights)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model_module.export_saved_model(keras_model, tmp / "saved_model")
    manifest: dict[str, object] = {
        "name": name,
        "architecture": "vgg16",
        "format": "saved_model",
        "path": "saved_model",
        "precision": precision,
        "input": {"shape": [None, 224, 224, 3], "dtype": "float32", "preprocessing": "caffe"},
        "built_in_s": round(time.perf_counter() - started, 1),
    }
    (tmp / model_module.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--weights", required=True, help="imagenet | random | path to weights")
    parser.add_argument("--out", required=True, type=Path, help="artifact directory to write")
    parser.add_argument("--precision", default="fp32", choices=["fp32"])
    args = parser.parse_args(argv)
    manifest = build(args.weights, args.out.resolve(), args.precision)
    print(json.dumps({"out": str(args.out), **manifest}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
