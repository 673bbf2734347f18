"""The main table: every engine's cold start, warm end to end, floor, concurrency and memory
as ratios, each against its goal."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from infra.bench.references import FORWARDS, VGG16_GFLOP
from infra.bench.serving import LEVELS

GOALS = {
    "cold_openvino": 0.35,
    "floor_openvino": 1.4,
    "throughput8_openvino": 1.1,
    "rss_openvino": 1.5,
    "cold_fp32": 1.6,
    "cold_int8": 0.5,
    "warm": 1.15,
    "big_ms": 50.0,
    "throughput8": 0.85,
    "rss_fp32": 1.8,
    "rss_int8": 0.5,
    "int8_vs_fp32": 0.4,
}


def _ok(met: bool) -> str:
    return "yes" if met else "**no**"


SERVED = ("tensorflow", "tensorflow+batch", "openvino", "int8")
COLD, SMALL, PSS = "cold_s", "small_ms", "pss_end_mb"
ENGINE_OF = {
    "tensorflow": "tensorflow",
    "tensorflow+batch": "tensorflow",
    "openvino": "openvino",
    "int8": "int8",
}


def report(data: dict[str, Any]) -> str:
    tf_s = statistics.median(data["import_tensorflow_s"])
    fwd = {k: data["forward"][k]["forward_ms"] for k in FORWARDS}
    runs = data["runs"]
    tf, batch, ov, int8, norend = (
        runs["tensorflow"],
        runs["tensorflow+batch"],
        runs["openvino"],
        runs["int8"],
        runs["tensorflow no rendition"],
    )
    seed, floor = data["seed"], data["floor"]
    lines = [
        f"Measured {data['date']} on {data['machine']} (random weights; ratios from one run).",
        "",
        "| measure | TensorFlow, MODEL_MAX_BATCH=1 | TensorFlow, micro-batching "
        "| OpenVINO (latency hint, micro-batching) | int8 (LiteRT) | goal | met |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]

    def cells(fmt: Callable[[str, dict[str, Any]], str]) -> str:
        return " | ".join(fmt(key, runs[key]) for key in SERVED)

    cold = {k: runs[k]["cold_ratio"] for k in SERVED}
    lines.append(
        f"| cold start (process start → first answer) / a bare `import tensorflow` run just "
        f"before it (median {tf_s:.2f} s) "
        f"| {cells(lambda k, r: f'{cold[k]:.2f}x ({r[COLD]:.2f} s)')} "
        f"| ≤ 1.6x TensorFlow, ≤ 0.35x OpenVINO, ≤ 0.5x int8 "
        f"| {_ok(cold['tensorflow'] <= GOALS['cold_fp32'])} / "
        f"{_ok(cold['openvino'] <= GOALS['cold_openvino'])} / "
        f"{_ok(cold['int8'] <= GOALS['cold_int8'])} |"
    )
    floor_ms = floor["floor_ms"]
    ratio = {k: statistics.median(data["floor_ratio_rounds"][k]) for k in FORWARDS}
    lines.append(
        f"| model forward, batch 1 / fp32 floor (median over {len(data['floor_runs'])} rounds "
        f"of floor + forwards; floor {floor_ms:.0f} ms = {VGG16_GFLOP} GFLOP at "
        f"{floor['best_gflops']:.0f} GFLOP/s, a 4096² fp32 matmul) "
        f"| {ratio['tensorflow']:.2f}x ({fwd['tensorflow']:.0f} ms) | "
        f"| {ratio['openvino']:.2f}x ({fwd['openvino']:.0f} ms) "
        f"| {ratio['int8']:.2f}x ({fwd['int8']:.0f} ms) | ≤ 1.4x OpenVINO "
        f"| {_ok(ratio['openvino'] <= GOALS['floor_openvino'])} |"
    )
    per8 = {k: data["forward"][k]["per_image_ms_batch"]["8"] for k in FORWARDS}
    lines.append(
        f"| model forward, batch 8, per image / floor | {per8['tensorflow'] / floor_ms:.2f}x "
        f"({per8['tensorflow']:.0f} ms) | | {per8['openvino'] / floor_ms:.2f}x "
        f"({per8['openvino']:.0f} ms) | {per8['int8'] / floor_ms:.2f}x ({per8['int8']:.0f} ms) "
        "| (report) | |"
    )
    warm = {k: runs[k]["small_ms"] / fwd[ENGINE_OF[k]] for k in SERVED}
    lines.append(
        f"| warm end-to-end median / the engine's bare forward "
        f"| {cells(lambda k, r: f'{warm[k]:.2f}x ({r[SMALL]:.0f} ms)')} | ≤ 1.15x "
        f"| {_ok(warm['tensorflow'] <= GOALS['warm'])} / {_ok(warm['openvino'] <= GOALS['warm'])}"
        f" / {_ok(warm['int8'] <= GOALS['warm'])} |"
    )
    big = {k: runs[k]["12mp_ms"] - runs[k]["small_ms"] for k in SERVED}
    lines.append(
        f"| 12 MP JPEG - small JPEG, end to end (rendition made at upload) "
        f"| {cells(lambda k, r: f'{big[k]:+.0f} ms')} "
        f"| ≤ +50 ms | {_ok(max(big.values()) <= GOALS['big_ms'])} |"
    )
    lines.append(
        f"| … rendition made on demand (first request) / DOWNLOAD_RENDITION=0 (TensorFlow) "
        f"| {tf['12mp_on_demand_ms'] - tf['small_ms']:+.0f} ms / "
        f"{norend['12mp_ms'] - norend['small_ms']:+.0f} ms | | | | (reference) | |"
    )
    for level in LEVELS:

        def level_cell(key: str, run: dict[str, Any], level: int = level) -> str:
            row = run["levels"][level]
            ratio = row["throughput_rps"] * fwd[ENGINE_OF[key]] / 1e3
            return (
                f"{ratio:.2f}x ({row['throughput_rps']:.1f}/s, p50 {row['p50_ms']:.0f} ms, "
                f"{row['errors']} err)"
            )

        goal, met = "", ""
        if level == 8:
            goal = "≥ 0.85x TensorFlow, ≥ 1.1x OpenVINO, ≥ 0.85x int8; 0 errors"
            best_tf = max(
                runs[k]["levels"][8]["throughput_rps"] * fwd["tensorflow"] / 1e3
                for k in ("tensorflow", "tensorflow+batch")
            )
            ov8 = ov["levels"][8]["throughput_rps"] * fwd["openvino"] / 1e3
            int8_8 = int8["levels"][8]["throughput_rps"] * fwd["int8"] / 1e3
            errors = sum(runs[k]["levels"][8]["errors"] for k in SERVED)
            met = (
                f"{_ok(best_tf >= GOALS['throughput8'])} / "
                f"{_ok(ov8 >= GOALS['throughput8_openvino'])} / "
                f"{_ok(int8_8 >= GOALS['throughput8'])}; {_ok(errors == 0)}"
            )
        lines.append(
            f"| throughput at {level} concurrent / batch-1 ceiling (1 / the engine's forward) "
            f"| {cells(level_cell)} | {goal} | {met} |"
        )
    gain = batch["levels"][8]["throughput_rps"] / tf["levels"][8]["throughput_rps"] - 1
    slower = batch["small_ms"] / tf["small_ms"] - 1
    lines.append(
        f"| micro-batching vs MODEL_MAX_BATCH=1 (TensorFlow): throughput at 8 concurrent, "
        f"single-request latency | | {gain:+.0%}, {slower:+.0%} | | | a gain, latency ≤ +10% "
        f"| {_ok(gain > 0 and slower <= 0.10)} |"
    )
    rss = {k: runs[k]["peak_rss_mb"] / 1024 for k in SERVED}
    lines.append(
        f"| peak RSS of the process tree (PSS at the end) "
        f"| {cells(lambda k, r: f'{rss[k]:.2f} GB ({r[PSS] / 1024:.2f})')} "
        f"| ≤ 1.8 GB TensorFlow, ≤ 1.5 GB OpenVINO, ≤ 0.5 GB int8 "
        f"| {_ok(max(rss['tensorflow'], rss['tensorflow+batch']) <= GOALS['rss_fp32'])} / "
        f"{_ok(rss['openvino'] <= GOALS['rss_openvino'])} / "
        f"{_ok(rss['int8'] <= GOALS['rss_int8'])} |"
    )
    fid = data["fidelity"]
    same = fid["top5_identical"] == fid["images"] and fid["max_abs_diff"] <= 1e-5
    lines.append(
        f"| OpenVINO vs TensorFlow, same weights: top-5 identical, max abs probability "
        f"difference ({fid['images']} images) | | | {fid['top5_identical']}/{fid['images']}, "
        f"{fid['max_abs_diff']:.1e} | | identical labels (≤ 1e-5) | {_ok(same)} |"
    )
    lines.append(
        f"| OpenVINO / TensorFlow model time, batch 1 (batch 8 per image): which engine wins "
        f"on this CPU | | | {fwd['openvino'] / fwd['tensorflow']:.2f}x "
        f"({per8['openvino'] / per8['tensorflow']:.2f}x) | | (report: < 1 favours OpenVINO) | |"
    )
    ours_12mp, ours_int8 = seed["ours_12mp_rendition_ms"], seed["ours_int8_12mp_rendition_ms"]
    lines.append(
        f"| seed-style (Keras VGG16 + full `load_img` + `predict()`) / ours, per 12 MP image "
        f"| {seed['seed_12mp_ms'] / ours_12mp:.1f}x "
        f"({seed['seed_12mp_ms']:.0f} / {ours_12mp:.0f} ms) | | | "
        f"{seed['seed_12mp_ms'] / ours_int8:.1f}x ({ours_int8:.0f} ms) | (report) | |"
    )
    lines.append(
        f"| seed-style / ours, model ready after import (build + first predict / artifact load) "
        f"| {seed['seed_ready_s'] / seed['ours_ready_s']:.1f}x "
        f"({seed['seed_ready_s']:.1f} / {seed['ours_ready_s']:.2f} s) | "
        f"| {seed['seed_ready_s'] / data['forward']['openvino']['load_s']:.0f}x "
        f"({data['forward']['openvino']['load_s']:.2f} s) "
        f"| {seed['seed_ready_s'] / data['forward']['int8']['load_s']:.0f}x "
        f"({data['forward']['int8']['load_s']:.2f} s) | (report) | |"
    )
    ratio = fwd["int8"] / fwd["tensorflow"]
    lines.append(
        f"| int8 / fp32 (TensorFlow) model time (batch 1) | | | | {ratio:.2f}x | ≤ 0.4x "
        f"| {_ok(ratio <= GOALS['int8_vs_fp32'])} |"
    )
    return "\n".join(lines)
