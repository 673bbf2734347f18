"""Firestore down while messages flow through the official Pub/Sub emulator to a worker under
functions-framework: nothing is acknowledged until it is stored."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from google.cloud import firestore
from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

from autotagger.queue import messages
from autotagger.web.webhook import upload_from_resource
from infra import emulators, local_pubsub
from infra.local_cloudinary import CloudinaryStandin
from infra.processes import stop
from tests.support.helpers import image_bytes
from tests.support.queue_servers import DRAIN_TIMEOUT_S, PROJECT, Server, pull_all, wait_for

pytestmark = pytest.mark.slow


def test_firestore_down_nothing_acknowledged_until_stored(
    pubsub_host: str,
    standin: CloudinaryStandin,
    model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    standin.reset()
    firestore_process, firestore_host = emulators.start_emulator()
    port = int(firestore_host.rsplit(":", 1)[1])
    topic = f"down-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "CLOUDINARY_URL": standin.cloudinary_url,
        "CLOUDINARY_DELIVERY_HOSTS": standin.delivery_host,
        "FIRESTORE_EMULATOR_HOST": firestore_host,
        "PUBSUB_EMULATOR_HOST": pubsub_host,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "FIRESTORE_COLLECTION": "down",
        "PUBSUB_TOPIC": topic,
        "MODEL_WEIGHTS": str(model_dir),
        "LOG_LEVEL": "INFO",
        "THREADS": "8",
    }
    worker = Server("on_message", env, tmp_path / "worker.log")
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_host)
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_host)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    wiring = local_pubsub.setup(pubsub_host, worker.url, PROJECT, topic, max_delivery_attempts=100)
    processes = [firestore_process]
    try:
        worker.start()
        stop([firestore_process])  # Firestore goes down
        resources = [
            standin.add_asset(image_bytes(color=(i * 20, 50, 90)), public_id=f"down/{i}")
            for i in range(10)
        ]
        publisher = PublisherClient()
        for resource in resources:
            data, attributes = messages.build(
                messages.AssetMessage(upload_from_resource(resource), "webhook")
            )
            publisher.publish(wiring.topic, data, **attributes).result(timeout=60)

        def refusals() -> int:
            entries = worker.entries()
            assert not any(e["message"].startswith("message processed") for e in entries)
            return sum(1 for e in entries if e["message"].startswith("message not processed"))

        # Every message is refused (and so redelivered), some more than once.
        wait_for("redeliveries during the outage", lambda: refusals() >= 15, 600)
        processes = [emulators.start_emulator(port=port)[0]]  # Firestore is back (empty)
        client = firestore.Client(project=PROJECT)

        def all_done() -> bool:
            docs = {d.id: d.to_dict() for d in client.collection("down").stream()}
            return all((docs.get(r["asset_id"]) or {}).get("status") == "done" for r in resources)

        wait_for("10 done documents", all_done, DRAIN_TIMEOUT_S, every_s=1)
        assert sum(1 for call in standin.calls if call["path"].endswith("/tags")) == 10
        subscriber = SubscriberClient()
        assert pull_all(wiring.dead_letter_subscription, subscriber) == []
        subscriber.close()
    finally:
        worker.stop(grace_s=5)
        stop(processes)
