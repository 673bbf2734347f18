"""Structured logging through the standard `logging` module: one JSON object per line on stdout,
the shape Cloud Logging parses (`severity`, `message`; other keys become the jsonPayload).

`info(message, **fields)` and friends log on the `autotagger` logger; any `autotagger.*` logger
gets the same format (`logging.getLogger(__name__)` works in new modules).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

NOTICE = 25  # Cloud Logging's severity between INFO and WARNING
logging.addLevelName(NOTICE, "NOTICE")
_LEVELS = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "NOTICE": NOTICE,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}
LOGGER = logging.getLogger("autotagger")


class CloudLoggingFormatter(logging.Formatter):
    """A record as one line of Cloud Logging's structured JSON: severity, message, its fields
    (`extra={"fields": {...}}`), and the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"severity": record.levelname, "message": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False, separators=(",", ":"))


class _StdoutHandler(logging.StreamHandler):
    """Writes to `sys.stdout` as it is at each write (a redirect, pytest's capture)."""

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, _: object) -> None:
        pass


if not any(isinstance(h, _StdoutHandler) for h in LOGGER.handlers):
    _handler = _StdoutHandler()
    _handler.setFormatter(CloudLoggingFormatter())
    LOGGER.addHandler(_handler)
LOGGER.propagate = False  # one line per entry, whatever the root logger does
LOGGER.setLevel(logging.INFO)


def set_level(level: str) -> None:
    """Only entries at or above `level` are written."""
    LOGGER.setLevel(_LEVELS[level])


def log(severity: str, message: str, **fields: Any) -> None:
    """Write one entry; `fields` become top-level keys (Cloud Logging shows them as jsonPayload)."""
    # A later logging.config.dictConfig() (functions-framework's LOG_EXECUTION_ID does one)
    # disables loggers it does not name; ours must keep writing.
    LOGGER.disabled = False
    LOGGER.log(_LEVELS.get(severity, logging.INFO), message, extra={"fields": fields})


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
