"""Queue mode end to end, against gcloud's official Pub/Sub and Firestore emulators.

`on_upload` (WEBHOOK_MODE=queue) and `on_message` run under functions-framework (gunicorn); the
emulator pushes each message to `on_message` through a push subscription made by
`infra/local_pubsub.py`, exactly as `make run` wires it. Every wait is on an outcome (documents,
log lines), bounded generously: the machine may be busy.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from google.cloud import firestore
from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

from autotagger import cli
from autotagger.queue import messages
from autotagger.web.webhook import upload_from_resource
from infra import local_pubsub
from infra.local_cloudinary import CloudinaryStandin
from tests.support.helpers import image_bytes, notification_from, sign_body
from tests.support.queue_servers import (
    DRAIN_TIMEOUT_S,
    PROJECT,
    Server,
    pull_all,
    relinked_artifact,
    tag_writes,
    wait_for,
)

pytestmark = pytest.mark.slow


@dataclass
class Spine:
    env: dict[str, str]
    wiring: local_pubsub.Wiring
    worker: Server
    webhook: Server
    collection: str
    pubsub_host: str

    def documents(self) -> dict[str, dict[str, Any]]:
        client = firestore.Client(project=PROJECT)
        return {d.id: d.to_dict() or {} for d in client.collection(self.collection).stream()}

    def done(self, asset_ids: set[str]) -> int:
        docs = self.documents()
        return sum(1 for a in asset_ids if docs.get(a, {}).get("status") in ("done", "failed"))


@pytest.fixture(scope="module")
def spine(
    emulator_host: str,
    pubsub_host: str,
    standin: CloudinaryStandin,
    model_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Spine]:
    """The webhook in queue mode, the topic with its push subscription, the worker."""
    logs_dir = tmp_path_factory.mktemp("queue-logs")
    topic = f"uploads-{uuid.uuid4().hex[:8]}"
    collection = f"q{uuid.uuid4().hex[:12]}"
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
        "CLAIM_TTL_S": "120",  # longer than any classification, even on a busy machine
        "LOG_LEVEL": "INFO",
    }
    worker = Server("on_message", {**env, "THREADS": "8"}, logs_dir / "worker.log")
    webhook = Server(
        "on_upload", {**env, "WEBHOOK_MODE": "queue", "THREADS": "32"}, logs_dir / "webhook.log"
    )
    with pytest.MonkeyPatch.context() as patch:
        for key in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT"):
            patch.setenv(key, env[key])
        # Many attempts: messages pushed while the worker is down are retried (about once a
        # second) until it is back (in production: 5 attempts, 10-600 s apart, then dead letters).
        wiring = local_pubsub.setup(
            pubsub_host,
            worker.url,
            PROJECT,
            topic,
            max_delivery_attempts=100,
        )
        worker.start()
        webhook.start()
        try:
            yield Spine(env, wiring, worker, webhook, collection, pubsub_host)
        finally:
            webhook.stop(grace_s=5)
            worker.stop(grace_s=5)


BURST = 60  # assets; a tenth more deliveries are duplicates, 32 at a time


def test_burst_in_queue_mode_with_the_worker_stopped_halfway(
    spine: Spine, standin: CloudinaryStandin
) -> None:
    standin.reset()
    rng = random.Random(9)
    resources = [
        standin.add_asset(
            image_bytes(
                (rng.randint(160, 480), rng.randint(120, 360)), (i % 256, 90, 200 - i % 200)
            ),
            public_id=f"burst/{i:03d}",
        )
        for i in range(BURST)
    ]
    ids = {r["asset_id"] for r in resources}
    deliveries = resources + rng.sample(resources, BURST // 10)  # duplicate deliveries mixed in
    rng.shuffle(deliveries)
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))

    def deliver(resource: dict[str, Any]) -> tuple[int, float]:
        body = notification_from(resource)
        started = time.perf_counter()
        answer = session.post(
            spine.webhook.url, data=body, headers=sign_body(body, standin.api_secret), timeout=300
        )
        return answer.status_code, time.perf_counter() - started

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(deliver, deliveries))
    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {200, 202}, statuses  # no 5xx, no 429, nothing refused
    assert statuses[202] >= BURST  # every asset was queued at least once

    # Stop the worker once a third of the queue is done; in-flight messages finish (SIGTERM).
    def a_third() -> int:
        count = spine.done(ids)
        return count if count >= BURST // 3 else 0

    at_stop = wait_for(f"{BURST // 3} documents", a_third, 900, every_s=0.2)
    spine.worker.stop()
    assert at_stop < BURST, "the queue drained before the worker could be stopped halfway"
    spine.worker.start()
    wait_for(
        f"{BURST} final documents", lambda: spine.done(ids) == BURST, DRAIN_TIMEOUT_S, every_s=0.5
    )

    documents = spine.documents()
    by_id = {r["asset_id"]: r for r in resources}
    for asset_id in ids:
        assert documents[asset_id]["status"] == "done", documents[asset_id]
        assert documents[asset_id]["version"] == by_id[asset_id]["version"]
    writes = tag_writes(standin, "burst/")
    assert sum(writes.values()) == BURST  # exactly one tag write per asset ...
    assert set(writes.values()) == {1}  # ... none twice
    for resource in resources:  # the tags are the document's
        tags = (standin.asset(resource["public_id"]) or {})["tags"]
        assert tags == documents[resource["asset_id"]]["tags"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PUBSUB_EMULATOR_HOST", spine.pubsub_host)
        subscriber = SubscriberClient()
        assert pull_all(spine.wiring.dead_letter_subscription, subscriber) == []
        subscriber.close()


def test_malformed_message_through_the_emulator_is_logged_and_acknowledged(
    spine: Spine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", spine.pubsub_host)
    before = spine.documents()
    publisher = PublisherClient()
    message_id = publisher.publish(
        spine.wiring.topic, b"{not json", asset_id="x", version="1", origin="webhook"
    ).result(timeout=60)

    def logged() -> list[dict[str, Any]]:
        return [
            e
            for e in spine.worker.entries()
            if e.get("message_id") == message_id and e["message"].startswith("malformed")
        ]

    entry = wait_for("the malformed message's log line", logged, 300)[0]
    assert entry["severity"] == "ERROR" and "not valid JSON" in entry["error"]
    assert spine.documents() == before  # nothing stored
    assert len(logged()) == 1  # acknowledged at once: one delivery, no retry


def test_backfill_enqueue_resumes_respects_the_budget_then_reclassifies(
    spine: Spine,
    standin: CloudinaryStandin,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    model_dir: Path,
) -> None:
    standin.reset()
    for key in ("CLOUDINARY_URL", "FIRESTORE_COLLECTION", "PUBSUB_TOPIC", "MODEL_WEIGHTS"):
        monkeypatch.setenv(key, spine.env[key])
    for key in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.setenv(key, spine.env[key])
    monkeypatch.setenv("CLOUDINARY_DELIVERY_HOSTS", standin.delivery_host)
    resources = [
        standin.add_asset(image_bytes((200, 150), (i, 40, 255 - i)), public_id=f"bf/{i:03d}")
        for i in range(40)
    ]
    ids = {r["asset_id"] for r in resources}
    # An audit subscription sees every message published from now on.
    subscriber = SubscriberClient()
    audit = subscriber.subscription_path(PROJECT, f"audit-{uuid.uuid4().hex[:8]}")
    subscriber.create_subscription(request={"name": audit, "topic": spine.wiring.topic})

    # A quarter of them are already done (through the queue, as webhooks would have done).
    first = [upload_from_resource(r) for r in resources[::4]]
    from autotagger import config
    from autotagger.clients import pubsub

    pubsub.publish_all(config.load_settings(), [messages.AssetMessage(u, "webhook") for u in first])
    done10 = {u.asset_id for u in first}
    wait_for("10 documents", lambda: spine.done(done10) == 10, DRAIN_TIMEOUT_S, every_s=0.5)
    pull_all(audit, subscriber)

    cursor = tmp_path / "cursor.json"
    common = ["backfill", "--enqueue", "--prefix", "bf/", "--cursor-file", str(cursor)]
    assert cli.main([*common, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "40 images listed, 10 already classified, would publish 30" in out
    assert pull_all(audit, subscriber) == [] and not cursor.exists()

    # A budget of 2 Admin API requests: two pages of 10, then a clean stop saying how to resume.
    standin.limit_admin_api(2)
    assert cli.main([*common, "--page-size", "10"]) == cli.EXIT_BUDGET
    out = capsys.readouterr().out
    assert "stopped: Admin API budget exhausted (0 of 2 requests left this hour" in out
    resume = (
        "resume after the reset with: python function/cli.py backfill --enqueue --prefix bf/ "
        f"--page-size 10 --cursor-file {cursor}"
    )
    assert resume in out
    assert "20 images listed, 5 already classified, published 15" in out
    assert json.loads(cursor.read_text())["listed"] == 20
    first_run = pull_all(audit, subscriber)
    assert len(first_run) == 15

    # The resumed run starts at its cursor: two more pages, the other 15.
    standin.limit_admin_api(None)
    calls_before = sum(1 for c in standin.calls if "/resources/" in c["path"])
    assert cli.main([*common, "--page-size", "10"]) == 0
    out, err = capsys.readouterr()
    assert f"resuming from {cursor}: 20 listed, 15 published" in err
    assert "40 images listed, 10 already classified, published 30" in out
    assert sum(1 for c in standin.calls if "/resources/" in c["path"]) - calls_before == 2
    assert not cursor.exists()  # complete: the next run starts over
    second_run = pull_all(audit, subscriber)
    published = {m.attributes["asset_id"] for m in [*first_run, *second_run]}
    assert published == ids - done10 and len(first_run) + len(second_run) == 30
    assert {m.attributes["origin"] for m in second_run} == {"backfill"}
    assert "asset" in err and "published=30" in err.replace(" ", "")  # the tqdm bar

    # Once the worker has drained them, a second run publishes nothing.
    wait_for("40 documents", lambda: spine.done(ids) == 40, DRAIN_TIMEOUT_S, every_s=0.5)
    assert cli.main(common) == 0
    assert "40 images listed, 40 already classified, published 0" in capsys.readouterr().out
    assert pull_all(audit, subscriber) == []

    # Another model name (the served artifact's with its weights' hash recorded or dropped, the
    # opposite of what the documents were made with): every asset is re-queued.
    hashed = "sha256" in json.loads((model_dir / "manifest.json").read_text())
    switched = relinked_artifact(model_dir, tmp_path / "switched", not hashed)
    monkeypatch.setenv("MODEL_WEIGHTS", str(switched))
    assert cli.main([*common, "--model-changed"]) == 0
    out = capsys.readouterr().out
    assert "40 images listed, 0 already classified, published 40 (40 to re-classify)" in out
    reclassify = pull_all(audit, subscriber)
    assert len(reclassify) == 40
    assert {m.attributes["origin"] for m in reclassify} == {"reclassify"}
    subscriber.delete_subscription(request={"subscription": audit})
    subscriber.close()
