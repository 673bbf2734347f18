"""Queue mode end to end, against gcloud's official Pub/Sub and Firestore emulators.

`on_upload` (WEBHOOK_MODE=queue) and `on_message` run under functions-framework (gunicorn); the
emulator pushes each message to `on_message` through a push subscription made by
`infra/local_pubsub.py`, exactly as `make run` wires it. Every wait is on an outcome (documents,
log lines), bounded generously: the machine may be busy.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from google.cloud import firestore
from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

from autotagger import cli, model, pipeline
from autotagger.queue import messages
from autotagger.web.webhook import upload_from_resource
from infra import emulators, local_pubsub
from infra.local_cloudinary import CloudinaryStandin
from infra.processes import free_port, serve, stop, wait_until_up
from tests.support.helpers import image_bytes, notification_from, sign_body

pytestmark = pytest.mark.slow
PROJECT = "demo-autotagger-queue"
DRAIN_TIMEOUT_S = 1800.0  # 60 VGG16 forwards on 2 shared vCPUs, with margin for a busy machine


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, every_s: float = 0.5) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(every_s)


@dataclass
class Server:
    """One function under functions-framework, restartable on the same port."""

    target: str
    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    process: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        with self.log.open("ab") as log:
            self.process = serve(self.target, self.port, self.env, log_to=log)
        wait_until_up(self.url + "/healthz", self.process, timeout_s=300)
        return self

    def stop(self, grace_s: float = 120.0) -> None:
        """SIGTERM: gunicorn finishes the requests in flight (as Cloud Run's shutdown does)."""
        if self.process is not None:
            stop([self.process], timeout_s=grace_s)
            self.process = None

    def entries(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
        return found


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


def _pull_all(subscription: str, subscriber: SubscriberClient) -> list[Any]:
    """Pull and acknowledge until the subscription is empty; return the messages.

    `return_immediately`: an empty subscription answers at once instead of holding the pull
    open until its deadline. A publish whose future has resolved is already in the emulator's
    subscriptions, so "empty" here means nothing published so far is left."""
    pulled: list[Any] = []
    while True:
        answer = subscriber.pull(
            request={"subscription": subscription, "max_messages": 500, "return_immediately": True},
            timeout=30,
        )
        if not answer.received_messages:
            return pulled
        pulled.extend(m.message for m in answer.received_messages)
        subscriber.acknowledge(
            request={
                "subscription": subscription,
                "ack_ids": [m.ack_id for m in answer.received_messages],
            }
        )


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


def _tag_writes(standin: CloudinaryStandin, prefix: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for call in standin.calls:
        if call["path"].endswith("/tags") and call["status"] == 200:
            ids = call["params"].get("public_ids")
            for public_id in ids if isinstance(ids, list) else [ids]:
                if str(public_id).startswith(prefix):
                    counts[str(public_id)] += 1
    return counts


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
    writes = _tag_writes(standin, "burst/")
    assert sum(writes.values()) == BURST  # exactly one tag write per asset ...
    assert set(writes.values()) == {1}  # ... none twice
    for resource in resources:  # the tags are the document's
        tags = (standin.asset(resource["public_id"]) or {})["tags"]
        assert tags == documents[resource["asset_id"]]["tags"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PUBSUB_EMULATOR_HOST", spine.pubsub_host)
        subscriber = SubscriberClient()
        assert _pull_all(spine.wiring.dead_letter_subscription, subscriber) == []
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
    _pull_all(audit, subscriber)

    cursor = tmp_path / "cursor.json"
    common = ["backfill", "--enqueue", "--prefix", "bf/", "--cursor-file", str(cursor)]
    assert cli.main([*common, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "40 images listed, 10 already classified, would publish 30" in out
    assert _pull_all(audit, subscriber) == [] and not cursor.exists()

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
    first_run = _pull_all(audit, subscriber)
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
    second_run = _pull_all(audit, subscriber)
    published = {m.attributes["asset_id"] for m in [*first_run, *second_run]}
    assert published == ids - done10 and len(first_run) + len(second_run) == 30
    assert {m.attributes["origin"] for m in second_run} == {"backfill"}
    assert "asset" in err and "published=30" in err.replace(" ", "")  # the tqdm bar

    # Once the worker has drained them, a second run publishes nothing.
    wait_for("40 documents", lambda: spine.done(ids) == 40, DRAIN_TIMEOUT_S, every_s=0.5)
    assert cli.main(common) == 0
    assert "40 images listed, 40 already classified, published 0" in capsys.readouterr().out
    assert _pull_all(audit, subscriber) == []

    # Another model name (the served artifact's with its weights' hash recorded or dropped, the
    # opposite of what the documents were made with): every asset is re-queued.
    hashed = "sha256" in json.loads((model_dir / "manifest.json").read_text())
    switched = _relinked_artifact(model_dir, tmp_path / "switched", not hashed)
    monkeypatch.setenv("MODEL_WEIGHTS", str(switched))
    assert cli.main([*common, "--model-changed"]) == 0
    out = capsys.readouterr().out
    assert "40 images listed, 0 already classified, published 40 (40 to re-classify)" in out
    reclassify = _pull_all(audit, subscriber)
    assert len(reclassify) == 40
    assert {m.attributes["origin"] for m in reclassify} == {"reclassify"}
    subscriber.delete_subscription(request={"subscription": audit})
    subscriber.close()


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
        published = [m.attributes["asset_id"] for m in _pull_all(audit, subscriber)]
        assert len(published) == 5, (run, out)
        seen += published
        assert cursor.exists() == (run < 3)
    assert seen == [r["asset_id"] for r in resources]  # each once, in listing order
    assert cli.main(command) == 0  # a fresh run: nothing is final yet, so all over again
    assert len(_pull_all(audit, subscriber)) == 5
    subscriber.close()


def _relinked_artifact(source: Path, target: Path, hashed: bool) -> Path:
    """`source`'s artifact by links, its manifest with the sha256 of its weights recorded (as
    build_model.py does: the served name becomes `<name>@<12 hex digits>`) or without it (an
    older artifact: the plain name)."""
    target.mkdir()
    manifest = json.loads((source / "manifest.json").read_text())
    for entry in source.iterdir():
        if entry.name != "manifest.json":
            (target / entry.name).symlink_to(entry)
    manifest.pop("sha256", None)
    if hashed:
        digest = hashlib.sha256()
        with (source / "weights.bin").open("rb") as handle:
            while chunk := handle.read(8 * 2**20):
                digest.update(chunk)
        manifest["sha256"] = digest.hexdigest()
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


# -- in-process: outcomes that must be acknowledged, reclassification, publish failures ----------


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
    assert _tag_writes(standin, "q/") == Counter()


def test_reclassify_message_redoes_a_document_of_another_model(
    make_client: Any,
    standin: CloudinaryStandin,
    stored: Any,
    model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODEL_WEIGHTS", str(_relinked_artifact(model_dir, tmp_path / "old", False)))
    resource = standin.add_asset(image_bytes(color=(10, 200, 30)), public_id="q/re")
    first = make_client("on_message")
    assert first.post("/", json=_push_body(resource)).status_code == 200
    before = stored()[resource["asset_id"]]
    assert before["model"] == "vgg16/random(seed=0)"
    # The same message again is a duplicate; as `reclassify` with the same model, too.
    assert first.post("/", json=_push_body(resource, "reclassify")).status_code == 200
    assert stored()[resource["asset_id"]]["updated_at"] == before["updated_at"]

    switched = _relinked_artifact(model_dir, tmp_path / "switched", True)
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
    queued = _pull_all(audit, subscriber)
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
    assert len(_pull_all(audit, subscriber)) == 1

    # Already done for this version: 200 duplicate, nothing published.
    monkeypatch.setattr(model, "get_model", real_get_model)
    done = pipeline.process_upload(upload_from_resource(resource), _settings_now())
    assert done["status"] == "done"
    again = client.post("/", data=body, headers=sign_body(body, standin.api_secret))
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert _pull_all(audit, subscriber) == []
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


# -- Firestore down while messages flow ------------------------------------------------------------


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
        assert _pull_all(wiring.dead_letter_subscription, subscriber) == []
        subscriber.close()
    finally:
        worker.stop(grace_s=5)
        stop(processes)
