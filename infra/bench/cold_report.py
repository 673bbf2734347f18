"""The cold path's report: its goals' table (cold start, the floor, gs:// vs local, fp16,
features), its details, and `--cold-only`'s OUT/bench_cold.md and .json."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from infra.bench.references import DENSE_GFLOP, VGG16_GFLOP

GOALS = {
    "cold": 0.35,
    "warm_floor": 1.25,
    "throughput_floor": 0.95,
    "rss_gb": 1.5,
    "gcs_vs_local": 1.3,
    "features": 0.03,
    "fp16_atol": 1e-4,
}


def _ok(met: bool) -> str:
    return "yes" if met else "**no**"


def report(data: dict[str, Any]) -> str:
    """The table of this part's goals (cold start, floor, gs://, fp16, features)."""
    pre = data["preload"]
    tf_s = statistics.median(c["import_tensorflow_s"] for c in pre["on"] + pre["off"])
    on = statistics.median(c["cold_s"] / c["import_tensorflow_s"] for c in pre["on"])
    off = statistics.median(c["cold_s"] / c["import_tensorflow_s"] for c in pre["off"])
    on_s = statistics.median(c["cold_s"] for c in pre["on"])
    off_s = statistics.median(c["cold_s"] for c in pre["off"])
    lines = [
        "| measure (OpenVINO, latency hint, micro-batching) | figure | goal | met |",
        "| --- | ---: | --- | --- |",
        f"| cold start / a bare `import tensorflow` run just before each (median {tf_s:.2f} s), "
        f"MODEL_PRELOAD=1 (default), median of {len(pre['on'])} | {on:.2f}x ({on_s:.2f} s) "
        f"| ≤ {GOALS['cold']}x | {_ok(on <= GOALS['cold'])} |",
        f"| … MODEL_PRELOAD=0 (the model loads on the first request), alternated with the above "
        f"| {off:.2f}x ({off_s:.2f} s); preload saves {off_s - on_s:+.2f} s | (on/off) | |",
    ]
    if "openvino" in data.get("runs", {}):
        floor_ms = data["floor"]["floor_ms"]
        ov = data["runs"]["openvino"]
        warm = ov["small_ms"] / floor_ms
        level = ov["levels"][8]
        ceiling = 1e3 / floor_ms
        through = level["throughput_rps"] / ceiling
        rss = ov["peak_rss_mb"] / 1024
        lines += [
            f"| warm end to end (median) / fp32 floor ({floor_ms:.0f} ms) | {warm:.2f}x "
            f"({ov['small_ms']:.0f} ms) | ≤ {GOALS['warm_floor']}x "
            f"| {_ok(warm <= GOALS['warm_floor'])} |",
            f"| throughput at 8 concurrent / the floor's ceiling ({ceiling:.1f}/s) "
            f"| {through:.2f}x ({level['throughput_rps']:.1f}/s, {level['errors']} errors) "
            f"| ≥ {GOALS['throughput_floor']}x, 0 errors "
            f"| {_ok(through >= GOALS['throughput_floor'] and level['errors'] == 0)} |",
            f"| peak RSS of the process tree | {rss:.2f} GB | ≤ {GOALS['rss_gb']} GB "
            f"| {_ok(rss <= GOALS['rss_gb'])} |",
        ]
        if "layers" in data:
            lines.append(layers_row(data["layers"], floor_ms))
    gcs = data["gcs"]
    engine_files = {"openvino/model.xml", "openvino/model.bin"}
    for key, label, files in (
        ("gcs", "fp32 IR", engine_files),
        (
            "gcs_fp16",
            "fp16 IR (MODEL_PRECISION=fp16)",
            {"openvino-fp16/model.xml", "openvino-fp16/model.bin"},
        ),
    ):
        ratios = [r[key]["cold_s"] / r["local"]["cold_s"] for r in gcs["rounds"]]
        ratio = statistics.median(ratios)
        fetched = [r[key]["fetched"] for r in gcs["rounds"]]
        read = statistics.median(f.get("bytes_read", 0) for f in fetched) / 1e6
        only = all(set(f.get("files", [])) == files for f in fetched)
        fetch_ms = statistics.median(f.get("fetch_ms", 0) for f in fetched)
        cold = statistics.median(r[key]["cold_s"] for r in gcs["rounds"])
        local = statistics.median(r["local"]["cold_s"] for r in gcs["rounds"])
        lines.append(
            f"| cold start from gs:// ({label}) / from a local directory (local fp32 IR, run just "
            f"before) | {ratio:.2f}x ({cold:.2f} vs {local:.2f} s; fetch {fetch_ms:.0f} ms); read "
            f"{read:.0f} MB of the artifact's {gcs['artifact_bytes'] / 1e6:.0f} MB, "
            f"{'only' if only else '**not only**'} the engine's files "
            f"| ≤ {GOALS['gcs_vs_local']}x, only the engine's files "
            f"| {_ok(ratio <= GOALS['gcs_vs_local'] and only)} |"
        )
    if all("gcs_in_worker" in r for r in gcs["rounds"]):
        ahead = statistics.median(r["gcs"]["cold_s"] for r in gcs["rounds"])
        in_worker = statistics.median(r["gcs_in_worker"]["cold_s"] for r in gcs["rounds"])
        paired = statistics.median(
            r["gcs"]["cold_s"] / r["gcs_in_worker"]["cold_s"] for r in gcs["rounds"]
        )
        lines.append(
            "| … the copy ahead of the server's imports (its own process) / the copy in the "
            f"worker's preload after them | {paired:.2f}x ({ahead:.2f} vs {in_worker:.2f} s) "
            "| (on/off) | |"
        )
    fp16 = data["fp16"]
    seeded = fp16["seeded"]
    crafted_ok = all(
        c["top5_identical"] == c["images"] and c["max_abs_diff"] <= GOALS["fp16_atol"]
        for c in fp16["crafted"].values()
    )
    seeded_ok = (
        seeded["top5_identical"] == seeded["images"]
        and seeded["max_abs_diff"] <= GOALS["fp16_atol"]
    )
    crafted = "; ".join(
        f"{name} (top p {c['top_p']:.2f}): {c['top5_identical']}/{c['images']}, "
        f"{c['max_abs_diff']:.1e}"
        for name, c in fp16["crafted"].items()
    )
    t = fp16["timing"]
    lines.append(
        f"| fp16 IR vs fp32 IR: top-5 identical, max abs probability difference; seeded weights "
        f"({seeded['images']} images) / crafted distributions | {seeded['top5_identical']}/"
        f"{seeded['images']}, {seeded['max_abs_diff']:.1e} / {crafted} | identical top-5, "
        f"≤ 1e-4 on both, to be offered | {_ok(seeded_ok and crafted_ok)} (opt-in: OpenVINO's "
        "alone; the default serves one model under either engine) |"
    )
    lines.append(
        f"| fp16 IR: bytes, load + first forward, forward batch 1 (fp32 IR) "
        f"| {fp16['fp16_bytes'] / 1e6:.0f} MB ({fp16['fp32_bytes'] / 1e6:.0f}), "
        f"{t['fp16']['load_s']:.2f} s ({t['fp32']['load_s']:.2f}), "
        f"{t['fp16']['forward_ms']:.0f} ms ({t['fp32']['forward_ms']:.0f}) | (report) | |"
    )
    for name, row in data.get("features", {}).items():
        lines.append(feature_row(name, row))
    if not data.get("features"):
        lines.append(
            "| new features on / off, warm end to end | (no pair listed: add one to "
            "`infra/bench/features.py` FEATURE_PAIRS) | ≤ +3% | |"
        )
    return "\n".join(lines)


def layers_row(layers: dict[str, Any], floor_ms: float) -> str:
    """What bounds the warm and throughput goals: OpenVINO's forward by its own counters, its
    convolutions against the floor of their FLOPs, its dense layers' weights read per image."""
    conv_floor_ms = floor_ms * (VGG16_GFLOP - DENSE_GFLOP) / VGG16_GFLOP
    cells = []
    for size in (1, 8):
        row = layers[f"batch{size}"]
        conv = row["by_type_ms"].get("Convolution", 0.0)
        dense = row["by_type_ms"].get("FullyConnected", 0.0)
        cells.append(
            f"batch {size}: {row['forward_ms']:.0f} ms an image = "
            f"{row['forward_ms'] / floor_ms:.2f}x the floor; convolutions {conv:.0f} ms "
            f"({conv / conv_floor_ms:.2f}x their FLOPs' "
            f"floor), fully connected {dense:.1f} ms"
            + (
                f" reading {layers['dense_weights_mb']:.0f} MB of weights "
                f"({layers['dense_weights_mb'] / dense:.0f} GB/s)"
                if size == 1 and dense
                else ""
            )
        )
    return (
        "| OpenVINO's bare forward by its own layer counters (`PERF_COUNT`, "
        f"`infra/bench/references.py`) | {'; '.join(cells)} | (report: the forward alone, "
        "before any request work) | |"
    )


def feature_row(name: str, row: dict[str, Any]) -> str:
    """One feature pair's row: what it adds outside the forward (the verdict: both sides run the
    same forward), and the end to end's medians and paired ratio beside it."""
    if not isinstance(row.get("on"), dict):  # a run from before the pairs ran side by side
        extra = row["on"] / row["off"] - 1
        return (
            f"| feature {name}: warm end to end on / off (A B A B) | {extra:+.1%} "
            f"({row['on']:.0f} / {row['off']:.0f} ms) | ≤ +{GOALS['features']:.0%} "
            f"| {_ok(extra <= GOALS['features'])} |"
        )
    share = row["outside_forward_extra_share"]
    on, off = row["on"], row["off"]
    errors = on["errors"] + off["errors"]
    return (
        f"| feature {name}: on / off, warm end to end, servers side by side "
        f"({row['pairs']} request pairs, {row['servers_per_side']} servers a side) "
        f"| outside the forward {row['outside_forward_extra_ms']:+.1f} ms = {share:+.1%} of "
        f"{off['ms']:.0f} ms; end to end {on['ms']:.0f} / {off['ms']:.0f} ms, paired "
        f"{row['paired_ratio'] - 1:+.1%}; tags written {off['tags']:.0f} → {on['tags']:.0f} "
        f"(concepts {on['concepts']:.0f}, learned {on['learned_tags']:.0f}); {errors} errors "
        f"| ≤ +{GOALS['features']:.0%} | {_ok(share <= GOALS['features'] and errors == 0)} |"
    )


def write_only(data: dict[str, Any], out: Path) -> None:
    """`--cold-only`: this part's table and details in OUT/bench_cold.md (+ .json)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_cold.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    cpu = data["cpu"]
    text = "\n".join(
        [
            "# Benchmark: the cold path (`make bench` run with `--cold-only`)",
            "",
            f"Measured {data['date']} on {data['machine']} (random weights; ratios from one "
            f"run). Other processes used {cpu['others_share']:.0%} of the machine's CPU during "
            f"the run ({cpu['others_core_s']:.0f} of {cpu['capacity_core_s']:.0f} core-s).",
            "",
            report(data),
            details(data),
            "",
        ]
    )
    (out / "bench_cold.md").write_text(text)
    print(text)


def details(data: dict[str, Any]) -> str:
    out = ["", "Cold starts of this part (each: process start → first answer):", ""]
    for key, colds in data["preload"].items():
        out.append(
            f"- MODEL_PRELOAD {key}: "
            + "; ".join(
                f"{c['cold_s']:.2f} s (import tensorflow {c['import_tensorflow_s']:.2f} s; "
                f"listening {c['listening_s']:.2f} s; first request {c['first_request_s']:.2f} s: "
                + ", ".join(f"{k} {v:.0f}" for k, v in c["server_timings_ms"].items())
                + " ms)"
                for c in colds
            )
        )
    for i, row in enumerate(data["gcs"]["rounds"]):
        parts = []
        for key, c in row.items():
            fetched = c["fetched"]
            parts.append(
                f"{key} {c['cold_s']:.2f} s (listening {c['listening_s']:.2f} s, first request "
                f"{c['first_request_s']:.2f} s, fetched {fetched.get('bytes_read', 0) / 1e6:.0f} "
                f"MB in {fetched.get('fetch_ms', 0):.0f} ms: "
                f"{', '.join(fetched.get('files', []))}; peak RSS {c['peak_rss_mb']:.0f} MB)"
            )
        out.append(f"- gs:// round {i + 1}: " + "; ".join(parts))
    return "\n".join(out)
