"""The open `?asset_id=` lookup (and any answer without the access key) leaks no capability: no
delivery URL of a private, authenticated or signed asset, no raw exception text (official
Firestore emulator)."""

from __future__ import annotations

import datetime as dt

import pytest
from google.cloud import firestore

from tests.support.helpers import image_bytes, notification_from, sign_body

TOKEN = "k" * 40
SIGNED_URL = "https://res.cloudinary.com/demo/image/private/s--AbCdEf12--/v1/secret.jpg"


def _put(base_env: dict[str, str], asset_id: str, **fields: object) -> None:
    now = dt.datetime.now(dt.UTC)
    firestore.Client(project=base_env["GOOGLE_CLOUD_PROJECT"]).collection(
        base_env["FIRESTORE_COLLECTION"]
    ).document(asset_id).set(
        {
            "asset_id": asset_id,
            "public_id": f"p/{asset_id}",
            "version": 1,
            "status": "failed",
            "created_at": now,
            "updated_at": now,
            **fields,
        }
    )


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (
            {"type": "private", "secure_url": SIGNED_URL.replace("/s--AbCdEf12--", "")},
            "cannot decode image: OSError: broken PNG file at /srv/tmp/x.png",
        ),
        ({"type": "authenticated", "secure_url": SIGNED_URL}, "transient: 503 10.0.0.7:443 down"),
        ({"type": "upload", "secure_url": SIGNED_URL}, "download answered HTTP 404: secret"),
        ({"secure_url": SIGNED_URL}, "asset not found in Cloudinary (add tags): Resource x"),
    ],
)
def test_open_lookup_shows_no_capability_and_no_exception_text(
    make_client, base_env, fields: dict[str, str], error: str
) -> None:
    client = make_client("results", RESULTS_ACCESS="private", RESULTS_TOKEN=TOKEN)
    _put(base_env, "a" * 32, error=error, **fields)
    (open_item,) = client.get("/api/results", query_string={"asset_id": "a" * 32}).get_json()[
        "results"
    ]
    assert "secure_url" not in open_item
    assert ": " not in open_item["error"] and "10.0.0.7" not in open_item["error"]
    assert open_item["error"] in (
        "cannot decode image",
        "a temporary failure (the upload is retried)",
        "download answered HTTP 404",
        "asset not found in Cloudinary (add tags)",
    )
    authorized = client.get(
        "/api/results",
        query_string={"asset_id": "a" * 32},
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).get_json()["results"][0]
    assert authorized["secure_url"] == fields["secure_url"]  # the owner sees everything
    assert authorized["error"] == error


@pytest.mark.usefixtures("real_model_env")
def test_an_ordinary_upload_keeps_its_url_and_records_its_delivery_type(
    make_client, standin
) -> None:
    on_upload = make_client("on_upload")
    results = make_client("results", RESULTS_ACCESS="private", RESULTS_TOKEN=TOKEN)
    resource = standin.add_asset(image_bytes(), public_id="open/plain")
    body = notification_from(resource)
    on_upload.post("/", data=body, headers=sign_body(body, standin.api_secret))
    (item,) = results.get(
        "/api/results", query_string={"asset_id": resource["asset_id"]}
    ).get_json()["results"]
    assert item["status"] == "done" and item["type"] == "upload"
    assert item["secure_url"] == resource["secure_url"]  # an upload-type URL is no capability
