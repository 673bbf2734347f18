"""A pytest plugin that says which tests raised the process's memory high-water mark.

The suite's peak RSS is a goal (≤ 4 GB); this names the tests that set it, so a regression is
found by reading the summary rather than by bisecting."""

from __future__ import annotations

import resource
import sys
from collections.abc import Generator
from typing import Any

import pytest

_GROWTH_REPORTED_MB = 200
_grown: list[tuple[float, float, str]] = []


def _high_water_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: Any) -> Generator[None, None, None]:
    before = _high_water_mb()
    yield
    after = _high_water_mb()
    if after - before >= _GROWTH_REPORTED_MB:
        _grown.append((after - before, after, item.nodeid))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_sep("-", f"peak RSS of this pytest process: {_high_water_mb():.0f} MB")
    for growth, after, nodeid in sorted(_grown, reverse=True)[:10]:
        terminalreporter.write_line(f"+{growth:6.0f} MB → {after:6.0f} MB  {nodeid}")
