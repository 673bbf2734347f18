"""`backfill --vocabulary-changed`: inline and through the queue to `on_message`'s `consume`;
only learned tags are added and removed, people's are never touched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from google.cloud import firestore

from autotagger import cli, config, vocabulary, vocabulary_store
from autotagger.vocabulary_store import Vocabulary
from infra.local_cloudinary import CloudinaryStandin
from tests.support.vocabulary_library import db, palette_library


@pytest.fixture(autouse=True)
def fresh_vocabulary_cache() -> Iterator[None]:
    vocabulary.reset()
    yield
    vocabulary.reset()


def _tags_on(standin: CloudinaryStandin, public_id: str) -> list[str]:
    found = standin.asset(public_id)
    assert found is not None
    return list(found["tags"])


def _tag_calls(standin: CloudinaryStandin) -> list[dict[str, Any]]:
    return [c for c in standin.calls if c["path"].endswith("/image/tags")]


def test_backfill_vocabulary_changed_adds_and_removes_only_learned_tags(
    base_env, standin, stored, tmp_path, capsys
) -> None:
    rng = np.random.default_rng(13)
    palette_library(rng, standin, base_env)
    cursor = str(tmp_path / "c.json")
    assert cli.main(["learn", "--cursor-file", cursor]) == 0
    settings = config.load_settings()
    published = vocabulary_store.read_current(settings)
    assert published is not None and set(published.tags) == {"sunset", "ocean", "forest"}
    capsys.readouterr()

    rescore = ["backfill", "--vocabulary-changed", "--cursor-file", str(tmp_path / "r.json")]
    assert cli.main([*rescore, "--dry-run"]) == 0
    assert "would change 5 assets' learned tags (+5 / -0 tags)" in capsys.readouterr().out
    assert _tag_calls(standin) == []

    assert cli.main(rescore) == 0
    out = capsys.readouterr().out
    # The 5 untagged forest pictures get `forest`; the 60 tagged by people already carry their
    # tag (it stays theirs: not written, not recorded); one document has no embedding.
    assert "changed 5 assets' learned tags (+5 / -0 tags)" in out
    assert "60 version recorded" in out and "1 no embedding (run backfill)" in out
    documents = {d["public_id"]: d for d in stored().values()}
    for i in range(5):
        assert _tags_on(standin, f"lib/untagged-{i}") == ["volcano", "forest"]
        document = documents[f"lib/untagged-{i}"]
        assert document["tags"] == ["volcano", "forest"]
        assert document["vocabulary"]["version"] == 1
        assert [t["tag"] for t in document["vocabulary"]["tags"]] == ["forest"]
    sunset = documents["lib/sunset-0"]
    assert sunset["tags"] == ["volcano"] and sunset["vocabulary"] == {"version": 1, "tags": []}
    assert all(c["params"]["command"] == "add" for c in _tag_calls(standin))
    # Search by tag (`?tag=`: an array-contains query on `tags`) finds what we learned.
    query = (
        db(base_env)
        .collection(base_env["FIRESTORE_COLLECTION"])
        .where(filter=firestore.FieldFilter("tags", "array_contains", "forest"))
    )
    assert {d.get("public_id") for d in (s.to_dict() or {} for s in query.stream())} == {
        f"lib/untagged-{i}" for i in range(5)
    }

    # Nothing we wrote is learned: the 5 learned `forest` tags are not positives.
    capsys.readouterr()
    assert cli.main(["learn", "--dry-run", "--json", "--cursor-file", cursor]) == 0
    forest = next(t for t in json.loads(capsys.readouterr().out)["tags"] if t["tag"] == "forest")
    assert forest["positives"] == 20

    assert cli.main(rescore) == 0
    assert "changed 0 assets' learned tags (+0 / -0 tags)" in capsys.readouterr().out

    # A vocabulary that no longer finds forests: only our 5 `forest` tags go; people's stay.
    thresholds = published.thresholds.copy()
    thresholds[published.tags.index("forest")] = 1.5
    vocabulary_store.publish(
        settings, Vocabulary(**{**published.__dict__, "thresholds": thresholds})
    )
    assert cli.main(rescore) == 0
    assert "changed 5 assets' learned tags (+0 / -5 tags)" in capsys.readouterr().out
    for i in range(5):
        assert _tags_on(standin, f"lib/untagged-{i}") == ["volcano"]
    assert all("forest" in _tags_on(standin, f"lib/forest-{i}") for i in range(20))
    assert all("volcano" in _tags_on(standin, f"lib/forest-{i}") for i in range(20))


def test_backfill_vocabulary_changed_without_a_vocabulary_is_a_clear_error(
    base_env, capsys, tmp_path
) -> None:
    rescore = ["backfill", "--vocabulary-changed", "--cursor-file", str(tmp_path / "r.json")]
    assert cli.main(rescore) == 1
    assert "no vocabulary published: run `cli.py learn` first" in capsys.readouterr().err


def test_backfill_vocabulary_changed_enqueue_and_the_worker(
    base_env, standin, stored, pubsub_host, tmp_path, monkeypatch, capsys
) -> None:
    import base64
    import uuid

    from google.cloud.pubsub_v1 import SubscriberClient

    from autotagger.queue import worker
    from infra import local_pubsub

    project = base_env["GOOGLE_CLOUD_PROJECT"]
    topic = f"voc-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_host)
    monkeypatch.setenv("PUBSUB_TOPIC", topic)
    wiring = local_pubsub.setup(pubsub_host, "http://127.0.0.1:9", project, topic)
    subscriber = SubscriberClient()
    audit = subscriber.subscription_path(project, f"{topic}-audit")
    subscriber.create_subscription(request={"name": audit, "topic": wiring.topic})
    palette_library(np.random.default_rng(17), standin, base_env)
    assert cli.main(["learn", "--cursor-file", str(tmp_path / "c.json")]) == 0
    capsys.readouterr()

    rescore = ["backfill", "--vocabulary-changed", "--cursor-file", str(tmp_path / "r.json")]
    assert cli.main([*rescore, "--enqueue"]) == 0
    out = capsys.readouterr().out
    assert "queued 5 assets' learned tags" in out and "65 messages published" in out
    pulled: list[Any] = []
    while len(pulled) < 65:
        answer = subscriber.pull(request={"subscription": audit, "max_messages": 100}, timeout=30)
        pulled += [m.message for m in answer.received_messages]
        if answer.received_messages:
            subscriber.acknowledge(
                request={
                    "subscription": audit,
                    "ack_ids": [m.ack_id for m in answer.received_messages],
                }
            )
    subscriber.close()
    assert {m.attributes["origin"] for m in pulled} == {"vocabulary"}
    assert {m.attributes["vocabulary_version"] for m in pulled} == {"1"}
    assert _tag_calls(standin) == []  # the CLI wrote nothing itself

    settings = config.load_settings()
    outcomes = []
    for message in pulled:  # what on_message receives, through the real consume()
        event = {
            "message": {
                "data": base64.b64encode(message.data).decode(),
                "attributes": dict(message.attributes),
                "messageId": message.message_id,
            },
            "subscription": audit,
        }
        outcomes.append(worker.consume(event, settings)["status"])
    assert outcomes.count("changed") == 65  # 5 with a new tag, 60 with the version recorded
    for i in range(5):
        assert _tags_on(standin, f"lib/untagged-{i}") == ["volcano", "forest"]
    documents = {d["public_id"]: d for d in stored().values()}
    assert documents["lib/forest-3"]["vocabulary"] == {"version": 1, "tags": []}
    assert "forest" not in documents["lib/forest-3"]["tags"]  # the person's, never recorded
    # Delivered again (Pub/Sub is at least once): nothing left to do.
    event["message"]["messageId"] = "again"
    assert worker.consume(event, settings)["status"] == "unchanged"
