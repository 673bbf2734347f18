"""`make run` as a newcomer starts it, for tests: `infra/local.py run` in its own process group
(as a terminal runs it), no `.env`, a clean environment, and Ctrl-C as a terminal sends it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests

from infra import processes

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 300.0  # emulator + first model build on a busy machine
STOP_TIMEOUT_S = 60.0


@dataclass
class MakeRun:
    process: subprocess.Popen[bytes]
    log_path: Path
    ports: dict[str, int]
    descendants: list[psutil.Process] = field(default_factory=list)

    @property
    def results(self) -> str:
        return f"http://127.0.0.1:{self.ports['results']}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until_up(self) -> None:
        """Until both functions answer and the log says so; then remember every process."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"make run exited with {self.process.returncode}:\n{self.log}")
            if "Ctrl-C stops everything." in self.log and all(
                _answers(f"http://127.0.0.1:{self.ports[name]}/")
                for name in ("results", "on_upload")
            ):
                break
            time.sleep(0.5)
        else:
            raise TimeoutError(f"make run did not come up:\n{self.log}")
        match = re.search(r"Firestore emulator \(gRPC\) on 127\.0\.0\.1:(\d+)", self.log)
        if match:
            self.ports["firestore"] = int(match.group(1))
        self.descendants = psutil.Process(self.process.pid).children(recursive=True)

    def interrupt(self) -> float:
        """Ctrl-C: SIGINT to the whole foreground process group; seconds until `make run` and
        every process it started are gone."""
        started = time.monotonic()
        os.killpg(self.process.pid, signal.SIGINT)
        self.process.wait(timeout=STOP_TIMEOUT_S)
        psutil.wait_procs(self.descendants, timeout=STOP_TIMEOUT_S)
        return time.monotonic() - started

    def leftovers(self) -> list[str]:
        """Processes started by make run that still live (zombies count as gone)."""
        alive = []
        for process in self.descendants:
            try:
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
            except psutil.NoSuchProcess:
                continue
        return alive

    def listening(self) -> list[tuple[str, int, str]]:
        """Every socket `make run` and the processes it started listen on: (ip, port, name)."""
        found = []
        for process in [psutil.Process(self.process.pid), *self.descendants]:
            try:
                connections = process.net_connections(kind="inet")
                name = process.name()
            except psutil.NoSuchProcess:
                continue
            for connection in connections:
                if connection.status == psutil.CONN_LISTEN:
                    found.append((connection.laddr.ip, connection.laddr.port, name))
        return sorted(set(found))

    def busy_ports(self) -> list[int]:
        """make run's ports that something still listens on."""
        busy = []
        for port in self.ports.values():
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    busy.append(port)
        return busy

    def kill(self) -> None:
        """Cleanup after a failed test: nothing may outlive it."""
        self.process.kill()
        for process in self.descendants:
            try:
                process.kill()
            except psutil.Error:
                continue
        self.process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=2)
    except requests.RequestException:
        return False
    return True


def start(log: Path, **extra_env: str) -> MakeRun:
    """Start `infra/local.py run` like `make run` on a fresh clone: no .env, free ports; its
    output goes to `log` (in the test's tmp_path, which pytest prunes)."""
    names = ("results", "on_upload", "on_message", "cloudinary")
    ports = {name: processes.free_port() for name in names}
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONUNBUFFERED": "1",
        "ENV_FILE": os.devnull,
        "RESULTS_PORT": str(ports["results"]),
        "ON_UPLOAD_PORT": str(ports["on_upload"]),
        "ON_MESSAGE_PORT": str(ports["on_message"]),
        "LOCAL_CLOUDINARY_PORT": str(ports["cloudinary"]),
        **extra_env,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "infra" / "local.py"), "run"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            process_group=0,  # its own group, as a shell's job: Ctrl-C goes to all of it
        )
    run = MakeRun(process, log, ports)
    try:
        run.wait_until_up()
    except BaseException:
        run.kill()
        raise
    return run
