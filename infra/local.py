"""Run everything locally: the Firestore emulator and both functions under functions-framework.

    python infra/local.py run      # what `make run` calls; Ctrl-C stops everything

Reads `.env` (without overriding variables already set). Uses the Firestore emulator at
`FIRESTORE_EMULATOR_HOST` when set, else starts one: gcloud's official emulator when gcloud and
its component are installed, else the npm one (`infra/emulator/server.mjs`);
`FIRESTORE_EMULATOR=official|npm` forces a choice. Without `MODEL_WEIGHTS`, it uses VGG16 with
ImageNet weights (downloaded and built into `.cache/` once), or offline seeded random weights
(labels are meaningless but the pipeline is real). Without `CLOUDINARY_URL`, it starts a local
Cloudinary (`infra/local_defaults.py`). `ENV_FILE` names another file than `.env`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Literal

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


EmulatorKind = Literal["firestore", "pubsub"]
# Where gcloud keeps each official emulator's component (what `gcloud components list` installs).
_GCLOUD_COMPONENTS = {"firestore": "cloud-firestore-emulator", "pubsub": "pubsub-emulator"}
_GCLOUD_COMMANDS = {
    "firestore": ["emulators", "firestore", "start"],
    "pubsub": ["beta", "emulators", "pubsub", "start"],
}
FIRESTORE_EMULATORS = ("auto", "official", "npm")


def gcloud_emulator_available(kind: EmulatorKind) -> bool:
    """True when `gcloud` and its official `kind` emulator component (and Java) are installed."""
    gcloud = shutil.which("gcloud")
    if gcloud is None or shutil.which("java") is None:
        return False
    sdk_root = Path(gcloud).resolve().parents[1]
    return (sdk_root / "platform" / _GCLOUD_COMPONENTS[kind]).is_dir()


def start_gcloud_emulator(
    kind: EmulatorKind, port: int = 0, timeout_s: float = 90.0
) -> tuple[subprocess.Popen[bytes], str]:
    """Start gcloud's official `kind` emulator on 127.0.0.1 (port 0: a free one).

    It runs in its own process group (gcloud -> sh -> java), so `stop()` ends the Java child too,
    with an empty throwaway CLOUDSDK_CONFIG (no account, nothing persisted: a fresh database each
    start). Returns (process, host:port) once the emulator answers HTTP.
    """
    port = port or free_port()
    host = f"127.0.0.1:{port}"
    workdir = Path(tempfile.mkdtemp(prefix=f"autotagger-{kind}-emulator-"))
    command = ["gcloud", *_GCLOUD_COMMANDS[kind], f"--host-port={host}"]
    if kind == "pubsub":
        (workdir / "data").mkdir()  # gcloud writes env.yaml there and does not create it
        command.append(f"--data-dir={workdir / 'data'}")
    env = {
        **os.environ,
        "CLOUDSDK_CONFIG": str(workdir / "config"),
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
    }
    with open(workdir / "emulator.log", "wb") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        wait_until_up(f"http://{host}/", process, timeout_s)
    except (RuntimeError, TimeoutError):
        stop([process])
        tail = (workdir / "emulator.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the official {kind} emulator did not start:\n{tail}") from None
    except BaseException:  # Ctrl-C while it starts: its own session would outlive us
        stop([process])
        raise
    return process, host


def start_npm_emulator(port: int = 0, timeout_s: float = 30.0) -> tuple[subprocess.Popen[str], str]:
    """Start the npm gRPC Firestore emulator (port 0: any free one); return (process, host:port).

    The fallback for machines without gcloud: it fakes transactions and merges on `set()`.
    """
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


def firestore_emulator_choice() -> str:
    """`official` or `npm`: FIRESTORE_EMULATOR (auto|official|npm), auto = official if installed."""
    wanted = os.environ.get("FIRESTORE_EMULATOR", "").strip().lower() or "auto"
    if wanted not in FIRESTORE_EMULATORS:
        raise RuntimeError(f"FIRESTORE_EMULATOR must be one of {', '.join(FIRESTORE_EMULATORS)}")
    if wanted == "auto":
        return "official" if gcloud_emulator_available("firestore") else "npm"
    return wanted


def start_emulator(port: int = 0) -> tuple[subprocess.Popen[Any], str]:
    """Start a Firestore emulator: gcloud's official one when installed, else the npm one."""
    if firestore_emulator_choice() == "official":
        return start_gcloud_emulator("firestore", port)
    return start_npm_emulator(port)


def describe_firestore_emulator() -> str:
    """One line saying which Firestore emulator `start_emulator` starts, and why."""
    if firestore_emulator_choice() == "official":
        return "Firestore emulator: gcloud's official one"
    if gcloud_emulator_available("firestore"):
        return "Firestore emulator: the npm one (FIRESTORE_EMULATOR=npm)"
    return "Firestore emulator: the npm one (gcloud's official emulator is not installed)"


def _is_current(directory: Path) -> bool:
    """The artifact exists in today's layout (fp32: weights in a memory-mapped weights.bin, and
    an OpenVINO IR; both precisions: the embedding output)."""
    manifest = directory / "manifest.json"
    if not manifest.exists():
        return False
    content = json.loads(manifest.read_text())
    if "embedding" not in content:
        return False
    return content.get("format") == "tflite" or (
        (directory / "weights.bin").exists() and "openvino" in content
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


def stop(processes: Sequence[subprocess.Popen[Any]], timeout_s: float = 5.0) -> None:
    """Stop `processes` (last started first): SIGTERM, then SIGKILL after `timeout_s`.

    A process that leads its own process group (the gcloud emulators) is signalled as a group, so
    its children (Java) go with it. Servers get a short grace: gunicorn's graceful shutdown would
    otherwise wait up to 30 s for an idle keep-alive connection.
    """

    def signal_all(process: subprocess.Popen[Any], sig: signal.Signals) -> None:
        try:
            if os.getpgid(process.pid) == process.pid:
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
        else:
            signal_all(process, signal.SIGKILL)  # leftover children of a group leader


def serve(
    target: str, port: int, env: dict[str, str], log_to: IO[bytes] | None = None
) -> subprocess.Popen[bytes]:
    """Run one function under functions-framework on 127.0.0.1:port (output to `log_to`).

    In its own process group, so `stop()` ends gunicorn's workers too: a worker thread blocked on
    a browser's idle pre-connected socket would otherwise keep the port after the master died.
    """
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
        process_group=0,
    )


def run() -> int:
    sys.path.insert(0, str(ROOT))
    from infra import local_defaults

    env = {**read_dotenv(Path(os.environ.get("ENV_FILE") or ROOT / ".env")), **os.environ}
    processes: list[subprocess.Popen[bytes] | subprocess.Popen[str]] = []
    # Before the emulator: if either fails, nothing is left running.
    env["MODEL_WEIGHTS"] = local_defaults.model_weights(env, ensure_random_model)
    standin = local_defaults.start_local_cloudinary(  # None when CLOUDINARY_URL is set
        env, f"http://127.0.0.1:{ON_UPLOAD_PORT}", local_defaults.local_cloudinary_port(env)
    )
    if not env.get("FIRESTORE_EMULATOR_HOST"):
        print(describe_firestore_emulator(), "- starting")
        emulator, host = start_emulator()
        processes.append(emulator)
        env["FIRESTORE_EMULATOR_HOST"] = host
        print(f"Firestore emulator (gRPC) on {host}")
    env.setdefault("GOOGLE_CLOUD_PROJECT", "demo-autotagger")
    # The page forwards the widget's signed result to on_upload (no tunnel needed locally).
    env.setdefault("ON_UPLOAD_URL", f"http://127.0.0.1:{ON_UPLOAD_PORT}")
    env.setdefault("ALLOWED_ORIGINS", f"http://127.0.0.1:{RESULTS_PORT}")
    if not env.get("RESULTS_ACCESS"):  # loopback only: anyone who can reach it is on this machine
        env["RESULTS_ACCESS"] = "public"
        print("RESULTS_ACCESS=public on loopback: listings need no key (deploys are private)")
    sys.path.insert(0, str(ROOT))  # Pub/Sub queue: emulator + on_message (issue 9)
    from infra import local_pubsub

    local_pubsub.start_for_run(env, processes, int(os.environ.get("ON_MESSAGE_PORT", "8083")))
    processes.append(serve("results", RESULTS_PORT, env))
    processes.append(serve("on_upload", ON_UPLOAD_PORT, env))
    print(f"results:   http://127.0.0.1:{RESULTS_PORT}/  (API: /api/results)")
    print(f"on_upload: http://127.0.0.1:{ON_UPLOAD_PORT}/  (Cloudinary notification URL)")
    print("Ctrl-C stops everything.")
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    code = 0
    while not stopping:
        for process in processes:
            if process.poll() is not None:
                print(f"a process exited with {process.returncode}; stopping")
                code = process.returncode or 1
                stopping = True
        time.sleep(0.3)
    stop(processes)
    if standin is not None:
        standin.stop()
    return code


if __name__ == "__main__":
    if sys.argv[1:] != ["run"]:
        print(__doc__)
        raise SystemExit(2)
    raise SystemExit(run())
