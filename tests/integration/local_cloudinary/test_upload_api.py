"""The Upload API through the SDK: fields, overwrites, signatures, unsigned presets, tags."""

from __future__ import annotations

import hashlib
import re
import time

import cloudinary
import cloudinary.api
import cloudinary.exceptions
import cloudinary.uploader
import cloudinary.utils
import pytest
import requests

from infra.local_cloudinary import CloudinaryStandin
from tests.integration.local_cloudinary.support import (
    HEX32,
    ISO_Z,
    UPLOAD_FIELDS,
    image_bytes,
    tag_calls,
)

# -- configuration ------------------------------------------------------------------------------


def test_cloudinary_url_configures_the_sdk(standin: CloudinaryStandin) -> None:
    config = cloudinary.config()
    assert config.cloud_name == "demo"
    assert config.api_key == standin.api_key
    assert config.upload_prefix == standin.url
    assert config.signature_algorithm == "sha1"
    assert standin.url == f"http://{standin.delivery_host}"
    assert standin.port != 0
    assert cloudinary.api.ping() == {"status": "ok"}


# -- Upload API -----------------------------------------------------------------------------------


def test_signed_upload_returns_documented_fields(standin: CloudinaryStandin) -> None:
    data = image_bytes(64, 48)
    before = int(time.time())
    result = cloudinary.uploader.upload(("kitty.png", data), public_id="cats/kitty", tags="a, b")

    assert set(result) >= UPLOAD_FIELDS
    assert HEX32.match(result["asset_id"]) and HEX32.match(result["version_id"])
    assert result["public_id"] == "cats/kitty"
    assert isinstance(result["version"], int) and before <= result["version"] <= time.time() + 1
    assert (result["width"], result["height"], result["format"]) == (64, 48, "png")
    assert (result["resource_type"], result["type"]) == ("image", "upload")
    assert ISO_Z.match(result["created_at"])
    assert result["tags"] == ["a", "b"]
    assert result["bytes"] == len(data)
    assert result["etag"] == hashlib.md5(data).hexdigest()
    assert result["placeholder"] is False
    assert result["url"] == f"{standin.url}/demo/image/upload/v{result['version']}/cats/kitty.png"
    assert result["secure_url"] == result["url"]
    assert result["original_filename"] == "kitty"
    assert result["api_key"] == standin.api_key
    assert cloudinary.utils.verify_api_response_signature(
        result["public_id"], result["version"], result["signature"]
    )
    assert not cloudinary.utils.verify_api_response_signature(
        result["public_id"], result["version"] + 1, result["signature"]
    )


def test_jpeg_is_reported_as_jpg_and_random_public_id(standin: CloudinaryStandin) -> None:
    result = cloudinary.uploader.upload(image_bytes(fmt="JPEG"))
    assert result["format"] == "jpg"
    assert re.fullmatch(r"[a-z0-9]{20}", result["public_id"])


def test_overwrite_keeps_asset_id_and_bumps_version(standin: CloudinaryStandin) -> None:
    first = cloudinary.uploader.upload(image_bytes(color="red"), public_id="same")
    second = cloudinary.uploader.upload(image_bytes(color="blue"), public_id="same")
    assert second["asset_id"] == first["asset_id"]
    assert second["version"] > first["version"]
    assert second["version_id"] != first["version_id"]
    assert second["etag"] != first["etag"]
    assert second.get("overwritten") is True

    kept = cloudinary.uploader.upload(image_bytes(color="green"), public_id="same", overwrite=False)
    assert kept["existing"] is True
    assert kept["version"] == second["version"]


def test_data_uri_upload_and_folder(standin: CloudinaryStandin) -> None:
    import base64

    uri = "data:image/png;base64," + base64.b64encode(image_bytes(10, 20)).decode()
    result = cloudinary.uploader.upload(uri, folder="incoming", public_id="p1")
    assert result["public_id"] == "incoming/p1"
    assert result["asset_folder"] == "incoming"
    assert result["display_name"] == "p1"
    assert (result["width"], result["height"]) == (10, 20)


def test_undecodable_image_is_400(standin: CloudinaryStandin) -> None:
    with pytest.raises(cloudinary.exceptions.BadRequest, match="Invalid image file"):
        cloudinary.uploader.upload(b"definitely not an image")
    assert standin.calls[-1]["status"] == 400


def test_raw_upload_is_stored_undecoded(standin: CloudinaryStandin) -> None:
    result = cloudinary.uploader.upload(("notes.txt", b"hello"), resource_type="raw")
    assert result["resource_type"] == "raw"
    assert "width" not in result and "format" not in result
    assert result["public_id"].endswith(".txt")
    delivered = requests.get(result["url"], timeout=5)
    assert delivered.status_code == 200 and delivered.content == b"hello"


def test_wrong_signature_is_401(standin: CloudinaryStandin) -> None:
    cloudinary.config(api_secret="not-the-secret")
    with pytest.raises(cloudinary.exceptions.AuthorizationRequired, match="Invalid Signature"):
        cloudinary.uploader.upload(image_bytes(), public_id="x")
    assert standin.asset("x") is None
    assert standin.calls[-1]["status"] == 401


def test_unknown_api_key_is_401(standin: CloudinaryStandin) -> None:
    cloudinary.config(api_key="999")
    with pytest.raises(cloudinary.exceptions.AuthorizationRequired, match="Unknown API key 999"):
        cloudinary.uploader.upload(image_bytes())


def test_stale_timestamp_is_401(
    standin: CloudinaryStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cloudinary.utils, "now", lambda: str(int(time.time()) - 3700))
    with pytest.raises(cloudinary.exceptions.AuthorizationRequired) as caught:
        cloudinary.uploader.upload(image_bytes(), public_id="old")
    assert re.search(
        r"Stale request - reported time is \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 "
        r"which is more than 1 hour ago",
        str(caught.value),
    )
    # Half an hour old is still fine.
    monkeypatch.setattr(cloudinary.utils, "now", lambda: str(int(time.time()) - 1800))
    assert cloudinary.uploader.upload(image_bytes(), public_id="old")["public_id"] == "old"


def test_raw_http_error_body_shape(standin: CloudinaryStandin) -> None:
    answer = requests.post(f"{standin.url}/v1_1/demo/image/upload", data={"timestamp": "1"})
    assert answer.status_code == 400
    assert answer.json() == {
        "error": {"message": "Upload preset must be specified when using unsigned upload"}
    }


def test_unsigned_upload_with_preset(standin: CloudinaryStandin) -> None:
    created = cloudinary.api.create_upload_preset(
        name="unsigned_in", unsigned=True, folder="incoming", tags="from_preset"
    )
    assert created == {"message": "created", "name": "unsigned_in"}

    result = cloudinary.uploader.unsigned_upload(image_bytes(), "unsigned_in", tags="mine")
    assert result["public_id"].startswith("incoming/")
    assert result["asset_folder"] == "incoming"
    assert result["tags"] == ["from_preset", "mine"]
    assert cloudinary.utils.verify_api_response_signature(
        result["public_id"], result["version"], result["signature"]
    )
    assert "signature" not in standin.calls[-1]["params"]


def test_unsigned_upload_rules(standin: CloudinaryStandin) -> None:
    cloudinary.api.create_upload_preset(name="signed_only", unsigned=False)
    with pytest.raises(cloudinary.exceptions.BadRequest, match="whitelisted for unsigned"):
        cloudinary.uploader.unsigned_upload(image_bytes(), "signed_only")
    with pytest.raises(cloudinary.exceptions.BadRequest, match="Upload preset nope not found"):
        cloudinary.uploader.unsigned_upload(image_bytes(), "nope")
    cloudinary.api.create_upload_preset(name="open", unsigned=True)
    with pytest.raises(
        cloudinary.exceptions.BadRequest, match="Overwrite parameter is not allowed"
    ):
        cloudinary.uploader.unsigned_upload(image_bytes(), "open", overwrite=True)
    # A signed upload may name a signed preset and gets its settings.
    cloudinary.api.update_upload_preset("signed_only", folder="signed")
    result = cloudinary.uploader.upload(image_bytes(), upload_preset="signed_only")
    assert result["public_id"].startswith("signed/")


def test_preset_limits(standin: CloudinaryStandin) -> None:
    cloudinary.api.create_upload_preset(name="strict", unsigned=True, allowed_formats=["jpg"])
    with pytest.raises(cloudinary.exceptions.BadRequest, match="png not allowed"):
        cloudinary.uploader.unsigned_upload(image_bytes(fmt="PNG"), "strict")
    assert cloudinary.uploader.unsigned_upload(image_bytes(fmt="JPEG"), "strict")["format"] == "jpg"
    # The SDK has no max_file_size option; the Admin API takes it like any preset setting.
    created = requests.post(
        f"{standin.url}/v1_1/demo/upload_presets",
        json={"name": "small", "unsigned": True, "max_file_size": 2000},
        auth=(standin.api_key, standin.api_secret),
        timeout=5,
    )
    assert created.json() == {"message": "created", "name": "small"}
    with pytest.raises(cloudinary.exceptions.BadRequest, match=r"File size too large\. Got"):
        cloudinary.uploader.unsigned_upload(image_bytes(100, 100, "BMP"), "small")


# -- tags -----------------------------------------------------------------------------------------


def test_add_remove_replace_tags(standin: CloudinaryStandin) -> None:
    pid = cloudinary.uploader.upload(image_bytes(), public_id="pets/rex", tags="seed")["public_id"]

    assert cloudinary.uploader.add_tag("dog,animal", [pid])["public_ids"] == [pid]
    assert cloudinary.api.resource(pid)["tags"] == ["seed", "dog", "animal"]
    cloudinary.uploader.add_tag(["l1", "l2"], [pid, "missing"])
    assert standin.asset(pid)["tags"] == ["seed", "dog", "animal", "l1", "l2"]  # type: ignore[index]

    assert cloudinary.uploader.remove_tag("dog", [pid])["public_ids"] == [pid]
    assert cloudinary.api.resource(pid)["tags"] == ["seed", "animal", "l1", "l2"]
    cloudinary.uploader.replace_tag("only", [pid])
    assert cloudinary.api.resource(pid)["tags"] == ["only"]
    cloudinary.uploader.remove_all_tags([pid])
    assert cloudinary.api.resource(pid)["tags"] == []

    statuses = [c["status"] for c in tag_calls(standin)]
    assert statuses == [200] * 5
    assert tag_calls(standin)[0]["params"]["command"] == "add"
    assert tag_calls(standin)[1]["params"]["public_ids"] == [pid, "missing"]


def test_set_exclusive_moves_the_tag(standin: CloudinaryStandin) -> None:
    standin.add_asset(image_bytes(), "a", tags=["hero"])
    standin.add_asset(image_bytes(), "b")
    cloudinary.uploader.add_tag("hero", ["b"], exclusive=True)
    assert standin.asset("a")["tags"] == []  # type: ignore[index]
    assert standin.asset("b")["tags"] == ["hero"]  # type: ignore[index]


def test_tags_need_a_valid_signature(standin: CloudinaryStandin) -> None:
    standin.add_asset(image_bytes(), "t1")
    cloudinary.config(api_secret="wrong")
    with pytest.raises(cloudinary.exceptions.AuthorizationRequired):
        cloudinary.uploader.add_tag("x", ["t1"])
    assert standin.asset("t1")["tags"] == []  # type: ignore[index]
