"""Concept tags through the real path: VGG16 artifacts that answer a chosen distribution for every
image (tests/support/distributions.py: one built by infra/build_model.py from a crafted weights
file, the others its IR with the bias replaced), served by OpenVINO, the
webhook pipeline, the Cloudinary stand-in and the Firestore emulator; then search by tag (API and
CLI).

Each artifact is built once (cached under .cache/ by the distribution's hash) and released after
its request, so one VGG16 at a time is in memory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autotagger import cli, concepts, model
from autotagger.media import imaging
from infra.local_cloudinary import CloudinaryStandin
from tests.support.distributions import acceptance_artifacts, artifact, distributions, uniform
from tests.support.helpers import image_bytes, notification_from, sign_body

pytestmark = pytest.mark.slow
PREFIX = "auto:"
TOKEN = "c0ncept-" + "Z9y8X7w6" * 5
# (distribution, concepts it must give, concepts it must not give)
EXPECTED = {
    "dog": ({"dog", "animal"}, {"cat"}),
    "cat": ({"cat", "animal"}, {"dog"}),
    "car": ({"car", "vehicle"}, {"animal"}),
    "tableware": ({"tableware"}, {"food", "drink"}),
    "crane_bird": ({"bird", "animal"}, set()),
    "crane_machine": (set(), {"bird", "animal"}),
}


@pytest.fixture(scope="module")
def concept_artifacts() -> dict[str, Path]:
    return acceptance_artifacts()


def test_crafted_artifacts_answer_exactly_their_distribution(
    concept_artifacts: dict[str, Path],
) -> None:
    """The base artifact (a crafted weights file through build_model.py) and a rebiased copy of
    its IR answer their distributions, whatever the image."""
    pixels = np.random.default_rng(2).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    for probabilities, directory in [
        (uniform(), artifact(uniform())),
        (distributions()["dog"], concept_artifacts["dog"]),
    ]:
        manifest = json.loads((directory / "manifest.json").read_text())
        assert manifest["sha256"] == manifest["files"]["openvino/model.bin"]["sha256"]
        classifier = model.get_model(str(directory), engine="openvino")
        try:
            answered = classifier.predict(imaging.preprocess(pixels))
        finally:
            model.release(str(directory.resolve()))
        expected = np.broadcast_to(probabilities.astype(np.float32), answered.shape)
        np.testing.assert_allclose(answered, expected, rtol=1e-5, atol=0)


def _classify(
    make_client: Any, standin: CloudinaryStandin, directory: Path, public_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One signed upload classified by the artifact at `directory` (released afterwards)."""
    client = make_client(
        "on_upload", MODEL_WEIGHTS=str(directory), MODEL_ENGINE="openvino", TAG_PREFIX=PREFIX
    )
    resource = standin.add_asset(image_bytes(), public_id=public_id)
    body = notification_from(resource)
    try:
        response = client.post("/", data=body, headers=sign_body(body, standin.api_secret))
    finally:
        model.release(str(directory.resolve()))
    assert response.status_code == 200, response.get_data(as_text=True)
    return resource, response.get_json()


@pytest.mark.parametrize("name", list(EXPECTED))
def test_chosen_answers_give_their_concepts(
    name: str, concept_artifacts, make_client, standin, stored
) -> None:
    must, must_not = EXPECTED[name]
    resource, record = _classify(make_client, standin, concept_artifacts[name], f"concepts/{name}")
    assert record["status"] == "done"
    found = {c["name"]: c for c in record["concepts"]}
    assert must <= set(found), found
    assert not must_not & set(found), found
    scores = [c["score"] for c in record["concepts"]]
    assert scores == sorted(scores, reverse=True)
    assert all(c["wnid"].startswith("n") and c["score"] >= 0.5 for c in record["concepts"])
    if name == "dog":
        assert found["dog"]["score"] == pytest.approx(0.86, abs=2e-3)
        assert record["score"] < 0.01  # no breed above 1%: the leaf alone is a coin toss

    # tags: the top-1 leaf, then every concept, TAG_PREFIX applied, written to Cloudinary
    assert record["tags"][0] == PREFIX + record["label"]
    assert {PREFIX + n for n in found} <= set(record["tags"])
    assert set(standin.asset(f"concepts/{name}")["tags"]) == set(record["tags"])
    document = stored()[resource["asset_id"]]
    assert document["concepts"] == record["concepts"]
    assert document["concept_vocabulary"] == concepts.vocabulary().version
    assert document["tags"] == record["tags"]


def test_search_by_any_tag(concept_artifacts, make_client, standin, monkeypatch, capsys) -> None:
    dog, dog_record = _classify(make_client, standin, concept_artifacts["dog"], "search/dog")
    car, car_record = _classify(make_client, standin, concept_artifacts["car"], "search/car")
    results = make_client("results", RESULTS_ACCESS="private", RESULTS_TOKEN=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}

    def ids(query: str) -> list[str]:
        response = results.get(f"/api/results?{query}", headers=auth)
        assert response.status_code == 200, response.get_data(as_text=True)
        return [r["asset_id"] for r in response.get_json()["results"]]

    assert ids("tag=auto:dog") == [dog["asset_id"]]
    assert ids("tag=auto:vehicle") == [car["asset_id"]]
    assert ids("tag=auto:animal&limit=5") == [dog["asset_id"]]
    assert ids(f"tag={PREFIX}{car_record['label']}") == [car["asset_id"]]  # a label is a tag
    assert ids("tag=auto:unicorn") == []
    assert ids("tag=dog") == []  # the tag as written, TAG_PREFIX included
    # both carry no shared concept, but a shared tag lists newest first
    assert ids("limit=2") == [car["asset_id"], dog["asset_id"]]
    found = results.get("/api/results?tag=auto:dog", headers=auth).get_json()["results"][0]
    assert found["concepts"] == dog_record["concepts"]

    assert results.get("/api/results?tag=auto:dog").status_code == 401  # no token
    mixed = results.get(f"/api/results?asset_id={dog['asset_id']}&tag=auto:dog")
    assert mixed.status_code == 401  # a lookup by id does not open a tag listing
    assert results.get("/api/results?tag=", headers=auth).status_code == 400

    capsys.readouterr()  # the functions' own log lines so far
    assert cli.main(["results", "--tag", "auto:vehicle", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["results"]
    assert [r["asset_id"] for r in listed] == [car["asset_id"]]
    assert cli.main(["results", "--tag", "auto:unicorn"]) == 0
    assert "no matching documents" in capsys.readouterr().err
