"""docs/bench.png: latency and throughput against concurrency, per engine, with each engine's
batch-1 ceiling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.bench.references import FORWARDS
from infra.bench.report import SERVED
from infra.bench.serving import LEVELS


def plot(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fwd = {k: data["forward"][k]["forward_ms"] for k in FORWARDS}
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    labels = {
        "tensorflow": "TensorFlow, no batching",
        "tensorflow+batch": "TensorFlow, micro-batching",
        "openvino": "OpenVINO, micro-batching",
        "int8": "int8 (LiteRT)",
    }
    colors = {
        "tensorflow": "tab:blue",
        "tensorflow+batch": "tab:green",
        "openvino": "tab:purple",
        "int8": "tab:orange",
    }
    for key in SERVED:
        levels = data["runs"][key]["levels"]
        xs = list(LEVELS)
        color = colors[key]
        left.plot(
            xs, [levels[x]["p50_ms"] for x in xs], "o-", color=color, label=f"{labels[key]} p50"
        )
        left.plot(
            xs,
            [levels[x]["p90_ms"] for x in xs],
            "o--",
            color=color,
            alpha=0.5,
            label=f"{labels[key]} p90",
        )
        right.plot(
            xs, [levels[x]["throughput_rps"] for x in xs], "o-", color=color, label=labels[key]
        )
    for key in FORWARDS:
        color = colors[key]
        right.axhline(1e3 / fwd[key], color=color, linestyle=":", label=f"1 / {key} forward")
    left.set(
        xlabel="concurrent requests",
        ylabel="end-to-end latency (ms)",
        xticks=LEVELS,
        title="Latency vs concurrency",
    )
    right.set(
        xlabel="concurrent requests",
        ylabel="requests / s",
        xticks=LEVELS,
        title="Throughput vs concurrency",
    )
    left.set_yscale("log")
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    figure.suptitle(f"autotagger on_upload, {data['machine']}, {data['date']}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
