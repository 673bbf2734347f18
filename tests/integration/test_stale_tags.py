"""Our tags follow the current version (official Firestore emulator, Cloudinary stand-in): when
the current version cannot be classified, the tags an earlier version got from us come off,
however the delivery got there (first try, a 503 and a redelivery, a crashed delivery's claim
taken over, a newer version taking over a live claim), and a person's tags stay."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from google.cloud import firestore

from autotagger.clients import cloudinary_client
from tests.integration.test_stale_claim import WAIT_S, Stall, _wait_for
from tests.support.helpers import image_bytes, notification_from, sign_body

PUBLIC_ID = "stale/crayfish"
PERSON_TAG = "holiday-2026"  # a person's tag: never ours to remove


def _deliver(client: Any, standin: Any, resource: dict[str, Any]) -> Any:
    body = notification_from(resource)
    return client.post("/", data=body, headers=sign_body(body, standin.api_secret))


def _tagged_v1(client: Any, standin: Any) -> tuple[dict[str, Any], list[str]]:
    """Version 1, classified and tagged by us, with a person's tag next to ours."""
    v1 = standin.add_asset(image_bytes(color=(200, 30, 30)), public_id=PUBLIC_ID)
    record = _deliver(client, standin, v1).get_json()
    assert record["status"] == "done" and record["tags"]
    cloudinary_client.write_tags(PUBLIC_ID, add=[PERSON_TAG], remove=[])
    assert set(standin.asset(PUBLIC_ID)["tags"]) == {*record["tags"], PERSON_TAG}
    return v1, record["tags"]


def _overwrite(standin: Any, data: bytes | None = None) -> dict[str, Any]:
    """A new version of the asset (its tags kept, as on an overwrite); `data`: what it serves
    (Cloudinary took the upload, but the bytes are broken)."""
    kept = standin.asset(PUBLIC_ID)["tags"]
    resource = standin.add_asset(image_bytes(color=(30, 30, 200)), public_id=PUBLIC_ID, tags=kept)
    if data is not None:
        standin.replace_bytes(PUBLIC_ID, data)
    return resource


def _ref(base_env: dict[str, str], asset_id: str) -> Any:
    return (
        firestore.Client(project=base_env["GOOGLE_CLOUD_PROJECT"])
        .collection(base_env["FIRESTORE_COLLECTION"])
        .document(asset_id)
    )


@pytest.mark.usefixtures("real_model_env")
def test_a_failed_version_takes_our_earlier_tags_off(make_client, standin, stored) -> None:
    client = make_client("on_upload")
    _tagged_v1(client, standin)
    v2 = _overwrite(standin, b"not an image any more")
    record = _deliver(client, standin, v2).get_json()
    assert record["status"] == "failed" and record["tags"] == []
    assert standin.asset(PUBLIC_ID)["tags"] == [PERSON_TAG]
    assert stored()[v2["asset_id"]]["tags"] == []


@pytest.mark.usefixtures("real_model_env")
def test_after_a_503_the_redelivery_still_knows_our_tags(make_client, standin, stored) -> None:
    client = make_client("on_upload")
    _tagged_v1(client, standin)
    v2 = _overwrite(standin, b"broken")
    standin.inject(f"/{standin.cloud_name}/image/upload/", 503, times=None)
    assert _deliver(client, standin, v2).status_code == 503
    standin.clear_faults()
    record = _deliver(client, standin, v2).get_json()
    assert record["status"] == "failed"
    assert standin.asset(PUBLIC_ID)["tags"] == [PERSON_TAG]


@pytest.mark.usefixtures("real_model_env")
@pytest.mark.parametrize(
    ("takeover", "stalled_in"),
    [
        ("crashed delivery, redelivered", "download_for_model"),
        ("newer version over a live claim", "download_for_model"),
        ("newer version over a live claim", "write_tags"),
    ],
)
def test_a_taken_over_claim_carries_our_tags(
    make_client, standin, base_env, stored, monkeypatch, takeover: str, stalled_in: str
) -> None:
    """Version 2 is delivered and stalls (a crash, or a slow instance); the claim is taken over
    by a redelivery of version 2 or by version 3, which cannot be classified: every tag of ours,
    version 1's and whatever version 2 wrote, comes off; the person's stays."""
    client = make_client("on_upload")
    v1, _ = _tagged_v1(client, standin)
    stall = Stall(getattr(cloudinary_client, stalled_in))
    monkeypatch.setattr(cloudinary_client, stalled_in, stall)
    v2 = _overwrite(standin)
    answers: dict[str, Any] = {}

    def deliver_v2() -> None:
        response = _deliver(client, standin, v2)
        answers["v2"] = (response.status_code, response.get_json())

    stalled = threading.Thread(target=deliver_v2)
    stalled.start()
    try:
        assert stall.reached.wait(WAIT_S)
        ref = _ref(base_env, v1["asset_id"])
        _wait_for(lambda: (ref.get().to_dict() or {}).get("version") == v2["version"])
        if takeover.startswith("crashed"):
            expired = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            ref.update({"claim.expires_at": expired})  # CLAIM_TTL_S passed: it crashed
            standin.replace_bytes(PUBLIC_ID, b"broken")
            current = v2
        else:
            current = _overwrite(standin, b"broken")
        record = _deliver(client, standin, current).get_json()
        assert record["status"] == "failed", record
        assert record["version"] == current["version"]
    finally:
        stall.resume.set()
        stalled.join(WAIT_S)
    status, late = answers["v2"]
    assert status == 200 and late["status"] == "ignored" and "claim lost" in late["reason"]
    assert standin.asset(PUBLIC_ID)["tags"] == [PERSON_TAG]
    (document,) = stored().values()
    assert document["status"] == "failed" and document["tags"] == []
