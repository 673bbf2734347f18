"""autotagger on the command line (`python function/cli.py`, `python -m autotagger.cli`, or the
`autotagger` console script): classify files or URLs, read the results, find similar assets,
backfill an account, learn its vocabulary. Not deployed with the function.

`main` runs one command: library logs go to stderr as text, results to stdout, and an error
ends the command as one line on stderr with its exit code (see `parser.DESCRIPTION`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence

from autotagger import config
from autotagger.cli.common import (
    EXIT_BUDGET,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
)
from autotagger.cli.output import LogSink, one_line, say
from autotagger.cli.parser import build_parser
from autotagger.clients import cloudinary_client
from autotagger.errors import AutotaggerError, ConfigError

__all__ = [
    "EXIT_BUDGET",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliError",
    "build_parser",
    "main",
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = config.load_settings()
    except ConfigError as exc:
        say(f"cli.py: configuration error: {exc.message}")
        return EXIT_USAGE
    if not args.verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cloudinary_client.configure(settings.cloudinary)
    out = sys.stdout
    sink = LogSink(sys.stderr, args.verbose)
    try:
        with contextlib.redirect_stdout(sink):  # library logs -> stderr; results -> `out`
            code: int = args.func(args, settings, out)
    except KeyboardInterrupt:
        say(f"cli.py {args.command}: interrupted")
        code = EXIT_INTERRUPTED
    except Exception as exc:
        message, code = _describe_failure(exc)
        say(f"cli.py {args.command}: error: {message}")
    return code


def _describe_failure(exc: Exception) -> tuple[str, int]:
    """(one-line message, exit code) for an error that ends a command."""
    if isinstance(exc, CliError):
        return exc.message, exc.code
    if isinstance(exc, ConfigError):
        return exc.message, EXIT_USAGE
    if isinstance(exc, AutotaggerError):
        return one_line(exc.message), EXIT_FAILED
    return f"{type(exc).__name__}: {one_line(exc)}", EXIT_FAILED
