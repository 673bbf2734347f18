"""A pytest plugin: the expensive artifacts the collected tests will ask for start building in
the background as soon as collection ends, instead of when the first test needing each arrives.

On a fresh clone they take minutes of one core (the seeded VGG16 artifact, its int8 conversion,
Keras's reference answers, the crafted-distribution IRs), and each first asker, and every test
behind it, would wait idle meanwhile. One process per run (the single pytest process, or xdist's
worker gw0) starts one child that builds what the collected tests' fixtures need, two chains at
once, through the very functions the fixtures call: each takes the same file lock, so a fixture
that asks first builds it itself and the child then finds it done. The child goes with the
session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _fp32() -> object:
    from infra import local

    return local.ensure_random_model()


def _int8() -> object:
    from infra import local

    return local.ensure_random_model("int8")


def _keras() -> object:
    from tests.support import keras_reference

    return keras_reference.answers()


def _concepts() -> object:
    from tests.support import distributions

    return distributions.acceptance_artifacts()


# fixture -> what it builds; each chain in its own thread (int8 is converted from fp32)
BUILDERS: dict[str, Callable[[], object]] = {
    "model_dir": _fp32,
    "int8_model_dir": _int8,
    "keras_answers": _keras,
    "concept_artifacts": _concepts,
}
CHAINS = (("model_dir", "int8_model_dir"), ("keras_answers", "concept_artifacts"))
_child: subprocess.Popen[bytes] | None = None


def pytest_collection_finish(session: pytest.Session) -> None:
    global _child
    if os.environ.get("PYTEST_XDIST_WORKER", "gw0") != "gw0" or session.config.option.collectonly:
        return
    if os.environ.get("AUTOTAGGER_ISOLATED_TEST"):  # a fresh process for one test: its parent did
        return
    wanted = {name for item in session.items for name in getattr(item, "fixturenames", ())}
    names = [name for name in BUILDERS if name in wanted]
    if names:
        _child = subprocess.Popen(
            [sys.executable, "-m", "tests.support.prebuild", *names],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # its builders go with it
        )


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Whatever the tests needed is built by now; what is left (a run stopped early) stops."""
    if _child is not None and _child.poll() is None:
        os.killpg(_child.pid, signal.SIGTERM)
        _child.wait()


def main(names: list[str]) -> int:
    failed: list[str] = []

    def chain(links: tuple[str, ...]) -> None:
        for name in links:
            if name in names:
                try:
                    BUILDERS[name]()
                except Exception as exc:  # the fixture builds it again and reports the failure
                    failed.append(f"{name}: {type(exc).__name__}: {exc}")
                    return

    threads = [threading.Thread(target=chain, args=(links,)) for links in CHAINS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for line in failed:
        print(f"prebuild failed: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
