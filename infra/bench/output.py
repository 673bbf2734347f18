"""What a run leaves in docs/: OUT/bench.json (first, so a failed report loses nothing),
OUT/bench.md (the cold path's table, the main table, the details) and OUT/bench.png; and a
finished run's bench.json read back (`--from-json`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.bench import cold_report
from infra.bench.details import details
from infra.bench.plot import plot
from infra.bench.report import report


def read_json(path: Path) -> dict[str, Any]:
    """A finished run's bench.json, as the run had it (JSON made the concurrency levels
    strings)."""
    data: dict[str, Any] = json.loads(path.read_text())
    for run in data["runs"].values():
        if "levels" in run:
            run["levels"] = {int(level): row for level, row in run["levels"].items()}
    return data


def write(data: dict[str, Any], out: Path) -> None:
    """Print the table and details; write OUT/bench.json (first), bench.md and bench.png."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    table = report(data)
    cpu = data["cpu"]
    text = "\n".join(
        [
            "# Benchmark",
            "",
            "`make bench` (`python -m infra.bench`). The function under functions-framework "
            "(gunicorn, THREADS=8) with the Firestore emulator and the Cloudinary stand-in on the "
            "same machine; small JPEG = 1024x768, 12 MP = 4000x3000 "
            f"({data['image_bytes']['12mp'] / 2**20:.1f} MiB).",
            "",
            "## The cold path, the floor's goals, fp16 and features (`infra/bench/cold.py`)",
            "",
            cold_report.report(data) if "gcs" in data else "(not in this run)",
            "",
            "## Every engine",
            "",
            table,
            details(data),
            cold_report.details(data) if "gcs" in data else "",
            "",
            f"Run time {data['runtime_s']:.0f} s. Other processes on the machine used "
            f"{cpu['others_core_s']:.0f} core-s of the {cpu['capacity_core_s']:.0f} available "
            f"({cpu['others_share']:.0%}) during the run"
            + (
                " (numbers disturbed: re-run on a quiet machine)."
                if cpu["others_share"] > 0.1
                else "."
            ),
            "",
            "![latency and throughput vs concurrency](bench.png)",
            "",
        ]
    )
    (out / "bench.md").write_text(text)
    plot(data, out / "bench.png")
    print()
    print(text)
    print(f"wrote {out / 'bench.md'}, {out / 'bench.png'}")
