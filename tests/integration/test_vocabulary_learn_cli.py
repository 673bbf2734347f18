"""`cli.py learn` against the stand-in's tags and synthetic embeddings in the Firestore emulator:
the report, publishing, pruning, the Admin API budget and the resumed run; and the training reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
from google.cloud.firestore_v1.vector import Vector

from autotagger import cli, config, vocabulary, vocabulary_store
from autotagger.domain import FP16_SUFFIX
from tests.support.vocabularies import DIM, MODEL, draw, unit_length
from tests.support.vocabulary_library import db, palette_library


@pytest.fixture(autouse=True)
def fresh_vocabulary_cache() -> Iterator[None]:
    vocabulary.reset()
    yield
    vocabulary.reset()


def test_learn_cli_learns_publishes_and_never_learns_our_tags(
    base_env, standin, tmp_path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("TAG_PREFIX", "auto:")
    rng = np.random.default_rng(11)
    centers = palette_library(rng, standin, base_env)
    # A third classified by the fp16 IR since: the same embeddings, one training set.
    documents = list(db(base_env).collection(base_env["FIRESTORE_COLLECTION"]).stream())
    for document in documents[::3]:
        document.reference.update({"model": MODEL + FP16_SUFFIX})
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
        got = [vocabulary.apply(published, e) for e in draw(rng, center, 10)]
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
    palette_library(rng, standin, base_env)  # 66 images: 7 pages of 10
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


def test_training_reads_match_the_clients_own_decoding(base_env) -> None:
    settings = config.load_settings()
    collection = db(base_env).collection(base_env["FIRESTORE_COLLECTION"])
    rng = np.random.default_rng(21)
    written = {}
    for i in range(7):
        document = {
            "status": "done",
            "version": 1700000000 + i,
            "model": MODEL,
            "tags": ["seashore", f"auto:x{i}"],
            "vocabulary": {"version": 3, "tags": [{"tag": "sunset", "score": 0.93}]},
            "embedding": Vector(unit_length(rng.normal(size=DIM)).tolist()),
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
