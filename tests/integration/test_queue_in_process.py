"""Queue mode in process: the webhook publishes and never loads the model, 503 when Pub/Sub is
unreachable, outcomes the worker must acknowledge, reclassification, `backfill --enqueue --limit`
(the official Pub/Sub and Firestore emulators; the apps as functions-framework test clients)."""

from __future__ import annotations

import base64
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from google.cloud.pubsub_v1 import SubscriberClient

from autotagger import cli, model, pipeline
from autotagger.queue import messages
from autotagger.web.webhook import upload_from_resource
from infra import local_pubsub
from infra.local_cloudinary import CloudinaryStandin
from infra.processes import free_port
from tests.support.helpers import image_bytes, notification_from, sign_body
from tests.support.queue_servers import PROJECT, pull_all, relinked_artifact, tag_writes

pytestmark = pytest.mark.slow


def test_backfill_enqueue_limit_keeps_its_place_inside_a_page(
    base_env: dict[str, str],
    standin: CloudinaryStandin,
    pubsub_host: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic = f"lim-{uuid.uuid4().hex[:8]}"
    for key, value in {
        "PUBSUB_EMULATOR_HOST": pubsub_host,
        "PUBSUB_TOPIC": topic,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
    }.items():
        monkeypatch.setenv(key, value)
    wiring = local_pubsub.setup(pubsub_host, "http://127.0.0.1:9", PROJECT, topic)
    subscriber = SubscriberClient()
    audit = subscriber.subscription_path(PROJECT, f"{topic}-audit")
    subscriber.create_subscription(request={"name": audit, "topic": wiring.topic})
    resources = [
        standin.add_asset(image_bytes((64, 48)), public_id=f"lim/{i:02d}") for i in range(20)
    ]
    cursor = tmp_path / "cursor.json"
    command = ["backfill", "--enqueue", "--prefix", "lim/", "--page-size", "8"]
    command += ["--cursor-file", str(cursor), "--limit", "5"]
    seen: list[str] = []
    for run in range(4):  # 5 + 5 + 5 + 5, the second and third runs cross a page boundary
        assert cli.main(command) == 0
        out = capsys.readouterr().out
        published = [m.attributes["asset_id"] for m in pull_all(audit, subscriber)]
        assert len(published) == 5, (run, out)
        seen += published
        assert cursor.exists() == (run < 3)
    assert seen == [r["asset_id"] for r in resources]  # each once, in listing order
    assert cli.main(command) == 0  # a fresh run: nothing is final yet, so all over again
    assert len(pull_all(audit, subscriber)) == 5
    subscriber.close()


def _push_body(upload: Any, origin: str = "webhook") -> dict[str, Any]:
    data, attributes = messages.build(messages.AssetMessage(upload_from_resource(upload), origin))
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": attributes,
            "messageId": uuid.uuid4().hex,
            "publishTime": "2026-11-25T10:00:00Z",
        },
        "subscription": f"projects/{PROJECT}/subscriptions/in-process",
    }


@pytest.mark.usefixtures("real_model_env")
def test_broken_image_message_ends_failed_and_is_acknowledged(
    make_client: Any, standin: CloudinaryStandin, stored: Any
) -> None:
    broken = standin.add_asset(image_bytes(), public_id="q/broken")
    standin.replace_bytes("q/broken", b"<html>not an image</html>")
    client = make_client("on_message", DOWNLOAD_RENDITION="0")
    answer = client.post("/", json=_push_body(broken))
    assert answer.status_code == 200  # acknowledged: retrying would not help
    document = stored()[broken["asset_id"]]
    assert document["status"] == "failed" and document["error"]
    assert tag_writes(standin, "q/") == Counter()


def test_reclassify_message_redoes_a_document_of_another_model(
    make_client: Any,
    standin: CloudinaryStandin,
    stored: Any,
    model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODEL_WEIGHTS", str(relinked_artifact(model_dir, tmp_path / "old", False)))
    resource = standin.add_asset(image_bytes(color=(10, 200, 30)), public_id="q/re")
    first = make_client("on_message")
    assert first.post("/", json=_push_body(resource)).status_code == 200
    before = stored()[resource["asset_id"]]
    assert before["model"] == "vgg16/random(seed=0)"
    # The same message again is a duplicate; as `reclassify` with the same model, too.
    assert first.post("/", json=_push_body(resource, "reclassify")).status_code == 200
    assert stored()[resource["asset_id"]]["updated_at"] == before["updated_at"]

    switched = relinked_artifact(model_dir, tmp_path / "switched", True)
    second = make_client("on_message", MODEL_WEIGHTS=str(switched))
    assert second.post("/", json=_push_body(resource, "reclassify")).status_code == 200
    after = stored()[resource["asset_id"]]
    assert after["status"] == "done"
    assert after["model"].startswith("vgg16/random(seed=0)@") and len(after["model"]) == 33
    assert after["updated_at"] > before["updated_at"]
    assert (standin.asset("q/re") or {})["tags"] == after["tags"]


@pytest.mark.usefixtures("real_model_env")
def test_queue_mode_webhook_publishes_and_never_loads_the_model(
    make_client: Any,
    standin: CloudinaryStandin,
    pubsub_host: str,
    stored: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = f"wh-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_host)
    wiring = local_pubsub.setup(pubsub_host, "http://127.0.0.1:9", PROJECT, topic)
    subscriber = SubscriberClient()
    audit = subscriber.subscription_path(PROJECT, f"{topic}-audit")
    subscriber.create_subscription(request={"name": audit, "topic": wiring.topic})

    def no_model(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("queue mode must not load the model")

    real_get_model = model.get_model
    monkeypatch.setattr(model, "get_model", no_model)
    client = make_client(
        "on_upload", WEBHOOK_MODE="queue", PUBSUB_TOPIC=topic, GOOGLE_CLOUD_PROJECT=PROJECT
    )
    resource = standin.add_asset(image_bytes(), public_id="q/queued")
    body = notification_from(resource)
    answer = client.post("/", data=body, headers=sign_body(body, standin.api_secret))
    assert answer.status_code == 202
    assert answer.get_json() == {
        "status": "queued",
        "asset_id": resource["asset_id"],
        "public_id": "q/queued",
        "version": resource["version"],
    }
    assert stored() == {}  # the worker stores, not the webhook
    queued = pull_all(audit, subscriber)
    assert [m.attributes["origin"] for m in queued] == ["webhook"]
    parsed = messages.parse(queued[0].data, dict(queued[0].attributes))
    assert parsed.upload == upload_from_resource(resource)

    # The page's forward path is queued the same way.
    signed = {
        "public_id": resource["public_id"],
        "version": resource["version"],
        "signature": resource["signature"],
        "asset_id": resource["asset_id"],
    }
    forwarded = client.post("/forward", json=signed)
    assert forwarded.status_code == 202 and forwarded.get_json()["status"] == "queued"
    assert len(pull_all(audit, subscriber)) == 1

    # Already done for this version: 200 duplicate, nothing published.
    monkeypatch.setattr(model, "get_model", real_get_model)
    done = pipeline.process_upload(upload_from_resource(resource), _settings_now())
    assert done["status"] == "done"
    again = client.post("/", data=body, headers=sign_body(body, standin.api_secret))
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert pull_all(audit, subscriber) == []
    subscriber.close()


def _settings_now() -> Any:
    from autotagger import config
    from autotagger.clients import cloudinary_client

    settings = config.load_settings()
    cloudinary_client.configure(settings.cloudinary)
    return settings


def test_queue_mode_answers_503_when_pubsub_is_unreachable(
    make_client: Any, standin: CloudinaryStandin, stored: Any
) -> None:
    client = make_client(
        "on_upload",
        WEBHOOK_MODE="queue",
        PUBSUB_EMULATOR_HOST=f"127.0.0.1:{free_port()}",
        PUBSUB_PUBLISH_TIMEOUT_S="1",
    )
    resource = standin.add_asset(image_bytes(), public_id="q/nopubsub")
    body = notification_from(resource)
    answer = client.post("/", data=body, headers=sign_body(body, standin.api_secret))
    assert answer.status_code == 503  # Cloudinary redelivers; nothing was lost
    assert "Pub/Sub publish" in answer.get_json()["error"]
    assert stored() == {}
