"""The results API over the emulator: filters, ordering, limits, bad parameters."""

from __future__ import annotations

import datetime as dt

import pytest
from google.cloud import firestore

from tests.support.helpers import image_bytes, notification_from, sign_body


@pytest.fixture
def seeded(base_env: dict[str, str]) -> list[dict]:
    """Five documents written straight to the emulator, oldest first."""
    client = firestore.Client(project=base_env["GOOGLE_CLOUD_PROJECT"])
    collection = client.collection(base_env["FIRESTORE_COLLECTION"])
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    documents: list[dict] = []
    for i, label in enumerate(["tabby", "goldfish", "tabby", "pizza", "tabby"]):
        document = {
            "asset_id": f"asset{i}",
            "public_id": "same/id" if i in (1, 3) else f"folder/p{i}",
            "version": 100 + i,
            "status": "done",
            "label": label,
            "score": 0.5,
            "predictions": [{"label": label, "wnid": "n0", "score": 0.5}],
            "tags": [label],
            "created_at": start + dt.timedelta(minutes=i),
            "updated_at": start + dt.timedelta(minutes=i),
            "error": None,
        }
        collection.document(f"asset{i}").set(document)
        documents.append(document)
    return documents


def test_by_asset_id(make_client, seeded) -> None:
    body = make_client("results").get("/api/results?asset_id=asset2").get_json()
    assert body["count"] == 1
    (record,) = body["results"]
    assert record["asset_id"] == "asset2"
    assert record["created_at"] == "2026-11-01T00:02:00Z"
    assert "error" not in record  # nulls are left out


def test_unknown_asset_id_is_an_empty_list(make_client, seeded) -> None:
    body = make_client("results").get("/api/results?asset_id=nope").get_json()
    assert body == {"results": [], "count": 0}


def test_by_label_newest_first_with_limit(make_client, seeded) -> None:
    client = make_client("results")
    body = client.get("/api/results?label=tabby").get_json()
    assert [r["asset_id"] for r in body["results"]] == ["asset4", "asset2", "asset0"]
    limited = client.get("/api/results?label=tabby&limit=2").get_json()
    assert [r["asset_id"] for r in limited["results"]] == ["asset4", "asset2"]


def test_by_public_id(make_client, seeded) -> None:
    body = make_client("results").get("/api/results?public_id=same/id").get_json()
    assert [r["asset_id"] for r in body["results"]] == ["asset3", "asset1"]


def test_recent_without_filter(make_client, seeded) -> None:
    body = make_client("results").get("/api/results?limit=3").get_json()
    assert [r["asset_id"] for r in body["results"]] == ["asset4", "asset3", "asset2"]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=ten",
        "limit=-1",
        "label=",
        "tag=",
        "tag=x&label=y",
        "asset_id=a/b",
        "label=x&public_id=y",
        "colour=red",
    ],
)
def test_bad_parameters_are_400(make_client, query: str) -> None:
    response = make_client("results").get(f"/api/results?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"]


def test_results_is_read_only(make_client) -> None:
    client = make_client("results")
    assert client.post("/api/results", json={"status": "done"}).status_code == 405
    assert client.delete("/api/results").status_code == 405


def test_unknown_path_is_404(make_client) -> None:
    assert make_client("results").get("/api/nothing").status_code == 404


@pytest.mark.usefixtures("real_model_env")
def test_classified_upload_is_found_by_asset_id_and_label(make_client, standin) -> None:
    on_upload, results = make_client("on_upload"), make_client("results")
    resource = standin.add_asset(image_bytes(), public_id="found/me")
    body = notification_from(resource)
    label = on_upload.post("/", data=body, headers=sign_body(body, standin.api_secret)).get_json()[
        "label"
    ]
    by_id = results.get(f"/api/results?asset_id={resource['asset_id']}").get_json()["results"]
    assert by_id[0]["label"] == label
    by_label = results.get("/api/results", query_string={"label": label}).get_json()["results"]
    assert resource["asset_id"] in [r["asset_id"] for r in by_label]
