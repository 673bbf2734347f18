"""The Admin API: resource details, pagination, upload presets."""

from __future__ import annotations

from typing import Any

import cloudinary
import cloudinary.api
import cloudinary.exceptions
import cloudinary.uploader
import cloudinary.utils
import pytest
import requests

from infra.local_cloudinary import CloudinaryStandin
from tests.integration.local_cloudinary.support import (
    image_bytes,
)

# -- Admin API ------------------------------------------------------------------------------------


def test_resource_details_and_errors(standin: CloudinaryStandin) -> None:
    uploaded = cloudinary.uploader.upload(image_bytes(30, 40), public_id="deep/er/pid", tags="t")
    details = cloudinary.api.resource("deep/er/pid")
    for key in ("asset_id", "version", "secure_url", "bytes", "width", "height", "created_at"):
        assert details[key] == uploaded[key]
    assert details["tags"] == ["t"]
    with pytest.raises(cloudinary.exceptions.NotFound, match="Resource not found - nope"):
        cloudinary.api.resource("nope")
    cloudinary.config(api_secret="wrong")
    with pytest.raises(cloudinary.exceptions.AuthorizationRequired):
        cloudinary.api.resource("deep/er/pid")
    answer = requests.get(f"{standin.url}/v1_1/demo/resources/image", timeout=5)
    assert answer.status_code == 401 and "error" in answer.json()


def test_resources_pagination(standin: CloudinaryStandin) -> None:
    for i in range(23):
        standin.add_asset(image_bytes(), f"page/{i:02d}", tags=[f"n{i}"])
    standin.add_asset(image_bytes(), "other/x")

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        options: dict[str, Any] = {"type": "upload", "prefix": "page/", "max_results": 10}
        page = cloudinary.api.resources(tags=True, next_cursor=cursor, **options)
        pages += 1
        seen += [r["public_id"] for r in page["resources"]]
        assert all(r["tags"] == [f"n{int(r['public_id'][-2:])}"] for r in page["resources"])
        cursor = page.get("next_cursor")
        if cursor is None:
            assert "next_cursor" not in page
            break
    assert pages == 3
    assert seen == [f"page/{i:02d}" for i in range(23)]

    everything = cloudinary.api.resources(max_results=500)
    assert len(everything["resources"]) == 24 and "next_cursor" not in everything
    assert "tags" not in everything["resources"][0]
    assert len(cloudinary.api.resources()["resources"]) == 10  # default max_results

    by_tag = cloudinary.api.resources_by_tag("n7")
    assert [r["public_id"] for r in by_tag["resources"]] == ["page/07"]


def test_upload_preset_create_update_get(standin: CloudinaryStandin) -> None:
    created = cloudinary.api.create_upload_preset(
        name="autotag", unsigned=True, folder="in", tags=["a", "b"], notification_url="http://x/y"
    )
    assert created == {"message": "created", "name": "autotag"}
    preset = cloudinary.api.upload_preset("autotag")
    assert preset["name"] == "autotag" and preset["unsigned"] is True
    assert preset["settings"]["folder"] == "in"
    assert preset["settings"]["tags"] == "a,b"
    assert preset["settings"]["notification_url"] == "http://x/y"

    assert cloudinary.api.update_upload_preset("autotag", folder="out", unsigned=False) == {
        "message": "updated"
    }
    preset = cloudinary.api.upload_preset("autotag")
    assert preset["unsigned"] is False and preset["settings"]["folder"] == "out"
    assert preset["settings"]["tags"] == "a,b"

    generated = cloudinary.api.create_upload_preset(unsigned=True)["name"]
    names = [p["name"] for p in cloudinary.api.upload_presets()["presets"]]
    assert sorted(names) == sorted(["autotag", generated])
    assert cloudinary.api.delete_upload_preset("autotag") == {"message": "deleted"}
    with pytest.raises(cloudinary.exceptions.NotFound):
        cloudinary.api.upload_preset("autotag")
