"""More like this: `/api/similar` and `cli.py similar` on Firestore's vector search.

Vector search needs gcloud's official Firestore emulator (`find_nearest`); on the npm one the
tests that query it are skipped, saying why.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from google.cloud import firestore

from autotagger import cli
from autotagger.config import load_settings
from autotagger.domain import FP16_SUFFIX
from autotagger.errors import BadRequest, ConfigError
from autotagger.web import similar
from infra import near_duplicates
from infra.local_cloudinary import CloudinaryStandin
from tests.support.helpers import notification_from, sign_body

TOKEN = "s3cret-token-for-similar-tests-0123456789"


# -- units --------------------------------------------------------------------------------------


def test_query_parameters_are_checked() -> None:
    query = similar.parse_query({"asset_id": "abc_1-2"})
    assert (query.asset_id, query.limit, query.resource_type) == ("abc_1-2", 12, None)
    assert similar.parse_query({"asset_id": "a", "limit": "50"}).limit == 50
    assert similar.parse_query({"asset_id": "a", "resource_type": "video"}).resource_type == (
        "video"
    )
    for args, message in [
        ({}, "asset_id is required"),
        ({"asset_id": "a/b"}, "asset_id must be"),
        ({"asset_id": "a", "limit": "0"}, "limit must be an integer from 1 to 50"),
        ({"asset_id": "a", "limit": "51"}, "limit must be"),
        ({"asset_id": "a", "limit": "-3"}, "limit must be"),
        ({"asset_id": "a", "limit": "ten"}, "limit must be"),
        ({"asset_id": "a", "resource_type": "raw"}, "resource_type must be one of image, video"),
        ({"asset_id": "a", "label": "x"}, "unknown parameter"),
    ]:
        with pytest.raises(BadRequest, match=message):
            similar.parse_query(args)


def test_near_duplicate_setting() -> None:
    assert load_settings({}).near_duplicate_distance == 0.0012
    assert load_settings({"NEAR_DUPLICATE_DISTANCE": "0.05"}).near_duplicate_distance == 0.05
    for bad in ("-0.1", "3", "close"):
        with pytest.raises(ConfigError, match="NEAR_DUPLICATE_DISTANCE"):
            load_settings({"NEAR_DUPLICATE_DISTANCE": bad})


# -- on the emulator ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def vector_search(emulator_host: str) -> str:
    """The emulator, if it answers `find_nearest` (gcloud's official one); else skip."""
    import os

    from google.cloud.firestore_v1.base_vector_query import DistanceMeasure
    from google.cloud.firestore_v1.vector import Vector

    os.environ.setdefault("FIRESTORE_EMULATOR_HOST", emulator_host)
    previous = os.environ["FIRESTORE_EMULATOR_HOST"]
    os.environ["FIRESTORE_EMULATOR_HOST"] = emulator_host
    try:
        client = firestore.Client(project="demo-autotagger-probe")
        probe = client.collection(f"probe{uuid.uuid4().hex[:8]}")
        probe.document("a").set({"embedding": Vector([1.0, 0.0, 0.0])})
        query = probe.find_nearest(
            vector_field="embedding",
            query_vector=Vector([1.0, 0.0, 0.0]),
            distance_measure=DistanceMeasure.COSINE,
            limit=1,
            distance_result_field="distance",
        )
        found = [d.to_dict() or {} for d in query.stream(timeout=10)]
        if not found or "distance" not in found[0]:
            raise RuntimeError("no distance field")
    except Exception as exc:
        pytest.skip(
            "this Firestore emulator has no vector search (find_nearest), e.g. the npm one; "
            f"gcloud's official emulator runs these tests ({type(exc).__name__})"
        )
    finally:
        os.environ["FIRESTORE_EMULATOR_HOST"] = previous
    return emulator_host


def _deliver(client: Any, standin: CloudinaryStandin, resource: dict[str, Any]) -> dict[str, Any]:
    body = notification_from(resource)
    response = client.post("/", data=body, headers=sign_body(body, standin.api_secret))
    assert response.status_code == 200, response.get_data(as_text=True)
    record = response.get_json()
    assert record["status"] == "done", record
    return record


@pytest.fixture
def library(
    vector_search: str, real_model_env: str, make_client, standin: CloudinaryStandin
) -> Iterator[dict[str, Any]]:
    """The issue's library: 6 pictures, each with 3 near-duplicates (70% size, JPEG q45, 4%
    cropped off each edge), among 12 other pictures; all classified through on_upload."""
    on_upload = make_client("on_upload")
    originals: dict[str, str] = {}  # original asset_id -> public_id
    copies: dict[str, list[str]] = {}
    others: list[str] = []
    for n in range(6):
        data = near_duplicates.picture(n)
        original = _deliver(on_upload, standin, standin.add_asset(data, f"lib/p{n}"))
        originals[original["asset_id"]] = original["public_id"]
        copies[original["asset_id"]] = []
        variants = near_duplicates.variants(data)
        for name, copy in zip(["small", "q45", "crop"], variants, strict=True):
            record = _deliver(on_upload, standin, standin.add_asset(copy, f"lib/p{n}-{name}"))
            copies[original["asset_id"]].append(record["asset_id"])
    for n in range(12):
        other = standin.add_asset(near_duplicates.picture(100 + n), f"lib/o{n}")
        record = _deliver(on_upload, standin, other)
        others.append(record["asset_id"])
    yield {"originals": originals, "copies": copies, "others": others}


@pytest.mark.slow
def test_similar_finds_near_duplicates_first(library: dict[str, Any], make_client) -> None:
    results = make_client("results")
    copy_of = {c: o for o, cs in library["copies"].items() for c in cs}
    found_first = 0
    for original, copies in library["copies"].items():
        response = results.get(f"/api/similar?asset_id={original}")
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert body["asset_id"] == original and body["count"] == len(body["results"]) == 12
        items = body["results"]
        ids = [item["asset_id"] for item in items]
        assert original not in ids  # never itself
        distances = [item["distance"] for item in items]
        assert distances == sorted(distances)  # nearest first
        found_first += len(set(ids[:3]) & set(copies))
        for item in items:
            assert "embedding" not in item
            assert {"asset_id", "public_id", "label", "secure_url", "distance"} <= set(item)
            assert item["near_duplicate"] == (item["distance"] <= body["near_duplicate_distance"])
            if item["asset_id"] in copies:
                assert item["near_duplicate"] is True, item
            elif copy_of.get(item["asset_id"]) is None:
                assert item["near_duplicate"] is False, item  # a different picture
    assert found_first >= 17, found_first  # of 18

    for copy, original in copy_of.items():
        body = results.get(f"/api/similar?asset_id={copy}&limit=3").get_json()
        ids = [item["asset_id"] for item in body["results"]]
        assert len(ids) == 3 and copy not in ids
        assert original in ids, (copy, body["results"])

    # pre-filter: only videos asked, none stored
    only_videos = results.get(f"/api/similar?asset_id={original}&resource_type=video")
    assert only_videos.status_code == 200 and only_videos.get_json()["results"] == []
    only_images = results.get(f"/api/similar?asset_id={original}&resource_type=image&limit=5")
    assert [i["resource_type"] for i in only_images.get_json()["results"]] == ["image"] * 5


@pytest.mark.slow
def test_similar_errors_and_private_mode(
    vector_search: str, real_model_env: str, make_client, standin: CloudinaryStandin, base_env
) -> None:
    on_upload = make_client("on_upload")
    first = _deliver(on_upload, standin, standin.add_asset(near_duplicates.picture(1), "e/one"))
    second = _deliver(on_upload, standin, standin.add_asset(near_duplicates.picture(2), "e/two"))
    # a document classified before embeddings existed
    old = _deliver(on_upload, standin, standin.add_asset(near_duplicates.picture(3), "e/old"))
    client = firestore.Client(project=base_env["GOOGLE_CLOUD_PROJECT"])
    ref = client.collection(base_env["FIRESTORE_COLLECTION"]).document(old["asset_id"])
    ref.update({"embedding": firestore.DELETE_FIELD})

    public = make_client("results")
    listed = public.get(f"/api/results?asset_id={old['asset_id']}").get_json()["results"]
    assert listed[0]["has_embedding"] is False and first["has_embedding"] is True
    assert public.get("/api/similar?asset_id=nope123").status_code == 404
    conflict = public.get(f"/api/similar?asset_id={old['asset_id']}")
    assert conflict.status_code == 409
    assert "has no embedding" in conflict.get_json()["error"]
    assert "backfill" in conflict.get_json()["error"]
    for bad in ("limit=0", "limit=51", "limit=x", "foo=1"):
        response = public.get(f"/api/similar?asset_id={first['asset_id']}&{bad}")
        assert response.status_code == 400, bad
    assert public.get("/api/similar").status_code == 400
    body = public.get(f"/api/similar?asset_id={first['asset_id']}").get_json()
    # the document without an embedding is not in the index: only e/two answers
    assert [item["public_id"] for item in body["results"]] == ["e/two"]
    # classified by the fp16 IR (the same embeddings): still comparable; by another model: not
    two = client.collection(base_env["FIRESTORE_COLLECTION"]).document(second["asset_id"])
    for model, expected in ((second["model"] + FP16_SUFFIX, ["e/two"]), ("vgg16/other", [])):
        two.update({"model": model})
        body = public.get(f"/api/similar?asset_id={first['asset_id']}").get_json()
        assert [item["public_id"] for item in body["results"]] == expected, model
    two.update({"model": second["model"]})

    private = make_client("results", RESULTS_ACCESS="private", RESULTS_TOKEN=TOKEN)
    url = f"/api/similar?asset_id={first['asset_id']}"
    denied = private.get(url)
    assert denied.status_code == 401
    assert "Bearer" in denied.headers.get("WWW-Authenticate", "")
    assert private.get(url, headers={"Authorization": "Bearer wrong-token"}).status_code == 401
    assert private.get(f"{url}&access_token={TOKEN}").status_code in (400, 401)
    allowed = private.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert allowed.status_code == 200 and allowed.get_json()["count"] == 1
    assert TOKEN not in allowed.get_data(as_text=True)


@pytest.mark.slow
def test_cli_similar_by_asset_id_or_public_id(
    vector_search: str,
    real_model_env: str,
    make_client,
    standin: CloudinaryStandin,
    capsys: pytest.CaptureFixture[str],
) -> None:
    on_upload = make_client("on_upload")
    data = near_duplicates.picture(4)
    original = _deliver(on_upload, standin, standin.add_asset(data, "c/orig"))
    small, *_ = near_duplicates.variants(data)
    _deliver(on_upload, standin, standin.add_asset(small, "c/small"))
    _deliver(on_upload, standin, standin.add_asset(near_duplicates.picture(9), "c/other"))
    capsys.readouterr()  # the function's own log lines

    assert cli.main(["similar", original["asset_id"], "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert [item["public_id"] for item in body["results"]] == ["c/small", "c/other"]
    assert body["results"][0]["near_duplicate"] is True

    assert cli.main(["similar", "c/orig", "--limit", "1"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["distance", "near_dup", "label"]
    assert "c/small" in table[1] and "yes" in table[1] and len(table) == 2

    assert cli.main(["similar", "c/missing"]) == cli.EXIT_FAILED
    assert "no classification stored" in capsys.readouterr().err
