"""A whole run: the references in subprocesses, then every `on_upload` configuration and the
cold path against one emulator and stand-in, then the references again (so a change in the
machine's load shows), written to OUT. Or the cold path alone (`--cold-only`)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from infra import emulators, local
from infra.bench import cold, cold_report, harness, inputs, output, references, serving
from infra.bench.accounting import CpuAccount, machine

PARTS = "infra.bench"  # the module whose `--part NAME` runs one measurement in a subprocess


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def everything(out: Path, quick: bool) -> int:
    """`make bench`: every measurement, OUT/bench.{json,md,png}."""
    begun = time.perf_counter()
    cpu = CpuAccount()
    counts = {
        "sequential": 5 if quick else 25,
        "per_level": 2 if quick else 6,
        "concurrent_min": 4 if quick else 16,
    }
    print(f"bench: {machine()}", flush=True)
    fp32_dir, int8_dir = local.ensure_random_model("fp32"), local.ensure_random_model("int8")
    print(
        "bench: references (import tensorflow, floor and model forward x2, seed-style pipeline)...",
        flush=True,
    )
    data: dict[str, Any] = {
        "date": _now(),
        "machine": machine(),
        "quick": quick,
        "import_tensorflow_s": harness.import_tensorflow_s(2 if quick else 3),
    }
    repeat = "5" if quick else "10"

    def forward(key: str) -> dict[str, Any]:
        weights, precision, engine = references.FORWARDS[key]
        return harness.part(
            PARTS,
            *("forward", "--weights", str(int8_dir if weights else fp32_dir)),
            *("--precision", precision, "--repeat", repeat, "--engine", engine),
        )

    def forward_round() -> None:
        """The floor and each engine's forward, one after the other: a round's ratios share
        the machine's load of that moment."""
        floor_runs.append(harness.part(PARTS, "floor"))
        for key, runs in forward_runs.items():
            runs.append(forward(key))

    forward_runs: dict[str, list[dict[str, Any]]] = {key: [] for key in references.FORWARDS}
    floor_runs: list[dict[str, Any]] = []
    for _ in range(2):
        forward_round()
    print("bench: OpenVINO tuning and label fidelity...", flush=True)
    data["tune"] = harness.part(PARTS, "tune", "--weights", str(fp32_dir), "--repeat", "2")
    # OpenVINO's layers; OpenVINO vs TensorFlow; the fp16 IR vs the fp32 one
    for name in ("layers", "fidelity", "fp16"):
        data[name] = harness.part(PARTS, name, "--weights", str(fp32_dir), "--repeat", repeat)
    data["seed"] = harness.part(
        PARTS,
        *("seed", "--weights", f"{fp32_dir},{int8_dir}"),
        *("--repeat", "3" if quick else "5"),
    )
    images = {"small": inputs.photo((1024, 768)), "12mp": inputs.photo((4000, 3000))}
    data["image_bytes"] = {k: len(v) for k, v in images.items()}
    configs = serving.server_configs(fp32_dir, int8_dir)
    print(f"bench: {emulators.describe_firestore_emulator()}", flush=True)
    data["runs"] = {}
    with harness.bench_servers() as bench, harness.eager_renditions() as switch:
        for name, overrides, full in configs:
            print(f"bench: on_upload {name}...", flush=True)
            data["runs"][name] = serving.run_config(
                bench,
                name,
                {"MODEL_MAX_BATCH": "1", "DOWNLOAD_RENDITION": "1", **overrides},
                images,
                counts,
                cold_starts=1 if quick or not full else 2,
                switch=switch,
                full=full,
            )
        data.update(
            cold.run_all(
                bench,
                fp32_dir,
                images["small"],
                counts["sequential"],
                1 if quick else 2,
                lambda: harness.import_tensorflow_s(1)[0],
            )
        )
    print("bench: floor and model forward again (after the server runs)...", flush=True)
    forward_round()
    references.summarize_forward(data, forward_runs, floor_runs)
    data["runtime_s"] = time.perf_counter() - begun
    data["cpu"] = cpu.stop()
    output.write(data, out)
    return 0


def cold_only(out: Path, rounds: int) -> int:
    """`--cold-only`: the cold-path part alone (references, fp16, preload on/off, gs:// vs
    local, feature pairs; `rounds` of each), written to OUT/bench_cold.md."""
    cpu = CpuAccount()
    fp32_dir = local.ensure_random_model("fp32")
    data: dict[str, Any] = {"date": _now(), "machine": machine()}
    data["fp16"] = harness.part(PARTS, "fp16", "--weights", str(fp32_dir), "--repeat", "10")
    with harness.bench_servers() as bench, harness.eager_renditions():
        data.update(
            cold.run_all(
                bench,
                fp32_dir,
                inputs.photo((1024, 768)),
                10,
                rounds,
                lambda: harness.import_tensorflow_s(1)[0],
            )
        )
    data["cpu"] = cpu.stop()
    cold_report.write_only(data, out)
    return 0
