"""Pub/Sub messages and `on_message`'s outcome mapping: unit tests, no emulator needed.

The outcome tests run the real functions-framework app of `on_message` on the push body Pub/Sub
sends (functions-framework turns it into the `messagePublished` CloudEvent) with the pipeline
replaced by a stub: 200 means Pub/Sub acknowledges, 500 that it redelivers.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from autotagger.config import load_settings
from autotagger.errors import ConfigError, InProgress, MalformedMessage, UpstreamError
from autotagger.queue import messages
from autotagger.web.webhook import upload_from_resource

DATA = Path(__file__).resolve().parents[1] / "data"
MAIN = str(Path(__file__).resolve().parents[2] / "function" / "main.py")


def asset(**fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((DATA / "asset_message.json").read_text())
    payload.update(fields)
    return {k: v for k, v in payload.items() if v is not None}


def push_body(data: bytes | str, **attributes: str) -> dict[str, Any]:
    """The body Pub/Sub POSTs to a push endpoint (tests/data/pubsub_push.json)."""
    body: dict[str, Any] = json.loads((DATA / "pubsub_push.json").read_text())
    raw = data.encode() if isinstance(data, str) else data
    body["message"]["data"] = base64.b64encode(raw).decode()
    body["message"]["attributes"].update(attributes)
    return body


def encoded(**fields: Any) -> bytes:
    return json.dumps(asset(**fields)).encode()


# -- build / parse ---------------------------------------------------------------------------------


def test_build_then_parse_round_trips() -> None:
    upload = upload_from_resource(asset())
    data, attributes = messages.build(messages.AssetMessage(upload, "backfill"))
    assert attributes == {
        "asset_id": upload.asset_id,
        "version": str(upload.version),
        "origin": "backfill",
    }
    assert json.loads(data) == asset()  # every field of the asset, nothing else
    parsed = messages.parse(data, attributes)
    assert parsed == messages.AssetMessage(upload, "backfill")


def test_video_messages_carry_duration_and_is_audio() -> None:
    video = asset(resource_type="video", format="mp4", width=None, duration=12.5)
    upload = upload_from_resource(video)
    data, attributes = messages.build(messages.AssetMessage(upload, "webhook"))
    assert json.loads(data)["duration"] == 12.5
    assert "is_audio" not in json.loads(data)
    parsed = messages.parse(data, attributes)
    assert parsed.upload.resource_type == "video"
    assert parsed.upload.duration == 12.5
    audio = upload_from_resource({**video, "is_audio": True})
    data, attributes = messages.build(messages.AssetMessage(audio, "backfill"))
    assert messages.parse(data, attributes).upload.is_audio is True


def test_unknown_fields_are_ignored() -> None:
    data, attributes = messages.build(
        messages.AssetMessage(upload_from_resource(asset()), "webhook")
    )
    newer = json.dumps({**json.loads(data), "schema": 2, "frames": [1, 2]}).encode()
    assert messages.parse(newer, attributes).upload.asset_id == asset()["asset_id"]


def test_build_refuses_an_unknown_origin() -> None:
    with pytest.raises(ValueError, match="origin"):
        messages.build(messages.AssetMessage(upload_from_resource(asset()), "cron"))


ATTRS = {"asset_id": asset()["asset_id"], "version": str(asset()["version"]), "origin": "webhook"}


@pytest.mark.parametrize(
    ("data", "attributes", "expected"),
    [
        (b"not json", ATTRS, "data is not valid JSON"),
        (b"\xff\xfe", ATTRS, "data is not valid JSON"),
        (b"[1, 2]", ATTRS, "JSON object"),
        (encoded(asset_id=None), ATTRS, "'asset_id'"),
        (encoded(asset_id="../x"), ATTRS, "'asset_id'"),
        (encoded(version="v1"), ATTRS, "'version'"),
        (encoded(version=True), ATTRS, "'version'"),
        (encoded(secure_url=""), ATTRS, "'secure_url'"),
        (encoded(resource_type=None), ATTRS, "'resource_type'"),
        (encoded(duration="long"), ATTRS, "'duration'"),
        (encoded(duration=-1), ATTRS, "'duration'"),
        (encoded(), {**ATTRS, "origin": "cron"}, "'origin'"),
        (encoded(), {k: v for k, v in ATTRS.items() if k != "origin"}, "'origin'"),
        (encoded(), {**ATTRS, "asset_id": "other"}, "'asset_id' does not match"),
        (encoded(), {**ATTRS, "version": "1"}, "'version' does not match"),
        (b" " * (messages.MAX_DATA_BYTES + 1), ATTRS, "bytes, over"),
    ],
)
def test_malformed_messages_are_named(
    data: bytes, attributes: dict[str, str], expected: str
) -> None:
    with pytest.raises(MalformedMessage, match=expected):
        messages.parse(data, attributes)


@pytest.mark.parametrize(
    "event_data",
    [
        None,
        [],
        {},
        {"message": "x"},
        {"message": {"attributes": ATTRS}},
        {"message": {"data": "%%%not-base64", "attributes": ATTRS}},
        {"message": {"data": base64.b64encode(encoded()).decode(), "attributes": {"n": 1}}},
    ],
)
def test_malformed_events(event_data: Any) -> None:
    with pytest.raises(MalformedMessage):
        messages.from_cloud_event(event_data)


def test_event_from_the_push_body() -> None:
    body = push_body(encoded())
    received = messages.from_cloud_event(body)
    assert received.message_id == "2070443601311540"
    assert received.message.upload.public_id == "samples/dog"
    assert received.message.origin == "webhook"


# -- settings --------------------------------------------------------------------------------------


def test_queue_settings_defaults() -> None:
    settings = load_settings({})
    assert settings.webhook_mode == "inline"
    assert settings.pubsub_topic == "autotagger-uploads"
    assert settings.pubsub_emulator_host is None
    assert settings.pubsub_publish_timeout_s == 10.0


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"WEBHOOK_MODE": "batch"}, "WEBHOOK_MODE"),
        ({"PUBSUB_TOPIC": "ab"}, "PUBSUB_TOPIC"),
        ({"PUBSUB_TOPIC": "goog-topic"}, "PUBSUB_TOPIC"),
        ({"PUBSUB_TOPIC": "has space"}, "PUBSUB_TOPIC"),
        ({"PUBSUB_EMULATOR_HOST": "http://x/"}, "PUBSUB_EMULATOR_HOST"),
        ({"PUBSUB_PUBLISH_TIMEOUT_S": "0"}, "PUBSUB_PUBLISH_TIMEOUT_S"),
    ],
)
def test_bad_queue_settings_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(env)


def test_queue_mode_is_parsed() -> None:
    settings = load_settings({"WEBHOOK_MODE": "Queue", "PUBSUB_TOPIC": "uploads.v2"})
    assert (settings.webhook_mode, settings.pubsub_topic) == ("queue", "uploads.v2")


# -- on_message outcome mapping (the real functions-framework app, a stubbed pipeline) ----------


@pytest.fixture
def on_message(monkeypatch: pytest.MonkeyPatch) -> Any:
    """(client, calls, set_outcome): `on_message` with process_upload replaced."""
    import functions_framework

    from autotagger import pipeline

    for key in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "WEBHOOK_MODE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CLOUDINARY_URL", "cloudinary://1234:secret@unit-cloud")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo-unit")
    calls: list[Any] = []
    outcome: dict[str, Any] = {}

    def stub(upload: Any, settings: Any, **options: Any) -> dict[str, Any]:
        calls.append(upload)
        if isinstance(outcome.get("value"), Exception):
            raise outcome["value"]
        return dict(outcome.get("value") or {})

    monkeypatch.setattr(pipeline, "process_upload", stub)
    client = functions_framework.create_app("on_message", MAIN).test_client()
    return client, calls, lambda value: outcome.update(value=value)


@pytest.mark.parametrize(
    "record",
    [
        {"status": "done", "label": "tabby"},
        {"status": "failed", "error": "not an image"},
        {"status": "done", "duplicate": True},
        {"status": "ignored", "reason": "version 1 superseded by 2"},
    ],
)
def test_final_outcomes_are_acknowledged(on_message: Any, record: dict[str, Any]) -> None:
    client, calls, set_outcome = on_message
    set_outcome(record)
    response = client.post("/", json=push_body(encoded()))
    assert response.status_code == 200
    assert [u.asset_id for u in calls] == [asset()["asset_id"]]


@pytest.mark.parametrize(
    "error",
    [
        InProgress("held by another delivery"),
        UpstreamError("Firestore claim failed after 3 attempts"),
        RuntimeError("unexpected"),
    ],
)
def test_transient_outcomes_are_redelivered(on_message: Any, error: Exception) -> None:
    client, calls, set_outcome = on_message
    set_outcome(error)
    response = client.post("/", json=push_body(encoded()))
    assert response.status_code >= 500  # Pub/Sub nacks and redelivers with backoff
    assert len(calls) == 1


def test_malformed_message_is_logged_and_acknowledged(
    on_message: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    client, calls, _ = on_message
    response = client.post("/", json=push_body(b"{not json"))
    assert response.status_code == 200
    assert calls == []  # nothing processed, nothing stored
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    logged = [e for e in entries if e.get("message", "").startswith("malformed message")]
    assert logged and logged[0]["message_id"] == "2070443601311540"
    assert logged[0]["severity"] == "ERROR"


# -- make run without gcloud's Pub/Sub emulator ---------------------------------------------------


def test_make_run_without_the_pubsub_emulator_runs_inline_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from infra import emulators, local_pubsub

    monkeypatch.setattr(emulators, "gcloud_emulator_available", lambda kind: False)
    env = {"WEBHOOK_MODE": "queue"}
    processes: list[Any] = []
    local_pubsub.start_for_run(env, processes, port=1)
    assert capsys.readouterr().out.splitlines() == [
        "Pub/Sub: gcloud's emulator is not installed: running inline only"
    ]
    assert env["WEBHOOK_MODE"] == "inline" and processes == []
