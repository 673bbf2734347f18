"""Child processes of the local tools: ports, functions under functions-framework, waits, stops."""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import requests

ROOT = Path(__file__).resolve().parents[1]
EMULATOR_DIR = ROOT / "infra" / "emulator"


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) across processes: parallel test
    workers and `make run` build a cached artifact once, the others wait and find it built."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


FREE_PORT_LOW = 10000  # free_port's ports: from here to the kernel's ephemeral range


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, for a server started next.

    Picked at random below the kernel's ephemeral range: a port the kernel hands out (to a
    `bind(("", 0))` or to an outgoing connection) could be taken by someone else between this
    check and the server's own bind, and another server would then answer at its address.
    """
    below = range(FREE_PORT_LOW, max(FREE_PORT_LOW, ephemeral_range_start()))
    for port in random.sample(below, min(100, len(below))):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # none free below the range: one the kernel picks
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ephemeral_range_start() -> int:
    """The first port of the kernel's ephemeral range (Linux's default elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    """Poll `url` until it answers anything; fail if `process` exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise TimeoutError(url)


def stop(processes: Sequence[subprocess.Popen[Any]], timeout_s: float = 5.0) -> None:
    """Stop `processes` (last started first): SIGTERM, then SIGKILL after `timeout_s`.

    A process that leads its own process group (the gcloud emulators) is signalled as a group, so
    its children (Java) go with it, and whatever of the group outlives its leader is killed.
    Servers get a short grace: gunicorn's graceful shutdown would otherwise wait up to 30 s for
    an idle keep-alive connection.
    """
    leaders = {process.pid for process in processes if _leads_group(process)}

    def signal_all(process: subprocess.Popen[Any], sig: signal.Signals) -> None:
        try:
            if process.pid in leaders:
                os.killpg(process.pid, sig)
            elif process.poll() is None:
                process.send_signal(sig)
        except ProcessLookupError:
            pass

    for process in reversed(processes):
        signal_all(process, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            signal_all(process, signal.SIGKILL)
            process.wait(timeout=10)
        if process.pid in leaders:
            signal_all(process, signal.SIGKILL)  # leftover children of the group leader


def _leads_group(process: subprocess.Popen[Any]) -> bool:
    """Whether `process` leads its process group (also once exited, while not yet reaped)."""
    try:
        return process.returncode is None and os.getpgid(process.pid) == process.pid
    except ProcessLookupError:
        return False


def serve(
    target: str,
    port: int,
    env: dict[str, str],
    log_to: IO[bytes] | None = None,
    source: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Run one function under functions-framework on 127.0.0.1:port (output to `log_to`), from
    `function/main.py` unless `source` names another module (a benchmark's variant of it).

    In its own process group, so `stop()` ends gunicorn's workers too: a worker thread blocked on
    a browser's idle pre-connected socket would otherwise keep the port after the master died.
    """
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "functions_framework",
            "--source",
            str(source or ROOT / "function" / "main.py"),
            "--target",
            target,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log_to,
        stderr=subprocess.STDOUT if log_to else None,
        process_group=0,
    )
