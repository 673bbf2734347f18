"""Run everything locally: the Firestore emulator and both functions under functions-framework.

    python infra/local.py run      # what `make run` calls; Ctrl-C stops everything

Reads `.env` (without overriding variables already set). Uses the official emulator when
`FIRESTORE_EMULATOR_HOST` is already set (e.g. `gcloud emulators firestore start`), else starts
the project's own gRPC emulator (`infra/emulator/server.mjs`). Without `MODEL_WEIGHTS`, it builds
and uses VGG16 with seeded random weights (offline: labels are meaningless but the pipeline is
real).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import requests

ROOT = Path(__file__).resolve().parents[1]
EMULATOR_DIR = ROOT / "infra" / "emulator"
RANDOM_MODEL_DIR = ROOT / ".cache" / "models" / "vgg16-random-fp32"
RANDOM_INT8_MODEL_DIR = ROOT / ".cache" / "models" / "vgg16-random-int8"
RESULTS_PORT = int(os.environ.get("RESULTS_PORT", "8080"))
ON_UPLOAD_PORT = int(os.environ.get("ON_UPLOAD_PORT", "8081"))


def read_dotenv(path: Path) -> dict[str, str]:
    """`KEY=value` lines (optionally quoted); comments and blank lines skipped."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip().removeprefix("export ").strip()] = value
    return values


def start_emulator(port: int = 0, timeout_s: float = 30.0) -> tuple[subprocess.Popen[str], str]:
    """Start the gRPC Firestore emulator (port 0: any free one); return (process, host:port)."""
    if not (EMULATOR_DIR / "node_modules" / "@firestore-emulator" / "server").exists():
        raise RuntimeError("emulator not installed: run `npm ci` in infra/emulator (make does)")
    process = subprocess.Popen(
        ["node", "server.mjs", str(port), "--exit-with-stdin"],
        cwd=EMULATOR_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + timeout_s
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith("{"):
            return process, json.loads(line)["host"]
    process.kill()
    raise RuntimeError("Firestore emulator did not start")


def _is_current(directory: Path) -> bool:
    """The artifact exists in today's layout (fp32: weights in a memory-mapped weights.bin)."""
    manifest = directory / "manifest.json"
    if not manifest.exists():
        return False
    return (
        json.loads(manifest.read_text()).get("format") == "tflite"
        or (directory / "weights.bin").exists()
    )


def ensure_random_model(precision: str = "fp32") -> Path:
    """Build the random-weights artifact once (cached under .cache/); int8 from the fp32 one."""
    if precision not in ("fp32", "int8"):
        raise ValueError(f"precision must be fp32 or int8, got {precision!r}")
    directory = RANDOM_MODEL_DIR if precision == "fp32" else RANDOM_INT8_MODEL_DIR
    if not _is_current(directory):
        source = "random" if precision == "fp32" else str(ensure_random_model("fp32"))
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "infra" / "build_model.py"),
                "--weights",
                source,
                "--out",
                str(directory),
                "--precision",
                precision,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return directory


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def stop(processes: Sequence[subprocess.Popen[Any]]) -> None:
    """Terminate `processes` (last started first), wait, and kill any that linger."""
    for process in reversed(processes):
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def serve(
    target: str, port: int, env: dict[str, str], log_to: IO[bytes] | None = None
) -> subprocess.Popen[bytes]:
    """Run one function under functions-framework on 127.0.0.1:port (output to `log_to`)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "functions_framework",
            "--source",
            str(ROOT / "function" / "main.py"),
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
    )


def run() -> int:
    env = {**read_dotenv(ROOT / ".env"), **os.environ}
    processes: list[subprocess.Popen[bytes] | subprocess.Popen[str]] = []
    if not env.get("FIRESTORE_EMULATOR_HOST"):
        emulator, host = start_emulator()
        processes.append(emulator)
        env["FIRESTORE_EMULATOR_HOST"] = host
        print(f"Firestore emulator (gRPC) on {host}")
    env.setdefault("GOOGLE_CLOUD_PROJECT", "demo-autotagger")
    # The page forwards the widget's signed result to on_upload (no tunnel needed locally).
    env.setdefault("ON_UPLOAD_URL", f"http://127.0.0.1:{ON_UPLOAD_PORT}")
    env.setdefault("ALLOWED_ORIGINS", f"http://127.0.0.1:{RESULTS_PORT}")
    if not env.get("MODEL_WEIGHTS"):
        print("MODEL_WEIGHTS is not set: using VGG16 with seeded random weights (labels are")
        print("meaningless). Set MODEL_WEIGHTS=imagenet (or an artifact) for real labels.")
        int8 = env.get("MODEL_PRECISION", "").strip().lower() == "int8"
        env["MODEL_WEIGHTS"] = str(ensure_random_model("int8" if int8 else "fp32"))
    if not env.get("CLOUDINARY_URL"):
        print("CLOUDINARY_URL is not set: results works; on_upload answers 503 until you set it")
        print("in .env (cloudinary://API_KEY:API_SECRET@CLOUD_NAME).")
    processes.append(serve("results", RESULTS_PORT, env))
    processes.append(serve("on_upload", ON_UPLOAD_PORT, env))
    print(f"results:   http://127.0.0.1:{RESULTS_PORT}/  (API: /api/results)")
    print(f"on_upload: http://127.0.0.1:{ON_UPLOAD_PORT}/  (Cloudinary notification URL)")
    print("Ctrl-C stops everything.")
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    while not stopping:
        for process in processes:
            if process.poll() is not None:
                print(f"a process exited with {process.returncode}; stopping")
                code = process.returncode or 1
                stopping = True
        time.sleep(0.3)
    stop(processes)
    return code


if __name__ == "__main__":
    if sys.argv[1:] != ["run"]:
        print(__doc__)
        raise SystemExit(2)
    raise SystemExit(run())
