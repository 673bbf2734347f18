"""Benchmark: cold start, warm latency, big photos, concurrency and memory, as ratios, for each
engine (TensorFlow and OpenVINO fp32, LiteRT int8) side by side.

    python -m infra.bench [--out docs] [--quick]       (what `make bench` runs)
    python -m infra.bench --from-json docs/bench.json  (rewrite the report of a finished run)
    python -m infra.bench --cold-only                  (the cold path alone: `make bench-cold`)

Everything is measured side by side in one run on this machine, whose CPU model is printed:

- bare references, each in its own subprocess: `python -c "import tensorflow"`; the fp32 floor
  (the best GFLOP/s of a large fp32 matmul, NumPy's and TensorFlow's, and VGG16's 30.95 GFLOP at
  that rate); the model's forward pass per engine (TensorFlow and OpenVINO on the fp32
  artifact, LiteRT on the int8 one; batch 1 and 8, warm); OpenVINO's configurations (latency
  hint with and without micro-batching, throughput hint with a request pool) at 8 concurrent
  callers, measured in alternation; OpenVINO's labels against TensorFlow's; and the seed-style
  pipeline (build Keras VGG16, full-size `load_img`, `model.predict()` per image);
- `on_upload` under functions-framework (gunicorn, THREADS=8) with the Firestore emulator and
  the Cloudinary stand-in, sent signed webhooks the way Cloudinary does: cold start (process
  start to first answer), warm end to end, a 12 MP JPEG against a small one, 1/2/4/8 concurrent
  requests, and the peak RSS of the server's process tree (psutil, sampled every 25 ms);
  configurations: TensorFlow, TensorFlow with micro-batching (MODEL_MAX_BATCH=8), OpenVINO
  (latency hint, micro-batching), int8, and TensorFlow with DOWNLOAD_RENDITION=0 (the full-size
  fallback).

The stand-in renders derived images with Pillow in this process. Cloudinary stores a derived
image once made, and an upload preset with an `eager` transformation makes it before the
notification is sent; the stand-in is given the same behaviour (renditions made at upload),
and the cost of a rendition made on demand (first request of a 12 MP photo) is reported too.

Other processes' CPU use during the run is reported: on a shared machine the absolute numbers
move, the ratios from one run are what count. Prints a markdown table and writes OUT/bench.md,
OUT/bench.json and OUT/bench.png (latency and throughput against concurrency). Random weights
(no internet): only timings, memory and pixel/label agreement mean anything. `--quick` runs
fewer requests.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from infra.bench import output, run
from infra.bench.harness import ROOT
from infra.bench.parts import run_part


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m infra.bench",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument(
        "--from-json", type=Path, help="only rewrite the report from a bench.json of a run"
    )
    parser.add_argument(
        "--cold-only",
        action="store_true",
        help="only the cold path (preload, gs:// vs local, fp16, features): OUT/bench_cold.md",
    )
    parser.add_argument("--part", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=15, help=argparse.SUPPRESS)
    parser.add_argument("--engine", default="auto", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.part:
        print(json.dumps(run_part(args)))
        return 0
    if args.cold_only:
        return run.cold_only(args.out, 2 if args.quick else 3)
    if args.from_json:
        output.write(output.read_json(args.from_json), args.out)
        return 0
    return run.everything(args.out, args.quick)


if __name__ == "__main__":
    raise SystemExit(main())
