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
import signal
import subprocess
import sys
import time
from pathlib import Path

from infra.emulators import (
    describe_firestore_emulator,
    start_emulator,
)
from infra.processes import file_lock, serve, stop

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


def _is_current(directory: Path) -> bool:
    """The artifact exists in today's layout (every file's sha256 in the manifest; fp32: weights
    in a memory-mapped weights.bin, an OpenVINO IR and today's fp16 IR; both precisions: the
    embedding output)."""
    from autotagger.model.spec import FP16_IR_PRECISION

    manifest = directory / "manifest.json"
    if not manifest.exists():
        return False
    content = json.loads(manifest.read_text())
    if "embedding" not in content:
        return False
    return "files" in content and (
        content.get("format") == "tflite"
        or (
            (directory / "weights.bin").exists()
            and content.get("openvino_fp16", {}).get("precision") == FP16_IR_PRECISION
        )
    )


def ensure_random_model(precision: str = "fp32") -> Path:
    """Build the random-weights artifact once (cached under .cache/); int8 from the fp32 one."""
    if precision not in ("fp32", "int8"):
        raise ValueError(f"precision must be fp32 or int8, got {precision!r}")
    directory = RANDOM_MODEL_DIR if precision == "fp32" else RANDOM_INT8_MODEL_DIR
    if _is_current(directory):
        return directory
    with file_lock(directory.with_name(f"{directory.name}.lock")):  # another builder: wait
        if _is_current(directory):
            return directory
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


def run() -> int:
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
    # One instance spends the whole forward budget: a fifth of a free plan's 500 lookups an hour
    # (without a public webhook URL, the forward is how uploads get classified).
    env.setdefault("FORWARD_BUDGET_PER_HOUR", "100")
    if not env.get("RESULTS_ACCESS"):  # loopback only: anyone who can reach it is on this machine
        env["RESULTS_ACCESS"] = "public"
        print("RESULTS_ACCESS=public on loopback: listings need no key (deploys are private)")
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
