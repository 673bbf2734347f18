"""The account's own vocabulary: learning (scikit-learn, build side), publishing to Firestore,
serving (numpy only), and `cli.py learn` against the stand-in's tags.

Embeddings here are synthetic (clusters on the unit sphere) written straight into Firestore
documents on the emulator, so these tests need no model; the end-to-end acceptance test with the
real VGG16 graph lives with the serving wiring.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from google.cloud import firestore
from google.cloud.firestore_v1.vector import Vector

from autotagger import cli, config, logs, vocabulary, vocabulary_learn, vocabulary_store
from autotagger.vocabulary_store import Vocabulary
from infra.local_cloudinary import CloudinaryStandin
from tests.support.helpers import image_bytes

MODEL = "vgg16/synthetic@0123456789ab"
DIM = 512


@pytest.fixture(autouse=True)
def fresh_vocabulary_cache() -> Iterator[None]:
    vocabulary.reset()
    yield
    vocabulary.reset()


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _clusters(rng: np.random.Generator, names: list[str]) -> dict[str, np.ndarray]:
    return {name: rng.normal(size=DIM) for name in names}


def _draw(rng: np.random.Generator, center: np.ndarray, n: int) -> np.ndarray:
    return _unit(center + rng.normal(scale=1.2, size=(n, DIM)))


def _vocabulary(tags: list[str], weights: np.ndarray, bias: list[float], thresholds: list[float]):
    return Vocabulary(
        version=0,
        model=MODEL,
        tags=tuple(tags),
        weights=weights.astype(np.float32),
        bias=np.asarray(bias, np.float32),
        thresholds=np.asarray(thresholds, np.float32),
    )


# -- unit: scoring, encoding, learning -------------------------------------------------------


def test_apply_is_a_sigmoid_over_a_product_with_per_tag_thresholds() -> None:
    weights = np.zeros((4, 3), np.float32)
    weights[0, 0], weights[1, 1], weights[2, 2] = 4.0, 4.0, -4.0
    voc = _vocabulary(["a", "b", "c"], weights, [0.0, -1.0, 0.0], [0.9, 0.5, 0.5])
    embedding = np.array([1.0, 1.0, 0.0, 0.0], np.float32)
    expected = 1 / (1 + np.exp(-np.array([4.0, 3.0, 0.0])))
    np.testing.assert_allclose(vocabulary.scores(voc, embedding), expected, rtol=1e-6)
    # a: 0.982 >= 0.9, b: 0.953 >= 0.5, c: 0.5 >= 0.5 (at the threshold counts): best first.
    assert vocabulary.apply(voc, embedding) == [
        {"tag": "a", "score": round(float(expected[0]), 6)},
        {"tag": "b", "score": round(float(expected[1]), 6)},
        {"tag": "c", "score": 0.5},
    ]
    # a: 0.5 < 0.9, b: 0.27 < 0.5, c: 0.018 < 0.5.
    assert vocabulary.apply(voc, np.array([0.0, 0.0, 1.0, 0.0], np.float32)) == []
    high = _vocabulary(["a", "b", "c"], weights, [0.0, -1.0, 0.0], [0.99, 0.99, 0.99])
    assert vocabulary.apply(high, embedding) == []
    with pytest.raises(ValueError, match="needs"):
        vocabulary.apply(voc, np.zeros(5, np.float32))


def test_thousands_of_tags_shard_under_firestores_document_limit() -> None:
    rng = np.random.default_rng(3)
    count = 3000
    names = [f"tag-{i:04d}-" + "x" * 200 for i in range(count)]  # long names: worst case
    voc = _vocabulary(
        names,
        rng.normal(size=(DIM, count)),
        list(rng.normal(size=count)),
        list(rng.uniform(0.3, 0.9, size=count)),
    )
    header, shards = vocabulary_store.encode(voc)
    assert len(shards) == -(-count // vocabulary_store.SHARD_TAGS) == header["shards"]
    for shard in shards:
        size = (
            len(shard["weights"]) + sum(len(t) + 8 for t in shard["tags"]) + 64 * len(shard["tags"])
        )
        assert size < 1_000_000  # Firestore: 1 MiB per document, names and numbers included
    back = vocabulary_store.decode(header, shards)
    assert back.tags == voc.tags
    np.testing.assert_array_equal(back.weights, voc.weights)
    np.testing.assert_array_equal(back.thresholds, voc.thresholds)
    embedding = _unit(rng.normal(size=DIM))
    assert vocabulary.apply(back, embedding) == vocabulary.apply(voc, embedding)


def test_decode_refuses_a_missing_or_foreign_shard() -> None:
    voc = _vocabulary([f"t{i}" for i in range(600)], np.ones((DIM, 600)), [0.0] * 600, [0.5] * 600)
    voc = Vocabulary(**{**voc.__dict__, "version": 4})
    header, shards = vocabulary_store.encode(voc)
    with pytest.raises(vocabulary_store.VocabularyError, match="shard 1"):
        vocabulary_store.decode(header, [shards[0], None, shards[2]])
    foreign = {**shards[1], "version": 3}
    with pytest.raises(vocabulary_store.VocabularyError, match="shard 1"):
        vocabulary_store.decode(header, [shards[0], foreign, shards[2]])
    cut = {**shards[2], "weights": shards[2]["weights"][:-4]}
    with pytest.raises(vocabulary_store.VocabularyError, match="wrong sizes"):
        vocabulary_store.decode(header, [shards[0], shards[1], cut])


def test_people_tags_leave_out_everything_we_wrote() -> None:
    document = {
        "tags": ["seashore", "landscape"],
        "vocabulary": {"version": 2, "tags": [{"tag": "sunset", "score": 0.97}]},
    }
    tags = ["seashore", "sunset", "landscape", "auto:dog", "client_acme", "beach"]
    assert vocabulary_learn.people_tags(tags, document, "auto:") == {"client_acme", "beach"}
    assert vocabulary_learn.people_tags(tags, {}, "") == set(tags)


def test_learn_learns_visual_tags_and_refuses_noise_and_rare_ones() -> None:
    rng = np.random.default_rng(7)
    centers = _clusters(rng, ["sunset", "ocean", "forest"])
    embeddings, tag_sets = [], []
    for name, center in centers.items():
        embeddings.append(_draw(rng, center, 20))
        tag_sets += [{name} for _ in range(20)]
    for i in rng.choice(60, 20, replace=False):  # a client's name, on random pictures
        tag_sets[i].add("client_acme")
    tag_sets[5].add("grandma")  # one positive
    embeddings.append(_draw(rng, centers["ocean"], 10))
    tag_sets += [set() for _ in range(10)]  # unlabelled: neither positive nor negative
    learned = vocabulary_learn.learn(
        np.concatenate(embeddings), tag_sets, min_examples=10, precision=0.9, jobs=2
    )
    by_tag = {r.tag: r for r in learned.reports}
    assert set(learned.tags) == {"sunset", "ocean", "forest"}
    assert learned.assets == 60 and learned.unlabelled == 10
    for name in centers:
        report = by_tag[name]
        assert report.learned and report.positives == 20
        assert report.ap is not None and report.ap > 0.95
        assert report.precision is not None and report.precision >= 0.9
        assert report.recall is not None and report.recall >= 0.8
    assert not by_tag["client_acme"].learned
    assert by_tag["client_acme"].reason.startswith("not visual")
    assert by_tag["grandma"].reason == "too few examples: 1 (needs 10)"
    assert by_tag["grandma"].ap is None
    assert learned.weights.shape == (DIM, 3) and learned.weights.dtype == np.float32
    # The published weights act on raw embeddings: fresh pictures of each kind get their tag.
    voc = _vocabulary(
        list(learned.tags), learned.weights, list(learned.bias), list(learned.thresholds)
    )
    for name, center in centers.items():
        got = [[t["tag"] for t in vocabulary.apply(voc, e)] for e in _draw(rng, center, 20)]
        assert sum(name in tags for tags in got) >= 16
        assert sum(len(tags) > 1 or name not in tags for tags in got) <= 2


def test_learn_with_nothing_tagged_learns_nothing() -> None:
    learned = vocabulary_learn.learn(
        np.zeros((0, 0), np.float32), [], min_examples=10, precision=0.9
    )
    assert learned.reports == [] and learned.tags == () and learned.assets == 0
    every = vocabulary_learn.learn(
        _unit(np.random.default_rng(0).normal(size=(12, DIM))),
        [{"all"} for _ in range(12)],
        min_examples=10,
        precision=0.9,
    )
    assert every.tags == ()
    assert every.reports[0].reason.startswith("on (nearly) every tagged asset")


# -- integration: Firestore emulator and the stand-in -----------------------------------------


def _db(base_env: dict[str, str]) -> firestore.Client:
    return firestore.Client(project=base_env["GOOGLE_CLOUD_PROJECT"])


def _library(
    standin: CloudinaryStandin,
    base_env: dict[str, str],
    items: list[tuple[str, list[str], list[str], np.ndarray | None]],
) -> dict[str, dict[str, Any]]:
    """Assets on the stand-in with their Cloudinary tags, and their documents (ours: `tags`)
    with a synthetic embedding, as backfill would have left them. By public_id."""
    collection = _db(base_env).collection(base_env["FIRESTORE_COLLECTION"])
    made = {}
    picture = image_bytes((16, 12))
    for public_id, cloud_tags, ours, embedding in items:
        resource = standin.add_asset(picture, public_id=public_id, tags=[*cloud_tags, *ours])
        document: dict[str, Any] = {
            "asset_id": resource["asset_id"],
            "public_id": public_id,
            "version": resource["version"],
            "secure_url": resource["secure_url"],
            "resource_type": "image",
            "status": "done",
            "model": MODEL,
            "tags": ours,
            "label": ours[0] if ours else None,
        }
        if embedding is not None:
            document["embedding"] = Vector([float(v) for v in embedding])
        collection.document(resource["asset_id"]).set(document)
        made[public_id] = resource
    return made


def _palette_library(rng: np.random.Generator, standin, base_env) -> dict[str, np.ndarray]:
    centers = _clusters(rng, ["sunset", "ocean", "forest"])
    items = []
    acme = set(rng.choice(60, 20, replace=False).tolist())
    for k, (name, center) in enumerate(centers.items()):
        for i, embedding in enumerate(_draw(rng, center, 20)):
            tags = [name] + (["client_acme"] if k * 20 + i in acme else [])
            ours = ["seashore", "auto:landscape"] if name == "ocean" else ["volcano"]
            items.append((f"lib/{name}-{i}", tags, ours, embedding))
    for i, embedding in enumerate(_draw(rng, centers["forest"], 5)):
        items.append((f"lib/untagged-{i}", [], ["volcano"], embedding))
    items.append(("lib/no-embedding", ["sunset"], [], None))
    _library(standin, base_env, items)
    return centers


def test_learn_cli_learns_publishes_and_never_learns_our_tags(
    base_env, standin, tmp_path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("TAG_PREFIX", "auto:")
    rng = np.random.default_rng(11)
    centers = _palette_library(rng, standin, base_env)
    plot = tmp_path / "vocabulary.png"
    cursor = tmp_path / "learn.json"

    assert cli.main(["learn", "--dry-run", "--cursor-file", str(cursor)]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == [
        "tag",
        "positives",
        "AP",
        "threshold",
        "precision",
        "recall",
        "outcome",
    ]
    assert "dry run: nothing published" in table
    settings = config.load_settings()
    assert vocabulary_store.current_version(settings) is None

    code = cli.main(["learn", "--json", "--plot", str(plot), "--cursor-file", str(cursor)])
    captured = capsys.readouterr()
    assert code == 0
    report = json.loads(captured.out)
    outcome = {t["tag"]: t for t in report["tags"]}
    # Ours ("seashore", "volcano": in `tags`; "auto:landscape": TAG_PREFIX) are never candidates.
    assert set(outcome) == {"sunset", "ocean", "forest", "client_acme"}
    assert {t for t, r in outcome.items() if r["learned"]} == {"sunset", "ocean", "forest"}
    assert outcome["client_acme"]["reason"].startswith("not visual")
    assert outcome["sunset"]["positives"] == 20
    assert report["published"] and report["version"] == 1 and report["model"] == MODEL
    assert report["trained_on"] == 60 and report["listed"] == 66
    assert report["skipped"] == {"no embedding (run backfill)": 1}
    assert "published vocabulary version 1" in captured.err
    assert plot.stat().st_size > 5000 and plot.read_bytes()[:4] == b"\x89PNG"
    assert not cursor.exists()

    published = vocabulary_store.read_current(settings)
    assert published is not None and published.version == 1 and published.model == MODEL
    assert set(published.tags) == {"sunset", "ocean", "forest"}
    assert published.summary["assets"] == 60
    for name, center in centers.items():
        got = [vocabulary.apply(published, e) for e in _draw(rng, center, 10)]
        assert sum(any(t["tag"] == name for t in tags) for tags in got) >= 8

    # A second run publishes version 2; versions older than KEEP_VERSIONS are pruned.
    for _ in range(vocabulary_store.KEEP_VERSIONS):
        assert cli.main(["learn", "--json", "--cursor-file", str(cursor)]) == 0
    capsys.readouterr()
    newest = 1 + vocabulary_store.KEEP_VERSIONS
    assert vocabulary_store.current_version(settings) == newest
    ids = {d.id for d in vocabulary_store.collection(settings).stream()}
    assert "v00000001" not in ids and "v00000001-s0000" not in ids
    assert f"v{newest:08d}" in ids and f"v{newest - 2:08d}" in ids


def test_learn_stops_when_the_budget_runs_out_and_resumes_where_it_stopped(
    base_env, standin, tmp_path, capsys
) -> None:
    rng = np.random.default_rng(5)
    _palette_library(rng, standin, base_env)  # 66 images: 7 pages of 10
    cursor = tmp_path / "learn.json"
    standin.limit_admin_api(3)
    code = cli.main(["learn", "--page-size", "10", "--cursor-file", str(cursor)])
    out = capsys.readouterr().out
    assert code == cli.EXIT_BUDGET
    assert "stopped: Admin API budget exhausted" in out
    assert "resume after the reset with: python function/cli.py learn --page-size 10" in out
    saved = json.loads(cursor.read_text())
    assert saved["listed"] == 30 and not saved["complete"]
    settings = config.load_settings()
    assert vocabulary_store.current_version(settings) is None  # nothing learned from a part

    standin.limit_admin_api(None)
    listings_before = sum(c["path"].endswith("/resources/image/upload") for c in standin.calls)
    assert cli.main(["learn", "--json", "--page-size", "10", "--cursor-file", str(cursor)]) == 0
    captured = capsys.readouterr()
    assert f"resuming from {cursor}: 30 images listed" in captured.err
    listings = sum(c["path"].endswith("/resources/image/upload") for c in standin.calls)
    assert listings - listings_before == 4  # pages 4-7 only
    report = json.loads(captured.out)
    assert report["listed"] == 66 and report["trained_on"] == 60
    assert {t["tag"] for t in report["tags"] if t["learned"]} == {"sunset", "ocean", "forest"}
    assert not cursor.exists()


def test_learn_on_an_empty_account_says_so_and_publishes_nothing(
    base_env, standin, tmp_path, capsys
) -> None:
    assert cli.main(["learn", "--cursor-file", str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    assert "0 images listed" in out
    assert "nothing to learn" in out
    assert vocabulary_store.current_version(config.load_settings()) is None


def _publish(settings, tags: list[str], seed: int) -> int:
    rng = np.random.default_rng(seed)
    voc = _vocabulary(tags, rng.normal(size=(DIM, len(tags))), [5.0] * len(tags), [0.0] * len(tags))
    return vocabulary_store.publish(settings, voc)


def test_a_vocabulary_published_while_requests_are_in_flight(base_env, monkeypatch) -> None:
    settings = config.load_settings()
    now = [1000.0]
    monkeypatch.setattr(vocabulary, "clock", lambda: now[0])
    first = [f"v1-{i}" for i in range(300)]  # two shards each: a torn read would mix them
    second = [f"v2-{i}" for i in range(300)]
    assert _publish(settings, first, 1) == 1
    embedding = _unit(np.random.default_rng(0).normal(size=DIM))
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
    assert _publish(settings, second, 2) == 2
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
    embedding = _unit(np.random.default_rng(0).normal(size=DIM))
    capsys.readouterr()
    for _ in range(3):
        assert vocabulary.learned_tags(settings, embedding, MODEL) is None
        now[0] += settings.vocabulary_refresh_s
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["message"] for e in lines] == ["no vocabulary published: no learned tags"]

    assert _publish(settings, ["a", "b"], 1) == 1
    now[0] += settings.vocabulary_refresh_s
    field = vocabulary.learned_tags(settings, embedding, MODEL)
    assert field is not None and field["version"] == 1
    assert {t["tag"] for t in field["tags"]} == {"a", "b"}

    # Version 2 is published broken (a shard lost): instances keep serving version 1, say so once.
    assert _publish(settings, ["c", "d"], 2) == 2
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
    assert _publish(settings, ["e", "f"], 3) == 3
    now[0] += vocabulary.ERROR_RETRY_S
    field = vocabulary.learned_tags(settings, embedding, MODEL)
    assert field is not None and field["version"] == 3
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
    assert _publish(settings, [f"tag-{i}" for i in range(count)], 9) == 1
    published_s = time.perf_counter() - started
    started = time.perf_counter()
    loaded = vocabulary.current(settings)
    load_s = time.perf_counter() - started
    assert loaded is not None and len(loaded.tags) == count and loaded.weights.shape == (DIM, count)
    embeddings = _unit(np.random.default_rng(1).normal(size=(200, DIM)))
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


# -- backfill --vocabulary-changed -------------------------------------------------------------


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
    _palette_library(rng, standin, base_env)
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
        _db(base_env)
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
    _palette_library(np.random.default_rng(17), standin, base_env)
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


def test_training_reads_match_the_clients_own_decoding(base_env) -> None:
    settings = config.load_settings()
    collection = _db(base_env).collection(base_env["FIRESTORE_COLLECTION"])
    rng = np.random.default_rng(21)
    written = {}
    for i in range(7):
        document = {
            "status": "done",
            "version": 1700000000 + i,
            "model": MODEL,
            "tags": ["seashore", f"auto:x{i}"],
            "vocabulary": {"version": 3, "tags": [{"tag": "sunset", "score": 0.93}]},
            "embedding": Vector(_unit(rng.normal(size=DIM)).tolist()),
            "predictions": [{"label": "seashore", "score": 0.5}],  # not read
        }
        if i == 6:
            del document["embedding"]
        collection.document(f"asset{i}").set(document)
        written[f"asset{i}"] = document
    found = vocabulary_store.training_documents(settings, [*written, "missing"], batch=3)
    assert set(found) == set(written)
    for asset_id, document in written.items():
        got = found[asset_id]
        assert "predictions" not in got
        for name in ("status", "version", "model", "tags", "vocabulary"):
            assert got[name] == document[name]
        vector = vocabulary_store.embedding_of(got)
        if "embedding" in document:
            assert vector is not None and vector.dtype == np.float32
            np.testing.assert_array_equal(vector, np.asarray(document["embedding"], np.float32))
        else:
            assert vector is None


def test_serving_never_imports_scikit_learn() -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    script = (
        "import sys\n"
        "from autotagger import pipeline, vocabulary, vocabulary_rescore\n"
        "from autotagger.queue import worker\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy', 'joblib')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(root / "function")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == "[]"
