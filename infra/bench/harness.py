"""Running what is measured: Python subprocesses (a measurement each, its answer one JSON line),
`on_upload` under functions-framework sent signed webhooks the way Cloudinary does, and the
Firestore emulator with the Cloudinary stand-in around a run."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests

from infra import emulators, processes
from infra.bench.accounting import MemorySampler
from infra.local_cloudinary import CloudinaryStandin
from infra.local_cloudinary import media as standin_media
from tests.support.helpers import notification_from, sign_body

ROOT = Path(__file__).resolve().parents[2]


# -- subprocesses ------------------------------------------------------------------------------


def python(*args: str, timeout: float = 600) -> str:
    """Run `python ARGS` from the repository's root (so `-m infra.bench…` and `tests` import);
    its stdout, or the end of its stderr in the error."""
    done = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args[:2]} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def last_json(output: str) -> dict[str, Any]:
    lines = [line for line in output.splitlines() if line.startswith("{")]
    return dict(json.loads(lines[-1]))


def part(module: str, name: str, *args: str) -> dict[str, Any]:
    """One in-subprocess measurement: `python -m MODULE --part NAME ARGS`, its JSON answer."""
    return last_json(python("-m", module, "--part", name, *args))


def import_tensorflow_s(runs: int) -> list[float]:
    """A bare `import tensorflow` in a fresh process: the reference cold starts are divided by
    (it tracks the machine's load at that moment)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        python("-c", "import tensorflow")
        times.append(time.perf_counter() - started)
    return times


# -- the server under test ---------------------------------------------------------------------


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
    """Starts `on_upload` servers against one emulator and stand-in, and sends them uploads."""

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

    def start(
        self,
        name: str,
        env: dict[str, str],
        first: dict[str, Any],
        source: Path | None = None,
    ) -> tuple[Server, dict]:
        """Start on_upload (from `source`, else main.py) and send `first` as soon as it
        listens: the cold start."""
        port = processes.free_port()
        log = self.workdir / f"{name.replace(' ', '_')}-{port}.log"
        started = time.perf_counter()
        with log.open("wb") as out:
            process = processes.serve("on_upload", port, env, log_to=out, source=source)
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


# -- around a run ------------------------------------------------------------------------------


@contextmanager
def bench_servers(prefix: str = "autotagger-bench-") -> Iterator[Bench]:
    """The Firestore emulator and the Cloudinary stand-in for a run, its servers' logs in a
    temporary directory; all stopped afterwards."""
    emulator, host = emulators.start_emulator()
    standin = CloudinaryStandin(cloud_name="bench").start()
    try:
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            yield Bench(standin, host, Path(tmp), emulator.pid)
    finally:
        standin.stop()
        processes.stop([emulator])


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
