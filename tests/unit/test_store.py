"""The store's call wrapper, without an emulator: which failures it retries."""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions as google_exceptions

from autotagger.clients import store
from autotagger.config import load_settings
from autotagger.errors import UpstreamError

SETTINGS = load_settings({})


def _exhausted_transaction() -> ValueError:
    """What the SDK's `@transactional` raises when every one of its attempts was ABORTED."""
    try:
        raise google_exceptions.Aborted("Transaction lock timeout.")
    except google_exceptions.Aborted as aborted:
        try:
            raise ValueError("Failed to commit transaction in 5 attempts.") from aborted
        except ValueError as wrapped:
            return wrapped


@pytest.fixture(autouse=True)
def _no_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "client", lambda settings: object())


def test_a_transaction_contended_past_the_sdks_attempts_is_retried() -> None:
    calls: list[int] = []

    def contended(db: Any) -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _exhausted_transaction()
        return "committed"

    assert store._call(SETTINGS, "claim", contended) == "committed"
    assert len(calls) == 3


def test_a_transaction_contended_on_every_attempt_is_an_upstream_error() -> None:
    def contended(db: Any) -> None:
        raise _exhausted_transaction()

    with pytest.raises(UpstreamError, match="Firestore claim failed after 3 attempts"):
        store._call(SETTINGS, "claim", contended)


def test_other_value_errors_are_raised_at_once() -> None:
    calls: list[int] = []

    def broken(db: Any) -> None:
        calls.append(1)
        raise ValueError("a bug, not contention")

    with pytest.raises(ValueError, match="a bug"):
        store._call(SETTINGS, "claim", broken)
    assert len(calls) == 1
