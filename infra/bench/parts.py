"""`python -m infra.bench --part NAME …`: one measurement in a fresh process (its imports and
memory its own), answered as one JSON line."""

from __future__ import annotations

import argparse
from typing import Any

from infra.bench import fp16, references, seed


def run_part(args: argparse.Namespace) -> dict[str, Any]:
    """The measurement `args.part` names, with its `--weights`, `--precision`, `--repeat`,
    `--engine`."""
    if args.part == "forward":
        return references.part_forward(args.weights, args.precision, args.repeat, args.engine)
    if args.part == "floor":
        return references.part_floor()
    if args.part == "tune":
        return references.part_tune(args.weights, args.repeat)
    if args.part == "fidelity":
        return references.part_fidelity(args.weights)
    if args.part == "fp16":
        return fp16.part(args.weights, args.repeat)
    if args.part == "seed":
        fp32_dir, int8_dir = args.weights.split(",")
        return seed.part_seed(fp32_dir, int8_dir, args.repeat)
    raise SystemExit(f"bench: unknown part {args.part!r}")
