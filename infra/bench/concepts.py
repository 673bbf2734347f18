"""What concept tags cost per image, side by side with the top-k decoding every image already pays.

    python -m infra.bench.concepts [--images 2000]

Runs on softmax-like vectors (no model needed): per image, `concepts.fields` (the 1000xC matrix
product, the threshold, sorting, the document's dicts) against `model.top_k` (argsort + decode),
interleaved in one run so both see the same machine load; also one batched product for N
images, and the share of the 1000 classes that at least one concept covers. Prints one JSON
object; the README's "Concept tags" section quotes it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from autotagger import concepts, model


def _vectors(count: int, seed: int = 0) -> np.ndarray:
    """Softmax outputs from sharp to flat (Dirichlet with varied concentration), float32."""
    rng = np.random.default_rng(seed)
    rows = [rng.dirichlet(np.full(1000, 10 ** rng.uniform(-2, 0))) for _ in range(count)]
    return np.asarray(rows, dtype=np.float32)


def _per_call_us(call: object, vector: np.ndarray, repeat: int = 5) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        call(vector)  # type: ignore[operator]
    return (time.perf_counter() - started) / repeat * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.bench.concepts", description=__doc__)
    parser.add_argument("--images", type=int, default=2000)
    args = parser.parse_args(argv)
    vectors = _vectors(args.images)
    vocab = concepts.vocabulary()
    concepts.fields(vectors[0], 0.5)  # warm: the file is read and the matrix built once
    model.top_k(vectors[0], 5)

    concept_us, top_k_us = [], []
    for vector in vectors:  # interleaved: the same moment of the shared machine for both
        concept_us.append(_per_call_us(lambda v: concepts.fields(v, 0.5), vector))
        top_k_us.append(_per_call_us(lambda v: model.top_k(v, 5), vector))
    started = time.perf_counter()
    concepts.scores(vectors)
    batch_us = (time.perf_counter() - started) / len(vectors) * 1e6
    covered = int((vocab.matrix.sum(axis=1) > 0).sum())
    print(
        json.dumps(
            {
                "images": len(vectors),
                "concepts": len(vocab.names),
                "vocabulary": vocab.version,
                "concepts_fields_us_p50": round(statistics.median(concept_us), 1),
                "concepts_fields_us_p99": round(float(np.percentile(concept_us, 99)), 1),
                "top_k_us_p50": round(statistics.median(top_k_us), 1),
                "concepts_over_top_k": round(
                    statistics.median(concept_us) / statistics.median(top_k_us), 2
                ),
                "batched_scores_us_per_image": round(batch_us, 2),
                "classes_covered": covered,
                "classes_covered_share": covered / 1000,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
