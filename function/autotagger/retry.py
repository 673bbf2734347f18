"""Bounded retries with exponential backoff and full jitter."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from autotagger import logs
from autotagger.errors import TransientError, UpstreamError

T = TypeVar("T")


def with_retries(
    what: str,
    call: Callable[[], T],
    is_transient: Callable[[BaseException], bool] = lambda exc: isinstance(exc, TransientError),
    attempts: int = 3,
    base_delay_s: float = 0.2,
    max_delay_s: float = 2.0,
) -> T:
    """Run `call`; retry transient failures, then raise UpstreamError naming `what`."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt == attempts:
                raise UpstreamError(f"{what} failed after {attempts} attempts: {exc}") from exc
            cap = min(max_delay_s, base_delay_s * 2 ** (attempt - 1))
            delay = random.uniform(0, cap)  # noqa: S311 - jitter, not cryptography
            logs.warning(f"{what} failed, retrying", attempt=attempt, error=str(exc)[:300])
            time.sleep(delay)
    raise AssertionError("unreachable")
