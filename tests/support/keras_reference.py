"""Keras's own VGG16 on the project's seeded weights: every parity test's reference, computed once
in one fresh process and cached.

The parity tests compare what we serve with what Keras answers. Building the Keras model in the
pytest process would keep a third VGG16 (and TensorFlow's allocations) alive beside the engines
under test; a child process gives all of it back when it exits. One child answers every parity
input (tests/support/parity_inputs.py) and writes the artifact as it was built before the
embedding, so Keras's import and the VGG16 build are paid once, not once per test. The answers are
cached under `.cache/keras-reference/`, keyed by the inputs and the code that makes them; pytest
workers share them through a file lock.

    python -m tests.support.keras_reference FOLDER   (reads FOLDER/inputs, writes the answers)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from infra import processes
from tests.support import parity_inputs

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "keras-reference"
IMAGE_GROUPS = ("parity", "engines")
_SOURCES = (Path(__file__), ROOT / "function" / "autotagger" / "model" / "build.py")


@dataclass(frozen=True)
class Reference:
    """Keras's answers for a batch."""

    probabilities: np.ndarray  # (n, 1000)
    embeddings: np.ndarray  # (n, 512) float64: block5_pool averaged over space, L2-normalised
    pixels: np.ndarray | None  # (n, 224, 224, 3) float32 from Keras's load_img, for images


@dataclass(frozen=True)
class Answers:
    """Keras's answers to every input of parity_inputs."""

    parity: Reference  # parity_images(), through Keras's whole pipeline
    engines: Reference  # engine_images(), likewise
    embedding: Reference  # embedding_pictures()'s batch, already preprocessed by us
    preprocessed: np.ndarray  # preprocess_input(preprocess_pixels())
    decoded: list[list[tuple[str, str, float]]]  # decode_predictions(decode_probabilities(), 5)
    old_artifact: Path  # a single-output SavedModel and a manifest without `embedding`


def _write_inputs(folder: Path) -> None:
    for group, images in (
        ("parity", parity_inputs.parity_images()),
        ("engines", parity_inputs.engine_images()),
    ):
        (folder / "images" / group).mkdir(parents=True)
        for i, data in enumerate(images):
            (folder / "images" / group / f"{i:03d}.png").write_bytes(data)
    np.save(folder / "embedding_batch.npy", parity_inputs.embedding_pictures()[1])
    np.save(folder / "preprocess_pixels.npy", parity_inputs.preprocess_pixels())
    np.save(folder / "decode_probabilities.npy", parity_inputs.decode_probabilities())


def _key(inputs: Path) -> str:
    digest = hashlib.sha256()
    for path in [*sorted(p for p in inputs.rglob("*") if p.is_file()), *_SOURCES]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def answers() -> Answers:
    """Keras's answers (computed on first use in a child process, then read from the cache)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = CACHE / f".inputs-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    _write_inputs(staging / "inputs")
    folder = CACHE / _key(staging / "inputs")
    try:
        if not (folder / "answers.npz").exists():
            with processes.file_lock(CACHE / f"{folder.name}.lock"):  # another worker: wait
                if not (folder / "answers.npz").exists():
                    subprocess.run(
                        [sys.executable, "-m", "tests.support.keras_reference", str(staging)],
                        cwd=ROOT,
                        check=True,
                        stdout=subprocess.DEVNULL,
                    )
                    shutil.rmtree(folder, ignore_errors=True)
                    staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _read(folder)


def _read(folder: Path) -> Answers:
    with np.load(folder / "answers.npz") as saved:

        def reference(group: str) -> Reference:
            pixels = saved[f"{group}_pixels"] if f"{group}_pixels" in saved.files else None
            return Reference(saved[f"{group}_probabilities"], saved[f"{group}_embeddings"], pixels)

        decoded = json.loads((folder / "decoded.json").read_text())
        return Answers(
            parity=reference("parity"),
            engines=reference("engines"),
            embedding=reference("embedding"),
            preprocessed=saved["preprocessed"],
            decoded=[[(w, label, float(s)) for w, label, s in row] for row in decoded],
            old_artifact=folder / "old-artifact",
        )


def main(folder: Path) -> None:
    """In the child: Keras's model, pipeline and helpers on everything in `folder/inputs`."""
    import keras
    from keras.applications.vgg16 import preprocess_input
    from keras.src.applications import imagenet_utils
    from keras.utils import img_to_array, load_img

    from autotagger import model
    from autotagger.model import build

    inputs = folder / "inputs"
    plain, name = build.build_keras_vgg16("random")
    block5 = keras.Model(plain.inputs, plain.get_layer("block5_pool").output)

    def answer(group: str, batch: np.ndarray) -> dict[str, np.ndarray]:
        pooled = block5.predict(batch, verbose=0).astype(np.float64).mean(axis=(1, 2))
        return {
            f"{group}_probabilities": plain.predict(batch, verbose=0),
            f"{group}_embeddings": pooled / np.linalg.norm(pooled, axis=1, keepdims=True),
        }

    out: dict[str, Any] = {}
    for group in IMAGE_GROUPS:
        pixels = np.stack(
            [
                img_to_array(load_img(path, target_size=(224, 224), interpolation="bilinear"))
                for path in sorted((inputs / "images" / group).iterdir())
            ]
        )
        out |= {f"{group}_pixels": pixels, **answer(group, preprocess_input(pixels.copy()))}
    out |= answer("embedding", np.load(inputs / "embedding_batch.npy"))
    pixels = np.load(inputs / "preprocess_pixels.npy")
    out["preprocessed"] = preprocess_input(pixels.astype(np.float32))
    # Keras would download this very file; hand it our shipped copy instead (no network).
    imagenet_utils.CLASS_INDEX = json.loads(model.CLASS_INDEX_PATH.read_text())
    decoded = imagenet_utils.decode_predictions(np.load(inputs / "decode_probabilities.npy"), 5)
    (folder / "decoded.json").write_text(
        json.dumps([[[w, label, float(s)] for w, label, s in row] for row in decoded])
    )
    np.savez(folder / "answers.npz", **out)

    old = folder / "old-artifact"
    build.export_variables_saved_model(plain, old / "saved_model")
    manifest = {"name": name, "format": "saved_model", "path": "saved_model"}
    (old / "manifest.json").write_text(json.dumps(manifest))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
