"""Structured logging: one JSON object per line on stdout, the shape Cloud Logging parses."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_LEVELS = {"DEBUG": 10, "INFO": 20, "NOTICE": 25, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
_min_level = _LEVELS["INFO"]
_write_lock = threading.Lock()


def set_level(level: str) -> None:
    """Only entries at or above `level` are written."""
    global _min_level
    _min_level = _LEVELS[level]


def log(severity: str, message: str, **fields: Any) -> None:
    """Write one entry; `fields` become top-level keys (Cloud Logging shows them as jsonPayload)."""
    if _LEVELS.get(severity, 0) < _min_level:
        return
    entry = {"severity": severity, "message": message, **fields}
    line = json.dumps(entry, default=str, ensure_ascii=False, separators=(",", ":"))
    with _write_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def info(message: str, **fields: Any) -> None:
    log("INFO", message, **fields)


def warning(message: str, **fields: Any) -> None:
    log("WARNING", message, **fields)


def error(message: str, **fields: Any) -> None:
    log("ERROR", message, **fields)


class Timings:
    """Milliseconds per named stage of one request."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self._start = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = round(self.ms.get(name, 0.0) + (time.perf_counter() - started) * 1e3, 2)

    def total(self) -> dict[str, float]:
        """The stages plus `total` since this object was made."""
        return {**self.ms, "total": round((time.perf_counter() - self._start) * 1e3, 2)}
