"""A pytest plugin: a test marked `isolated` runs in a fresh pytest process of its own.

For the few tests that hold TensorFlow (its runtime, a SavedModel, a Keras VGG16) beside an
OpenVINO model: TensorFlow does not give its memory back to the system, so in the shared
process each such test would raise the suite's peak for good. The child inherits the
environment (so the session's emulators are reused) and its outcome is the test's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_CHILD = "AUTOTAGGER_ISOLATED_TEST"


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if pyfuncitem.get_closest_marker("isolated") is None or os.environ.get(_CHILD):
        return None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env[_CHILD] = "1"
    child = subprocess.run(
        [sys.executable, "-m", "pytest", pyfuncitem.nodeid, "-q", "-rs", "-p", "no:cacheprovider"],
        check=False,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    output = child.stdout + child.stderr
    if child.returncode == 0 and re.search(r"\b1 passed\b", output):
        print(output[-2000:])
        return True
    if child.returncode == 0 and re.search(r"\b1 skipped\b", output):
        reason = re.search(r"SKIPPED \[\d+\] [^:]+:\d+: (.*)", output)
        pytest.skip(reason.group(1) if reason else "skipped in its fresh process")
    pytest.fail(f"in its fresh process (exit {child.returncode}):\n{output[-6000:]}", pytrace=False)
