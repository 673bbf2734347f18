"""The details under the main table: every sample behind its medians, the CPU per request,
OpenVINO's configurations, and the resize/crop choice's effect."""

from __future__ import annotations

from typing import Any

from infra.bench.accounting import CORES
from infra.bench.references import FORWARDS, VGG16_GFLOP


def details(data: dict[str, Any]) -> str:
    runs, seed = data["runs"], data["seed"]
    out = ["", "Details:", ""]
    tf = ", ".join(f"{t:.2f}" for t in data["import_tensorflow_s"])
    out.append(f"- bare `import tensorflow`: {tf} s")
    floor = data["floor"]
    rates = ", ".join(f"{k} {v:.0f}" for k, v in floor["gflops"].items())
    out.append(
        f"- fp32 floor: 4096² float32 matmul, best of 6, every core: {rates} GFLOP/s; "
        f"VGG16's {VGG16_GFLOP} GFLOP at the best rate: {floor['floor_ms']:.0f} ms (rounds: "
        + ", ".join(f"{run['floor_ms']:.0f}" for run in data["floor_runs"])
        + " ms); forward / floor per round: "
        + "; ".join(
            f"{key} " + ", ".join(f"{r:.2f}x" for r in rounds)
            for key, rounds in data["floor_ratio_rounds"].items()
        )
    )
    for key in FORWARDS:
        f = data["forward"][key]
        batches = ", ".join(f"batch {b}: {ms:.0f}" for b, ms in f["per_image_ms_batch"].items())
        runs_ms = " / ".join(f"{ms:.0f}" for ms in f["forward_ms_runs"])
        out.append(
            f"- {key} forward (batch 1, median of all samples): {f['forward_ms']:.1f} ms "
            f"(min {f['forward_ms_min']:.1f}; before / after the server runs: {runs_ms} ms); "
            f"per image at "
            f"{batches} ms; load (import + load + first forward) {f['load_s']:.2f} s; RSS "
            f"{f['rss_mb']:.0f} MB; tensorflow imported: "
            f"{f['tensorflow_imported']}"
        )
    for key, run in runs.items():
        colds = "; ".join(
            f"{c['cold_s']:.2f} s (import tensorflow just before "
            f"{c['import_tensorflow_s']:.2f} s; "
            f"listening {c['listening_s']:.2f} s, first request "
            f"{c['first_request_s']:.2f} s, model_load "
            f"{c['server_timings_ms'].get('model_load', 0):.0f} ms)"
            for c in run["cold"]
        )
        out.append(f"- {key}: cold starts {colds}")
        if "levels" in run:
            cpu = run["levels"][8]["cpu_ms_per_request"]
            out.append(
                "  CPU per request at 8 concurrent: "
                + ", ".join(f"{k.replace('_', ' ')} {v:.0f} ms" for k, v in cpu.items())
                + f" (the machine has {CORES * 1e3 / run['levels'][8]['throughput_rps']:.0f} "
                "core-ms per request at that rate)"
            )
        stages = ", ".join(f"{k} {v:.1f}" for k, v in run["small_stages_ms"].items())
        out.append(
            f"  warm small JPEG: client {run['small_ms']:.0f} ms, server "
            f"{run['small_server_ms']:.0f} ms ({stages} ms); 12 MP: {run['12mp_ms']:.0f} ms; "
            f"peak RSS {run['peak_rss_mb']:.0f} MB; errors {run['errors']}"
        )
    out.append(
        f"- seed-style per image: small {seed['seed_small_ms']:.0f} ms, 12 MP "
        f"{seed['seed_12mp_ms']:.0f} ms; ours in-process: small {seed['ours_small_ms']:.0f} ms, "
        f"12 MP full-size {seed['ours_12mp_full_ms']:.0f} ms, 12 MP rendition "
        f"{seed['ours_12mp_rendition_ms']:.0f} ms"
    )
    dec = seed["decode_ms"]
    out.append(
        f"- decode 12 MP: Keras load_img (full) {dec['12mp_keras_load_img']:.0f} ms, ours with "
        f"draft {dec['12mp_full']:.0f} ms, 224-px PNG rendition {dec['12mp_rendition_png']:.2f} ms"
    )
    for name, f in seed["formats"].items():
        out.append(
            f"- rendition `{name}`: {f['bytes'] / 1024:.0f} KiB, decode {f['decode_ms']:.2f} ms, "
            f"mean |Δpixel| vs PNG {f['mean_abs_diff_vs_png']:.2f}"
        )
    out += [
        "",
        "OpenVINO configurations, in one process and in alternation (8 threads each classifying "
        "one image, as on_upload's request threads do; ceiling = 1 / that configuration's "
        "batch-1 forward):",
        "",
        "| configuration | forward, batch 1 | images/s at 8 concurrent | / own ceiling "
        "| / latency-hint ceiling |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, row in data["tune"].items():
        out.append(
            f"| {name} | {row['forward_ms']:.0f} ms | {row['images_per_s_8']:.2f} "
            f"| {row['vs_own_ceiling']:.2f}x | {row['vs_latency_ceiling']:.2f}x |"
        )
    out += [
        "",
        "Resize/crop choice (random weights: pixel differences are real, label agreement only "
        f"shows how far the inputs move a random network; {len(seed['resize']['images'])} images):",
        "",
        "| input | vs | mean abs pixel diff (0-255) | top-1 agreement | top-5 overlap |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name, row in seed["resize"]["rows"].items():
        variant, reference = name.split(" vs ")
        out.append(
            f"| {variant} | {reference} | {row['mean_abs_pixel_diff']:.1f} "
            f"| {row['top1_agreement']:.0%} | {row['top5_overlap']:.0%} |"
        )
    return "\n".join(out)
