"""Bounded retries with exponential backoff and full jitter (tenacity), ending in UpstreamError."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import tenacity
from google.api_core import exceptions as google_exceptions

from autotagger import logs
from autotagger.errors import TransientError, UpstreamError

T = TypeVar("T")
# Google API errors worth another try (Firestore, Pub/Sub): the service is briefly unavailable,
# overloaded, or the call timed out.
GOOGLE_TRANSIENT: tuple[type[Exception], ...] = (
    google_exceptions.ServiceUnavailable,
    google_exceptions.DeadlineExceeded,
    google_exceptions.InternalServerError,
    google_exceptions.Aborted,
    google_exceptions.ResourceExhausted,
    google_exceptions.Unknown,
)


def with_retries(
    what: str,
    call: Callable[[], T],
    is_transient: Callable[[BaseException], bool] = lambda exc: isinstance(exc, TransientError),
    attempts: int = 3,
    base_delay_s: float = 0.2,
    max_delay_s: float = 2.0,
) -> T:
    """Run `call`; retry transient failures, then raise UpstreamError naming `what`.

    Waits are random in [0, min(max_delay_s, base_delay_s * 2**(attempt-1))] ("full jitter");
    anything `is_transient` rejects is raised at once, unchanged.
    """

    def log_retry(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        logs.warning(
            f"{what} failed, retrying", attempt=state.attempt_number, error=str(error)[:300]
        )

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_random_exponential(multiplier=base_delay_s, max=max_delay_s),
        retry=tenacity.retry_if_exception(is_transient),
        before_sleep=log_retry,
        reraise=True,
    )
    try:
        return retrying(call)
    except Exception as exc:
        if not is_transient(exc):
            raise
        raise UpstreamError(f"{what} failed after {attempts} attempts: {exc}") from exc
