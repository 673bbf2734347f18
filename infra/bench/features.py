"""What the new features cost warm end to end: each pair's two `on_upload` servers, the feature
off and on, run side by side and sent the same image in alternation (off, on, on, off, ...:
A B B A, so neither side always goes first), so both see the same moment of the shared machine.

    python -m infra.bench.features [--pairs 30]   (alone: its own emulator and stand-in)

`FEATURE_PAIRS`: `(name, environment off, environment on)`. The keys are Settings variables or
one of the bench's own (`BENCH_KEYS`):

- `BENCH_WITHOUT` (`infra/bench/feature_switch.py`): features taken out of the pipeline. No
  setting turns concepts or the embedding off: the embedding is an output of the same forward,
  and concepts are computed for every image (CONCEPT_THRESHOLD only decides which are kept);
- `BENCH_VOCABULARY=1`: a learned vocabulary (`VOCABULARY_TAGS` tags, trained on the served
  model's name) published in the server's collection, so learned tags are looked up, applied and
  written. Without it the collection has none: the server's real "no vocabulary" state.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from autotagger import config, vocabulary_store
from autotagger.domain import Manifest
from autotagger.vocabulary_store import Vocabulary
from infra import local
from infra.bench import feature_switch, harness, inputs
from infra.bench.harness import Bench, Outcome

EVERYTHING = ",".join(feature_switch.FEATURES)
FEATURE_PAIRS: list[tuple[str, dict[str, str], dict[str, str]]] = [
    (
        "concepts + embedding + vocabulary",
        {feature_switch.VARIABLE: EVERYTHING},
        {"BENCH_VOCABULARY": "1"},
    ),
    ("concepts", {feature_switch.VARIABLE: "concepts"}, {}),
    ("embedding", {feature_switch.VARIABLE: "embedding"}, {}),
    ("vocabulary", {}, {"BENCH_VOCABULARY": "1"}),
]
BENCH_KEYS = (feature_switch.VARIABLE, "BENCH_VOCABULARY")
# Both sides of every pair: the random-weights model's answers are flat, so at the default 0.5
# no concept would fire; at 0.2 a few do (animal and the like), as on a real photo.
COMMON = {"CONCEPT_THRESHOLD": "0.2"}
VOCABULARY_TAGS = 50


def learned_vocabulary(model_name: str, tags: int = VOCABULARY_TAGS, seed: int = 0) -> Vocabulary:
    """A vocabulary as `cli.py learn` publishes one (512 x `tags` weights, bias, thresholds), for
    `model_name`'s embeddings; a few of its tags fire on any one image (logits N(-2.5, 1.5))."""
    rng = np.random.default_rng(seed)
    return Vocabulary(
        version=0,
        model=model_name,
        tags=tuple(f"learned-{i:02d}" for i in range(tags)),
        weights=(rng.normal(size=(512, tags)) * 1.5).astype(np.float32),
        bias=np.full(tags, -2.5, np.float32),
        thresholds=np.full(tags, 0.5, np.float32),
    )


def pair_env(
    env_of: Any, settings: dict[str, str], model_name: str, collection: str
) -> tuple[dict[str, str], bool]:
    """The server's environment for one side of a pair (the bench's keys resolved), and whether
    it is served without features (from `without_features.py`)."""
    chosen = {k: v for k, v in settings.items() if k != "BENCH_VOCABULARY"}
    env = dict(env_of({**COMMON, **chosen}))
    env["FIRESTORE_COLLECTION"] = collection
    if settings.get("BENCH_VOCABULARY") == "1":
        # the client library finds the emulator in this process's environment
        with mock.patch.dict(
            os.environ, {"FIRESTORE_EMULATOR_HOST": env["FIRESTORE_EMULATOR_HOST"]}
        ):
            vocabulary_store.publish(config.load_settings(env), learned_vocabulary(model_name))
    return env, feature_switch.VARIABLE in settings


def _summary(outcomes: list[Outcome]) -> dict[str, Any]:
    records = [o.record for o in outcomes]
    stages = {s for r in records for s in r.get("timings", {})}
    return {
        "ms": statistics.median(o.ms for o in outcomes),
        "errors": sum(not o.ok for o in outcomes),
        "stages_ms": {
            s: round(statistics.median(r["timings"].get(s, 0.0) for r in records), 2)
            for s in sorted(stages)
        },
        "tags": statistics.median(len(r.get("tags") or []) for r in records),
        "concepts": statistics.median(len(r.get("concepts") or []) for r in records),
        "learned_tags": statistics.median(
            len((r.get("vocabulary") or {}).get("tags") or []) for r in records
        ),
    }


def _side_by_side(
    bench: Bench,
    env_of: Any,
    image: bytes,
    name: str,
    sides: dict[str, dict[str, str]],
    pairs: int,
    model_name: str,
    outcomes: dict[str, list[Outcome]],
) -> None:
    """Both servers up, a warm-up each, then `pairs` rounds of one request to each (A B B A)."""
    servers = {}
    try:
        for key, settings in sides.items():
            collection = f"feat{uuid.uuid4().hex[:10]}"
            env, stripped = pair_env(env_of, settings, model_name, collection)
            source = harness.ROOT / "infra" / "bench" / "without_features.py" if stripped else None
            servers[key], _ = bench.start(f"{name} {key}", env, bench.asset(image, "f"), source)
        for server in servers.values():
            bench.deliver(server.url, bench.asset(image, "fw"))
        for i in range(pairs):
            for key in ("off", "on") if i % 2 == 0 else ("on", "off"):
                outcomes[key].append(bench.deliver(servers[key].url, bench.asset(image, "f")))
    finally:
        for server in servers.values():
            server.stop()


def run_pair(
    bench: Bench,
    env_of: Any,
    image: bytes,
    name: str,
    off: dict[str, str],
    on: dict[str, str],
    pairs: int,
    model_name: str,
    rounds: int = 2,
) -> dict[str, Any]:
    """`rounds` times a fresh pair of servers (A B A B: a server's own forward speed, which
    depends on where its threads land on a shared machine, is averaged over several), each
    sent `pairs / rounds` requests in alternation."""
    outcomes: dict[str, list[Outcome]] = {"off": [], "on": []}
    for _ in range(rounds):
        sides = {"off": off, "on": on}
        _side_by_side(
            bench, env_of, image, name, sides, max(1, pairs // rounds), model_name, outcomes
        )
    pairs_of = list(zip(outcomes["off"], outcomes["on"], strict=True))
    off_ms = statistics.median(o.ms for o in outcomes["off"])
    outside = statistics.median(_outside_forward(b) - _outside_forward(a) for a, b in pairs_of)
    return {
        "off": _summary(outcomes["off"]),
        "on": _summary(outcomes["on"]),
        "pairs": len(pairs_of),
        "servers_per_side": rounds,
        "paired_ratio": statistics.median(b.ms / a.ms for a, b in pairs_of),
        # What the features add around the forward (end to end less the server's predict
        # stage, request by request): both sides run the same graph on the same image, and the
        # forward's swings between servers and moments are most of the end to end's noise.
        "outside_forward_extra_ms": outside,
        "outside_forward_extra_share": outside / off_ms,
    }


def _outside_forward(outcome: Outcome) -> float:
    return outcome.ms - float(outcome.record.get("timings", {}).get("predict", 0.0))


def run_features(bench: Bench, env_of: Any, image: bytes, pairs: int) -> dict[str, Any]:
    """Every FEATURE_PAIRS entry, measured as `run_pair` does."""
    weights = env_of({})["MODEL_WEIGHTS"]
    model_name = Manifest.read(Path(weights)).served_name
    return {
        name: run_pair(bench, env_of, image, name, off, on, pairs, model_name)
        for name, off, on in FEATURE_PAIRS
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.bench.features", description=__doc__)
    parser.add_argument("--pairs", type=int, default=30)
    args = parser.parse_args(argv)
    from infra.bench.accounting import CpuAccount, machine

    cpu = CpuAccount()
    fp32_dir = local.ensure_random_model("fp32")
    print(f"bench: {machine()}", flush=True)
    with harness.bench_servers() as bench, harness.eager_renditions():

        def env_of(extra: dict[str, str]) -> dict[str, str]:
            settings = {"MODEL_MAX_BATCH": "8", "DOWNLOAD_RENDITION": "1"}
            settings.update(MODEL_WEIGHTS=str(fp32_dir), MODEL_ENGINE="openvino")
            return dict(bench.env({**settings, **extra}))

        started = time.perf_counter()
        result = run_features(bench, env_of, inputs.photo((1024, 768)), args.pairs)
    account = cpu.stop()
    print(json.dumps({"features": result, "cpu": account, "s": time.perf_counter() - started}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
