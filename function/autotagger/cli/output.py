"""How the CLI writes: results (tables, JSON) on stdout, messages and library logs on stderr."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Container, Sequence
from typing import Any, TextIO

_LOG_LEVELS = {"DEBUG": 10, "INFO": 20, "NOTICE": 25, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


def say(message: str) -> None:
    """One line on stderr (never stdout, which may carry JSON)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def one_line(text: object, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


def write_json(value: Any, out: TextIO, *, stringify: bool = False) -> None:
    """`value` as one line of JSON; `stringify` writes what JSON has no type for (timestamps)
    as text instead of failing."""
    json.dump(value, out, ensure_ascii=False, default=str if stringify else None)
    out.write("\n")


def write_table(
    out: TextIO,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    right_aligned: Container[int] = (),
) -> None:
    """Columns as wide as their widest cell, two spaces apart; numbers may align right."""
    widths = [max(len(row[c]) for row in [header, *rows]) for c in range(len(header))]
    for row in [header, *rows]:
        cells = [
            cell.rjust(width) if column in right_aligned else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        out.write("  ".join(cells).rstrip() + "\n")


class LogSink(io.TextIOBase):
    """Where the library's JSON log lines go while a command runs: stderr, as readable text.

    INFO and DEBUG entries are dropped unless --verbose; anything that is not a log line is
    passed through unchanged.
    """

    def __init__(self, stream: TextIO, verbose: bool) -> None:
        super().__init__()
        self._stream = stream
        self._verbose = verbose

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        for line in text.splitlines(keepends=True):
            self._stream.write(self._render(line))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def _render(self, line: str) -> str:
        try:
            entry = json.loads(line)
        except ValueError:
            return line
        if not isinstance(entry, dict) or "severity" not in entry:
            return line
        severity = str(entry.pop("severity"))
        if not self._verbose and _LOG_LEVELS.get(severity, 0) < _LOG_LEVELS["WARNING"]:
            return ""
        message = entry.pop("message", "")
        extra = ", ".join(f"{k}={one_line(v, 120)}" for k, v in entry.items() if v is not None)
        return f"{severity.lower()}: {message}" + (f" ({extra})" if extra else "") + "\n"
