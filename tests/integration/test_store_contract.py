"""The Firestore contract the pipeline stands on, on every Firestore emulator this machine has
(gcloud's official one and the npm one, in one session): claims and their outcomes, take-over of
an expired claim, superseded versions, the claim-guarded writes (transactions), the queries the
API serves, batched reads and vector search. Everything else in the suite runs once, on the
emulator `emulator_host` chose."""

from __future__ import annotations

import datetime as dt
import subprocess
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from google.api_core import exceptions as google_exceptions
from google.cloud import firestore
from google.cloud.firestore_v1.vector import Vector

from autotagger.clients import store
from autotagger.clients.store import ClaimState, Released, Saved
from autotagger.config import Settings, load_settings
from autotagger.errors import UpstreamError
from autotagger.web.webhook import Upload
from infra import emulators, processes


def _kinds() -> list[str]:
    return ["official", "npm"] if emulators.gcloud_emulator_available("firestore") else ["npm"]


@pytest.fixture(scope="session", params=_kinds())
def emulator(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(kind, host) of a running emulator of the parameter's kind: the session's own when it is
    that kind, else one started for this module's tests."""
    kind: str = request.param
    if kind == emulators.firestore_emulator_choice():
        yield kind, request.getfixturevalue("emulator_host")
        return
    process: subprocess.Popen[Any]
    if kind == "npm":
        process, host = emulators.start_npm_emulator()
    else:
        process, host = emulators.start_gcloud_emulator("firestore")
    try:
        yield kind, host
    finally:
        processes.stop([process])


@pytest.fixture
def settings(emulator: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings of a fresh collection on the parameter's emulator (the client library reads
    FIRESTORE_EMULATOR_HOST from the environment)."""
    host = emulator[1]
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", host)
    return load_settings(
        {
            "FIRESTORE_EMULATOR_HOST": host,
            "GOOGLE_CLOUD_PROJECT": "demo-autotagger-contract",
            "FIRESTORE_COLLECTION": f"c{uuid.uuid4().hex[:12]}",
            "CLAIM_TTL_S": "330",
        }
    )


def _upload(version: int = 1, asset_id: str = "a1") -> Upload:
    return Upload(
        asset_id=asset_id,
        public_id=f"contract/{asset_id}",
        version=version,
        secure_url=f"https://res.cloudinary.com/demo/image/upload/v{version}/{asset_id}.jpg",
    )


def _final(upload: Upload, status: str = "done", **extra: object) -> dict[str, object]:
    return {
        "asset_id": upload.asset_id,
        "public_id": upload.public_id,
        "version": upload.version,
        "status": status,
        "model": "vgg16/test",
        "tags": ["tabby", "cat"],
        "labels": ["tabby"],
        "created_at": store.now(),
        **extra,
    }


def _save(settings: Settings, record: dict[str, object], fields: tuple[str, ...]) -> None:
    """A final document the way the pipeline writes one: claimed, then saved under the claim."""
    upload = _upload(int(str(record["version"])), str(record["asset_id"]))
    claimed = store.claim(settings, upload)
    assert store.save(settings, record, fields, claimed.claim_id) is Saved.WRITTEN


FIELDS = ("asset_id", "public_id", "version", "status", "model", "tags", "labels", "created_at")


def test_claim_outcomes_for_each_state_of_the_document(settings: Settings) -> None:
    first = store.claim(settings, _upload())
    assert first.state is ClaimState.CLAIMED and first.claim_id
    assert store.holds_claim(settings, "a1", first.claim_id)
    assert store.claim(settings, _upload()).state is ClaimState.IN_PROGRESS  # a live claim blocks
    again = store.claim(settings, _upload(), claim_id=first.claim_id)
    assert again.state is ClaimState.CLAIMED  # a redelivery continues its own claim at once
    assert store.save(settings, _final(_upload()), FIELDS, first.claim_id) is Saved.WRITTEN
    duplicate = store.claim(settings, _upload())
    assert duplicate.state is ClaimState.DUPLICATE and duplicate.existing is not None
    assert duplicate.existing["status"] == "done"
    assert store.claim(settings, _upload(), model="vgg16/other").state is ClaimState.CLAIMED


def test_a_newer_version_takes_over_and_an_older_one_is_superseded(settings: Settings) -> None:
    first = store.claim(settings, _upload(version=1))
    record = _final(_upload(1), created_at=first.created_at)
    assert store.save(settings, record, FIELDS, first.claim_id) is Saved.WRITTEN
    newer = store.claim(settings, _upload(version=2))
    assert newer.state is ClaimState.CLAIMED and newer.previous_tags == ("tabby", "cat")
    assert newer.created_at == first.created_at  # the asset's first sight stays
    assert store.claim(settings, _upload(version=1)).state is ClaimState.SUPERSEDED
    assert not store.holds_claim(settings, "a1", first.claim_id)
    stored = store.get(settings, "a1")
    assert stored is not None and stored["version"] == 2 and stored["status"] == "processing"


def test_an_expired_claim_is_taken_over_and_its_writes_are_refused(settings: Settings) -> None:
    stalled = store.claim(settings, _upload())
    assert stalled.claim_id
    released = store.release(settings, "a1", "transient: test", stalled.claim_id)
    assert released is Released.RELEASED
    taker = store.claim(settings, _upload())
    assert taker.state is ClaimState.CLAIMED and taker.claim_id != stalled.claim_id
    assert not store.record_tags(settings, "a1", stalled.claim_id, ["stale"])
    stale = _final(_upload(), labels=["stale"])
    assert store.save(settings, stale, FIELDS, stalled.claim_id) is Saved.CLAIM_LOST
    late = store.release(settings, "a1", "late", stalled.claim_id)
    assert late is Released.NOT_HELD  # the taker's claim is left alone
    assert store.holds_claim(settings, "a1", taker.claim_id)
    assert store.record_tags(settings, "a1", taker.claim_id, ["tabby"])
    assert store.save(settings, _final(_upload()), FIELDS, taker.claim_id) is Saved.WRITTEN
    stored = store.get(settings, "a1")
    assert stored is not None
    assert stored["labels"] == ["tabby"] and stored["claim"] is None
    assert "stale" not in stored["tags"]


def _counting_transactions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the transactions begun from now on (one entry each)."""
    begun: list[int] = []
    original = firestore.Client.transaction

    def counted(self: firestore.Client, **kwargs: Any) -> Any:
        begun.append(1)
        return original(self, **kwargs)

    monkeypatch.setattr(firestore.Client, "transaction", counted)
    return begun


def test_a_claim_created_here_is_finished_without_a_transaction(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    begun = _counting_transactions(monkeypatch)
    claimed = store.claim(settings, _upload())
    assert store.record_tags(settings, "a1", claimed.claim_id, ["tabby", "cat"])
    assert store.record_tags(settings, "a1", claimed.claim_id, ["cat", "pet"])
    record = _final(_upload(), tags=["tabby", "cat", "pet"])
    assert store.save(settings, record, (*FIELDS, "secure_url"), claimed.claim_id) is Saved.WRITTEN
    assert begun == []  # each guarded write was one write conditioned on the last one's time
    stored = store.get(settings, "a1")
    assert stored is not None and stored["claim"] is None and stored["status"] == "done"
    assert stored["tags"] == ["tabby", "cat", "pet"] and stored["labels"] == ["tabby"]


def test_a_claim_lost_to_a_newer_version_writes_nothing(
    settings: Settings, emulator: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if emulator[0] == "npm":
        pytest.skip("the npm emulator ignores update-time preconditions (as it fakes transactions)")
    stale = store.claim(settings, _upload(version=1))  # this instance stalls ...
    newer = store.claim(settings, _upload(version=2))  # ... while version 2 takes over
    assert newer.state is ClaimState.CLAIMED
    begun = _counting_transactions(monkeypatch)
    assert not store.record_tags(settings, "a1", stale.claim_id, ["stale"])
    assert store.save(settings, _final(_upload(1)), FIELDS, stale.claim_id) is Saved.CLAIM_LOST
    assert len(begun) == 2  # the precondition failed: each transaction found the claim gone
    stored = store.get(settings, "a1")
    assert stored is not None and stored["version"] == 2 and stored["status"] == "processing"
    assert stored["tags"] == [] and store.holds_claim(settings, "a1", newer.claim_id)


def test_a_write_by_someone_else_sends_the_claim_through_the_transaction(
    settings: Settings, emulator: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    claimed = store.claim(settings, _upload())
    # Another writer (a rescore, say) touches the document while the claim stands.
    store.collection(settings).document("a1").update({"vocabulary": {"version": "v9"}})
    begun = _counting_transactions(monkeypatch)
    assert store.record_tags(settings, "a1", claimed.claim_id, ["tabby"])
    assert store.save(settings, _final(_upload()), FIELDS, claimed.claim_id) is Saved.WRITTEN
    if emulator[0] == "official":
        assert len(begun) == 2  # the precondition failed: the transactions decided (ours)
    stored = store.get(settings, "a1")
    assert stored is not None and stored["claim"] is None and stored["tags"] == ["tabby", "cat"]


def test_a_final_write_whose_answer_was_lost_is_found_written(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    claimed = store.claim(settings, _upload())
    original = firestore.DocumentReference.update
    lost: list[int] = []

    def commits_then_times_out(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        if not lost:
            lost.append(1)
            raise google_exceptions.DeadlineExceeded("the answer was lost")
        return result

    monkeypatch.setattr(firestore.DocumentReference, "update", commits_then_times_out)
    record = _final(_upload(), updated_at=store.now())
    fields = (*FIELDS, "updated_at")
    assert store.save(settings, record, fields, claimed.claim_id) is Saved.WRITTEN  # not lost
    assert lost == [1]
    stored = store.get(settings, "a1")
    assert stored is not None and stored["claim"] is None and stored["status"] == "done"


def test_concurrent_claims_of_one_version_have_one_winner(
    settings: Settings, emulator: tuple[str, str]
) -> None:
    if emulator[0] == "npm":
        pytest.skip("the npm emulator fakes transactions: concurrent take-overs can both win")
    # A document exists first, so every claim goes through the take-over transaction.
    seed = store.claim(settings, _upload(version=1))
    assert store.save(settings, _final(_upload(1)), FIELDS, seed.claim_id) is Saved.WRITTEN
    states: list[str] = []
    start = threading.Barrier(6)

    def contend() -> None:
        start.wait()
        for _ in range(10):  # a claim that stays contended is a 503: the delivery comes again
            try:
                states.append(str(store.claim(settings, _upload(version=2)).state))
                return
            except UpstreamError:
                continue

    threads = [threading.Thread(target=contend) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(states) == ["claimed"] + ["in_progress"] * 5


def test_queries_the_api_serves(settings: Settings) -> None:
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for number in range(5):
        upload = _upload(asset_id=f"q{number}")
        tags = ["dog", "animal"] if number % 2 else ["car"]
        record = _final(upload, tags=tags, labels=tags[:1])
        record["created_at"] = base + dt.timedelta(minutes=number)
        _save(settings, record, FIELDS)
    newest = store.query(settings, None, None, 3)
    assert [d["asset_id"] for d in newest] == ["q4", "q3", "q2"]
    assert [d["asset_id"] for d in store.query(settings, "labels", "car", 5)] == []
    assert [d["asset_id"] for d in store.query(settings, "public_id", "contract/q1", 5)] == ["q1"]
    assert [d["asset_id"] for d in store.query_tag(settings, "animal", 5)] == ["q3", "q1"]
    assert [d["asset_id"] for d in store.query_tag(settings, "car", 2)] == ["q4", "q2"]
    assert set(store.get_many(settings, ["q0", "q3", "q0", "missing"])) == {"q0", "q3"}
    assert store.get_many(settings, []) == {}
    assert store.get(settings, "missing") is None


def test_vectors_are_stored_and_found_nearest_first(
    settings: Settings, emulator: tuple[str, str]
) -> None:
    rng = np.random.default_rng(7)
    base = rng.normal(size=8)
    for number, scale in enumerate((0.0, 0.1, 1.0)):
        vector = base + scale * rng.normal(size=8)
        vector /= np.linalg.norm(vector)
        record = _final(_upload(asset_id=f"v{number}"), embedding=vector.astype(np.float32))
        _save(settings, record, (*FIELDS, "embedding"))
    stored = store.get(settings, "v0")
    assert stored is not None
    assert isinstance(stored["embedding"], Vector) and len(stored["embedding"]) == 8
    if emulator[0] == "npm":
        pytest.skip("the npm emulator stores vectors but has no vector search (no distances)")
    found = store.nearest(settings, base, 3)
    assert [d["asset_id"] for d in found] == ["v0", "v1", "v2"]
    distances = [d["distance"] for d in found]
    assert distances == sorted(distances) and distances[0] < 0.01
    only = store.nearest(settings, base, 3, where={"public_id": "contract/v2"})
    assert [d["asset_id"] for d in only] == ["v2"]
