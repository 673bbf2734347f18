"""Serving the published vocabulary from Firestore: a publish while requests are in flight, a
missing or broken vocabulary, another model's embeddings, thousands of tags."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from autotagger import config, logs, vocabulary, vocabulary_store
from autotagger.domain import FP16_SUFFIX
from tests.support.vocabularies import DIM, MODEL, unit_length
from tests.support.vocabulary_library import publish


@pytest.fixture(autouse=True)
def fresh_vocabulary_cache() -> Iterator[None]:
    vocabulary.reset()
    yield
    vocabulary.reset()


def test_a_vocabulary_published_while_requests_are_in_flight(base_env, monkeypatch) -> None:
    settings = config.load_settings()
    now = [1000.0]
    monkeypatch.setattr(vocabulary, "clock", lambda: now[0])
    first = [f"v1-{i}" for i in range(300)]  # two shards each: a torn read would mix them
    second = [f"v2-{i}" for i in range(300)]
    assert publish(settings, first, 1) == 1
    embedding = unit_length(np.random.default_rng(0).normal(size=DIM))
    seen: list[tuple[int, frozenset[str]]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def request() -> None:
        while not stop.is_set():
            try:
                field = vocabulary.learned_tags(settings, embedding, MODEL)
                assert field is not None
                seen.append((field["version"], frozenset(t["tag"] for t in field["tags"])))
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    while not seen:
        time.sleep(0.01)
    assert publish(settings, second, 2) == 2
    count_at_publish = len(seen)
    now[0] += settings.vocabulary_refresh_s  # the refresh interval passes
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not seen or seen[-1][0] != 2):
        time.sleep(0.01)
    served_v2_at = len(seen)
    while len(seen) < served_v2_at + 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors
    assert count_at_publish > 0 and seen[-1][0] == 2
    for version, tags in seen:  # every answer is one whole version, never a mix
        assert tags <= set(first if version == 1 else second)
        assert tags  # bias 5, threshold 0: every tag of the version
        assert len(tags) == 300
    last_v1 = max(i for i, (v, _) in enumerate(seen) if v == 1)
    assert all(v == 2 for v, _ in seen[last_v1 + 1 :])  # never back to the old one


def test_missing_or_unreadable_vocabulary_never_fails_and_is_logged_once(
    base_env, monkeypatch, capsys
) -> None:
    settings = config.load_settings()
    now = [0.0]
    monkeypatch.setattr(vocabulary, "clock", lambda: now[0])
    embedding = unit_length(np.random.default_rng(0).normal(size=DIM))
    capsys.readouterr()
    for _ in range(3):
        assert vocabulary.learned_tags(settings, embedding, MODEL) is None
        now[0] += settings.vocabulary_refresh_s
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["message"] for e in lines] == ["no vocabulary published: no learned tags"]

    assert publish(settings, ["a", "b"], 1) == 1
    now[0] += settings.vocabulary_refresh_s
    field = vocabulary.learned_tags(settings, embedding, MODEL)
    assert field is not None and field["version"] == 1
    assert {t["tag"] for t in field["tags"]} == {"a", "b"}

    # Version 2 is published broken (a shard lost): instances keep serving version 1, say so once.
    assert publish(settings, ["c", "d"], 2) == 2
    vocabulary_store.collection(settings).document("v00000002-s0000").delete()
    capsys.readouterr()
    for _ in range(3):
        now[0] += settings.vocabulary_refresh_s
        field = vocabulary.learned_tags(settings, embedding, MODEL)
        assert field is not None and field["version"] == 1
    warnings = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [w["severity"] for w in warnings] == ["WARNING"]
    assert warnings[0]["message"] == "vocabulary unreadable: serving version 1"
    assert "shard 0 of version 2" in warnings[0]["error"]
    # After a failed read the next try comes soon, not a whole refresh interval later.
    assert publish(settings, ["e", "f"], 3) == 3
    now[0] += vocabulary.ERROR_RETRY_S
    field = vocabulary.learned_tags(settings, embedding, MODEL)
    assert field is not None and field["version"] == 3
    # The fp16 IR's model makes the same embeddings (fc1 is after the pool): the same tags.
    assert vocabulary.learned_tags(settings, embedding, MODEL + FP16_SUFFIX) == field
    capsys.readouterr()

    # Another model's embeddings: its weights mean nothing here; no tags, said once.
    for _ in range(2):
        assert vocabulary.learned_tags(settings, embedding, "vgg16/other@ffffffffffff") is None
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["message"].split(":")[0] for e in lines] == [
        "vocabulary trained on another model's embeddings"
    ]
    assert vocabulary.learned_tags(settings, None, MODEL) is None
    logs.set_level("INFO")


def test_thousands_of_tags_publish_load_and_score(base_env, capsys) -> None:
    settings = config.load_settings()
    count = 2000
    started = time.perf_counter()
    assert publish(settings, [f"tag-{i}" for i in range(count)], 9) == 1
    published_s = time.perf_counter() - started
    started = time.perf_counter()
    loaded = vocabulary.current(settings)
    load_s = time.perf_counter() - started
    assert loaded is not None and len(loaded.tags) == count and loaded.weights.shape == (DIM, count)
    embeddings = unit_length(np.random.default_rng(1).normal(size=(200, DIM)))
    started = time.perf_counter()
    for embedding in embeddings:
        assert len(vocabulary.apply(loaded, embedding)) == count  # bias 5, threshold 0
    apply_ms = (time.perf_counter() - started) / len(embeddings) * 1e3
    with capsys.disabled():
        print(
            f"\n{count} tags: publish {published_s:.2f} s "
            f"({-(-count // vocabulary_store.SHARD_TAGS)} shards), load {load_s:.2f} s, "
            f"apply {apply_ms:.3f} ms/image"
        )
