"""The retry helper (tenacity underneath) and the structured log lines (standard logging)."""

from __future__ import annotations

import json
import logging

import pytest

from autotagger import logs
from autotagger.errors import TransientError, UpstreamError
from autotagger.retry import with_retries


def _lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_transient_failures_are_retried_and_logged(capsys) -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TransientError(f"blip {len(calls)}")
        return "ok"

    assert with_retries("thing", flaky, base_delay_s=0.01) == "ok"
    assert len(calls) == 3
    retried = [
        e for e in _lines(capsys.readouterr().out) if e["message"] == "thing failed, retrying"
    ]
    assert [(e["severity"], e["attempt"], e["error"]) for e in retried] == [
        ("WARNING", 1, "blip 1"),
        ("WARNING", 2, "blip 2"),
    ]


def test_exhausted_retries_are_an_upstream_error() -> None:
    calls = []

    def down() -> None:
        calls.append(1)
        raise TransientError("still down")

    with pytest.raises(UpstreamError, match="thing failed after 4 attempts: still down") as info:
        with_retries("thing", down, attempts=4, base_delay_s=0.01)
    assert len(calls) == 4
    assert isinstance(info.value.__cause__, TransientError)


def test_other_failures_are_raised_at_once_unchanged() -> None:
    calls = []

    def broken() -> None:
        calls.append(1)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        with_retries("thing", broken)
    assert len(calls) == 1
    with pytest.raises(ValueError, match="custom"):  # a custom predicate decides
        with_retries("thing", lambda: int("custom"), lambda exc: isinstance(exc, KeyError))


def test_log_lines_are_cloud_logging_json(capsys) -> None:
    logs.info("hello", asset_id="a1", timings={"total": 1.5}, note="ünïcødé")
    logs.log("NOTICE", "noted")
    logging.getLogger("autotagger.newmodule").warning("from a module logger %s", "too")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logs.LOGGER.exception("failed")
    entries = _lines(capsys.readouterr().out)
    assert entries[0] == {
        "severity": "INFO",
        "message": "hello",
        "asset_id": "a1",
        "timings": {"total": 1.5},
        "note": "ünïcødé",
    }
    assert entries[1] == {"severity": "NOTICE", "message": "noted"}
    assert entries[2] == {"severity": "WARNING", "message": "from a module logger too"}
    assert entries[3]["severity"] == "ERROR" and "RuntimeError: boom" in entries[3]["stack_trace"]


def test_set_level_filters(capsys) -> None:
    try:
        logs.set_level("WARNING")
        logs.info("quiet")
        logs.warning("loud")
        logs.set_level("DEBUG")
        logs.log("DEBUG", "detail")
    finally:
        logs.set_level("INFO")
    assert [e["message"] for e in _lines(capsys.readouterr().out)] == ["loud", "detail"]


def test_a_later_dict_config_does_not_silence_us(capsys, monkeypatch) -> None:
    monkeypatch.setattr(logs.LOGGER, "disabled", True)  # what dictConfig does to other loggers
    logs.warning("still here")
    assert _lines(capsys.readouterr().out) == [{"severity": "WARNING", "message": "still here"}]
