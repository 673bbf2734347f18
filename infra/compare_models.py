"""Agreement of the int8 (LiteRT) model with the fp32 one on a folder of images.

    python infra/compare_models.py --images DIR [--fp32 DIR] [--int8 DIR] [--require 0.99]

Both models see the same input (imaging.load_rgb + preprocess, as served). Prints a markdown
table: top-1 agreement (same best class), top-5 agreement (shared classes among the two top-5
lists), fp32's top-1 inside int8's top-5, the largest probability difference, and each model's
time per image. `--require P` exits 1 when top-1 agreement is below P: with real ImageNet
weights, 0.99 must hold before anyone turns the fast path on (MODEL_PRECISION=int8). Without
--fp32/--int8 it uses the cached random-weights artifacts (a smoke test: random weights say
nothing about real agreement).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from autotagger import model
from autotagger.errors import ImageError
from autotagger.media import imaging

ROOT = Path(__file__).resolve().parents[1]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def _images(folder: Path) -> tuple[list[str], np.ndarray]:
    names, pixels = [], []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        try:
            pixels.append(imaging.load_rgb(path.read_bytes(), 10**9))
        except ImageError as exc:
            print(f"skipped {path.name}: {exc.reason}", file=sys.stderr)
            continue
        names.append(str(path.relative_to(folder)))
    if not names:
        raise SystemExit(f"compare_models: no readable image in {folder}")
    return names, np.stack(pixels)


def _run(classifier: model.Classifier, batch: np.ndarray) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    out = np.concatenate([classifier.predict(batch[i : i + 1]) for i in range(len(batch))])
    return out, (time.perf_counter() - started) / len(batch)


def compare(fp32: np.ndarray, int8: np.ndarray, k: int = 5) -> dict[str, float]:
    """Agreement statistics of two (N, 1000) probability arrays."""
    top_fp32 = np.argsort(-fp32, axis=1)[:, :k]
    top_int8 = np.argsort(-int8, axis=1)[:, :k]
    shared = [len(set(a) & set(b)) / k for a, b in zip(top_fp32, top_int8, strict=True)]
    return {
        "images": float(len(fp32)),
        "top1": float(np.mean(top_fp32[:, 0] == top_int8[:, 0])),
        "top5": float(np.mean(shared)),
        "top1_in_top5": float(
            np.mean([a[0] in b for a, b in zip(top_fp32, top_int8, strict=True)])
        ),
        "max_abs_prob_diff": float(np.abs(fp32 - int8).max()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--images", required=True, type=Path, help="folder of images")
    parser.add_argument("--fp32", help="fp32 artifact (default: the random-weights one)")
    parser.add_argument("--int8", help="int8 artifact (default: the random-weights one)")
    parser.add_argument("--require", type=float, help="minimum top-1 agreement (e.g. 0.99)")
    parser.add_argument("--json", action="store_true", help="also print the numbers as JSON")
    args = parser.parse_args(argv)

    if args.fp32 is None or args.int8 is None:
        from infra import local

        args.fp32 = args.fp32 or str(local.ensure_random_model("fp32"))
        args.int8 = args.int8 or str(local.ensure_random_model("int8"))
    names, pixels = _images(args.images)
    batch = imaging.preprocess(pixels)
    int8_model = model.get_model(args.int8, "int8")
    fp32_model = model.get_model(args.fp32, "fp32")
    fp32_out, fp32_s = _run(fp32_model, batch)
    int8_out, int8_s = _run(int8_model, batch)
    stats = compare(fp32_out, int8_out)
    stats.update(fp32_ms=fp32_s * 1e3, int8_ms=int8_s * 1e3)

    print(f"fp32: {fp32_model.name} ({args.fp32})")
    print(f"int8: {int8_model.name} ({args.int8})")
    print()
    print(
        "| images | top-1 agreement | top-5 agreement | fp32 top-1 in int8 top-5 "
        "| max abs prob diff | fp32 ms/image | int8 ms/image |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {len(names)} | {stats['top1']:.1%} | {stats['top5']:.1%} "
        f"| {stats['top1_in_top5']:.1%} | {stats['max_abs_prob_diff']:.4f} "
        f"| {stats['fp32_ms']:.0f} | {stats['int8_ms']:.0f} |"
    )
    disagreements = [
        n for n, a, b in zip(names, fp32_out.argmax(1), int8_out.argmax(1), strict=True) if a != b
    ]
    if disagreements:
        print(
            f"\ntop-1 differs on: {', '.join(disagreements[:20])}"
            + (" ..." if len(disagreements) > 20 else "")
        )
    if args.json:
        print(json.dumps(stats))
    if args.require is not None and stats["top1"] < args.require:
        print(f"\nFAIL: top-1 agreement {stats['top1']:.1%} is below {args.require:.1%}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
