"""The store without an emulator: which failures its call wrapper retries, and what it keeps
of its own writes."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from unittest.mock import Mock

import pytest
from google.api_core import exceptions as google_exceptions
from google.cloud.firestore_v1.transaction import Transaction, transactional

from autotagger.clients import claim_writes, store
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


def _begin_failed_then_rollback() -> ValueError:
    """What the SDK's `@transactional` raises when BeginTransaction itself fails (Firestore
    unreachable): its rollback finds no transaction and raises a ValueError over the failure."""
    api = SimpleNamespace(
        begin_transaction=Mock(side_effect=google_exceptions.ServiceUnavailable("no connection"))
    )
    client = SimpleNamespace(_firestore_api=api, _database_string="db", _rpc_metadata=())
    transaction = Transaction(client)
    try:
        transactional(lambda tx: None)(transaction)
    except ValueError as masked:
        return masked
    raise AssertionError("the SDK no longer masks a failed begin")


@pytest.fixture(autouse=True)
def _no_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "client", lambda settings: object())
    monkeypatch.setattr(store, "_forget", lambda settings, db: None)


def test_an_outage_at_a_transactions_begin_is_retried_as_the_outage() -> None:
    calls: list[int] = []

    def begin_fails_once(db: Any) -> str:
        calls.append(1)
        if len(calls) < 2:
            raise _begin_failed_then_rollback()
        return "committed"

    assert "cannot be rolled back" in str(_begin_failed_then_rollback())
    assert store._call(SETTINGS, "claim", begin_fails_once) == "committed"
    assert len(calls) == 2


def test_a_persistent_outage_at_a_transactions_begin_is_a_firestore_upstream_error() -> None:
    forgotten: list[object] = []

    def down(db: Any) -> None:
        raise _begin_failed_then_rollback()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "_forget", lambda settings, db: forgotten.append(db))
        with pytest.raises(UpstreamError, match="Firestore claim failed after 3 attempts: 503"):
            store._call(SETTINGS, "claim", down)
    assert len(forgotten) == 3  # each attempt drops the unreachable client's channel


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


def test_remembered_writes_are_per_claim_and_the_oldest_age_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(claim_writes, "KEPT", 3)
    monkeypatch.setattr(claim_writes, "_writes", type(claim_writes._writes)())
    for number in range(4):
        claim_writes.remember(f"a{number}", "c", number, ("t",))
    assert claim_writes.recall("a0", "c") is None  # the oldest went
    assert claim_writes.recall("a3", "c") == claim_writes.OurWrite(3, ("t",))
    assert claim_writes.recall("a3", "another claim") is None
    claim_writes.forget("a3", "c")
    assert claim_writes.recall("a3", "c") is None
