"""Queue mode's moving parts for tests: functions under functions-framework, restartable on
the same port; waits on outcomes; draining a subscription; tag writes; relinked artifacts."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.cloud.pubsub_v1 import SubscriberClient

from infra.local_cloudinary import CloudinaryStandin
from infra.processes import free_port, serve, stop, wait_until_up

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


def pull_all(subscription: str, subscriber: SubscriberClient) -> list[Any]:
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


def tag_writes(standin: CloudinaryStandin, prefix: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for call in standin.calls:
        if call["path"].endswith("/tags") and call["status"] == 200:
            ids = call["params"].get("public_ids")
            for public_id in ids if isinstance(ids, list) else [ids]:
                if str(public_id).startswith(prefix):
                    counts[str(public_id)] += 1
    return counts


def relinked_artifact(source: Path, target: Path, hashed: bool) -> Path:
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
