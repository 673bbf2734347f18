"""Upload and tag notifications: signed as Cloudinary signs them, verified by the SDK."""

from __future__ import annotations

import json
import time

import cloudinary
import cloudinary.api
import cloudinary.exceptions
import cloudinary.uploader
import cloudinary.utils
import pytest

from infra.local_cloudinary import CloudinaryStandin
from tests.integration.local_cloudinary.support import (
    NOTIFICATION_FIELDS,
    Receiver,
    image_bytes,
    verify,
)

# -- notifications --------------------------------------------------------------------------------


def test_upload_and_tag_notifications_are_signed(
    standin: CloudinaryStandin, receiver: Receiver
) -> None:
    result = cloudinary.uploader.upload(
        image_bytes(), public_id="hooked", notification_url=receiver.url
    )
    sent = standin.wait_for_notifications(1)
    assert sent[0]["status"] == 200 and sent[0]["url"] == receiver.url
    body, headers = receiver.received[0]
    assert verify(body, headers)
    assert headers["Content-Type"] == "application/json"
    payload = json.loads(body)
    assert list(payload) == NOTIFICATION_FIELDS
    assert payload["notification_type"] == "upload"
    assert payload["public_id"] == "hooked" and payload["version"] == result["version"]
    assert payload["notification_context"]["triggered_by"] == {
        "source": "api",
        "id": standin.api_key,
    }

    cloudinary.uploader.add_tag("cat", ["hooked"])
    standin.wait_for_notifications(2)
    body, headers = receiver.received[1]
    assert verify(body, headers)
    change = json.loads(body)
    assert change["notification_type"] == "resource_tags_changed"
    assert change["resources"] == [
        {
            "asset_id": result["asset_id"],
            "public_id": "hooked",
            "type": "upload",
            "resource_type": "image",
            "added": ["cat"],
            "removed": [],
        }
    ]
    cloudinary.uploader.add_tag("cat", ["hooked"])  # no change → no notification
    time.sleep(0.3)
    assert len(receiver.received) == 2


def test_preset_notification_url_and_failed_delivery(
    standin: CloudinaryStandin, receiver: Receiver
) -> None:
    cloudinary.api.create_upload_preset(name="hook", unsigned=True, notification_url=receiver.url)
    receiver.status = 500
    cloudinary.uploader.unsigned_upload(image_bytes(), "hook")
    assert standin.wait_for_notifications(1)[0]["status"] == 500
    assert len(receiver.received) == 1


@pytest.mark.parametrize("algorithm", ["sha1", "sha256"])
def test_notification_for_verifies_with_the_sdk(algorithm: str) -> None:
    standin = CloudinaryStandin(
        "n", api_secret=f"secret-{algorithm}", signature_algorithm=algorithm
    )
    resource = standin.add_asset(image_bytes(), "signed/one", tags=["x"])
    body, headers = standin.notification_for(resource)
    cloudinary.reset_config()
    try:
        cloudinary.config(api_secret=standin.api_secret, signature_algorithm=algorithm)
        assert verify(body, headers)
        assert not verify(body.replace(b"signed/one", b"signed/two"), headers)
        other = "sha256" if algorithm == "sha1" else "sha1"
        assert not cloudinary.utils.verify_notification_signature(
            body.decode(), headers["X-Cld-Timestamp"], headers["X-Cld-Signature"], algorithm=other
        )
        assert b", " not in body and b'": ' not in body  # compact JSON
        payload = json.loads(body)
        assert list(payload) == NOTIFICATION_FIELDS
        assert payload["public_id"] == "signed/one" and payload["tags"] == ["x"]

        body, headers = standin.notification_for(resource, "resource_tags_changed")
        assert verify(body, headers)
        assert json.loads(body)["resources"][0]["added"] == ["x"]
    finally:
        cloudinary.reset_config()


def test_sha256_account_end_to_end(sha256_standin: CloudinaryStandin) -> None:
    assert sha256_standin.cloudinary_url.endswith("&signature_algorithm=sha256")
    assert cloudinary.config().signature_algorithm == "sha256"
    result = cloudinary.uploader.upload(image_bytes(), public_id="s")
    assert len(result["signature"]) == 64
    assert cloudinary.utils.verify_api_response_signature(
        "s", result["version"], result["signature"]
    )
    body, headers = sha256_standin.notification_for(result)
    assert len(headers["X-Cld-Signature"]) == 64 and verify(body, headers)
