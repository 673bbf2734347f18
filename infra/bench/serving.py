"""`on_upload` under functions-framework, one configuration at a time: cold starts (each after
a bare `import tensorflow`), warm end to end of a small and a 12 MP JPEG, a rendition made on
demand, 1/2/4/8 concurrent requests, and the process tree's peak memory."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from infra.bench.harness import Bench, Server, import_tensorflow_s

LEVELS = (1, 2, 4, 8)


def server_configs(fp32_dir: Path, int8_dir: Path) -> list[tuple[str, dict[str, str], bool]]:
    """(name, settings, full run?) of each on_upload configuration measured."""
    fp32 = {"MODEL_WEIGHTS": str(fp32_dir)}
    return [
        ("tensorflow", {**fp32, "MODEL_ENGINE": "tensorflow"}, True),
        ("tensorflow+batch", {**fp32, "MODEL_ENGINE": "tensorflow", "MODEL_MAX_BATCH": "8"}, True),
        ("openvino", {**fp32, "MODEL_ENGINE": "openvino", "MODEL_MAX_BATCH": "8"}, True),
        ("int8", {"MODEL_WEIGHTS": str(int8_dir), "MODEL_PRECISION": "int8"}, True),
        (
            "tensorflow no rendition",
            {**fp32, "MODEL_ENGINE": "tensorflow", "DOWNLOAD_RENDITION": "0"},
            False,
        ),
    ]


def run_config(
    bench: Bench,
    name: str,
    overrides: dict[str, str],
    images: dict[str, bytes],
    counts: dict[str, int],
    cold_starts: int,
    switch: dict[str, bool],
    full: bool = True,
) -> dict[str, Any]:
    env = bench.env(overrides)
    colds = []
    server: Server | None = None
    for i in range(cold_starts):
        reference = import_tensorflow_s(1)[0]  # right before: the machine's load now
        server, cold = bench.start(name, env, bench.asset(images["small"], "cold"))
        cold["import_tensorflow_s"] = reference
        colds.append(cold)
        if i < cold_starts - 1:
            server.stop()
    assert server is not None
    try:
        for data in (images["small"], images["12mp"]):  # pre-render both renditions (eager)
            bench.deliver(server.url, bench.asset(data, "warmup"))
        small = bench.sequential(server, images["small"], "small", counts["sequential"])
        big = bench.sequential(server, images["12mp"], "12mp", counts["sequential"])
        result: dict[str, Any] = {
            "cold": colds,
            "cold_s": statistics.median(c["cold_s"] for c in colds),
            "cold_ratio": statistics.median(c["cold_s"] / c["import_tensorflow_s"] for c in colds),
            "small_ms": statistics.median(o.ms for o in small),
            "small_all_ms": [o.ms for o in small],
            "small_server_ms": statistics.median(o.record["timings"]["total"] for o in small),
            "small_stages_ms": {
                stage: statistics.median(o.record["timings"].get(stage, 0.0) for o in small)
                for stage in small[0].record["timings"]
            },
            "12mp_ms": statistics.median(o.ms for o in big),
            "errors": sum(not o.ok for o in small + big),
        }
        if full:
            switch["on"] = False  # the rendition made on demand, on the first request
            fresh = bench.sequential(server, bytes(images["12mp"]), "12mp-fresh", 3)
            switch["on"] = True
            result["12mp_on_demand_ms"] = statistics.median(o.ms for o in fresh)
            result["levels"] = {}
            for level in LEVELS:
                count = max(counts["concurrent_min"], counts["per_level"] * level)
                result["levels"][level] = bench.concurrent(server, images["small"], level, count)
                result["errors"] += result["levels"][level]["errors"]
        result["pss_end_mb"] = server.sampler.pss_now()
    finally:
        server.stop()
    result["peak_rss_mb"] = server.sampler.peak_mb
    return result
