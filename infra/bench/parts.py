"""`python -m infra.bench --part NAME …`: one measurement in a fresh process (its imports and
memory its own), answered as one JSON line."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from infra.bench import fp16, references, seed


def run_part(args: argparse.Namespace) -> dict[str, Any]:
    """The measurement `args.part` names, with its `--weights`, `--precision`, `--repeat`,
    `--engine`."""
    parts: dict[str, Callable[[], dict[str, Any]]] = {
        "forward": lambda: references.part_forward(
            args.weights, args.precision, args.repeat, args.engine
        ),
        "floor": references.part_floor,
        "tune": lambda: references.part_tune(args.weights, args.repeat),
        "layers": lambda: references.part_layers(args.weights, args.repeat),
        "fidelity": lambda: references.part_fidelity(args.weights),
        "fp16": lambda: fp16.part(args.weights, args.repeat),
        "seed": lambda: seed.part_seed(*_pair(args.weights), args.repeat),
    }
    if args.part not in parts:
        raise SystemExit(f"bench: unknown part {args.part!r}")
    return parts[args.part]()


def _pair(weights: str) -> tuple[str, str]:
    """`--weights FP32_DIR,INT8_DIR` (the seed part's two artifacts)."""
    fp32_dir, int8_dir = weights.split(",")
    return fp32_dir, int8_dir
