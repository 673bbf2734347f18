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
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence

from autotagger import logs, model
from autotagger.clients import store
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


def _load(settings: Settings) -> None:
    try:
        store.client(settings)  # the Firestore client and its credentials too (no RPC)
        model.load_in_background(settings)  # logs "model loaded"
    except Exception as exc:
        logs.error(
            "model preload failed: the first request loads again",
            error=f"{type(exc).__name__}: {str(exc)[:500]}",
        )
