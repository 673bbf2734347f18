"""The bare references, each run in its own subprocess (`python -m infra.bench --part …`): the
model's forward per engine, the fp32 floor, OpenVINO's configurations, and OpenVINO's labels
against TensorFlow's."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from infra.bench import inputs

# forward references: (int8 artifact?, precision, engine)
FORWARDS = {
    "tensorflow": (False, "fp32", "tensorflow"),
    "openvino": (False, "fp32", "openvino"),
    "int8": (True, "int8", "auto"),
}
VGG16_GFLOP = 30.95  # one 224x224 forward: 15.47 G multiply-adds (conv + dense), 2 FLOP each


def part_forward(weights: str, precision: str, repeat: int, engine: str) -> dict[str, Any]:
    from autotagger import model

    started = time.perf_counter()
    classifier = model.get_model(weights, precision, engine=engine)
    load_s = time.perf_counter() - started
    batch = np.random.default_rng(0).uniform(-120, 130, (8, 224, 224, 3)).astype(np.float32)
    classifier.predict(batch[:1])
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        classifier.predict(batch[:1])
        times.append(time.perf_counter() - started)
    per_image = {}
    for size in (4, 8):
        classifier.predict(batch[:size])
        started = time.perf_counter()
        classifier.predict(batch[:size])
        per_image[size] = (time.perf_counter() - started) / size * 1e3
    return {
        "engine": getattr(classifier, "engine", "?"),
        "load_s": load_s,
        "forward_ms": statistics.median(times) * 1e3,
        "forward_ms_all": [t * 1e3 for t in times],
        "per_image_ms_batch": per_image,
        "tensorflow_imported": "tensorflow" in sys.modules,
        "rss_mb": psutil.Process().memory_info().rss / 2**20,
    }


def part_floor() -> dict[str, Any]:
    """The fp32 floor: the best GFLOP/s a large fp32 matmul reaches here (NumPy's BLAS and
    TensorFlow's oneDNN, every core), and what VGG16's 30.95 GFLOP cost at that rate."""
    n = 4096
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)

    def rate(matmul: Callable[[], Any]) -> float:
        matmul()
        best = float("inf")
        for _ in range(6):
            started = time.perf_counter()
            matmul()
            best = min(best, time.perf_counter() - started)
        return 2 * n**3 / best / 1e9

    rates = {"numpy": rate(lambda: a @ b)}
    import tensorflow as tf

    ta, tb = tf.constant(a), tf.constant(b)
    rates["tensorflow"] = rate(lambda: tf.matmul(ta, tb).numpy())
    gflops = max(rates.values())
    return {"gflops": rates, "best_gflops": gflops, "floor_ms": VGG16_GFLOP / gflops * 1e3}


DENSE_GFLOP = 2 * (25088 * 4096 + 4096 * 4096 + 4096 * 1000) / 1e9  # fc1, fc2, predictions


def part_layers(weights: str, repeat: int) -> dict[str, Any]:
    """Where OpenVINO's forward goes, from its own per-layer counters (`PERF_COUNT`), at batch 1
    and 8: milliseconds per image by layer type, and the fully-connected weights' bytes. At
    batch 1 those layers are 0.8% of the FLOPs but read every one of their 494 MB of weights
    for one image: memory, not arithmetic, which a matmul floor does not count."""
    from autotagger.model import build, engines
    from autotagger.model.spec import INPUT_SHAPE

    ov = engines.import_openvino()
    core = ov.Core()
    graph = core.read_model(str(Path(weights) / build.OPENVINO_DIR / "model.xml"))
    dense_bytes = sum(
        int(np.prod(op.input_value(1).get_node().get_output_shape(0))) * 4
        for op in graph.get_ordered_ops()
        if op.get_type_name() == "MatMul"
        and op.input_value(1).get_node().get_type_name() == "Constant"
    )
    image = np.random.default_rng(1).uniform(-120, 130, (8, 224, 224, 3)).astype(np.float32)
    out: dict[str, Any] = {"dense_weights_mb": dense_bytes / 1e6}
    for size in (1, 8):
        # A static batch: with the dynamic one, the counters cover half of a batch-8 forward.
        graph.reshape([size, *INPUT_SHAPE])
        compiled = core.compile_model(
            graph,
            "CPU",
            {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32", "PERF_COUNT": True},
        )
        request = compiled.create_infer_request()
        for _ in range(2):  # planned, weights packed
            request.infer({0: image[:size]})
        totals: list[float] = []
        by_type: dict[str, list[float]] = {}
        for _ in range(repeat):
            started = time.perf_counter()
            request.infer({0: image[:size]})
            totals.append((time.perf_counter() - started) * 1e3 / size)
            sums: dict[str, float] = {}
            for layer in request.profiling_info:
                if layer.status.name == "EXECUTED":
                    ms = layer.real_time.total_seconds() * 1e3 / size
                    sums[layer.node_type] = sums.get(layer.node_type, 0.0) + ms
            for kind, ms in sums.items():
                by_type.setdefault(kind, []).append(ms)
        del request, compiled
        out[f"batch{size}"] = {
            "forward_ms": statistics.median(totals),
            "by_type_ms": {kind: statistics.median(v) for kind, v in by_type.items()},
        }
    return out


def part_tune(weights: str, rounds: int) -> dict[str, Any]:
    """OpenVINO configurations side by side in one process, measured in alternation (so other
    load on the machine hits them alike): batch-1 forward, and images/s with 8 threads each
    calling `predict` with one image, as on_upload's 8 request threads do."""
    from autotagger import model

    configs = {
        "latency + micro-batching (8)": ("latency", 8),
        "latency, no batching": ("latency", 1),
        "throughput (1 stream per core, request pool)": ("throughput", 1),
    }
    models = {
        key: model.get_model(weights, max_batch=mb, engine="openvino", openvino_hint=hint)
        for key, (hint, mb) in configs.items()
    }
    image = np.random.default_rng(1).uniform(-120, 130, (1, 224, 224, 3)).astype(np.float32)
    stacked = np.repeat(image, 8, axis=0)
    for classifier in models.values():  # every batch size the micro-batcher may form, planned
        for size in range(1, 9):
            classifier.predict(stacked[:size])
    single: dict[str, list[float]] = {key: [] for key in models}
    rates: dict[str, list[float]] = {key: [] for key in models}
    per_thread = 4
    for _ in range(rounds):
        for key, classifier in models.items():
            for _ in range(3):
                started = time.perf_counter()
                classifier.predict(image)
                single[key].append(time.perf_counter() - started)
            started = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda _, c=classifier: c.predict(image), range(8 * per_thread)))
            rates[key].append(8 * per_thread / (time.perf_counter() - started))
    reference = statistics.median(single["latency, no batching"])
    out = {}
    for key in models:
        b1 = statistics.median(single[key])
        rate = statistics.median(rates[key])
        out[key] = {
            "forward_ms": b1 * 1e3,
            "images_per_s_8": rate,
            "vs_own_ceiling": rate * b1,
            "vs_latency_ceiling": rate * reference,
        }
    return out


def part_fidelity(weights: str) -> dict[str, Any]:
    """OpenVINO against TensorFlow on the same artifact: photos and drawings as served."""
    from autotagger import model
    from autotagger.media import imaging

    pixels = [imaging.load_rgb(data, 10**9) for _, data in inputs.resize_images()]
    batch = imaging.preprocess(np.stack(pixels))
    ov = model.get_model(weights, engine="openvino").predict(batch)
    tf = model.get_model(weights, engine="tensorflow").predict(batch)
    top5 = [
        list(np.argsort(-a)[:5]) == list(np.argsort(-b)[:5]) for a, b in zip(ov, tf, strict=True)
    ]
    return {
        "images": len(batch),
        "max_abs_diff": float(np.abs(ov - tf).max()),
        "top5_identical": int(sum(top5)),
    }


def summarize_forward(
    data: dict[str, Any],
    forward_runs: dict[str, list[dict[str, Any]]],
    floor_runs: list[dict[str, Any]],
) -> None:
    """Per engine: every round's samples together; the floor ratio of each round."""
    data["floor_runs"] = floor_runs
    data["floor"] = sorted(floor_runs, key=lambda run: run["floor_ms"])[len(floor_runs) // 2]
    data["floor_ratio_rounds"] = {
        key: [
            run["forward_ms"] / floor["floor_ms"]
            for run, floor in zip(forward_runs[key], floor_runs, strict=True)
        ]
        for key in FORWARDS
    }
    data["forward"] = {}
    for key, runs in forward_runs.items():
        samples = [ms for run in runs for ms in run["forward_ms_all"]]
        data["forward"][key] = {
            **runs[0],
            "forward_ms": statistics.median(samples),
            "forward_ms_min": min(samples),
            "forward_ms_runs": [run["forward_ms"] for run in runs],
        }
