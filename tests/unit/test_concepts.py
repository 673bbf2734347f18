"""Concept tags (autotagger/concepts.py) and their vocabulary (infra/build_concepts.py), on numpy
vectors: no model, no emulator."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotagger import concepts, config, model, tagging
from autotagger.errors import ConfigError
from infra import build_concepts
from tests.support.distributions import distributions, dog_breeds

THRESHOLD = config.load_settings({}).concept_threshold
VOCABULARY = json.loads(concepts.VOCABULARY_PATH.read_text())
REQUIRED = {
    "dog": "n02084071",
    "cat": "n02121808",
    "bird": "n01503061",
    "fish": "n02512053",
    "insect": "n02159955",
    "reptile": "n01661091",
    "animal": "n00015388",
    "car": "n02958343",
    "vehicle": "n04524313",
    "boat": "n04530566",
    "aircraft": "n02686568",
    "food": "n00021265",
    "fruit": "n07705931",
    "clothing": "n03051540",
    "furniture": "n03405725",
    "musical_instrument": "n03800933",
    "building": "n02913152",
    "landscape": "n09287968",
}


def _kept(probabilities: np.ndarray) -> dict[str, float]:
    return {c.name: c.score for c in concepts.score(probabilities, THRESHOLD)}


def _leaves(name: str) -> set[int]:
    (leaves,) = [set(c["leaves"]) for c in VOCABULARY["concepts"].values() if c["name"] == name]
    return leaves


def _index(label: str) -> int:
    (found,) = [i for i, (_, name) in enumerate(model.class_index()) if name == label]
    return found


# -- the vocabulary file -------------------------------------------------------------------------


def test_the_shipped_vocabulary_regenerates_byte_for_byte_from_wordnet() -> None:
    if not build_concepts.DATA_NOUN.exists():
        pytest.skip(
            f"WordNet 3.0 is not installed ({build_concepts.DATA_NOUN} is absent): "
            "apt-get install wordnet-base (.ci/run does) to check concepts.json against it"
        )
    regenerated = build_concepts.render(build_concepts.build())
    assert regenerated == concepts.VOCABULARY_PATH.read_text(), (
        "function/autotagger/concepts.json is not what infra/build_concepts.py makes from "
        f"{build_concepts.DATA_NOUN}: run it and commit the file"
    )


def test_the_vocabulary_records_its_source_and_version() -> None:
    assert VOCABULARY["source"].startswith("WordNet 3.0")
    assert VOCABULARY["wordnet"] == "3.0"
    assert VOCABULARY["version"].startswith("wordnet-3.0/")
    assert concepts.vocabulary().version == VOCABULARY["version"]
    assert len(VOCABULARY["data_noun_sha256"]) == 64


def test_the_required_concepts_with_their_everyday_meaning() -> None:
    by_name = {c["name"]: wnid for wnid, c in VOCABULARY["concepts"].items()}
    for name, wnid in REQUIRED.items():
        assert by_name.get(name) == wnid, name
    assert 40 <= len(by_name) <= 80
    assert _leaves("dog") == set(dog_breeds())
    assert len(_leaves("dog")) == 118
    assert _leaves("cat") == {281, 282, 283, 284, 285}  # house cats; lions are big_cat
    assert {_index("minibus"), _index("school_bus"), _index("trolleybus")} <= _leaves("vehicle")
    assert _index("missile") not in _leaves("vehicle")
    assert {_index("broccoli"), _index("banana"), _index("pizza")} <= _leaves("food")


def test_concepts_are_useful_and_safe_as_tags() -> None:
    labels = {label.lower() for _, label in model.class_index()}
    leaf_sets = []
    for entry in VOCABULARY["concepts"].values():
        assert len(entry["leaves"]) >= 2, entry["name"]  # a single leaf says nothing new
        assert entry["name"] not in labels, entry["name"]
        assert entry["name"].replace("_", "").isalnum() and entry["name"].islower()
        leaf_sets.append(tuple(entry["leaves"]))
    assert len(set(leaf_sets)) == len(leaf_sets)  # no two concepts say the same
    names = {c["name"] for c in VOCABULARY["concepts"].values()}
    assert not names & {"entity", "object", "whole", "artifact", "instrumentality", "organism"}


def test_wrong_senses_are_corrected() -> None:
    food, computer = _leaves("food"), _leaves("computer")
    for label in ("plate", "menu", "cup", "hay", "red_wine", "espresso"):
        assert _index(label) not in food, label
    assert {_index("plate"), _index("cup")} <= _leaves("tableware")
    assert _index("web_site") not in computer and _index("slide_rule") not in computer
    assert _index("seat_belt") not in _leaves("clothing")
    assert _index("home_theater") not in _leaves("building")
    overridden = {o["wnid"] for o in VOCABULARY["overrides"]}
    assert {"n07579787", "n07565083", "n07930864", "n06359193"} <= overridden
    assert all(o["why"] for o in VOCABULARY["overrides"])


def test_both_cranes_keep_their_own_wnid() -> None:
    index = model.class_index()
    assert index[134] == ("n02012849", "crane") and index[517] == ("n03126707", "crane")
    assert 134 in _leaves("bird") and 517 not in _leaves("bird")


def test_coverage_is_what_the_file_says() -> None:
    covered = {i for c in VOCABULARY["concepts"].values() for i in c["leaves"]}
    assert len(covered) == VOCABULARY["classes_covered"]
    assert len(covered) / 1000 >= 0.75


def test_the_readme_lists_every_concept_with_its_leaf_count() -> None:
    readme = (build_concepts.ROOT / "docs" / "concepts.md").read_text()
    for entry in VOCABULARY["concepts"].values():
        assert f"`{entry['name']}` | {len(entry['leaves'])} |" in readme, entry["name"]
    assert f"{VOCABULARY['classes_covered']} of the 1000 classes" in readme


def test_a_malformed_vocabulary_is_refused() -> None:
    with pytest.raises(ValueError, match="classes"):
        concepts.parse({**VOCABULARY, "classes": 999})
    broken = {**VOCABULARY, "concepts": {"n0": {"name": "x", "leaves": [1000]}}}
    with pytest.raises(ValueError, match="out of range"):
        concepts.parse(broken)


# -- the acceptance's distributions ---------------------------------------------------------------


def test_dog_breeds_spread_thin_still_give_dog() -> None:
    probabilities = distributions()["dog"]
    assert probabilities[dog_breeds()].max() < 0.01
    kept = _kept(probabilities)
    assert kept["dog"] == pytest.approx(0.86, abs=2e-3)
    assert {"dog", "animal"} <= set(kept)
    assert "cat" not in kept
    assert list(kept) == sorted(kept, key=lambda n: (-kept[n], n))  # best first


def test_three_cats_give_cat() -> None:
    kept = _kept(distributions()["cat"])
    assert kept["cat"] == pytest.approx(0.85, abs=2e-3)
    assert "dog" not in kept and "big_cat" not in kept


def test_three_cars_give_car_and_vehicle() -> None:
    kept = _kept(distributions()["car"])
    assert kept["car"] == pytest.approx(0.90, abs=2e-3)
    assert "vehicle" in kept and "animal" not in kept


def test_plate_menu_cup_give_no_food() -> None:
    kept = _kept(distributions()["tableware"])
    assert "food" not in kept and "drink" not in kept
    assert kept["tableware"] == pytest.approx(0.60, abs=2e-3)  # the plate and the cup


def test_the_bird_crane_is_a_bird_the_machine_is_not() -> None:
    assert "bird" in _kept(distributions()["crane_bird"])
    machine = _kept(distributions()["crane_machine"])
    assert "bird" not in machine and "animal" not in machine


def test_uniform_probabilities_give_no_concept() -> None:
    assert concepts.score(np.full(1000, 1e-3), THRESHOLD) == []


def test_a_batch_scores_like_single_vectors() -> None:
    batch = np.stack([distributions()["dog"], distributions()["car"]])
    together = concepts.scores(batch)
    assert together.shape == (2, len(VOCABULARY["concepts"]))
    np.testing.assert_allclose(together[1], concepts.scores(batch[1]), atol=1e-6)
    with pytest.raises(ValueError, match="1000"):
        concepts.scores(np.zeros(10))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.001, 1.0), st.floats(0.05, 1.0))
def test_scores_follow_the_tree_and_the_threshold(
    seed: int, concentration: float, threshold: float
) -> None:
    # From nearly one-hot (small concentration) to nearly uniform softmax outputs.
    probabilities = np.random.default_rng(seed).dirichlet(np.full(1000, concentration))
    values = dict(zip(concepts.vocabulary().names, concepts.scores(probabilities), strict=True))
    assert values["animal"] >= values["dog"] - 1e-6 and values["vehicle"] >= values["car"] - 1e-6
    assert all(-1e-6 <= v <= 1 + 1e-5 for v in values.values())
    kept = concepts.score(probabilities, threshold)
    assert {c.name for c in kept} == {n for n, v in values.items() if v >= threshold}
    assert [c.score for c in kept] == sorted((c.score for c in kept), reverse=True)
    if threshold > 0.5:  # disjoint concepts are never both kept
        assert not {"dog", "cat"} <= {c.name for c in kept}


# -- tags and settings ------------------------------------------------------------------------


def test_concept_tags_follow_the_labels_with_the_prefix() -> None:
    fields = concepts.fields(distributions()["dog"], THRESHOLD)
    result = {"label": "beagle", "tags": ["auto:beagle"]}
    tagged = tagging.with_concepts(result, fields, "auto:")
    assert tagged["tags"][0] == "auto:beagle"
    assert {"auto:dog", "auto:animal"} <= set(tagged["tags"])
    assert len(tagged["tags"]) == len(set(tagged["tags"]))
    assert tagged["concepts"][0] == {"name": "dog", "wnid": "n02084071", "score": 0.86} or (
        tagged["concepts"][0]["score"] >= tagged["concepts"][1]["score"]
    )
    assert tagged["concept_vocabulary"] == VOCABULARY["version"]


def test_concept_threshold_setting() -> None:
    assert THRESHOLD == 0.5
    assert config.load_settings({"CONCEPT_THRESHOLD": "0.3"}).concept_threshold == 0.3
    for bad in ("0", "1.5", "high"):
        with pytest.raises(ConfigError, match="CONCEPT_THRESHOLD"):
            config.load_settings({"CONCEPT_THRESHOLD": bad})
