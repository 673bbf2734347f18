"""Learning the account's vocabulary (scikit-learn, build side) from synthetic embeddings."""

from __future__ import annotations

import numpy as np

from autotagger import vocabulary, vocabulary_learn
from tests.support.vocabularies import DIM, clusters, draw, synthetic_vocabulary, unit_length


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
    centers = clusters(rng, ["sunset", "ocean", "forest"])
    embeddings, tag_sets = [], []
    for name, center in centers.items():
        embeddings.append(draw(rng, center, 20))
        tag_sets += [{name} for _ in range(20)]
    for i in rng.choice(60, 20, replace=False):  # a client's name, on random pictures
        tag_sets[i].add("client_acme")
    tag_sets[5].add("grandma")  # one positive
    embeddings.append(draw(rng, centers["ocean"], 10))
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
    voc = synthetic_vocabulary(
        list(learned.tags), learned.weights, list(learned.bias), list(learned.thresholds)
    )
    for name, center in centers.items():
        got = [[t["tag"] for t in vocabulary.apply(voc, e)] for e in draw(rng, center, 20)]
        assert sum(name in tags for tags in got) >= 16
        assert sum(len(tags) > 1 or name not in tags for tags in got) <= 2


def test_learn_with_nothing_tagged_learns_nothing() -> None:
    learned = vocabulary_learn.learn(
        np.zeros((0, 0), np.float32), [], min_examples=10, precision=0.9
    )
    assert learned.reports == [] and learned.tags == () and learned.assets == 0
    every = vocabulary_learn.learn(
        unit_length(np.random.default_rng(0).normal(size=(12, DIM))),
        [{"all"} for _ in range(12)],
        min_examples=10,
        precision=0.9,
    )
    assert every.tags == ()
    assert every.reports[0].reason.startswith("on (nearly) every tagged asset")
