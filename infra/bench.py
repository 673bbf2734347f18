"""Benchmark: cold start, warm latency, big photos, concurrency and memory, as ratios, for each
engine (TensorFlow and OpenVINO fp32, LiteRT int8) side by side.

    python infra/bench.py [--out docs] [--quick]       (what `make bench` runs)
    python infra/bench.py --from-json docs/bench.json  (rewrite the report of a finished run)
    python infra/bench.py --cold-only                  (the cold path alone: docs/bench_cold.md)

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

from infra import bench_cold, emulators, local, processes
from infra.local_cloudinary import CloudinaryStandin
from infra.local_cloudinary import media as standin_media
from tests.helpers import notification_from, sign_body

ROOT = Path(__file__).resolve().parents[1]

SAMPLE_PHOTO = Path(__import__("matplotlib").get_data_path()) / "sample_data" / "grace_hopper.jpg"
LEVELS = (1, 2, 4, 8)
CORES = psutil.cpu_count() or 1
# forward references: (int8 artifact?, precision, engine)
FORWARDS = {
    "tensorflow": (False, "fp32", "tensorflow"),
    "openvino": (False, "fp32", "openvino"),
    "int8": (True, "int8", "auto"),
}
GOALS = {
    "cold_openvino": 0.35,
    "floor_openvino": 1.4,
    "throughput8_openvino": 1.1,
    "rss_openvino": 1.5,
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


def _part_forward(weights: str, precision: str, repeat: int, engine: str) -> dict[str, Any]:
    from autotagger import model

    started = time.perf_counter()
    classifier = model.get_model(weights, precision, engine=engine)
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
        "engine": getattr(classifier, "engine", "?"),
        "load_s": load_s,
        "forward_ms": statistics.median(times) * 1e3,
        "forward_ms_all": [t * 1e3 for t in times],
        "per_image_ms_batch": per_image,
        "tensorflow_imported": "tensorflow" in sys.modules,
        "rss_mb": psutil.Process().memory_info().rss / 2**20,
    }


VGG16_GFLOP = 30.95  # one 224x224 forward: 15.47 G multiply-adds (conv + dense), 2 FLOP each


def _part_floor() -> dict[str, Any]:
    """The fp32 floor: the best GFLOP/s a large fp32 matmul reaches here (NumPy's BLAS and
    TensorFlow's oneDNN, every core), and what VGG16's 30.95 GFLOP cost at that rate."""
    n = 4096
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)

    def rate(matmul: Callable[[], Any]) -> float:
        matmul()
        best = float("inf")
        for _ in range(6):
            started = time.perf_counter()
            matmul()
            best = min(best, time.perf_counter() - started)
        return 2 * n**3 / best / 1e9

    rates = {"numpy": rate(lambda: a @ b)}
    import tensorflow as tf

    ta, tb = tf.constant(a), tf.constant(b)
    rates["tensorflow"] = rate(lambda: tf.matmul(ta, tb).numpy())
    gflops = max(rates.values())
    return {"gflops": rates, "best_gflops": gflops, "floor_ms": VGG16_GFLOP / gflops * 1e3}


def _part_tune(weights: str, rounds: int) -> dict[str, Any]:
    """OpenVINO configurations side by side in one process, measured in alternation (so other
    load on the machine hits them alike): batch-1 forward, and images/s with 8 threads each
    calling `predict` with one image, as on_upload's 8 request threads do."""
    from autotagger import model

    configs = {
        "latency + micro-batching (8)": ("latency", 8),
        "latency, no batching": ("latency", 1),
        "throughput (1 stream per core, request pool)": ("throughput", 1),
    }
    models = {
        key: model.get_model(weights, max_batch=mb, engine="openvino", openvino_hint=hint)
        for key, (hint, mb) in configs.items()
    }
    image = np.random.default_rng(1).uniform(-120, 130, (1, 224, 224, 3)).astype(np.float32)
    stacked = np.repeat(image, 8, axis=0)
    for classifier in models.values():  # every batch size the micro-batcher may form, planned
        for size in range(1, 9):
            classifier.predict(stacked[:size])
    single: dict[str, list[float]] = {key: [] for key in models}
    rates: dict[str, list[float]] = {key: [] for key in models}
    per_thread = 4
    for _ in range(rounds):
        for key, classifier in models.items():
            for _ in range(3):
                started = time.perf_counter()
                classifier.predict(image)
                single[key].append(time.perf_counter() - started)
            started = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda _, c=classifier: c.predict(image), range(8 * per_thread)))
            rates[key].append(8 * per_thread / (time.perf_counter() - started))
    reference = statistics.median(single["latency, no batching"])
    out = {}
    for key in models:
        b1 = statistics.median(single[key])
        rate = statistics.median(rates[key])
        out[key] = {
            "forward_ms": b1 * 1e3,
            "images_per_s_8": rate,
            "vs_own_ceiling": rate * b1,
            "vs_latency_ceiling": rate * reference,
        }
    return out


def _part_fidelity(weights: str) -> dict[str, Any]:
    """OpenVINO against TensorFlow on the same artifact: photos and drawings as served."""
    from autotagger import model
    from autotagger.media import imaging

    pixels = [imaging.load_rgb(data, 10**9) for _, data in _resize_images()]
    batch = imaging.preprocess(np.stack(pixels))
    ov = model.get_model(weights, engine="openvino").predict(batch)
    tf = model.get_model(weights, engine="tensorflow").predict(batch)
    top5 = [
        list(np.argsort(-a)[:5]) == list(np.argsort(-b)[:5]) for a, b in zip(ov, tf, strict=True)
    ]
    return {
        "images": len(batch),
        "max_abs_diff": float(np.abs(ov - tf).max()),
        "top5_identical": int(sum(top5)),
    }


def _render(data: bytes, transformation: str) -> bytes:
    steps = standin_media.parse_transformation(transformation.split("/"))
    formats = [s["f"] for s in steps if "f" in s]
    return standin_media.render(data, steps, formats[-1] if formats else "png")


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

    from autotagger import model
    from autotagger.clients import cloudinary_client
    from autotagger.media import imaging
    from autotagger.model import build

    started = time.perf_counter()
    keras_model, _ = build.build_keras_vgg16("random")
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
    from autotagger.media import imaging

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
        processes.stop([self.process], timeout_s=20)  # gunicorn's master and workers (its group)


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
        port = processes.free_port()
        log = self.workdir / f"{name.replace(' ', '_')}-{port}.log"
        started = time.perf_counter()
        with log.open("wb") as out:
            process = processes.serve("on_upload", port, env, log_to=out)
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
    original = standin_media.render
    cache: dict[tuple[int, str, str], bytes] = {}
    switch = {"on": True}

    def render(data: bytes, steps: list[dict[str, str]], fmt: str) -> bytes:
        if not switch["on"]:
            return original(data, steps, fmt)
        key = (id(data), repr(steps), fmt)
        if key not in cache:
            cache[key] = original(data, steps, fmt)
        return cache[key]

    standin_media.render = render
    try:
        yield switch
    finally:
        standin_media.render = original


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
        reference = import_tensorflow_s(1)[0]  # right before: the machine's load now
        server, cold = bench.start(name, env, bench.asset(images["small"], "cold"))
        cold["import_tensorflow_s"] = reference
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
            "cold_ratio": statistics.median(c["cold_s"] / c["import_tensorflow_s"] for c in colds),
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


SERVED = ("tensorflow", "tensorflow+batch", "openvino", "int8")
COLD, SMALL, PSS = "cold_s", "small_ms", "pss_end_mb"
ENGINE_OF = {
    "tensorflow": "tensorflow",
    "tensorflow+batch": "tensorflow",
    "openvino": "openvino",
    "int8": "int8",
}


def report(data: dict[str, Any]) -> str:
    tf_s = statistics.median(data["import_tensorflow_s"])
    fwd = {k: data["forward"][k]["forward_ms"] for k in FORWARDS}
    runs = data["runs"]
    tf, batch, ov, int8, norend = (
        runs["tensorflow"],
        runs["tensorflow+batch"],
        runs["openvino"],
        runs["int8"],
        runs["tensorflow no rendition"],
    )
    seed, floor = data["seed"], data["floor"]
    lines = [
        f"Measured {data['date']} on {data['machine']} (random weights; ratios from one run).",
        "",
        "| measure | TensorFlow, MODEL_MAX_BATCH=1 | TensorFlow, micro-batching "
        "| OpenVINO (latency hint, micro-batching) | int8 (LiteRT) | goal | met |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]

    def cells(fmt: Callable[[str, dict[str, Any]], str]) -> str:
        return " | ".join(fmt(key, runs[key]) for key in SERVED)

    cold = {k: runs[k]["cold_ratio"] for k in SERVED}
    lines.append(
        f"| cold start (process start → first answer) / a bare `import tensorflow` run just "
        f"before it (median {tf_s:.2f} s) "
        f"| {cells(lambda k, r: f'{cold[k]:.2f}x ({r[COLD]:.2f} s)')} "
        f"| ≤ 1.6x TensorFlow, ≤ 0.35x OpenVINO, ≤ 0.5x int8 "
        f"| {_ok(cold['tensorflow'] <= GOALS['cold_fp32'])} / "
        f"{_ok(cold['openvino'] <= GOALS['cold_openvino'])} / "
        f"{_ok(cold['int8'] <= GOALS['cold_int8'])} |"
    )
    floor_ms = floor["floor_ms"]
    ratio = {k: statistics.median(data["floor_ratio_rounds"][k]) for k in FORWARDS}
    lines.append(
        f"| model forward, batch 1 / fp32 floor (median over {len(data['floor_runs'])} rounds "
        f"of floor + forwards; floor {floor_ms:.0f} ms = {VGG16_GFLOP} GFLOP at "
        f"{floor['best_gflops']:.0f} GFLOP/s, a 4096² fp32 matmul) "
        f"| {ratio['tensorflow']:.2f}x ({fwd['tensorflow']:.0f} ms) | "
        f"| {ratio['openvino']:.2f}x ({fwd['openvino']:.0f} ms) "
        f"| {ratio['int8']:.2f}x ({fwd['int8']:.0f} ms) | ≤ 1.4x OpenVINO "
        f"| {_ok(ratio['openvino'] <= GOALS['floor_openvino'])} |"
    )
    per8 = {k: data["forward"][k]["per_image_ms_batch"]["8"] for k in FORWARDS}
    lines.append(
        f"| model forward, batch 8, per image / floor | {per8['tensorflow'] / floor_ms:.2f}x "
        f"({per8['tensorflow']:.0f} ms) | | {per8['openvino'] / floor_ms:.2f}x "
        f"({per8['openvino']:.0f} ms) | {per8['int8'] / floor_ms:.2f}x ({per8['int8']:.0f} ms) "
        "| (report) | |"
    )
    warm = {k: runs[k]["small_ms"] / fwd[ENGINE_OF[k]] for k in SERVED}
    lines.append(
        f"| warm end-to-end median / the engine's bare forward "
        f"| {cells(lambda k, r: f'{warm[k]:.2f}x ({r[SMALL]:.0f} ms)')} | ≤ 1.15x "
        f"| {_ok(warm['tensorflow'] <= GOALS['warm'])} / {_ok(warm['openvino'] <= GOALS['warm'])}"
        f" / {_ok(warm['int8'] <= GOALS['warm'])} |"
    )
    big = {k: runs[k]["12mp_ms"] - runs[k]["small_ms"] for k in SERVED}
    lines.append(
        f"| 12 MP JPEG - small JPEG, end to end (rendition made at upload) "
        f"| {cells(lambda k, r: f'{big[k]:+.0f} ms')} "
        f"| ≤ +50 ms | {_ok(max(big.values()) <= GOALS['big_ms'])} |"
    )
    lines.append(
        f"| … rendition made on demand (first request) / DOWNLOAD_RENDITION=0 (TensorFlow) "
        f"| {tf['12mp_on_demand_ms'] - tf['small_ms']:+.0f} ms / "
        f"{norend['12mp_ms'] - norend['small_ms']:+.0f} ms | | | | (reference) | |"
    )
    for level in LEVELS:

        def level_cell(key: str, run: dict[str, Any], level: int = level) -> str:
            row = run["levels"][level]
            ratio = row["throughput_rps"] * fwd[ENGINE_OF[key]] / 1e3
            return (
                f"{ratio:.2f}x ({row['throughput_rps']:.1f}/s, p50 {row['p50_ms']:.0f} ms, "
                f"{row['errors']} err)"
            )

        goal, met = "", ""
        if level == 8:
            goal = "≥ 0.85x TensorFlow, ≥ 1.1x OpenVINO, ≥ 0.85x int8; 0 errors"
            best_tf = max(
                runs[k]["levels"][8]["throughput_rps"] * fwd["tensorflow"] / 1e3
                for k in ("tensorflow", "tensorflow+batch")
            )
            ov8 = ov["levels"][8]["throughput_rps"] * fwd["openvino"] / 1e3
            int8_8 = int8["levels"][8]["throughput_rps"] * fwd["int8"] / 1e3
            errors = sum(runs[k]["levels"][8]["errors"] for k in SERVED)
            met = (
                f"{_ok(best_tf >= GOALS['throughput8'])} / "
                f"{_ok(ov8 >= GOALS['throughput8_openvino'])} / "
                f"{_ok(int8_8 >= GOALS['throughput8'])}; {_ok(errors == 0)}"
            )
        lines.append(
            f"| throughput at {level} concurrent / batch-1 ceiling (1 / the engine's forward) "
            f"| {cells(level_cell)} | {goal} | {met} |"
        )
    gain = batch["levels"][8]["throughput_rps"] / tf["levels"][8]["throughput_rps"] - 1
    slower = batch["small_ms"] / tf["small_ms"] - 1
    lines.append(
        f"| micro-batching vs MODEL_MAX_BATCH=1 (TensorFlow): throughput at 8 concurrent, "
        f"single-request latency | | {gain:+.0%}, {slower:+.0%} | | | a gain, latency ≤ +10% "
        f"| {_ok(gain > 0 and slower <= 0.10)} |"
    )
    rss = {k: runs[k]["peak_rss_mb"] / 1024 for k in SERVED}
    lines.append(
        f"| peak RSS of the process tree (PSS at the end) "
        f"| {cells(lambda k, r: f'{rss[k]:.2f} GB ({r[PSS] / 1024:.2f})')} "
        f"| ≤ 1.8 GB TensorFlow, ≤ 1.5 GB OpenVINO, ≤ 0.5 GB int8 "
        f"| {_ok(max(rss['tensorflow'], rss['tensorflow+batch']) <= GOALS['rss_fp32'])} / "
        f"{_ok(rss['openvino'] <= GOALS['rss_openvino'])} / "
        f"{_ok(rss['int8'] <= GOALS['rss_int8'])} |"
    )
    fid = data["fidelity"]
    same = fid["top5_identical"] == fid["images"] and fid["max_abs_diff"] <= 1e-5
    lines.append(
        f"| OpenVINO vs TensorFlow, same weights: top-5 identical, max abs probability "
        f"difference ({fid['images']} images) | | | {fid['top5_identical']}/{fid['images']}, "
        f"{fid['max_abs_diff']:.1e} | | identical labels (≤ 1e-5) | {_ok(same)} |"
    )
    lines.append(
        f"| OpenVINO / TensorFlow model time, batch 1 (batch 8 per image): which engine wins "
        f"on this CPU | | | {fwd['openvino'] / fwd['tensorflow']:.2f}x "
        f"({per8['openvino'] / per8['tensorflow']:.2f}x) | | (report: < 1 favours OpenVINO) | |"
    )
    ours_12mp, ours_int8 = seed["ours_12mp_rendition_ms"], seed["ours_int8_12mp_rendition_ms"]
    lines.append(
        f"| seed-style (Keras VGG16 + full `load_img` + `predict()`) / ours, per 12 MP image "
        f"| {seed['seed_12mp_ms'] / ours_12mp:.1f}x "
        f"({seed['seed_12mp_ms']:.0f} / {ours_12mp:.0f} ms) | | | "
        f"{seed['seed_12mp_ms'] / ours_int8:.1f}x ({ours_int8:.0f} ms) | (report) | |"
    )
    lines.append(
        f"| seed-style / ours, model ready after import (build + first predict / artifact load) "
        f"| {seed['seed_ready_s'] / seed['ours_ready_s']:.1f}x "
        f"({seed['seed_ready_s']:.1f} / {seed['ours_ready_s']:.2f} s) | "
        f"| {seed['seed_ready_s'] / data['forward']['openvino']['load_s']:.0f}x "
        f"({data['forward']['openvino']['load_s']:.2f} s) "
        f"| {seed['seed_ready_s'] / data['forward']['int8']['load_s']:.0f}x "
        f"({data['forward']['int8']['load_s']:.2f} s) | (report) | |"
    )
    ratio = fwd["int8"] / fwd["tensorflow"]
    lines.append(
        f"| int8 / fp32 (TensorFlow) model time (batch 1) | | | | {ratio:.2f}x | ≤ 0.4x "
        f"| {_ok(ratio <= GOALS['int8_vs_fp32'])} |"
    )
    return "\n".join(lines)


def details(data: dict[str, Any]) -> str:
    runs, seed = data["runs"], data["seed"]
    out = ["", "Details:", ""]
    tf = ", ".join(f"{t:.2f}" for t in data["import_tensorflow_s"])
    out.append(f"- bare `import tensorflow`: {tf} s")
    floor = data["floor"]
    rates = ", ".join(f"{k} {v:.0f}" for k, v in floor["gflops"].items())
    out.append(
        f"- fp32 floor: 4096² float32 matmul, best of 6, every core: {rates} GFLOP/s; "
        f"VGG16's {VGG16_GFLOP} GFLOP at the best rate: {floor['floor_ms']:.0f} ms (rounds: "
        + ", ".join(f"{run['floor_ms']:.0f}" for run in data["floor_runs"])
        + " ms); forward / floor per round: "
        + "; ".join(
            f"{key} " + ", ".join(f"{r:.2f}x" for r in rounds)
            for key, rounds in data["floor_ratio_rounds"].items()
        )
    )
    for key in FORWARDS:
        f = data["forward"][key]
        batches = ", ".join(f"batch {b}: {ms:.0f}" for b, ms in f["per_image_ms_batch"].items())
        runs_ms = " / ".join(f"{ms:.0f}" for ms in f["forward_ms_runs"])
        out.append(
            f"- {key} forward (batch 1, median of all samples): {f['forward_ms']:.1f} ms "
            f"(min {f['forward_ms_min']:.1f}; before / after the server runs: {runs_ms} ms); "
            f"per image at "
            f"{batches} ms; load (import + load + first forward) {f['load_s']:.2f} s; RSS "
            f"{f['rss_mb']:.0f} MB; tensorflow imported: "
            f"{f['tensorflow_imported']}"
        )
    for key, run in runs.items():
        colds = "; ".join(
            f"{c['cold_s']:.2f} s (import tensorflow just before "
            f"{c['import_tensorflow_s']:.2f} s; "
            f"listening {c['listening_s']:.2f} s, first request "
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
        "OpenVINO configurations, in one process and in alternation (8 threads each classifying "
        "one image, as on_upload's request threads do; ceiling = 1 / that configuration's "
        "batch-1 forward):",
        "",
        "| configuration | forward, batch 1 | images/s at 8 concurrent | / own ceiling "
        "| / latency-hint ceiling |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, row in data["tune"].items():
        out.append(
            f"| {name} | {row['forward_ms']:.0f} ms | {row['images_per_s_8']:.2f} "
            f"| {row['vs_own_ceiling']:.2f}x | {row['vs_latency_ceiling']:.2f}x |"
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

    fwd = {k: data["forward"][k]["forward_ms"] for k in FORWARDS}
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    labels = {
        "tensorflow": "TensorFlow, no batching",
        "tensorflow+batch": "TensorFlow, micro-batching",
        "openvino": "OpenVINO, micro-batching",
        "int8": "int8 (LiteRT)",
    }
    colors = {
        "tensorflow": "tab:blue",
        "tensorflow+batch": "tab:green",
        "openvino": "tab:purple",
        "int8": "tab:orange",
    }
    for key in SERVED:
        levels = data["runs"][key]["levels"]
        xs = list(LEVELS)
        color = colors[key]
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
    for key in FORWARDS:
        color = colors[key]
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
    """The CPU model (with its family/model numbers and the vector extensions that decide which
    engine wins: the name alone is often a generic "Intel Xeon Processor"), memory, Python."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
            if not line.strip():
                break
    except OSError:
        pass
    flags = set(fields.get("flags", "").split())
    extensions = [
        name
        for name, flag in (
            ("AVX2", "avx2"),
            ("AVX-512", "avx512f"),
            ("VNNI", "avx512_vnni"),
            ("BF16", "avx512_bf16"),
            ("AMX", "amx_tile"),
        )
        if flag in flags
    ]
    model_name = fields.get("model name", "unknown CPU")
    if "cpu family" in fields:
        model_name += f" (family {fields['cpu family']}, model {fields.get('model', '?')}"
        model_name += f"; {', '.join(extensions)})" if extensions else ")"
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{psutil.cpu_count()} vCPU {model_name}, {memory:.0f} GiB, no GPU, "
        f"Python {platform.python_version()}"
    )


def server_configs(fp32_dir: Path, int8_dir: Path) -> list[tuple[str, dict[str, str], bool]]:
    """(name, settings, full run?) of each on_upload configuration measured."""
    fp32 = {"MODEL_WEIGHTS": str(fp32_dir)}
    return [
        ("tensorflow", {**fp32, "MODEL_ENGINE": "tensorflow"}, True),
        ("tensorflow+batch", {**fp32, "MODEL_ENGINE": "tensorflow", "MODEL_MAX_BATCH": "8"}, True),
        ("openvino", {**fp32, "MODEL_ENGINE": "openvino", "MODEL_MAX_BATCH": "8"}, True),
        ("int8", {"MODEL_WEIGHTS": str(int8_dir), "MODEL_PRECISION": "int8"}, True),
        (
            "tensorflow no rendition",
            {**fp32, "MODEL_ENGINE": "tensorflow", "DOWNLOAD_RENDITION": "0"},
            False,
        ),
    ]


def summarize_forward(
    data: dict[str, Any],
    forward_runs: dict[str, list[dict[str, Any]]],
    floor_runs: list[dict[str, Any]],
) -> None:
    """Per engine: every round's samples together; the floor ratio of each round."""
    data["floor_runs"] = floor_runs
    data["floor"] = sorted(floor_runs, key=lambda run: run["floor_ms"])[len(floor_runs) // 2]
    data["floor_ratio_rounds"] = {
        key: [
            run["forward_ms"] / floor["floor_ms"]
            for run, floor in zip(forward_runs[key], floor_runs, strict=True)
        ]
        for key in FORWARDS
    }
    data["forward"] = {}
    for key, runs in forward_runs.items():
        samples = [ms for run in runs for ms in run["forward_ms_all"]]
        data["forward"][key] = {
            **runs[0],
            "forward_ms": statistics.median(samples),
            "forward_ms_min": min(samples),
            "forward_ms_runs": [run["forward_ms"] for run in runs],
        }


def run_part(args: argparse.Namespace) -> dict[str, Any]:
    """One in-subprocess measurement (`--part NAME`), printed as JSON."""
    if args.part == "forward":
        return _part_forward(args.weights, args.precision, args.repeat, args.engine)
    if args.part == "floor":
        return _part_floor()
    if args.part == "tune":
        return _part_tune(args.weights, args.repeat)
    if args.part == "fidelity":
        return _part_fidelity(args.weights)
    if args.part == "fp16":
        from autotagger.media import imaging
        from tests.crafted_ir import noise_images

        pixels = [imaging.load_rgb(data, 10**9) for _, data in _resize_images()[:6]]
        batch = imaging.preprocess(np.concatenate([np.stack(pixels), noise_images(2)]))
        return bench_cold.part_fp16(args.weights, batch, args.repeat)
    if args.part == "seed":
        fp32_dir, int8_dir = args.weights.split(",")
        return _part_seed(fp32_dir, int8_dir, args.repeat)
    raise SystemExit(f"bench: unknown part {args.part!r}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
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


def cold_only(out: Path, rounds: int) -> int:
    """`--cold-only`: the cold-path part alone (references, fp16, preload on/off, gs:// vs
    local, feature pairs; `rounds` of each), written to OUT/bench_cold.md."""
    cpu = CpuAccount()
    fp32_dir = local.ensure_random_model("fp32")
    data: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
    }
    data["fp16"] = _last_json(
        _python(__file__, "--part", "fp16", "--weights", str(fp32_dir), "--repeat", "10")
    )
    emulator, host = emulators.start_emulator()
    standin = CloudinaryStandin(cloud_name="bench").start()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="autotagger-bench-") as tmp,
            eager_renditions(),
        ):
            bench = Bench(standin, host, Path(tmp), emulator.pid)
            data.update(
                bench_cold.run_all(
                    bench,
                    fp32_dir,
                    photo((1024, 768)),
                    10,
                    rounds,
                    lambda: import_tensorflow_s(1)[0],
                )
            )
    finally:
        standin.stop()
        processes.stop([emulator])
    data["cpu"] = cpu.stop()
    bench_cold.write_only(data, out)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.part:
        print(json.dumps(run_part(args)))
        return 0
    if args.cold_only:
        return cold_only(args.out, 2 if args.quick else 3)
    if args.from_json:
        write(read_json(args.from_json), args.out)
        return 0
    begun = time.perf_counter()
    cpu = CpuAccount()
    counts = {
        "sequential": 5 if args.quick else 25,
        "per_level": 2 if args.quick else 6,
        "concurrent_min": 4 if args.quick else 16,
    }
    print(f"bench: {machine()}", flush=True)
    fp32_dir, int8_dir = local.ensure_random_model("fp32"), local.ensure_random_model("int8")
    print(
        "bench: references (import tensorflow, floor and model forward x2, seed-style pipeline)...",
        flush=True,
    )
    data: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "quick": args.quick,
        "import_tensorflow_s": import_tensorflow_s(2 if args.quick else 3),
    }
    repeat = "5" if args.quick else "10"

    def forward(key: str) -> dict[str, Any]:
        weights, precision, engine = FORWARDS[key]
        return _last_json(
            _python(
                __file__,
                *("--part", "forward", "--weights", str(int8_dir if weights else fp32_dir)),
                *("--precision", precision, "--repeat", repeat, "--engine", engine),
            )
        )

    def forward_round() -> None:
        """The floor and each engine's forward, one after the other: a round's ratios share
        the machine's load of that moment."""
        floor_runs.append(_last_json(_python(__file__, "--part", "floor")))
        for key, runs in forward_runs.items():
            runs.append(forward(key))

    forward_runs: dict[str, list[dict[str, Any]]] = {key: [] for key in FORWARDS}
    floor_runs: list[dict[str, Any]] = []
    for _ in range(2):
        forward_round()
    print("bench: OpenVINO tuning and label fidelity...", flush=True)
    data["tune"] = _last_json(
        _python(__file__, "--part", "tune", "--weights", str(fp32_dir), "--repeat", "2")
    )
    for part in ("fidelity", "fp16"):  # OpenVINO vs TensorFlow; the fp16 IR vs the fp32 one
        data[part] = _last_json(
            _python(__file__, "--part", part, "--weights", str(fp32_dir), "--repeat", repeat)
        )
    data["seed"] = _last_json(
        _python(
            __file__,
            *("--part", "seed", "--weights", f"{fp32_dir},{int8_dir}"),
            *("--repeat", "3" if args.quick else "5"),
        )
    )
    images = {"small": photo((1024, 768)), "12mp": photo((4000, 3000))}
    data["image_bytes"] = {k: len(v) for k, v in images.items()}
    configs = server_configs(fp32_dir, int8_dir)
    print(f"bench: {emulators.describe_firestore_emulator()}", flush=True)
    emulator, host = emulators.start_emulator()
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
                    cold_starts=1 if args.quick or not full else 2,
                    switch=switch,
                    full=full,
                )
            data.update(
                bench_cold.run_all(
                    bench,
                    fp32_dir,
                    images["small"],
                    counts["sequential"],
                    1 if args.quick else 2,
                    lambda: import_tensorflow_s(1)[0],
                )
            )
    finally:
        standin.stop()
        processes.stop([emulator])
    print("bench: floor and model forward again (after the server runs)...", flush=True)
    forward_round()
    summarize_forward(data, forward_runs, floor_runs)
    data["runtime_s"] = time.perf_counter() - begun
    data["cpu"] = cpu.stop()

    write(data, args.out)
    return 0


def read_json(path: Path) -> dict[str, Any]:
    """A finished run's bench.json, as `main` had it (JSON made the concurrency levels
    strings)."""
    data: dict[str, Any] = json.loads(path.read_text())
    for run in data["runs"].values():
        if "levels" in run:
            run["levels"] = {int(level): row for level, row in run["levels"].items()}
    return data


def write(data: dict[str, Any], out: Path) -> None:
    """Print the table and details; write OUT/bench.json (first), bench.md and bench.png."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
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
            "## The cold path, the floor's goals, fp16 and features (`infra/bench_cold.py`)",
            "",
            bench_cold.report(data) if "gcs" in data else "(not in this run)",
            "",
            "## Every engine",
            "",
            table,
            details(data),
            bench_cold.details(data) if "gcs" in data else "",
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
    (out / "bench.md").write_text(text)
    plot(data, out / "bench.png")
    print()
    print(text)
    print(f"wrote {out / 'bench.md'}, {out / 'bench.png'}")


if __name__ == "__main__":
    raise SystemExit(main())
