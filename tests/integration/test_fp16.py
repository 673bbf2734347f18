"""The fp16-compressed OpenVINO IR (MODEL_PRECISION=fp16): half the bytes, weights rounded to
fp16 and decompressed to fp32 at compile. It becomes the default only if it keeps the labels:
top-5 identical and probabilities within 1e-4 of the fp32 IR, on the seeded weights and on
crafted-distribution artifacts (zero last kernel, log-probabilities as the bias)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autotagger import config, model
from autotagger.media import imaging
from autotagger.model import engines
from tests.support.crafted_ir import crafted_artifact, distributions, noise_images
from tests.support.helpers import image_bytes

PARITY_ATOL = 1e-4


def _inputs() -> np.ndarray:
    photos = [imaging.load_rgb(image_bytes((w, h)), 10**8) for w, h in ((640, 480), (300, 500))]
    return imaging.preprocess(np.concatenate([np.stack(photos), noise_images(4)]))


def _compare(fp32: np.ndarray, fp16: np.ndarray) -> tuple[bool, float]:
    top5 = all(
        list(np.argsort(-a)[:5]) == list(np.argsort(-b)[:5])
        for a, b in zip(fp32, fp16, strict=True)
    )
    return top5, float(np.abs(fp32 - fp16).max())


def test_the_artifact_holds_an_fp16_ir_of_half_the_bytes(model_dir: Path) -> None:
    manifest = json.loads((model_dir / "manifest.json").read_text())
    fp32, fp16 = manifest["openvino"], manifest["openvino_fp16"]
    assert fp16["bytes"] == (model_dir / fp16["bin"]).stat().st_size
    assert 0.49 < fp16["bytes"] / fp32["bytes"] < 0.51
    assert manifest["files"][fp16["bin"]]["sha256"] == fp16["sha256"]


def test_fp16_settings(model_dir: Path, tmp_path: Path) -> None:
    settings = config.load_settings({"MODEL_WEIGHTS": str(model_dir), "MODEL_PRECISION": "fp16"})
    assert settings.model_precision == "fp16"
    with pytest.raises(config.ConfigError, match="not for MODEL_ENGINE=tensorflow"):
        config.load_settings(
            {
                "MODEL_WEIGHTS": str(model_dir),
                "MODEL_PRECISION": "fp16",
                "MODEL_ENGINE": "tensorflow",
            }
        )
    (tmp_path / "manifest.json").write_text('{"name": "x", "format": "saved_model"}')
    with pytest.raises(config.ConfigError, match="an artifact with an fp16 IR"):
        config.load_settings({"MODEL_WEIGHTS": str(tmp_path), "MODEL_PRECISION": "fp16"})
    assert config.load_settings({"MODEL_WEIGHTS": str(model_dir)}).model_precision == "fp32"


@pytest.mark.slow
def test_fp16_parity_decides_the_default(model_dir: Path, tmp_path: Path) -> None:
    batch = _inputs()
    fp32_model = model._load(str(model_dir), "fp32", engine="openvino")
    fp16_model = model._load(str(model_dir), "fp16", engine="openvino")
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert fp16_model.name == model.artifact_name(manifest) + model.FP16_SUFFIX
    fp32 = fp32_model.predict(batch)
    fp16 = fp16_model.predict(batch)
    del fp32_model, fp16_model
    seeded_top5, seeded_diff = _compare(fp32, fp16)
    # Whatever the verdict, the option stays close: same top-1, probabilities within 1e-3.
    assert (fp32.argmax(1) == fp16.argmax(1)).all()
    assert seeded_diff < 1e-3

    crafted_ok = True
    for i, (name, p) in enumerate(distributions()):
        artifact = crafted_artifact(model_dir, np.log(p), tmp_path / str(i))
        exact = np.exp(np.log(p).astype(np.float32))
        exact /= exact.sum()
        outputs = {}
        for sub in ("openvino", "openvino-fp16"):
            crafted = engines.load_openvino(artifact / sub / "model.xml", name)
            outputs[sub] = crafted.predict(batch[:2])
            del crafted
        np.testing.assert_allclose(outputs["openvino"], np.stack([exact] * 2), atol=1e-6)
        top5, diff = _compare(outputs["openvino"], outputs["openvino-fp16"])
        crafted_ok = crafted_ok and top5 and diff <= PARITY_ATOL

    parity = seeded_top5 and seeded_diff <= PARITY_ATOL and crafted_ok
    default = config.load_settings({"MODEL_WEIGHTS": str(model_dir)}).model_precision
    assert default == ("fp16" if parity else "fp32"), (seeded_top5, seeded_diff, crafted_ok)
