"""The fp16 IR (fc1's kernel stored as fp16) against the fp32 one, in a subprocess (`python -m
infra.bench --part fp16`): bytes, parity on seeded weights and on crafted distributions, load and
forward time."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from infra.bench import inputs


def part(weights: str, repeat: int) -> dict[str, Any]:
    """`part_fp16` on photos and drawings as served, and two noise images."""
    from autotagger.media import imaging
    from tests.support.crafted_ir import noise_images

    pixels = [imaging.load_rgb(data, 10**9) for _, data in inputs.resize_images()[:6]]
    batch = imaging.preprocess(np.concatenate([np.stack(pixels), noise_images(2)]))
    return part_fp16(weights, batch, repeat)


def part_fp16(weights: str, batch: np.ndarray, repeat: int) -> dict[str, Any]:
    """The fp16 IR against the fp32 one: bytes, parity (seeded weights on `batch`;
    crafted distributions), batch-1 forward and load time."""
    from autotagger import model
    from autotagger.model import engines
    from tests.support.crafted_ir import crafted_artifact, distributions

    directory = Path(weights)
    manifest = json.loads((directory / "manifest.json").read_text())
    out: dict[str, Any] = {
        "fp32_bytes": manifest["openvino"]["bytes"],
        "fp16_bytes": manifest["openvino_fp16"]["bytes"],
    }
    outputs, timing = {}, {}
    for precision in ("fp32", "fp16"):
        started = time.perf_counter()
        classifier = model._load(weights, precision, engine="openvino")
        load_s = time.perf_counter() - started
        outputs[precision] = classifier.predict(batch)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            classifier.predict(batch[:1])
            times.append(time.perf_counter() - started)
        timing[precision] = {"load_s": load_s, "forward_ms": statistics.median(times) * 1e3}
        del classifier
    out["timing"] = timing
    out["seeded"] = _parity(outputs["fp32"], outputs["fp16"])
    out["crafted"] = {}
    with tempfile.TemporaryDirectory(prefix="autotagger-crafted-") as tmp:
        for i, (name, p) in enumerate(distributions()):
            artifact = crafted_artifact(directory, np.log(p), Path(tmp) / str(i))
            pair = {}
            for sub in ("openvino", "openvino-fp16"):
                crafted = engines.load_openvino(artifact / sub / "model.xml", name)
                pair[sub] = crafted.predict(batch[:2])
                del crafted
            out["crafted"][name] = {
                "top_p": float(p.max()),
                **_parity(pair["openvino"], pair["openvino-fp16"]),
            }
    return out


def _parity(fp32: np.ndarray, fp16: np.ndarray) -> dict[str, Any]:
    top5 = [
        list(np.argsort(-a)[:5]) == list(np.argsort(-b)[:5])
        for a, b in zip(fp32, fp16, strict=True)
    ]
    return {
        "images": len(fp32),
        "top5_identical": int(sum(top5)),
        "max_abs_diff": float(np.abs(fp32 - fp16).max()),
    }
