"""Load the model while the server boots, for the functions that classify (`on_message`, and
`on_upload` unless it only publishes to the queue); `results` never loads it.

functions-framework imports `main.py` in gunicorn's master process, then forks the worker that
serves the requests. An inference runtime's thread pools (and any lock a loading thread holds)
do not survive a fork, so nothing is loaded at import: `schedule` registers the load to start
in the forked worker right after the fork, in a background thread, while the worker finishes
booting and starts accepting connections. A request arriving mid-load waits on the model
getter's lock and is answered by the loaded model; the load then leaves its warm-up forward to
that request's own forward (OpenVINO), so the request never waits for two. A failed preload is
logged; the first request then loads again and reports the failure itself. Without a fork (an
app created in-process, as tests do), nothing is preloaded and the first request loads, as
before.

A `gs://` model's files are copied ahead of all that: `prefetch`, called by `main.py` before its
heavy imports, starts the copy in a process of its own (`python -m autotagger.model.preload`),
which fetches and verifies the engine's files into MODEL_CACHE_DIR while the master imports and
boots. A thread would not do: every socket read of the copy takes the GIL back from the
imports. The worker's load then waits on the copy's file lock (`autotagger.clients.gcs`) and
finds the files cached; if the copy failed, the load fetches them itself and reports why.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from autotagger import config, logs, model
from autotagger.config import Settings

MODEL_TARGETS = ("on_upload", "on_message")
THREAD_NAME = "model-preload"


def function_target(argv: Sequence[str], env: Mapping[str, str]) -> str | None:
    """The function this process serves: functions-framework's `--target` argument, else
    FUNCTION_TARGET (what Cloud Functions sets, and what the framework reads)."""
    for i, arg in enumerate(argv):
        if arg == "--target" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--target="):
            return arg.split("=", 1)[1]
    return env.get("FUNCTION_TARGET") or None


def wanted(settings: Settings, target: str | None) -> bool:
    """Whether `target` classifies (on_message; on_upload unless WEBHOOK_MODE=queue, where it
    only publishes) and MODEL_PRELOAD is on."""
    if not settings.model_preload or target not in MODEL_TARGETS:
        return False
    return target == "on_message" or settings.webhook_mode == "inline"


def schedule(settings: Settings, target: str | None) -> bool:
    """Start the load in every worker forked from this process (once each); True if scheduled."""
    if not wanted(settings, target):
        return False
    parent = os.getpid()

    def after_fork() -> None:
        if os.getppid() == parent:  # a worker of this master, not a grandchild
            start(settings)

    os.register_at_fork(after_in_child=after_fork)
    logs.info("model preload scheduled: it loads while the worker boots", target=target)
    return True


def start(settings: Settings) -> threading.Thread:
    """Load the model `settings` name in a background thread now."""
    thread = threading.Thread(target=_load, args=(settings,), name=THREAD_NAME, daemon=True)
    thread.start()
    return thread


def prefetch(settings: Settings, target: str | None) -> subprocess.Popen[bytes] | None:
    """Start copying a `gs://` model's files now, in a process of its own, when this process
    will preload it; the process, or None."""
    if not settings.model_weights.startswith("gs://") or not wanted(settings, target):
        return None
    package_root = str(Path(__file__).resolve().parents[2])  # where `autotagger` is
    path = os.pathsep.join(filter(None, (package_root, os.environ.get("PYTHONPATH"))))
    try:
        copy = subprocess.Popen(  # noqa: S603 - this interpreter, this module; logs as the server
            [sys.executable, "-m", __name__],
            env={**os.environ, "PYTHONPATH": path},
            stdin=subprocess.DEVNULL,
            close_fds=True,
        )
    except OSError as exc:
        logs.warning("model copy could not start: the worker fetches", error=str(exc)[:300])
        return None
    logs.info("model copy from Cloud Storage started", uri=settings.model_weights, pid=copy.pid)
    return copy


def _copy() -> int:
    """The copy's process: the files the settings' engine reads, fetched and verified."""
    settings = config.load_settings()
    logs.set_level(settings.log_level)
    try:
        path = model.fetch_artifact(
            settings.model_weights, settings.model_precision, settings.model_engine
        )
    except Exception as exc:
        logs.warning(
            "model copy failed: the worker's load fetches again",
            error=f"{type(exc).__name__}: {str(exc)[:500]}",
        )
        return 1
    logs.info("model copied ahead of the server", path=str(path))
    return 0


def _load(settings: Settings) -> None:
    from autotagger.clients import store  # here: its import is not on the way to `prefetch`

    try:
        store.client(settings)  # the Firestore client and its credentials too (no RPC)
        model.load_in_background(settings)  # logs "model loaded"
    except Exception as exc:
        logs.error(
            "model preload failed: the first request loads again",
            error=f"{type(exc).__name__}: {str(exc)[:500]}",
        )


if __name__ == "__main__":
    raise SystemExit(_copy())
