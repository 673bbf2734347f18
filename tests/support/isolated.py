"""A pytest plugin: the tests marked `isolated` in a module run together in one fresh pytest
process of their own.

For the few tests that hold TensorFlow (its runtime, a SavedModel, a Keras VGG16) beside an
OpenVINO model: TensorFlow does not give its memory back to the system, so in the shared
process each such test would raise the suite's peak for good. One child per module, not per
test: TensorFlow's import and the SavedModel's load are paid once, and the module's tests share
them through the model cache. The child inherits the environment (so the session's emulators
are reused); each test's outcome in the child, as the child's own hook recorded it, is that
test's outcome here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_CHILD = "AUTOTAGGER_ISOLATED_TEST"
_REPORT = "AUTOTAGGER_ISOLATED_REPORT"

# in the parent: nodeid -> (outcome, text) from a finished child; in a child: what it saw
_outcomes: dict[str, tuple[str, str]] = {}


def _isolated(item: pytest.Item) -> bool:
    return item.get_closest_marker("isolated") is not None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """In a child: a test's outcome is its call's, or a setup's that failed or skipped."""
    if not os.environ.get(_REPORT):
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if report.skipped and isinstance(report.longrepr, tuple):
            text = str(report.longrepr[2]).removeprefix("Skipped: ")
        else:
            text = report.longreprtext
        _outcomes[report.nodeid] = (report.outcome, text)
    elif report.when == "teardown" and report.failed:
        _outcomes[report.nodeid] = ("failed", report.longreprtext)


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get(_REPORT)
    if path:
        Path(path).write_text(json.dumps(_outcomes))


def _run_child(first: pytest.Function) -> None:
    """Every isolated test of `first`'s module this process has yet to run, in one child."""
    ids = [
        item.nodeid
        for item in first.session.items
        if item.path == first.path and _isolated(item) and item.nodeid not in _outcomes
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    with tempfile.TemporaryDirectory(prefix="autotagger-isolated-") as folder:
        report = Path(folder) / "outcomes.json"
        env |= {_CHILD: "1", _REPORT: str(report)}
        child = subprocess.run(
            [sys.executable, "-m", "pytest", *ids, "-q", "-rs", "-p", "no:cacheprovider"],
            check=False,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        recorded = json.loads(report.read_text()) if report.exists() else {}
    output = (child.stdout + child.stderr)[-6000:]
    print(output[-2000:])
    for nodeid in ids:
        outcome, text = recorded.get(nodeid, ("failed", ""))
        _outcomes[nodeid] = (
            outcome,
            text or f"in its fresh process (exit {child.returncode}):\n{output}",
        )


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not _isolated(pyfuncitem) or os.environ.get(_CHILD):
        return None
    if pyfuncitem.nodeid not in _outcomes:
        _run_child(pyfuncitem)
    outcome, text = _outcomes[pyfuncitem.nodeid]
    if outcome == "passed":
        return True
    if outcome == "skipped":
        pytest.skip(text or "skipped in its fresh process")
    pytest.fail(f"in its fresh process:\n{text}", pytrace=False)
