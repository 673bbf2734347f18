"""The fp16 OpenVINO IR (MODEL_PRECISION=fp16): fc1's kernel, the largest weight tensor, stored
as fp16 (0.63x the bytes) and decompressed to fp32 at compile. It must keep the labels: top-5
identical and probabilities within 1e-4 of the fp32 IR, on the seeded weights and on
crafted-distribution artifacts (zero last kernel, log-probabilities as the bias); its embeddings
are the fp32 model's. It is offered, not the default: it is OpenVINO's alone, and the default
serves one model under either engine."""

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


def test_the_artifact_holds_an_fp16_ir_with_only_the_largest_weight_in_fp16(
    model_dir: Path,
) -> None:
    manifest = json.loads((model_dir / "manifest.json").read_text())
    fp32, fp16 = manifest["openvino"], manifest["openvino_fp16"]
    assert fp16["bytes"] == (model_dir / fp16["bin"]).stat().st_size
    assert manifest["files"][fp16["bin"]]["sha256"] == fp16["sha256"]
    ov = engines.import_openvino()
    graph = ov.Core().read_model(str(model_dir / fp16["xml"]))
    weights = [
        op
        for op in graph.get_ordered_ops()
        if op.get_type_name() == "Constant" and np.prod(op.get_output_shape(0)) > 1000
    ]
    halves = [op for op in weights if op.get_output_element_type(0) == ov.Type.f16]
    assert [sorted(op.get_output_shape(0)) for op in halves] == [[4096, 25088]]  # fc1's kernel
    largest = max(np.prod(op.get_output_shape(0)) for op in weights)
    assert np.prod(halves[0].get_output_shape(0)) == largest
    assert fp32["bytes"] - fp16["bytes"] == largest * 2  # two of its four bytes a weight saved
    assert 0.6 < fp16["bytes"] / fp32["bytes"] < 0.66


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
def test_fp16_keeps_the_labels(model_dir: Path, tmp_path: Path) -> None:
    batch = _inputs()
    fp32_model = model._load(str(model_dir), "fp32", engine="openvino")
    fp16_model = model._load(str(model_dir), "fp16", engine="openvino")
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert fp16_model.name == model.artifact_name(manifest) + model.FP16_SUFFIX
    fp32_out, fp16_out = model.infer(fp32_model, batch), model.infer(fp16_model, batch)
    fp32, fp16 = fp32_out.probabilities, fp16_out.probabilities
    # fc1 comes after the embedding's pool: embeddings, and the vocabulary's input, are unchanged.
    assert fp32_out.embeddings is not None and fp16_out.embeddings is not None
    np.testing.assert_array_equal(fp32_out.embeddings, fp16_out.embeddings)
    del fp32_model, fp16_model
    seeded_top5, seeded_diff = _compare(fp32, fp16)
    assert seeded_top5 and seeded_diff <= PARITY_ATOL, seeded_diff

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
        assert top5 and diff <= PARITY_ATOL, (name, diff)

    # Offered, not adopted: the default is one model under either engine, and fp16 is OpenVINO's.
    assert config.load_settings({"MODEL_WEIGHTS": str(model_dir)}).model_precision == "fp32"
