"""Chosen answers of the model, and VGG16 artifacts that give exactly them for every image.

A distribution names a few classes' probabilities; the rest of the mass is spread evenly over the
other classes, so every class keeps a little (as a real softmax does). The base artifact is built
with `infra/build_model.py` from a `.weights.h5` whose weights are all zero except the last Dense
layer's bias, which holds log-probabilities (of the uniform distribution): every activation before
it is zero, so the logits are the bias and the softmax is the distribution, whatever the image.
`artifact(p)` for any other distribution is that IR with its last bias replaced by log p
(`crafted_ir.answer_exactly`): the same graph and weights a crafted weights file converts to, in
~3 s instead of a ~25 s Keras build and conversion. Artifacts are cached under `.cache/models/`
keyed by the distribution's hash; only the OpenVINO IR is built (`--engine openvino`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from autotagger import model
from infra import processes

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "models"
CLASSES = 1000


def _index(label: str) -> int:
    (found,) = [i for i, (_, name) in enumerate(model.class_index()) if name == label]
    return found


def _wnid_index(wnid: str) -> int:
    (found,) = [i for i, (w, _) in enumerate(model.class_index()) if w == wnid]
    return found


def dog_breeds() -> list[int]:
    """The 118 classes below WordNet's dog (indices 151-268 in Keras's class index)."""
    return list(range(151, 269))


def spread(chosen: dict[int, float]) -> np.ndarray:
    """`chosen` probabilities; what they leave, spread evenly over every other class."""
    probabilities = np.zeros(CLASSES, dtype=np.float64)
    for index, value in chosen.items():
        probabilities[index] = value
    rest = [i for i in range(CLASSES) if i not in chosen]
    probabilities[rest] = (1.0 - sum(chosen.values())) / len(rest)
    return probabilities


def distributions() -> dict[str, np.ndarray]:
    """The acceptance's answers, by name."""
    breeds = dog_breeds()
    return {
        # 86% over the 118 breeds, 0.73% each: no breed above 1%
        "dog": spread(dict.fromkeys(breeds, 0.86 / len(breeds))),
        "cat": spread(
            {_index("tabby"): 0.40, _index("tiger_cat"): 0.25, _index("Persian_cat"): 0.20}
        ),
        "car": spread(
            {_index("sports_car"): 0.40, _index("convertible"): 0.30, _index("cab"): 0.20}
        ),
        "tableware": spread({_index("plate"): 0.30, _index("menu"): 0.30, _index("cup"): 0.30}),
        "crane_bird": spread({_wnid_index("n02012849"): 0.90}),  # index 134
        "crane_machine": spread({_wnid_index("n03126707"): 0.90}),  # index 517
    }


def digest(probabilities: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(probabilities, dtype="<f8").tobytes()).hexdigest()[:16]


def _write_weights(probabilities: np.ndarray, path: Path) -> None:
    """VGG16's weights, all zero but the last bias = log(probabilities)."""
    import keras

    vgg = keras.applications.VGG16(weights=None)
    weights = [np.zeros(w.shape, dtype=np.float32) for w in vgg.get_weights()]
    weights[-1] = np.log(probabilities).astype(np.float32)
    vgg.set_weights(weights)
    vgg.save_weights(str(path))
    del vgg
    keras.backend.clear_session()


def uniform() -> np.ndarray:
    """The base artifact's answer: every class 1/1000."""
    return spread({})


def artifact(probabilities: np.ndarray) -> Path:
    """The IR-only artifact answering `probabilities` for every image (built on first use)."""
    directory = CACHE / f"vgg16-dist-{digest(probabilities)}"
    manifest = directory / "manifest.json"

    def built() -> bool:
        return manifest.exists() and "openvino" in json.loads(manifest.read_text())

    if built():
        return directory
    with processes.file_lock(CACHE / f"{directory.name}.lock"):  # another worker: wait for it
        if not built():
            if digest(probabilities) == digest(uniform()):
                _build(probabilities, directory)
            else:
                _rebias(artifact(uniform()), probabilities, directory)
    return directory


def acceptance_artifacts() -> dict[str, Path]:
    """The artifact of every acceptance distribution, by name."""
    return {name: artifact(p) for name, p in distributions().items()}


def _rebias(base: Path, probabilities: np.ndarray, directory: Path) -> None:
    """`base`'s IR answering `probabilities` instead, in a fresh process (the
    IR read and written is ~1 GB of heap, given back when it exits)."""
    with tempfile.TemporaryDirectory(prefix="autotagger-dist-") as tmp:
        vector = Path(tmp) / "p.npy"
        np.save(vector, probabilities)
        script = (
            "import sys, numpy as np; from pathlib import Path;"
            "from tests.support.distributions import write_rebiased;"
            "write_rebiased(Path(sys.argv[1]), np.load(sys.argv[2]), Path(sys.argv[3]))"
        )
        subprocess.run(
            [sys.executable, "-c", script, str(base), str(vector), str(directory)],
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )


def write_rebiased(base: Path, probabilities: np.ndarray, directory: Path) -> None:
    """Write the artifact: `base`'s IR answering `probabilities` (tests/support/crafted_ir.py)."""
    from autotagger.model import build, engines
    from tests.support.crafted_ir import answer_exactly

    ov = engines.import_openvino()
    graph = ov.Core().read_model(str(base / build.OPENVINO_DIR / "model.xml"))
    answer_exactly(graph, np.log(probabilities))
    staging = directory.with_name(f".{directory.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / build.OPENVINO_DIR).mkdir(parents=True)
    ov.save_model(graph, str(staging / build.OPENVINO_DIR / "model.xml"), compress_to_fp16=False)
    manifest = json.loads((base / model.MANIFEST).read_text())
    binary = staging / build.OPENVINO_DIR / "model.bin"
    sha256 = build.sha256_file(binary)
    manifest["name"] = f"vgg16/dist-{digest(probabilities)} (bias of {manifest['name']})"
    manifest["openvino"].update(bytes=binary.stat().st_size, sha256=sha256)
    manifest["sha256"] = sha256
    manifest["files"] = build.file_entries(staging)
    manifest.pop("built_in_s", None)
    (staging / model.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)


def _build(probabilities: np.ndarray, directory: Path) -> None:
    """Keras writes the weights file in a fresh process, then build_model.py converts it."""
    with tempfile.TemporaryDirectory(prefix="autotagger-dist-") as tmp:
        weights = Path(tmp) / f"dist-{digest(probabilities)}.weights.h5"
        # A fresh process: Keras and the converter are released with it.
        script = (
            "import sys, numpy as np;"
            "from tests.support.distributions import _write_weights; from pathlib import Path;"
            "_write_weights(np.load(sys.argv[1]), Path(sys.argv[2]))"
        )
        vector = Path(tmp) / "p.npy"
        np.save(vector, probabilities)
        subprocess.run(
            [
                sys.executable,
                "-c",
                script,
                str(vector),
                str(weights),
            ],
            cwd=ROOT,  # `tests` is importable from the repository's root
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "infra" / "build_model.py"),
                "--weights",
                str(weights),
                "--out",
                str(directory),
                "--engine",
                "openvino",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
