"""The Firestore and Pub/Sub emulators: gcloud's official ones, or the npm Firestore fallback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any, Literal

from infra.processes import free_port, stop, wait_until_up

ROOT = Path(__file__).resolve().parents[1]
EMULATOR_DIR = ROOT / "infra" / "emulator"


EmulatorKind = Literal["firestore", "pubsub"]
# Where gcloud keeps each official emulator's component (what `gcloud components list` installs).
_GCLOUD_COMPONENTS = {"firestore": "cloud-firestore-emulator", "pubsub": "pubsub-emulator"}
_GCLOUD_COMMANDS = {
    "firestore": ["emulators", "firestore", "start"],
    "pubsub": ["beta", "emulators", "pubsub", "start"],
}
FIRESTORE_EMULATORS = ("auto", "official", "npm")
# The emulators' JVM compiles with C1 only: a local emulator lives for one run of short requests,
# where C2's optimising compiler costs more CPU than it saves (a start and 400 requests: 2.7
# instead of 4.7 core-seconds, and 25-27% less time).
JVM_OPTIONS = "-XX:TieredStopAtLevel=1"


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
        "JAVA_TOOL_OPTIONS": " ".join(
            filter(None, (os.environ.get("JAVA_TOOL_OPTIONS"), JVM_OPTIONS))
        ),
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
    # Its config, log and data go with it: when the process object is collected, at the latest
    # at exit (every caller stops the emulator before).
    weakref.finalize(process, shutil.rmtree, workdir, ignore_errors=True)
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
