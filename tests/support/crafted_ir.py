"""A crafted-distribution OpenVINO IR: the artifact's VGG16 with a zero last kernel and the given
log-probabilities as its bias, so it answers exactly that distribution for every image (what a
weights file crafted that way converts to), written as an artifact folder with both IRs (fp32 and
build_model's fp16 one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from autotagger.model import build, engines


def answer_exactly(graph: Any, log_probabilities: np.ndarray) -> None:
    """Make the OpenVINO `graph` (VGG16's IR) answer softmax(log_probabilities) for every input:
    its last Softmax's input becomes `MatMul(x, zero kernel) + log_probabilities`."""
    engines.import_openvino()  # first: without its telemetry
    from openvino import opset13 as ops

    softmax = [op for op in graph.get_ordered_ops() if op.get_type_name() == "Softmax"][-1]
    logits = softmax.input_value(0).get_node()
    if logits.get_type_name() == "Add":  # a bias the converter kept: drop it, ours replaces it
        logits = next(v.get_node() for v in logits.input_values() if v.get_node() is not None)
    assert logits.get_type_name() == "MatMul", logits.get_type_name()
    kernel = logits.input_value(1).get_node()
    shape = kernel.get_output_partial_shape(0).to_shape()
    logits.input(1).replace_source_output(ops.constant(np.zeros(shape, np.float32)).output(0))
    bias = ops.constant(np.asarray(log_probabilities, np.float32)[None, :])
    softmax.input(0).replace_source_output(ops.add(logits.output(0), bias).output(0))


def crafted_artifact(source: Path, log_probabilities: np.ndarray, out: Path) -> Path:
    """`out/openvino/` and `out/openvino-fp16/` from `source`'s fp32 IR; returns `out`."""
    ov = engines.import_openvino()
    graph = ov.Core().read_model(str(source / build.OPENVINO_DIR / "model.xml"))
    answer_exactly(graph, log_probabilities)
    (out / build.OPENVINO_DIR).mkdir(parents=True, exist_ok=True)
    xml = out / build.OPENVINO_DIR / "model.xml"
    ov.save_model(graph, str(xml), compress_to_fp16=False)
    build.export_openvino_fp16(out)
    return out


def distributions(seed: int = 5) -> list[tuple[str, np.ndarray]]:
    """Crafted distributions for parity checks: one class at 1/e (where rounding log p to fp16
    moves the probability most: p·|log p| is largest), a peaked and a flat Dirichlet draw."""
    rng = np.random.default_rng(seed)
    out = []
    rest = rng.dirichlet(np.full(999, 0.1)) * (1 - np.exp(-1))
    out.append(("one class at 1/e", np.concatenate([[np.exp(-1)], rest])))
    for name, alpha in (("peaked (Dirichlet 0.05)", 0.05), ("flat (Dirichlet 1)", 1.0)):
        out.append((name, rng.dirichlet(np.full(1000, alpha))))
    return [(name, np.maximum(p, 1e-12) / np.maximum(p, 1e-12).sum()) for name, p in out]


def noise_images(count: int, seed: int = 11) -> np.ndarray:
    """Uniform-noise images (uint8 RGB, 224x224): inputs far from photos, for parity checks."""
    return np.random.default_rng(seed).integers(0, 256, (count, 224, 224, 3), dtype=np.uint8)
