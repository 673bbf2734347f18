"""The cold path's server runs: the cold start from `gs://` against one from a local
directory, MODEL_PRELOAD on/off, and on/off pairs of features, in the same run (emulator,
stand-in) as `make bench`'s references; `make bench-cold` runs them alone (`--cold-only`).

- gs://: fake-gcs-server on loopback holds the whole fp32 artifact (SavedModel, `weights.bin`,
  both IRs); each cold start from `MODEL_WEIGHTS=gs://…` gets an empty `MODEL_CACHE_DIR` in
  /dev/shm (in memory, as Cloud Functions' /tmp) and is paired with a local-directory cold start
  run just before it; the server's "model fetched" log line says which files and bytes it read.
  The same gs:// cold start with the copy left to the worker (`infra/bench/copy_in_worker.py`)
  runs beside it: what the copy ahead of the server's imports gains.
- FEATURE_PAIRS (`infra/bench/features.py`): `(name, environment off, environment on)`; each
  pair's two servers run side by side and are sent requests in alternation (A B B A), warm end
  to end, reported as on/off.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra import local_gcs
from infra.bench import features
from infra.bench.features import FEATURE_PAIRS
from infra.bench.harness import Bench

__all__ = ["FEATURE_PAIRS", "cold_starts", "run_all", "run_gcs", "run_preload"]
COPY_IN_WORKER = Path(__file__).with_name("copy_in_worker.py")  # no copy ahead of the server
SHM = Path("/dev/shm")  # noqa: S108 - in memory like Cloud Functions' /tmp; private dirs inside


def _fetched(log: Path) -> dict[str, Any]:
    """The server's "model fetched" log line (files and bytes read from Cloud Storage)."""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"model fetched"' in line:
            return dict(json.loads(line))
    return {}


def cold_starts(
    bench: Bench,
    name: str,
    env: dict[str, str],
    first: Callable[[], dict[str, Any]],
    count: int,
    reference: Callable[[], float] | None = None,
    source: Path | None = None,
) -> list[dict[str, Any]]:
    """`count` cold starts of on_upload under `env` (server stopped after each answer), each
    after `reference()` (a bare `import tensorflow`: the machine's load right then)."""
    out = []
    for _ in range(count):
        before = reference() if reference else None
        server, cold = bench.start(name, env, first(), source)
        if before is not None:
            cold["import_tensorflow_s"] = before
        server.stop()
        cold["peak_rss_mb"] = server.sampler.peak_mb
        cold["fetched"] = _fetched(server.log)
        out.append(cold)
    return out


def run_gcs(
    bench: Bench,
    fp32_dir: Path,
    overrides: dict[str, str],
    first: Callable[[], dict[str, Any]],
    rounds: int,
) -> dict[str, Any]:
    """Local-directory cold start, then the same from gs:// (fp32 IR, then fp16 IR), `rounds`
    times; the artifact's size and what each gs:// start read."""
    emulator = local_gcs.start()
    cache_root = Path(tempfile.mkdtemp(prefix="autotagger-bench-cache-", dir=_cache_parent()))
    try:
        emulator.create_bucket("models")
        uri = emulator.put_artifact(fp32_dir, "models", "vgg16-random-fp32")
        manifest = json.loads((fp32_dir / "manifest.json").read_text())
        total = sum(int(f["bytes"]) for f in manifest["files"].values())
        base = {**overrides, "MODEL_ENGINE": "openvino", "MODEL_MAX_BATCH": "8"}
        result: dict[str, Any] = {"artifact_bytes": total, "rounds": []}
        for i in range(rounds):
            row: dict[str, Any] = {}
            for key, settings, source in (
                ("local", {"MODEL_WEIGHTS": str(fp32_dir)}, None),
                ("gcs", {"MODEL_WEIGHTS": uri}, None),
                ("gcs_in_worker", {"MODEL_WEIGHTS": uri}, COPY_IN_WORKER),
                ("gcs_fp16", {"MODEL_WEIGHTS": uri, "MODEL_PRECISION": "fp16"}, None),
            ):
                cache = cache_root / f"{key}-{i}"
                env = bench.env(
                    {
                        **base,
                        **settings,
                        "STORAGE_EMULATOR_HOST": emulator.url,
                        "MODEL_CACHE_DIR": str(cache),
                    }
                )
                row[key] = cold_starts(bench, f"gcs {key}", env, first, 1, source=source)[0]
                shutil.rmtree(cache, ignore_errors=True)
            result["rounds"].append(row)
        return result
    finally:
        shutil.rmtree(cache_root, ignore_errors=True)
        emulator.stop()


def _cache_parent() -> str | None:
    return str(SHM) if SHM.is_dir() else None


def run_preload(
    bench: Bench,
    env_of: Callable[[dict[str, str]], dict[str, str]],
    first: Callable[[], dict[str, Any]],
    rounds: int,
    reference: Callable[[], float],
) -> dict[str, list[dict[str, Any]]]:
    """OpenVINO cold starts with MODEL_PRELOAD=1 and 0, alternated (which goes first alternates
    too), each after an `import tensorflow` reference. One uncounted start comes first: the
    first request of a run also warms the emulator (its JIT), which would bias one side."""
    cold_starts(bench, "preload warm-up", env_of({"MODEL_PRELOAD": "0"}), first, 1)
    out: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
    for i in range(rounds):
        order = (("on", "1"), ("off", "0")) if i % 2 == 0 else (("off", "0"), ("on", "1"))
        for key, flag in order:
            env = env_of({"MODEL_PRELOAD": flag})
            out[key] += cold_starts(bench, f"preload {key}", env, first, 1, reference)
    return out


def run_all(
    bench: Bench,
    fp32_dir: Path,
    image: bytes,
    count: int,
    rounds: int,
    reference: Callable[[], float],
) -> dict[str, Any]:
    """This part's server runs (inside the run's emulator and stand-in): preload on/off,
    gs:// vs local, feature pairs, `rounds` of each."""

    def first() -> dict[str, Any]:
        return dict(bench.asset(image, "cold"))

    def env_of(extra: dict[str, str]) -> dict[str, str]:
        settings = {"MODEL_MAX_BATCH": "8", "DOWNLOAD_RENDITION": "1"}
        return dict(
            bench.env(
                {**settings, "MODEL_WEIGHTS": str(fp32_dir), "MODEL_ENGINE": "openvino", **extra}
            )
        )

    print("bench: cold starts with MODEL_PRELOAD on and off...", flush=True)
    out: dict[str, Any] = {"preload": run_preload(bench, env_of, first, rounds, reference)}
    print("bench: cold starts from gs:// (fake-gcs-server) and from a local dir...", flush=True)
    out["gcs"] = run_gcs(
        bench, fp32_dir, {"MODEL_MAX_BATCH": "8", "DOWNLOAD_RENDITION": "1"}, first, rounds
    )
    print("bench: features on / off, side by side...", flush=True)
    out["features"] = features.run_features(bench, env_of, image, min(40, 3 * count))
    return out
