"""Benchmark: cold start, warm latency, big photos, concurrency and memory, as ratios.

    python infra/bench.py [--out docs] [--quick]       (what `make bench` runs)

Everything is measured side by side in one run on this machine:

- bare references, each in its own subprocess: `python -c "import tensorflow"`, the model's
  forward pass (fp32 SavedModel artifact and int8 LiteRT artifact, batch 1, warm), and the
  seed-style pipeline (build Keras VGG16, full-size `load_img`, `model.predict()` per image);
- `on_upload` under functions-framework (gunicorn, THREADS=8) with the Firestore emulator and
  the Cloudinary stand-in, sent signed webhooks the way Cloudinary does: cold start (process
  start to first answer), warm end to end, a 12 MP JPEG against a small one, 1/2/4/8 concurrent
  requests, and the peak RSS of the server's process tree (psutil, sampled every 25 ms);
  configurations: fp32, fp32 with micro-batching (MODEL_MAX_BATCH=8), int8, and fp32 with
  DOWNLOAD_RENDITION=0 (the full-size fallback).

The stand-in renders derived images with Pillow in this process. Cloudinary stores a derived
image once made, and an upload preset with an `eager` transformation makes it before the
notification is sent; the stand-in is given the same behaviour (renditions made at upload),
and the cost of a rendition made on demand (first request of a 12 MP photo) is reported too.

Prints a markdown table and writes OUT/bench.md and OUT/bench.png (latency and throughput
against concurrency). Random weights (no internet): only timings, memory and pixel/label
agreement mean anything. Takes about 2 minutes here; `--quick` runs fewer requests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import requests
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "function")]

from infra import local  # noqa: E402
from infra import local_cloudinary as cloudinary_standin  # noqa: E402
from infra.local_cloudinary import CloudinaryStandin  # noqa: E402
from tests.helpers import notification_from, sign_body  # noqa: E402

SAMPLE_PHOTO = Path(__import__("matplotlib").get_data_path()) / "sample_data" / "grace_hopper.jpg"
LEVELS = (1, 2, 4, 8)
CORES = psutil.cpu_count() or 1
GOALS = {
    "cold_fp32": 1.6,
    "cold_int8": 0.5,
    "warm": 1.15,
    "big_ms": 50.0,
    "throughput8": 0.85,
    "rss_fp32": 1.8,
    "rss_int8": 0.5,
    "int8_vs_fp32": 0.4,
}


# -- inputs ------------------------------------------------------------------------------------


def photo(size: tuple[int, int], noise: float = 4.0, quality: int = 90) -> bytes:
    """A JPEG photo of `size`: the sample portrait resized, with sensor-like noise (realistic
    file size: ~2.5 MB at 12 MP)."""
    base = Image.open(SAMPLE_PHOTO).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    pixels = np.asarray(base, dtype=np.float32)
    pixels += np.random.default_rng(size[0]).normal(0.0, noise, pixels.shape)
    out = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=quality)
    return out.getvalue()


# -- subprocess helpers ------------------------------------------------------------------------


def _python(*args: str, timeout: float = 600) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args[:2]} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def _last_json(output: str) -> dict[str, Any]:
    lines = [line for line in output.splitlines() if line.startswith("{")]
    return dict(json.loads(lines[-1]))


def import_tensorflow_s(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        _python("-c", "import tensorflow")
        times.append(time.perf_counter() - started)
    return times


# -- the in-subprocess parts (run as `bench.py --part NAME ...`) ---------------------------------


def _part_forward(weights: str, precision: str, repeat: int) -> dict[str, Any]:
    from autotagger import model

    started = time.perf_counter()
    classifier = model.get_model(weights, precision)
    load_s = time.perf_counter() - started
    batch = np.random.default_rng(0).uniform(-120, 130, (8, 224, 224, 3)).astype(np.float32)
    classifier.predict(batch[:1])
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        classifier.predict(batch[:1])
        times.append(time.perf_counter() - started)
    per_image = {}
    for size in (4, 8):
        classifier.predict(batch[:size])
        started = time.perf_counter()
        classifier.predict(batch[:size])
        per_image[size] = (time.perf_counter() - started) / size * 1e3
    return {
        "load_s": load_s,
        "forward_ms": statistics.median(times) * 1e3,
        "forward_ms_all": [t * 1e3 for t in times],
        "per_image_ms_batch": per_image,
        "tensorflow_imported": "tensorflow" in sys.modules,
        "rss_mb": psutil.Process().memory_info().rss / 2**20,
    }


def _render(data: bytes, transformation: str) -> bytes:
    steps = cloudinary_standin._parse_transformation(transformation.split("/"))
    formats = [s["f"] for s in steps if "f" in s]
    return cloudinary_standin._render(data, steps, formats[-1] if formats else "png")


def _resize_images() -> list[tuple[str, bytes]]:
    """Photos and drawings at the aspect ratios uploads have (portrait, 4:3, 16:9, square)."""
    portrait = Image.open(SAMPLE_PHOTO).convert("RGB")
    images = []
    for name, size in [("portrait", (600, 800)), ("4:3", (1600, 1200)), ("16:9", (1920, 1080))]:
        images.append((f"photo {name}", photo(size)))
    for name, box in [("head crop", (100, 80, 420, 400)), ("wide crop", (0, 250, 512, 450))]:
        out = io.BytesIO()
        portrait.crop(box).save(out, "JPEG", quality=92)
        images.append((f"photo {name}", out.getvalue()))
    from PIL import ImageDraw

    rng = np.random.default_rng(5)
    for i, size in enumerate([(800, 800), (1200, 600), (600, 1200), (1024, 768), (2000, 800)]):
        canvas = Image.linear_gradient("L").resize(size).convert("RGB")
        draw = ImageDraw.Draw(canvas)
        for _ in range(12):
            x0, y0 = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
            w, h = int(rng.integers(20, size[0] // 2)), int(rng.integers(20, size[1] // 2))
            color = tuple(int(v) for v in rng.integers(0, 256, 3))
            shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
            shape((x0, y0, x0 + w, y0 + h), fill=color)
        out = io.BytesIO()
        canvas.save(out, "JPEG", quality=90)
        images.append((f"drawing {i} {size[0]}x{size[1]}", out.getvalue()))
    return images


def _part_seed(fp32_dir: str, int8_dir: str, repeat: int) -> dict[str, Any]:
    """Seed-style pipeline vs ours in one process, plus the resize/crop choice's effect."""
    import tensorflow as tf  # noqa: F401  (imported first: both pipelines need it)
    from keras.applications.vgg16 import preprocess_input
    from keras.utils import img_to_array, load_img

    from autotagger import cloudinary_client, imaging, model, model_build

    started = time.perf_counter()
    keras_model, _ = model_build.build_keras_vgg16("random")
    keras_model.predict(np.zeros((1, 224, 224, 3), np.float32), verbose=0)
    seed_ready_s = time.perf_counter() - started
    started = time.perf_counter()
    ours = model.get_model(fp32_dir)
    ours_ready_s = time.perf_counter() - started
    ours_int8 = model.get_model(int8_dir, "int8")

    def seed(data: bytes) -> np.ndarray:
        pixels = img_to_array(load_img(io.BytesIO(data), target_size=(224, 224)))
        return np.asarray(keras_model.predict(preprocess_input(pixels[None]), verbose=0))

    def ours_full(data: bytes) -> np.ndarray:
        return ours.predict(imaging.preprocess(imaging.load_rgb(data, 10**9)[None]))

    def ours_int8_full(data: bytes) -> np.ndarray:
        return ours_int8.predict(imaging.preprocess(imaging.load_rgb(data, 10**9)[None]))

    def timed(fn: Callable[[bytes], np.ndarray], data: bytes) -> float:
        fn(data)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            fn(data)
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1e3

    small, big = photo((1024, 768)), photo((4000, 3000))
    rendition = _render(big, cloudinary_client.RENDITION)
    per_image = {
        "seed_small_ms": timed(seed, small),
        "seed_12mp_ms": timed(seed, big),
        "ours_small_ms": timed(ours_full, small),
        "ours_12mp_full_ms": timed(ours_full, big),
        "ours_12mp_rendition_ms": timed(ours_full, rendition),
        "ours_int8_12mp_rendition_ms": timed(ours_int8_full, rendition),
    }
    decode = {}
    for name, data in [("12mp_full", big), ("12mp_rendition_png", rendition)]:
        imaging.load_rgb(data, 10**9)
        started = time.perf_counter()
        for _ in range(5):
            imaging.load_rgb(data, 10**9)
        decode[name] = (time.perf_counter() - started) / 5 * 1e3
    started = time.perf_counter()
    img_to_array(load_img(io.BytesIO(big), target_size=(224, 224)))
    decode["12mp_keras_load_img"] = (time.perf_counter() - started) * 1e3
    formats = {}
    for transformation in ["c_scale,w_224,h_224,f_png", "c_scale,w_224,h_224,f_jpg,q_95"]:
        derived = _render(big, transformation)
        imaging.load_rgb(derived, 10**9)
        started = time.perf_counter()
        for _ in range(20):
            pixels = imaging.load_rgb(derived, 10**9)
        formats[transformation] = {
            "bytes": len(derived),
            "decode_ms": (time.perf_counter() - started) / 20 * 1e3,
            "mean_abs_diff_vs_png": float(
                np.abs(pixels.astype(int) - imaging.load_rgb(rendition, 10**9).astype(int)).mean()
            ),
        }
    return {
        "seed_ready_s": seed_ready_s,
        "ours_ready_s": ours_ready_s,
        **per_image,
        "decode_ms": decode,
        "formats": formats,
        "resize": _resize_effect(ours, load_img, img_to_array),
    }


def _resize_effect(ours: Any, load_img: Any, img_to_array: Any) -> dict[str, Any]:
    """Each way of getting 224x224 pixels against our full-size decode and against Keras's
    default load_img (nearest): mean |pixel difference| and random-weights label agreement."""
    from autotagger import imaging

    variants: dict[str, list[np.ndarray]] = {
        "ours (full-size, draft + bilinear AA)": [],
        "c_scale rendition (squash, PNG)": [],
        "c_fill rendition (center crop, PNG)": [],
        "Keras load_img nearest": [],
        "Keras load_img bilinear": [],
    }
    names = []
    for name, data in _resize_images():
        names.append(name)
        pixels = [
            imaging.load_rgb(data, 10**9),
            imaging.load_rgb(_render(data, "c_scale,w_224,h_224,f_png"), 10**9),
            imaging.load_rgb(_render(data, "c_fill,w_224,h_224,f_png"), 10**9),
            img_to_array(load_img(io.BytesIO(data), target_size=(224, 224))).astype(np.uint8),
            img_to_array(
                load_img(io.BytesIO(data), target_size=(224, 224), interpolation="bilinear")
            ).astype(np.uint8),
        ]
        for key, value in zip(variants, pixels, strict=True):
            variants[key].append(value)
    outputs = {
        key: ours.predict(imaging.preprocess(np.stack(values))) for key, values in variants.items()
    }
    rows = {}
    for reference in ("ours (full-size, draft + bilinear AA)", "Keras load_img nearest"):
        ref_pixels, ref_out = np.stack(variants[reference]).astype(int), outputs[reference]
        for key, values in variants.items():
            if key == reference:
                continue
            out = outputs[key]
            top5 = [
                len(set(np.argsort(-a)[:5]) & set(np.argsort(-b)[:5])) / 5
                for a, b in zip(ref_out, out, strict=True)
            ]
            rows[f"{key} vs {reference}"] = {
                "mean_abs_pixel_diff": float(
                    np.abs(np.stack(values).astype(int) - ref_pixels).mean()
                ),
                "top1_agreement": float(np.mean(ref_out.argmax(1) == out.argmax(1))),
                "top5_overlap": float(np.mean(top5)),
            }
    return {"images": names, "rows": rows}


# -- the server runs -----------------------------------------------------------------------------


class CpuAccount:
    """CPU time this benchmark used (itself and every child it waited for) against the whole
    machine's, so a run disturbed by other work on the machine says so."""

    def __init__(self) -> None:
        self._machine = self._busy()
        self._ours = self._own()
        self._wall = time.perf_counter()

    @staticmethod
    def _busy() -> float:
        times = psutil.cpu_times()
        return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))

    @staticmethod
    def _own() -> float:
        t = psutil.Process().cpu_times()
        return float(t.user + t.system + t.children_user + t.children_system)

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self._wall
        machine = self._busy() - self._machine
        ours = self._own() - self._ours
        capacity = wall * (psutil.cpu_count() or 1)
        return {
            "wall_s": wall,
            "capacity_core_s": capacity,
            "ours_core_s": ours,
            "others_core_s": max(0.0, machine - ours),
            "others_share": max(0.0, machine - ours) / capacity,
            "loadavg_end": os.getloadavg()[0],
        }


class MemorySampler:
    """Peak RSS (sum over the process and its children) of a process tree, sampled."""

    def __init__(self, pid: int, interval_s: float = 0.025) -> None:
        self.pid, self.interval_s = pid, interval_s
        self.peak_mb = 0.0
        self.peak_pss_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in tree) / 2**20
            except psutil.Error:
                break
            self.peak_mb = max(self.peak_mb, rss)
            self._stop.wait(self.interval_s)

    def pss_now(self) -> float:
        try:
            root = psutil.Process(self.pid)
            tree = [root, *root.children(recursive=True)]
            pss = sum(p.memory_full_info().pss for p in tree) / 2**20
        except psutil.Error:
            return 0.0
        self.peak_pss_mb = max(self.peak_pss_mb, pss)
        return pss

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(timeout=2)
        return self.peak_mb


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    sampler: MemorySampler
    log: Path

    def stop(self) -> None:
        self.sampler.stop()
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@dataclass
class Outcome:
    status: int
    ms: float
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.record.get("status") == "done"


class Bench:
    def __init__(
        self,
        standin: CloudinaryStandin,
        emulator_host: str,
        workdir: Path,
        emulator_pid: int | None = None,
    ) -> None:
        self.standin, self.emulator_host, self.workdir = standin, emulator_host, workdir
        self.emulator_pid = emulator_pid
        self.counter = 0

    def cpu_s(self, server: Server) -> dict[str, float]:
        """CPU seconds so far of the server's process tree, the emulator and this process
        (the client and the Cloudinary stand-in)."""

        def tree(pid: int | None) -> float:
            if pid is None:
                return 0.0
            try:
                root = psutil.Process(pid)
                return sum(sum(p.cpu_times()[:2]) for p in [root, *root.children(recursive=True)])
            except psutil.Error:
                return 0.0

        return {
            "server": tree(server.process.pid),
            "emulator": tree(self.emulator_pid),
            "client_and_standin": float(sum(psutil.Process().cpu_times()[:2])),
        }

    def env(self, overrides: dict[str, str]) -> dict[str, str]:
        return {
            **os.environ,
            "CLOUDINARY_URL": self.standin.cloudinary_url,
            "CLOUDINARY_DELIVERY_HOSTS": self.standin.delivery_host,
            "FIRESTORE_EMULATOR_HOST": self.emulator_host,
            "GOOGLE_CLOUD_PROJECT": "demo-autotagger-bench",
            "FIRESTORE_COLLECTION": f"bench{int(time.time())}",
            "THREADS": "8",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            **overrides,
        }

    def asset(self, data: bytes, kind: str) -> dict[str, Any]:
        self.counter += 1
        return self.standin.add_asset(data, public_id=f"bench/{kind}/{self.counter:05d}")

    def deliver(self, url: str, resource: dict[str, Any]) -> Outcome:
        body = notification_from(resource)
        headers = sign_body(body, self.standin.api_secret)
        started = time.perf_counter()
        response = requests.post(url, data=body, headers=headers, timeout=300)
        ms = (time.perf_counter() - started) * 1e3
        try:
            record = response.json()
        except ValueError:
            record = {}
        return Outcome(response.status_code, ms, record)

    def start(self, name: str, env: dict[str, str], first: dict[str, Any]) -> tuple[Server, dict]:
        """Start on_upload and send `first` as soon as it listens: the cold start."""
        port = local.free_port()
        log = self.workdir / f"{name.replace(' ', '_')}-{port}.log"
        started = time.perf_counter()
        with log.open("wb") as out:
            process = local.serve("on_upload", port, env, log_to=out)
        server = Server(process, f"http://127.0.0.1:{port}/", MemorySampler(process.pid), log)
        deadline = started + 180
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.perf_counter() > deadline:
                    server.stop()
                    raise RuntimeError(f"{name}: server did not start; see {log}") from None
                time.sleep(0.005)
        listening = time.perf_counter()
        outcome = self.deliver(server.url, first)
        answered = time.perf_counter()
        if not outcome.ok:
            server.stop()
            raise RuntimeError(f"{name}: first request failed: {outcome}; see {log}")
        return server, {
            "cold_s": answered - started,
            "listening_s": listening - started,
            "first_request_s": answered - listening,
            "server_timings_ms": outcome.record.get("timings", {}),
        }

    def sequential(self, server: Server, data: bytes, kind: str, count: int) -> list[Outcome]:
        resources = [self.asset(data, kind) for _ in range(count)]
        return [self.deliver(server.url, r) for r in resources]

    def concurrent(self, server: Server, data: bytes, level: int, count: int) -> dict[str, Any]:
        resources = [self.asset(data, f"c{level}") for _ in range(count)]
        cpu_before = self.cpu_s(server)
        started = time.perf_counter()
        with ThreadPoolExecutor(level) as pool:
            outcomes = list(pool.map(lambda r: self.deliver(server.url, r), resources))
        elapsed = time.perf_counter() - started
        cpu_after = self.cpu_s(server)
        latencies = sorted(o.ms for o in outcomes)
        return {
            "cpu_ms_per_request": {
                k: (cpu_after[k] - cpu_before[k]) / count * 1e3 for k in cpu_before
            },
            "requests": count,
            "errors": sum(not o.ok for o in outcomes),
            "throughput_rps": count / elapsed,
            "p50_ms": statistics.median(latencies),
            "p90_ms": latencies[max(0, round(0.9 * count) - 1)],
        }


@contextmanager
def eager_renditions() -> Iterator[dict[str, bool]]:
    """Make the stand-in keep derived images, as Cloudinary does (and `eager` makes them at
    upload); `switch["on"] = False` renders on every request instead."""
    original = cloudinary_standin._render
    cache: dict[tuple[int, str, str], bytes] = {}
    switch = {"on": True}

    def render(data: bytes, steps: list[dict[str, str]], fmt: str) -> bytes:
        if not switch["on"]:
            return original(data, steps, fmt)
        key = (id(data), repr(steps), fmt)
        if key not in cache:
            cache[key] = original(data, steps, fmt)
        return cache[key]

    cloudinary_standin._render = render
    try:
        yield switch
    finally:
        cloudinary_standin._render = original


def run_config(
    bench: Bench,
    name: str,
    overrides: dict[str, str],
    images: dict[str, bytes],
    counts: dict[str, int],
    cold_starts: int,
    switch: dict[str, bool],
    full: bool = True,
) -> dict[str, Any]:
    env = bench.env(overrides)
    colds = []
    server: Server | None = None
    for i in range(cold_starts):
        server, cold = bench.start(name, env, bench.asset(images["small"], "cold"))
        colds.append(cold)
        if i < cold_starts - 1:
            server.stop()
    assert server is not None
    try:
        for data in (images["small"], images["12mp"]):  # pre-render both renditions (eager)
            bench.deliver(server.url, bench.asset(data, "warmup"))
        small = bench.sequential(server, images["small"], "small", counts["sequential"])
        big = bench.sequential(server, images["12mp"], "12mp", counts["sequential"])
        result: dict[str, Any] = {
            "cold": colds,
            "cold_s": statistics.median(c["cold_s"] for c in colds),
            "small_ms": statistics.median(o.ms for o in small),
            "small_all_ms": [o.ms for o in small],
            "small_server_ms": statistics.median(o.record["timings"]["total"] for o in small),
            "small_stages_ms": {
                stage: statistics.median(o.record["timings"].get(stage, 0.0) for o in small)
                for stage in small[0].record["timings"]
            },
            "12mp_ms": statistics.median(o.ms for o in big),
            "errors": sum(not o.ok for o in small + big),
        }
        if full:
            switch["on"] = False  # the rendition made on demand, on the first request
            fresh = bench.sequential(server, bytes(images["12mp"]), "12mp-fresh", 3)
            switch["on"] = True
            result["12mp_on_demand_ms"] = statistics.median(o.ms for o in fresh)
            result["levels"] = {}
            for level in LEVELS:
                count = max(counts["concurrent_min"], counts["per_level"] * level)
                result["levels"][level] = bench.concurrent(server, images["small"], level, count)
                result["errors"] += result["levels"][level]["errors"]
        result["pss_end_mb"] = server.sampler.pss_now()
    finally:
        server.stop()
    result["peak_rss_mb"] = server.sampler.peak_mb
    return result


# -- report -------------------------------------------------------------------------------------


def _ok(met: bool) -> str:
    return "yes" if met else "**no**"


def report(data: dict[str, Any]) -> str:
    tf_s = statistics.median(data["import_tensorflow_s"])
    fwd = {k: data["forward"][k]["forward_ms"] for k in ("fp32", "int8")}
    runs = data["runs"]
    fp32, batch, int8, norend = (
        runs["fp32"],
        runs["fp32+batch"],
        runs["int8"],
        runs["fp32 no rendition"],
    )
    seed = data["seed"]
    lines = [
        f"Measured {data['date']} on {data['machine']} (random weights; ratios from one run).",
        "",
        "| measure | fp32, MODEL_MAX_BATCH=1 | fp32, micro-batching (default) | int8 (LiteRT) "
        "| goal | met |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    cold = {k: runs[k]["cold_s"] / tf_s for k in ("fp32", "fp32+batch", "int8")}
    lines.append(
        f"| cold start / bare `import tensorflow` ({tf_s:.2f} s) "
        f"| {cold['fp32']:.2f}x ({fp32['cold_s']:.2f} s) | {cold['fp32+batch']:.2f}x "
        f"({batch['cold_s']:.2f} s) | {cold['int8']:.2f}x ({int8['cold_s']:.2f} s) "
        f"| ≤ 1.6x fp32, ≤ 0.5x int8 "
        f"| {_ok(cold['fp32'] <= GOALS['cold_fp32'])} / {_ok(cold['int8'] <= GOALS['cold_int8'])} |"
    )
    warm = {
        "fp32": fp32["small_ms"] / fwd["fp32"],
        "fp32+batch": batch["small_ms"] / fwd["fp32"],
        "int8": int8["small_ms"] / fwd["int8"],
    }
    lines.append(
        f"| warm end-to-end median / bare model forward (fp32 {fwd['fp32']:.0f} ms, "
        f"int8 {fwd['int8']:.0f} ms) | {warm['fp32']:.2f}x ({fp32['small_ms']:.0f} ms) "
        f"| {warm['fp32+batch']:.2f}x ({batch['small_ms']:.0f} ms) "
        f"| {warm['int8']:.2f}x ({int8['small_ms']:.0f} ms) | ≤ 1.15x "
        f"| {_ok(warm['fp32'] <= GOALS['warm'])} / {_ok(warm['int8'] <= GOALS['warm'])} |"
    )
    big = {k: runs[k]["12mp_ms"] - runs[k]["small_ms"] for k in ("fp32", "fp32+batch", "int8")}
    lines.append(
        f"| 12 MP JPEG - small JPEG, end to end (rendition made at upload) "
        f"| {big['fp32']:+.0f} ms | {big['fp32+batch']:+.0f} ms | {big['int8']:+.0f} ms "
        f"| ≤ +50 ms | {_ok(max(big.values()) <= GOALS['big_ms'])} |"
    )
    lines.append(
        f"| … rendition made on demand (first request) / DOWNLOAD_RENDITION=0 (fp32) "
        f"| {fp32['12mp_on_demand_ms'] - fp32['small_ms']:+.0f} ms / "
        f"{norend['12mp_ms'] - norend['small_ms']:+.0f} ms | | | (reference) | |"
    )
    for level in LEVELS:
        cells = []
        for key in ("fp32", "fp32+batch", "int8"):
            row = runs[key]["levels"][level]
            ceiling = 1e3 / fwd["int8" if key == "int8" else "fp32"]
            cells.append(
                f"{row['throughput_rps'] / ceiling:.2f}x ({row['throughput_rps']:.1f}/s, "
                f"p50 {row['p50_ms']:.0f} ms, {row['errors']} err)"
            )
        goal, met = "", ""
        if level == 8:
            goal = "≥ 0.85x, 0 errors"
            best = max(
                runs[k]["levels"][8]["throughput_rps"] * fwd["fp32"] / 1e3
                for k in ("fp32", "fp32+batch")
            )
            int8_8 = runs["int8"]["levels"][8]["throughput_rps"] * fwd["int8"] / 1e3
            met = f"{_ok(best >= GOALS['throughput8'])} / {_ok(int8_8 >= GOALS['throughput8'])}"
        lines.append(
            f"| throughput at {level} concurrent / (1 / model forward) | {' | '.join(cells)} "
            f"| {goal} | {met} |"
        )
    gain = batch["levels"][8]["throughput_rps"] / fp32["levels"][8]["throughput_rps"] - 1
    slower = batch["small_ms"] / fp32["small_ms"] - 1
    lines.append(
        f"| micro-batching vs MODEL_MAX_BATCH=1: throughput at 8 concurrent, single-request "
        f"latency | | {gain:+.0%}, {slower:+.0%} | | a gain, latency ≤ +10% "
        f"| {_ok(gain > 0 and slower <= 0.10)} |"
    )
    rss = {k: runs[k]["peak_rss_mb"] / 1024 for k in ("fp32", "fp32+batch", "int8")}
    lines.append(
        f"| peak RSS of the process tree (PSS at the end) | {rss['fp32']:.2f} GB "
        f"({fp32['pss_end_mb'] / 1024:.2f}) | {rss['fp32+batch']:.2f} GB "
        f"({batch['pss_end_mb'] / 1024:.2f}) | {rss['int8']:.2f} GB "
        f"({int8['pss_end_mb'] / 1024:.2f}) | ≤ 1.8 GB fp32, ≤ 0.5 GB int8 "
        f"| {_ok(max(rss['fp32'], rss['fp32+batch']) <= GOALS['rss_fp32'])} / "
        f"{_ok(rss['int8'] <= GOALS['rss_int8'])} |"
    )
    ours_12mp, ours_int8 = seed["ours_12mp_rendition_ms"], seed["ours_int8_12mp_rendition_ms"]
    lines.append(
        f"| seed-style (Keras VGG16 + full `load_img` + `predict()`) / ours, per 12 MP image "
        f"| {seed['seed_12mp_ms'] / ours_12mp:.1f}x "
        f"({seed['seed_12mp_ms']:.0f} / {ours_12mp:.0f} ms) | | "
        f"{seed['seed_12mp_ms'] / ours_int8:.1f}x ({ours_int8:.0f} ms) | (report) | |"
    )
    lines.append(
        f"| seed-style / ours, model ready after import (build + first predict / artifact load) "
        f"| {seed['seed_ready_s'] / seed['ours_ready_s']:.1f}x "
        f"({seed['seed_ready_s']:.1f} / {seed['ours_ready_s']:.2f} s) | | "
        f"{seed['seed_ready_s'] / data['forward']['int8']['load_s']:.0f}x "
        f"({data['forward']['int8']['load_s']:.2f} s) | (report) | |"
    )
    ratio = fwd["int8"] / fwd["fp32"]
    lines.append(
        f"| int8 / fp32 model time (batch 1) | | | {ratio:.2f}x | ≤ 0.4x "
        f"| {_ok(ratio <= GOALS['int8_vs_fp32'])} |"
    )
    return "\n".join(lines)


def details(data: dict[str, Any]) -> str:
    runs, seed = data["runs"], data["seed"]
    out = ["", "Details:", ""]
    tf = ", ".join(f"{t:.2f}" for t in data["import_tensorflow_s"])
    out.append(f"- bare `import tensorflow`: {tf} s")
    for key in ("fp32", "int8"):
        f = data["forward"][key]
        batches = ", ".join(f"batch {b}: {ms:.0f}" for b, ms in f["per_image_ms_batch"].items())
        runs_ms = " / ".join(f"{ms:.0f}" for ms in f["forward_ms_runs"])
        out.append(
            f"- {key} forward (batch 1, median of all samples): {f['forward_ms']:.1f} ms "
            f"(min {f['forward_ms_min']:.1f}; before / after the server runs: {runs_ms} ms); "
            f"per image at "
            f"{batches} ms; load {f['load_s']:.2f} s; tensorflow imported: "
            f"{f['tensorflow_imported']}"
        )
    for key, run in runs.items():
        colds = "; ".join(
            f"{c['cold_s']:.2f} s (listening {c['listening_s']:.2f} s, first request "
            f"{c['first_request_s']:.2f} s, model_load "
            f"{c['server_timings_ms'].get('model_load', 0):.0f} ms)"
            for c in run["cold"]
        )
        out.append(f"- {key}: cold starts {colds}")
        if "levels" in run:
            cpu = run["levels"][8]["cpu_ms_per_request"]
            out.append(
                "  CPU per request at 8 concurrent: "
                + ", ".join(f"{k.replace('_', ' ')} {v:.0f} ms" for k, v in cpu.items())
                + f" (the machine has {CORES * 1e3 / run['levels'][8]['throughput_rps']:.0f} "
                "core-ms per request at that rate)"
            )
        stages = ", ".join(f"{k} {v:.1f}" for k, v in run["small_stages_ms"].items())
        out.append(
            f"  warm small JPEG: client {run['small_ms']:.0f} ms, server "
            f"{run['small_server_ms']:.0f} ms ({stages} ms); 12 MP: {run['12mp_ms']:.0f} ms; "
            f"peak RSS {run['peak_rss_mb']:.0f} MB; errors {run['errors']}"
        )
    out.append(
        f"- seed-style per image: small {seed['seed_small_ms']:.0f} ms, 12 MP "
        f"{seed['seed_12mp_ms']:.0f} ms; ours in-process: small {seed['ours_small_ms']:.0f} ms, "
        f"12 MP full-size {seed['ours_12mp_full_ms']:.0f} ms, 12 MP rendition "
        f"{seed['ours_12mp_rendition_ms']:.0f} ms"
    )
    dec = seed["decode_ms"]
    out.append(
        f"- decode 12 MP: Keras load_img (full) {dec['12mp_keras_load_img']:.0f} ms, ours with "
        f"draft {dec['12mp_full']:.0f} ms, 224-px PNG rendition {dec['12mp_rendition_png']:.2f} ms"
    )
    for name, f in seed["formats"].items():
        out.append(
            f"- rendition `{name}`: {f['bytes'] / 1024:.0f} KiB, decode {f['decode_ms']:.2f} ms, "
            f"mean |Δpixel| vs PNG {f['mean_abs_diff_vs_png']:.2f}"
        )
    out += [
        "",
        "Resize/crop choice (random weights: pixel differences are real, label agreement only "
        f"shows how far the inputs move a random network; {len(seed['resize']['images'])} images):",
        "",
        "| input | vs | mean abs pixel diff (0-255) | top-1 agreement | top-5 overlap |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name, row in seed["resize"]["rows"].items():
        variant, reference = name.split(" vs ")
        out.append(
            f"| {variant} | {reference} | {row['mean_abs_pixel_diff']:.1f} "
            f"| {row['top1_agreement']:.0%} | {row['top5_overlap']:.0%} |"
        )
    return "\n".join(out)


def plot(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fwd = {k: data["forward"][k]["forward_ms"] for k in ("fp32", "int8")}
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    labels = {"fp32": "fp32, no batching", "fp32+batch": "fp32, micro-batching", "int8": "int8"}
    for key, color in (("fp32", "tab:blue"), ("fp32+batch", "tab:green"), ("int8", "tab:orange")):
        levels = data["runs"][key]["levels"]
        xs = list(LEVELS)
        left.plot(
            xs, [levels[x]["p50_ms"] for x in xs], "o-", color=color, label=f"{labels[key]} p50"
        )
        left.plot(
            xs,
            [levels[x]["p90_ms"] for x in xs],
            "o--",
            color=color,
            alpha=0.5,
            label=f"{labels[key]} p90",
        )
        right.plot(
            xs, [levels[x]["throughput_rps"] for x in xs], "o-", color=color, label=labels[key]
        )
    for key, color in (("fp32", "tab:blue"), ("int8", "tab:orange")):
        right.axhline(1e3 / fwd[key], color=color, linestyle=":", label=f"1 / {key} forward")
    left.set(
        xlabel="concurrent requests",
        ylabel="end-to-end latency (ms)",
        xticks=LEVELS,
        title="Latency vs concurrency",
    )
    right.set(
        xlabel="concurrent requests",
        ylabel="requests / s",
        xticks=LEVELS,
        title="Throughput vs concurrency",
    )
    left.set_yscale("log")
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    figure.suptitle(f"autotagger on_upload, {data['machine']}, {data['date']}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def machine() -> str:
    model_name = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model_name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{psutil.cpu_count()} vCPU {model_name}, {memory:.0f} GiB, no GPU, "
        f"Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument("--part", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=15, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.part == "forward":
        print(json.dumps(_part_forward(args.weights, args.precision, args.repeat)))
        return 0
    if args.part == "seed":
        fp32_dir, int8_dir = args.weights.split(",")
        print(json.dumps(_part_seed(fp32_dir, int8_dir, args.repeat)))
        return 0

    begun = time.perf_counter()
    cpu = CpuAccount()
    quick = args.quick
    counts = {
        "sequential": 5 if quick else 25,
        "per_level": 2 if quick else 6,
        "concurrent_min": 4 if quick else 16,
    }
    fp32_dir, int8_dir = local.ensure_random_model("fp32"), local.ensure_random_model("int8")
    print(
        "bench: references (import tensorflow, model forward, seed-style pipeline)...", flush=True
    )
    data: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "quick": quick,
        "import_tensorflow_s": import_tensorflow_s(2 if quick else 3),
    }
    repeat = "5" if quick else "15"

    def forward(weights: Path, precision: str) -> dict[str, Any]:
        return _last_json(
            _python(
                __file__,
                *("--part", "forward", "--weights", str(weights)),
                *("--precision", precision, "--repeat", repeat),
            )
        )

    forward_runs = {"fp32": [forward(fp32_dir, "fp32")], "int8": [forward(int8_dir, "int8")]}
    data["seed"] = _last_json(
        _python(
            __file__,
            *("--part", "seed", "--weights", f"{fp32_dir},{int8_dir}"),
            *("--repeat", "3" if quick else "5"),
        )
    )
    images = {"small": photo((1024, 768)), "12mp": photo((4000, 3000))}
    data["image_bytes"] = {k: len(v) for k, v in images.items()}
    configs: list[tuple[str, dict[str, str], bool]] = [
        ("fp32", {"MODEL_WEIGHTS": str(fp32_dir)}, True),
        ("fp32+batch", {"MODEL_WEIGHTS": str(fp32_dir), "MODEL_MAX_BATCH": "8"}, True),
        ("int8", {"MODEL_WEIGHTS": str(int8_dir), "MODEL_PRECISION": "int8"}, True),
        ("fp32 no rendition", {"MODEL_WEIGHTS": str(fp32_dir), "DOWNLOAD_RENDITION": "0"}, False),
    ]
    emulator, host = local.start_emulator()
    standin = CloudinaryStandin(cloud_name="bench").start()
    data["runs"] = {}
    try:
        with (
            tempfile.TemporaryDirectory(prefix="autotagger-bench-") as tmp,
            eager_renditions() as switch,
        ):
            bench = Bench(standin, host, Path(tmp), emulator.pid)
            for name, overrides, full in configs:
                print(f"bench: on_upload {name}...", flush=True)
                data["runs"][name] = run_config(
                    bench,
                    name,
                    {"MODEL_MAX_BATCH": "1", "DOWNLOAD_RENDITION": "1", **overrides},
                    images,
                    counts,
                    cold_starts=1 if quick or not full else 2,
                    switch=switch,
                    full=full,
                )
    finally:
        standin.stop()
        emulator.terminate()
        emulator.wait(timeout=10)
    print("bench: model forward again (after the server runs)...", flush=True)
    forward_runs["fp32"].append(forward(fp32_dir, "fp32"))
    forward_runs["int8"].append(forward(int8_dir, "int8"))
    data["forward"] = {}
    for key, runs in forward_runs.items():
        samples = [ms for run in runs for ms in run["forward_ms_all"]]
        data["forward"][key] = {
            **runs[0],
            "forward_ms": statistics.median(samples),
            "forward_ms_min": min(samples),
            "forward_ms_runs": [run["forward_ms"] for run in runs],
        }
    data["runtime_s"] = time.perf_counter() - begun
    data["cpu"] = cpu.stop()

    write(data, args.out)
    return 0


def write(data: dict[str, Any], out: Path) -> None:
    """Print the table and details; write OUT/bench.md, bench.json and bench.png."""
    table = report(data)
    cpu = data["cpu"]
    text = "\n".join(
        [
            "# Benchmark",
            "",
            "`make bench` (infra/bench.py). The function under functions-framework (gunicorn, "
            "THREADS=8) with the Firestore emulator and the Cloudinary stand-in on the same "
            "machine; small JPEG = 1024x768, 12 MP = 4000x3000 "
            f"({data['image_bytes']['12mp'] / 2**20:.1f} MiB).",
            "",
            table,
            details(data),
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
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.md").write_text(text)
    (out / "bench.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    plot(data, out / "bench.png")
    print()
    print(text)
    print(f"wrote {out / 'bench.md'}, {out / 'bench.png'}")


if __name__ == "__main__":
    raise SystemExit(main())
