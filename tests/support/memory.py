"""A pytest plugin that says which tests raised a pytest process's memory high-water mark.

The suite's peak RSS is a goal (≤ 4 GB per pytest process); this names the tests that set it,
so a regression is found by reading the summary rather than by bisecting. Under pytest-xdist
each worker measures itself and the controller reports every worker's peak."""

from __future__ import annotations

import resource
import sys
from collections.abc import Generator
from typing import Any

import pytest

_GROWTH_REPORTED_MB = 200
_grown: list[tuple[float, float, str]] = []  # (growth, high-water mark after, test id)
_worker_peaks: dict[str, float] = {}


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


def pytest_sessionfinish(session: pytest.Session) -> None:
    output = getattr(session.config, "workeroutput", None)
    if output is not None:  # an xdist worker: hand the figures to the controller
        output["memory_peak_mb"] = _high_water_mb()
        output["memory_grown"] = list(_grown)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    output = getattr(node, "workeroutput", {})
    if "memory_peak_mb" in output:
        _worker_peaks[str(output.get("workerid", len(_worker_peaks)))] = output["memory_peak_mb"]
        _grown.extend(tuple(entry) for entry in output.get("memory_grown", ()))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _worker_peaks:
        peaks = ", ".join(f"{w} {mb:.0f}" for w, mb in sorted(_worker_peaks.items()))
        top = max(_worker_peaks.values())
        terminalreporter.write_sep("-", f"peak RSS of a pytest worker: {top:.0f} MB ({peaks})")
    else:
        terminalreporter.write_sep(
            "-", f"peak RSS of this pytest process: {_high_water_mb():.0f} MB"
        )
    for growth, after, nodeid in sorted(_grown, reverse=True)[:10]:
        terminalreporter.write_line(f"+{growth:6.0f} MB → {after:6.0f} MB  {nodeid}")
