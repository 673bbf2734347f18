"""`make bench`'s cold-path part: the goals against the fp32 floor, the cold start from `gs://`
against one from a local directory, MODEL_PRELOAD on/off, the fp16 IR, and on/off pairs of
features, all in the same run as `infra/bench.py`'s references (it calls these).

- gs://: fake-gcs-server on loopback holds the whole fp32 artifact (SavedModel, `weights.bin`,
  both IRs); each cold start from `MODEL_WEIGHTS=gs://…` gets an empty `MODEL_CACHE_DIR` in
  /dev/shm (in memory, as Cloud Functions' /tmp) and is paired with a local-directory cold start
  run just before it; the server's "model fetched" log line says which files and bytes it read.
- FEATURE_PAIRS: `(name, settings off, settings on)`; each pair is measured warm end to end, off
  and on in alternation (A B A B), and reported as on/off. Add a feature's switch here.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from infra import local_gcs

# (name, settings with the feature off, settings with it on): warm end to end, on / off.
FEATURE_PAIRS: list[tuple[str, dict[str, str], dict[str, str]]] = []
GOALS = {
    "cold": 0.35,
    "warm_floor": 1.25,
    "throughput_floor": 0.95,
    "rss_gb": 1.5,
    "gcs_vs_local": 1.3,
    "features": 0.03,
    "fp16_atol": 1e-4,
}
SHM = Path("/dev/shm")  # noqa: S108 - in memory like Cloud Functions' /tmp; private dirs inside


def _fetched(log: Path) -> dict[str, Any]:
    """The server's "model fetched" log line (files and bytes read from Cloud Storage)."""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"model fetched"' in line:
            return dict(json.loads(line))
    return {}


def cold_starts(
    bench: Any,
    name: str,
    env: dict[str, str],
    first: Callable[[], dict[str, Any]],
    count: int,
    reference: Callable[[], float] | None = None,
) -> list[dict[str, Any]]:
    """`count` cold starts of on_upload under `env` (server stopped after each answer), each
    after `reference()` (a bare `import tensorflow`: the machine's load right then)."""
    out = []
    for _ in range(count):
        before = reference() if reference else None
        server, cold = bench.start(name, env, first())
        if before is not None:
            cold["import_tensorflow_s"] = before
        server.stop()
        cold["peak_rss_mb"] = server.sampler.peak_mb
        cold["fetched"] = _fetched(server.log)
        out.append(cold)
    return out


def run_gcs(
    bench: Any,
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
            for key, settings in (
                ("local", {"MODEL_WEIGHTS": str(fp32_dir)}),
                ("gcs", {"MODEL_WEIGHTS": uri}),
                ("gcs_fp16", {"MODEL_WEIGHTS": uri, "MODEL_PRECISION": "fp16"}),
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
                row[key] = cold_starts(bench, f"gcs {key}", env, first, 1)[0]
                shutil.rmtree(cache, ignore_errors=True)
            result["rounds"].append(row)
        return result
    finally:
        shutil.rmtree(cache_root, ignore_errors=True)
        emulator.stop()


def _cache_parent() -> str | None:
    return str(SHM) if SHM.is_dir() else None


def run_preload(
    bench: Any,
    env_of: Callable[[dict[str, str]], dict[str, str]],
    first: Callable[[], dict[str, Any]],
    rounds: int,
    reference: Callable[[], float],
) -> dict[str, list[dict[str, Any]]]:
    """OpenVINO cold starts with MODEL_PRELOAD=1 and 0, alternated, each after an `import
    tensorflow` reference."""
    out: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
    for _ in range(rounds):
        for key, flag in (("on", "1"), ("off", "0")):
            env = env_of({"MODEL_PRELOAD": flag})
            out[key] += cold_starts(bench, f"preload {key}", env, first, 1, reference)
    return out


def run_features(
    bench: Any,
    env_of: Callable[[dict[str, str]], dict[str, str]],
    image: bytes,
    count: int,
) -> dict[str, Any]:
    """Each FEATURE_PAIRS entry: warm end to end off and on, A B A B."""
    out: dict[str, Any] = {}
    for name, off, on in FEATURE_PAIRS:
        samples: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(2):
            for key, settings in (("off", off), ("on", on)):
                server, _ = bench.start(f"{name} {key}", env_of(settings), bench.asset(image, "f"))
                try:
                    bench.deliver(server.url, bench.asset(image, "fw"))
                    samples[key] += [o.ms for o in bench.sequential(server, image, "f", count)]
                finally:
                    server.stop()
        out[name] = {k: statistics.median(v) for k, v in samples.items()}
    return out


def run_all(
    bench: Any,
    fp32_dir: Path,
    image: bytes,
    count: int,
    rounds: int,
    reference: Callable[[], float],
) -> dict[str, Any]:
    """This part's server runs (inside bench.py's emulator and stand-in): preload on/off,
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
    if FEATURE_PAIRS:
        print("bench: features on / off...", flush=True)
    out["features"] = run_features(bench, env_of, image, count)
    return out


# -- fp16 (in a subprocess: `bench.py --part fp16`) ------------------------------------------------


def part_fp16(weights: str, batch: np.ndarray, repeat: int) -> dict[str, Any]:
    """The fp16-compressed IR against the fp32 one: bytes, parity (seeded weights on `batch`;
    crafted distributions), batch-1 forward and load time."""
    import time

    from autotagger import model
    from autotagger.model import engines
    from tests.crafted_ir import crafted_artifact, distributions

    directory = Path(weights)
    manifest = json.loads((directory / "manifest.json").read_text())
    out: dict[str, Any] = {
        "fp32_bytes": manifest["openvino"]["bytes"],
        "fp16_bytes": manifest["openvino_fp16"]["bytes"],
    }
    outputs, timing = {}, {}
    for precision in ("fp32", "fp16"):
        started = time.perf_counter()
        classifier = model._load(weights, precision, engine="openvino")
        load_s = time.perf_counter() - started
        outputs[precision] = classifier.predict(batch)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            classifier.predict(batch[:1])
            times.append(time.perf_counter() - started)
        timing[precision] = {"load_s": load_s, "forward_ms": statistics.median(times) * 1e3}
        del classifier
    out["timing"] = timing
    out["seeded"] = _parity(outputs["fp32"], outputs["fp16"])
    out["crafted"] = {}
    with tempfile.TemporaryDirectory(prefix="autotagger-crafted-") as tmp:
        for i, (name, p) in enumerate(distributions()):
            artifact = crafted_artifact(directory, np.log(p), Path(tmp) / str(i))
            pair = {}
            for sub in ("openvino", "openvino-fp16"):
                crafted = engines.load_openvino(artifact / sub / "model.xml", name)
                pair[sub] = crafted.predict(batch[:2])
                del crafted
            out["crafted"][name] = {
                "top_p": float(p.max()),
                **_parity(pair["openvino"], pair["openvino-fp16"]),
            }
    return out


def _parity(fp32: np.ndarray, fp16: np.ndarray) -> dict[str, Any]:
    top5 = [
        list(np.argsort(-a)[:5]) == list(np.argsort(-b)[:5])
        for a, b in zip(fp32, fp16, strict=True)
    ]
    return {
        "images": len(fp32),
        "top5_identical": int(sum(top5)),
        "max_abs_diff": float(np.abs(fp32 - fp16).max()),
    }


# -- report ----------------------------------------------------------------------------------------


def _ok(met: bool) -> str:
    return "yes" if met else "**no**"


def report(data: dict[str, Any]) -> str:
    """The table of this part's goals (cold start, floor, gs://, fp16, features)."""
    pre = data["preload"]
    tf_s = statistics.median(c["import_tensorflow_s"] for c in pre["on"] + pre["off"])
    on = statistics.median(c["cold_s"] / c["import_tensorflow_s"] for c in pre["on"])
    off = statistics.median(c["cold_s"] / c["import_tensorflow_s"] for c in pre["off"])
    on_s = statistics.median(c["cold_s"] for c in pre["on"])
    off_s = statistics.median(c["cold_s"] for c in pre["off"])
    lines = [
        "| measure (OpenVINO, latency hint, micro-batching) | figure | goal | met |",
        "| --- | ---: | --- | --- |",
        f"| cold start / a bare `import tensorflow` run just before each (median {tf_s:.2f} s), "
        f"MODEL_PRELOAD=1 (default), median of {len(pre['on'])} | {on:.2f}x ({on_s:.2f} s) "
        f"| ≤ {GOALS['cold']}x | {_ok(on <= GOALS['cold'])} |",
        f"| … MODEL_PRELOAD=0 (the model loads on the first request), alternated with the above "
        f"| {off:.2f}x ({off_s:.2f} s); preload saves {off_s - on_s:+.2f} s | (on/off) | |",
    ]
    if "openvino" in data.get("runs", {}):
        floor_ms = data["floor"]["floor_ms"]
        ov = data["runs"]["openvino"]
        warm = ov["small_ms"] / floor_ms
        level = ov["levels"][8]
        ceiling = 1e3 / floor_ms
        through = level["throughput_rps"] / ceiling
        rss = ov["peak_rss_mb"] / 1024
        lines += [
            f"| warm end to end (median) / fp32 floor ({floor_ms:.0f} ms) | {warm:.2f}x "
            f"({ov['small_ms']:.0f} ms) | ≤ {GOALS['warm_floor']}x "
            f"| {_ok(warm <= GOALS['warm_floor'])} |",
            f"| throughput at 8 concurrent / the floor's ceiling ({ceiling:.1f}/s) "
            f"| {through:.2f}x ({level['throughput_rps']:.1f}/s, {level['errors']} errors) "
            f"| ≥ {GOALS['throughput_floor']}x, 0 errors "
            f"| {_ok(through >= GOALS['throughput_floor'] and level['errors'] == 0)} |",
            f"| peak RSS of the process tree | {rss:.2f} GB | ≤ {GOALS['rss_gb']} GB "
            f"| {_ok(rss <= GOALS['rss_gb'])} |",
        ]
    gcs = data["gcs"]
    engine_files = {"openvino/model.xml", "openvino/model.bin"}
    for key, label, files in (
        ("gcs", "fp32 IR", engine_files),
        (
            "gcs_fp16",
            "fp16 IR (MODEL_PRECISION=fp16)",
            {"openvino-fp16/model.xml", "openvino-fp16/model.bin"},
        ),
    ):
        ratios = [r[key]["cold_s"] / r["local"]["cold_s"] for r in gcs["rounds"]]
        ratio = statistics.median(ratios)
        fetched = [r[key]["fetched"] for r in gcs["rounds"]]
        read = statistics.median(f.get("bytes_read", 0) for f in fetched) / 1e6
        only = all(set(f.get("files", [])) == files for f in fetched)
        fetch_ms = statistics.median(f.get("fetch_ms", 0) for f in fetched)
        cold = statistics.median(r[key]["cold_s"] for r in gcs["rounds"])
        local = statistics.median(r["local"]["cold_s"] for r in gcs["rounds"])
        lines.append(
            f"| cold start from gs:// ({label}) / from a local directory (local fp32 IR, run just "
            f"before) | {ratio:.2f}x ({cold:.2f} vs {local:.2f} s; fetch {fetch_ms:.0f} ms); read "
            f"{read:.0f} MB of the artifact's {gcs['artifact_bytes'] / 1e6:.0f} MB, "
            f"{'only' if only else '**not only**'} the engine's files "
            f"| ≤ {GOALS['gcs_vs_local']}x, only the engine's files "
            f"| {_ok(ratio <= GOALS['gcs_vs_local'] and only)} |"
        )
    fp16 = data["fp16"]
    seeded = fp16["seeded"]
    crafted_ok = all(
        c["top5_identical"] == c["images"] and c["max_abs_diff"] <= GOALS["fp16_atol"]
        for c in fp16["crafted"].values()
    )
    seeded_ok = (
        seeded["top5_identical"] == seeded["images"]
        and seeded["max_abs_diff"] <= GOALS["fp16_atol"]
    )
    crafted = "; ".join(
        f"{name} (top p {c['top_p']:.2f}): {c['top5_identical']}/{c['images']}, "
        f"{c['max_abs_diff']:.1e}"
        for name, c in fp16["crafted"].items()
    )
    t = fp16["timing"]
    lines.append(
        f"| fp16 IR vs fp32 IR: top-5 identical, max abs probability difference; seeded weights "
        f"({seeded['images']} images) / crafted distributions | {seeded['top5_identical']}/"
        f"{seeded['images']}, {seeded['max_abs_diff']:.1e} / {crafted} | identical top-5, "
        f"≤ 1e-4 on both, to be the default | {_ok(seeded_ok and crafted_ok)} (default: "
        f"{'fp16' if seeded_ok and crafted_ok else 'fp32'}) |"
    )
    lines.append(
        f"| fp16 IR: bytes, load + first forward, forward batch 1 (fp32 IR) "
        f"| {fp16['fp16_bytes'] / 1e6:.0f} MB ({fp16['fp32_bytes'] / 1e6:.0f}), "
        f"{t['fp16']['load_s']:.2f} s ({t['fp32']['load_s']:.2f}), "
        f"{t['fp16']['forward_ms']:.0f} ms ({t['fp32']['forward_ms']:.0f}) | (report) | |"
    )
    for name, row in data.get("features", {}).items():
        extra = row["on"] / row["off"] - 1
        lines.append(
            f"| feature {name}: warm end to end on / off (A B A B) | {extra:+.1%} "
            f"({row['on']:.0f} / {row['off']:.0f} ms) | ≤ +{GOALS['features']:.0%} "
            f"| {_ok(extra <= GOALS['features'])} |"
        )
    if not data.get("features"):
        lines.append(
            "| new features on / off, warm end to end | (no pair listed: add one to "
            "`infra/bench_cold.py` FEATURE_PAIRS) | ≤ +3% | |"
        )
    return "\n".join(lines)


def write_only(data: dict[str, Any], out: Path) -> None:
    """`bench.py --cold-only`: this part's table and details in OUT/bench_cold.md (+ .json)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_cold.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    cpu = data["cpu"]
    text = "\n".join(
        [
            "# Benchmark: the cold path (`make bench` run with `--cold-only`)",
            "",
            f"Measured {data['date']} on {data['machine']} (random weights; ratios from one "
            f"run). Other processes used {cpu['others_share']:.0%} of the machine's CPU during "
            f"the run ({cpu['others_core_s']:.0f} of {cpu['capacity_core_s']:.0f} core-s).",
            "",
            report(data),
            details(data),
            "",
        ]
    )
    (out / "bench_cold.md").write_text(text)
    print(text)


def details(data: dict[str, Any]) -> str:
    out = ["", "Cold starts of this part (each: process start → first answer):", ""]
    for key, colds in data["preload"].items():
        out.append(
            f"- MODEL_PRELOAD {key}: "
            + "; ".join(
                f"{c['cold_s']:.2f} s (import tensorflow {c['import_tensorflow_s']:.2f} s; "
                f"listening {c['listening_s']:.2f} s; first request {c['first_request_s']:.2f} s: "
                + ", ".join(f"{k} {v:.0f}" for k, v in c["server_timings_ms"].items())
                + " ms)"
                for c in colds
            )
        )
    for i, row in enumerate(data["gcs"]["rounds"]):
        parts = []
        for key, c in row.items():
            fetched = c["fetched"]
            parts.append(
                f"{key} {c['cold_s']:.2f} s (listening {c['listening_s']:.2f} s, first request "
                f"{c['first_request_s']:.2f} s, fetched {fetched.get('bytes_read', 0) / 1e6:.0f} "
                f"MB in {fetched.get('fetch_ms', 0):.0f} ms: "
                f"{', '.join(fetched.get('files', []))}; peak RSS {c['peak_rss_mb']:.0f} MB)"
            )
        out.append(f"- gs:// round {i + 1}: " + "; ".join(parts))
    return "\n".join(out)
