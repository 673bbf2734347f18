"""Benchmark of the learned vocabulary: `learn` for 10k assets x 50 tags, and its serving cost.

    python -m infra.bench.vocabulary [--assets 10000] [--tags 50] [--no-firestore] [--no-model]

Measured side by side in one run on this machine:

- learning (`vocabulary_learn.learn`: 5-fold held-out scores + the final fit per tag, the
  goal is <= 30 s) on synthetic L2-normalised 512-d embeddings: `tags` visual tags of 2% of the
  assets each (a cluster direction), 5 tags people put on random assets (refused), every asset
  with at least one tag;
- the Firestore join `learn` does before training (batched projected reads of the documents'
  embeddings), on the official emulator, for the same assets (the Admin API listing is not
  counted: it is bounded by the API, 500 assets a request);
- serving: `vocabulary.apply` of the learned vocabulary to one embedding (the goal is <= 1 ms
  per image), against the bare VGG16 forward of one image (the random-weights artifact), the
  ratio of the two.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from typing import Any

import numpy as np

from autotagger import vocabulary, vocabulary_learn
from autotagger.vocabulary_store import Vocabulary
from infra import emulators, processes

DIM = 512


def _library(assets: int, tags: int, seed: int = 0) -> tuple[np.ndarray, list[set[str]]]:
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(tags, DIM))
    x = rng.normal(size=(assets, DIM))
    sets: list[set[str]] = [set() for _ in range(assets)]
    per_tag = max(10, assets // 50)
    for t in range(tags):
        chosen = rng.choice(assets, per_tag, replace=False)
        x[chosen] += 0.35 * directions[t]
        for i in chosen:
            sets[i].add(f"visual-{t:02d}")
    for t in range(5):
        for i in rng.choice(assets, per_tag, replace=False):
            sets[i].add(f"client-{t}")
    for tagged in sets:  # every asset tagged by someone: all of them take part
        if not tagged:
            tagged.add(f"client-{rng.integers(5)}")
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), sets


def _median_ms(call: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def _join(embeddings: np.ndarray) -> dict[str, float]:
    """Write the documents to a fresh emulator, then time `training_documents` over them."""
    from google.cloud import firestore
    from google.cloud.firestore_v1.vector import Vector

    from autotagger import config, vocabulary_store

    process, host = emulators.start_emulator()
    try:
        env = {
            "FIRESTORE_EMULATOR_HOST": host,
            "GOOGLE_CLOUD_PROJECT": "demo-bench-vocabulary",
            "FIRESTORE_COLLECTION": f"b{uuid.uuid4().hex[:8]}",
            "MODEL_WEIGHTS": "random",
        }
        os.environ.update(env)
        settings = config.load_settings()
        db = firestore.Client(project=env["GOOGLE_CLOUD_PROJECT"])
        collection = db.collection(env["FIRESTORE_COLLECTION"])
        ids = [f"a{i:06d}" for i in range(len(embeddings))]
        for start in range(0, len(ids), 200):
            batch = db.batch()
            for i in range(start, min(len(ids), start + 200)):
                batch.set(
                    collection.document(ids[i]),
                    {
                        "status": "done",
                        "version": 1,
                        "model": "bench",
                        "tags": ["label"],
                        "predictions": [{"label": "x", "wnid": "n0", "score": 0.1}] * 5,
                        "embedding": Vector(embeddings[i].tolist()),
                    },
                )
            batch.commit()
        started = time.perf_counter()
        found = vocabulary_store.training_documents(settings, ids)
        vectors = [vocabulary_store.embedding_of(found[i]) for i in ids]
        rows = np.stack([v for v in vectors if v is not None])
        seconds = time.perf_counter() - started
        assert rows.shape == embeddings.shape
        return {"join_s": seconds}
    finally:
        processes.stop([process])


def _forward_ms() -> float | None:
    from autotagger import model
    from infra import local

    classifier = model.get_model(str(local.ensure_random_model()), "fp32")
    batch = np.random.default_rng(0).uniform(-120, 130, (1, 224, 224, 3)).astype(np.float32)
    classifier.predict(batch)
    return _median_ms(lambda: classifier.predict(batch), 10)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m infra.bench.vocabulary", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--tags", type=int, default=50)
    parser.add_argument("--no-firestore", action="store_true")
    parser.add_argument("--no-model", action="store_true")
    args = parser.parse_args()

    embeddings, sets = _library(args.assets, args.tags)
    learned = vocabulary_learn.learn(embeddings, sets, min_examples=10, precision=0.9)
    refused = [r.tag for r in learned.reports if not r.learned]
    print(
        f"learn: {learned.assets} assets x {len(learned.reports)} tags in {learned.seconds:.1f} s "
        f"(goal <= 30 s): {len(learned.tags)} learned, refused {refused}"
    )
    recalls = [r.recall for r in learned.reports if r.learned and r.recall is not None]
    if recalls:
        print(f"  held-out recall at precision 0.9: median {statistics.median(recalls):.3f}")
    if not args.no_firestore:
        join_s = _join(embeddings)["join_s"]
        print(f"join (Firestore emulator, {args.assets} documents): {join_s:.1f} s")

    voc = Vocabulary(
        version=1,
        model="bench",
        tags=learned.tags,
        weights=learned.weights,
        bias=learned.bias,
        thresholds=learned.thresholds,
    )
    probes = embeddings[:200]
    index = iter(range(10**9))
    apply_ms = _median_ms(lambda: vocabulary.apply(voc, probes[next(index) % 200]), 2000)
    print(f"serving: apply {len(voc.tags)} tags to one embedding: {apply_ms:.4f} ms (goal <= 1 ms)")
    if not args.no_model:
        forward = _forward_ms()
        if forward:
            print(
                f"  VGG16 forward of one image: {forward:.0f} ms; apply / forward = "
                f"{apply_ms / forward:.5f}"
            )


if __name__ == "__main__":
    main()
