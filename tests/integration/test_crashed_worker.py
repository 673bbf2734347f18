"""Claims never block a delivery of their own and never dead-letter a crashed worker's message
(gcloud's official Firestore and Pub/Sub emulators; the worker under functions-framework).

- a `create()` whose answer was lost and that is retried finds its own claim: it classifies,
  it does not answer 409 for CLAIM_TTL_S;
- a worker killed while it holds a message's claim: Pub/Sub redelivers the message, the
  redelivery recognises the claim as its message's and classifies it at once, well inside the
  production retry policy's 5 attempts (here about a second apart, much faster than production's
  10-600 s, so any wait for the claim to expire would dead-letter the message)."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions as google_exceptions
from google.cloud import firestore
from google.cloud.firestore_v1.document import DocumentReference
from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

from autotagger.queue import messages
from autotagger.web.webhook import upload_from_resource
from infra import local_pubsub
from infra.local_cloudinary import CloudinaryStandin
from tests.support.helpers import image_bytes, notification_from, sign_body
from tests.support.queue_servers import Server, pull_all, wait_for

PROJECT = "demo-autotagger-crash"
WAIT_S = 600.0  # bounds on outcomes, generous for a shared machine


@pytest.mark.usefixtures("real_model_env")
def test_a_retried_create_finds_its_own_claim(make_client, standin, monkeypatch) -> None:
    client = make_client("on_upload")
    real_create = DocumentReference.create
    lost: list[str] = []

    def create_then_lose_the_answer(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = real_create(self, *args, **kwargs)
        if not lost:  # the write landed; its answer did not
            lost.append(self.id)
            raise google_exceptions.DeadlineExceeded("answer lost")
        return result

    monkeypatch.setattr(DocumentReference, "create", create_then_lose_the_answer)
    resource = standin.add_asset(image_bytes(), public_id="claims/retried-create")
    body = notification_from(resource)
    response = client.post("/", data=body, headers=sign_body(body, standin.api_secret))
    assert lost == [resource["asset_id"]]
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["status"] == "done"


@pytest.mark.slow
def test_a_crashed_workers_message_is_classified_not_dead_lettered(
    emulator_host: str,
    pubsub_host: str,
    standin: CloudinaryStandin,
    model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    standin.reset()
    topic = f"crash-{uuid.uuid4().hex[:8]}"
    collection = f"c{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "CLOUDINARY_URL": standin.cloudinary_url,
        "CLOUDINARY_DELIVERY_HOSTS": standin.delivery_host,
        "FIRESTORE_EMULATOR_HOST": emulator_host,
        "PUBSUB_EMULATOR_HOST": pubsub_host,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "FIRESTORE_COLLECTION": collection,
        "PUBSUB_TOPIC": topic,
        "MODEL_WEIGHTS": str(model_dir),
        "LOG_LEVEL": "INFO",
    }
    env.pop("CLAIM_TTL_S", None)  # the default TTL: the crashed claim stays live throughout
    for key in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.setenv(key, env[key])
    crashing = Server("on_message", env, tmp_path / "crashing.log").start()
    standby = Server("on_message", env, tmp_path / "standby.log").start()
    wiring = local_pubsub.setup(
        pubsub_host,
        crashing.url,
        PROJECT,
        topic,
        max_delivery_attempts=local_pubsub.MAX_DELIVERY_ATTEMPTS,  # production's 5
    )
    documents = firestore.Client(project=PROJECT).collection(collection)
    subscriber = SubscriberClient()
    try:
        resource = standin.add_asset(image_bytes(), public_id="crash/photo")
        # The first download stalls: the worker holds the claim when it is killed.
        standin.inject(f"/{standin.cloud_name}/image/upload/", delay_s=60.0, times=1)
        data, attributes = messages.build(
            messages.AssetMessage(upload=upload_from_resource(resource), origin="webhook")
        )
        publisher = PublisherClient()
        message_id = publisher.publish(wiring.topic, data, **attributes).result(timeout=60)

        def claimed() -> Any:
            snapshot = documents.document(resource["asset_id"]).get()
            return snapshot.exists and (snapshot.to_dict() or {}).get("status") == "processing"

        wait_for("the crashing worker's claim", claimed, WAIT_S)
        os.killpg(crashing.process.pid, signal.SIGKILL)  # the instance dies with its claim
        crashing.process.wait(timeout=60)
        crashing.process = None
        subscriber.modify_push_config(
            request={
                "subscription": wiring.subscription,
                "push_config": {
                    "push_endpoint": local_pubsub.push_endpoint(standby.url, PROJECT, topic)
                },
            }
        )

        def final() -> Any:
            document = documents.document(resource["asset_id"]).get().to_dict() or {}
            return document if document.get("status") in ("done", "failed") else None

        def dead_letters() -> list[Any]:
            return pull_all(wiring.dead_letter_subscription, subscriber)

        def outcome() -> Any:
            return final() or dead_letters()

        result = wait_for("the message's outcome (classified or dead-lettered)", outcome, WAIT_S)
        assert isinstance(result, dict), f"dead-lettered: {result}"
        print(f"crashed worker's message {message_id}: {result['status']} by the redelivery")
        assert result["status"] == "done" and result["version"] == resource["version"]
        assert result["tags"] == (standin.asset("crash/photo") or {})["tags"]
        processed = [
            e
            for e in standby.entries()
            if e.get("message_id") == message_id and e["message"] == "message processed: done"
        ]
        assert len(processed) == 1
        assert dead_letters() == []
    finally:
        subscriber.close()
        crashing.stop(grace_s=5)
        standby.stop(grace_s=5)
