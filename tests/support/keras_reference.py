"""Keras's own VGG16 on the project's seeded weights, run in a fresh process.

The parity tests compare what we serve with what Keras answers. Building the Keras model in the
pytest process would keep a third VGG16 (and TensorFlow's allocations) alive beside the engines
under test; a child process gives all of it back when it exits.

    python -m tests.support.keras_reference batch IN.npy OUT.npz
    python -m tests.support.keras_reference images IN_DIR OUT.npz
    python -m tests.support.keras_reference old-artifact OUT_DIR
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Reference:
    """Keras's answers for a batch."""

    probabilities: np.ndarray  # (n, 1000)
    embeddings: np.ndarray  # (n, 512) float64: block5_pool averaged over space, L2-normalised
    pixels: np.ndarray | None  # (n, 224, 224, 3) float32 from Keras's load_img, for images


def _child(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "tests.support.keras_reference", *args],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _read(out: Path) -> Reference:
    with np.load(out) as saved:
        pixels = saved["pixels"] if "pixels" in saved.files else None
        return Reference(saved["probabilities"], saved["embeddings"], pixels)


def of_batch(batch: np.ndarray) -> Reference:
    """Keras's model on an already preprocessed batch."""
    with tempfile.TemporaryDirectory(prefix="autotagger-keras-") as tmp:
        np.save(Path(tmp) / "batch.npy", batch)
        _child("batch", str(Path(tmp) / "batch.npy"), str(Path(tmp) / "out.npz"))
        return _read(Path(tmp) / "out.npz")


def of_images(images: list[bytes]) -> Reference:
    """Keras's whole pipeline on image files: `load_img(..., interpolation="bilinear")`,
    `preprocess_input`, the model."""
    with tempfile.TemporaryDirectory(prefix="autotagger-keras-") as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for i, data in enumerate(images):
            (folder / f"{i:03d}.png").write_bytes(data)
        _child("images", str(folder), str(Path(tmp) / "out.npz"))
        return _read(Path(tmp) / "out.npz")


def old_artifact(out: Path) -> str:
    """An artifact as built before the embedding: a single-output SavedModel and a manifest
    without `embedding`; returns the model's name."""
    _child("old-artifact", str(out))
    return str(json.loads((out / "manifest.json").read_text())["name"])


def _answers(batch: np.ndarray) -> dict[str, Any]:
    import keras

    from autotagger.model import build

    plain, _ = build.build_keras_vgg16("random")
    block5 = keras.Model(plain.inputs, plain.get_layer("block5_pool").output)
    pooled = block5.predict(batch, verbose=0).astype(np.float64).mean(axis=(1, 2))
    return {
        "probabilities": plain.predict(batch, verbose=0),
        "embeddings": pooled / np.linalg.norm(pooled, axis=1, keepdims=True),
    }


def main(argv: list[str]) -> None:
    command, source, out = argv[0], Path(argv[1]), Path(argv[-1])
    if command == "batch":
        np.savez(out, **_answers(np.load(source)))
    elif command == "images":
        from keras.applications.vgg16 import preprocess_input
        from keras.utils import img_to_array, load_img

        pixels = np.stack(
            [
                img_to_array(load_img(path, target_size=(224, 224), interpolation="bilinear"))
                for path in sorted(source.iterdir())
            ]
        )
        np.savez(out, pixels=pixels, **_answers(preprocess_input(pixels.copy())))
    elif command == "old-artifact":
        from autotagger.model import build

        plain, name = build.build_keras_vgg16("random")
        build.export_variables_saved_model(plain, source / "saved_model")
        manifest = {"name": name, "format": "saved_model", "path": "saved_model"}
        (source / "manifest.json").write_text(json.dumps(manifest))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
