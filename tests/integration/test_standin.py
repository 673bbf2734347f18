"""The Cloudinary stand-in, exercised through the real ``cloudinary`` SDK."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import cloudinary
import cloudinary.api
import cloudinary.exceptions
import cloudinary.uploader
import cloudinary.utils
import pytest
import requests
from PIL import Image
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from infra.local_cloudinary import CloudinaryStandin

HEX32 = re.compile(r"^[0-9a-f]{32}$")
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
# Documented Upload API response fields.
# fmt: off
UPLOAD_FIELDS = {
    "asset_id", "public_id", "version", "version_id", "signature", "width", "height", "format",
    "resource_type", "created_at", "tags", "bytes", "type", "etag", "placeholder", "url",
    "secure_url", "asset_folder", "display_name", "original_filename", "api_key",
}
# Upload notification fields, in the order of the upload response they repeat.
NOTIFICATION_FIELDS = [
    "notification_type", "timestamp", "request_id", "asset_id", "public_id", "version",
    "version_id", "width", "height", "format", "resource_type", "created_at", "tags", "bytes",
    "type", "etag", "placeholder", "url", "secure_url", "asset_folder", "display_name",
    "original_filename", "api_key", "notification_context", "signature_key",
]
# fmt: on


def image_bytes(width: int = 64, height: int = 48, fmt: str = "PNG", color: str = "red") -> bytes:
    """A small generated image (no binary fixtures in the repository)."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, fmt)
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


@pytest.fixture(scope="module")
def server() -> Iterator[CloudinaryStandin]:
    """A stand-in for the documented "demo" cloud, shared by this module."""
    with CloudinaryStandin() as standin:
        yield standin


def _point_sdk_at(standin: CloudinaryStandin) -> dict[str, str | None]:
    """Configure the SDK only through CLOUDINARY_URL, as the function will be."""
    keys = ("CLOUDINARY_URL", "CLOUDINARY_CLOUD_NAME")
    saved = {key: os.environ.pop(key, None) for key in keys}
    os.environ["CLOUDINARY_URL"] = standin.cloudinary_url
    cloudinary.reset_config()
    return saved


def _restore_sdk(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        os.environ.pop(key, None)
        if value is not None:
            os.environ[key] = value
    cloudinary.reset_config()


@pytest.fixture
def standin(server: CloudinaryStandin) -> Iterator[CloudinaryStandin]:
    """Overrides conftest's ``standin``: a clean "demo" cloud with the SDK pointed at it."""
    server.reset()
    saved = _point_sdk_at(server)
    yield server
    _restore_sdk(saved)


@pytest.fixture
def sha256_standin() -> Iterator[CloudinaryStandin]:
    with CloudinaryStandin(cloud_name="shacloud", signature_algorithm="sha256") as standin:
        saved = _point_sdk_at(standin)
        yield standin
        _restore_sdk(saved)


class Receiver:
    """A webhook endpoint that records what it gets."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.status = 200
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/hook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _app(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        self.received.append((request.get_data(), dict(request.headers)))
        return Response("ok", self.status)(environ, start_response)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.stop()


def verify(body: bytes, headers: dict[str, str]) -> bool:
    """What the function will do: the SDK's check over the raw body and the two headers."""
    return bool(
        cloudinary.utils.verify_notification_signature(
            body.decode(), headers["X-Cld-Timestamp"], headers["X-Cld-Signature"]
        )
    )


def tag_calls(standin: CloudinaryStandin) -> list[dict[str, Any]]:
    return [c for c in standin.calls if c["path"] == f"/v1_1/{standin.cloud_name}/image/tags"]


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


# -- delivery -------------------------------------------------------------------------------------


def delivery_url(standin: CloudinaryStandin, public_id: str, **options: Any) -> str:
    url, _ = cloudinary.utils.cloudinary_url(
        public_id, secure=False, cname=standin.delivery_host, **options
    )
    return str(url)


def test_delivery_fill_224(standin: CloudinaryStandin) -> None:
    standin.add_asset(image_bytes(300, 200, "JPEG"), "photos/wide")
    url = delivery_url(
        standin, "photos/wide", format="jpg", width=224, height=224, crop="fill", quality="auto"
    )
    assert "/c_fill,h_224,q_auto,w_224/" in url
    answer = requests.get(url, timeout=5)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "image/jpeg"
    assert decode(answer.content).size == (224, 224)


@pytest.mark.parametrize(
    ("transformation", "size"),
    [
        ("c_scale,w_100", (100, 67)),
        ("c_scale,w_50,h_50", (50, 50)),
        ("c_fit,w_100,h_100", (100, 67)),
        ("c_limit,w_1000,h_1000", (300, 200)),
        ("c_limit,w_150", (150, 100)),
        ("w_0.5", (150, 100)),
        ("c_fill,w_40,h_80/c_scale,w_20", (20, 40)),
    ],
)
def test_delivery_transformations(
    standin: CloudinaryStandin, transformation: str, size: tuple[int, int]
) -> None:
    uploaded = standin.add_asset(image_bytes(300, 200), "img")
    url = f"{standin.url}/demo/image/upload/{transformation}/v{uploaded['version']}/img.png"
    answer = requests.get(url, timeout=5)
    assert answer.status_code == 200, answer.headers.get("X-Cld-Error")
    assert decode(answer.content).size == size


def test_delivery_formats_and_original_bytes(standin: CloudinaryStandin) -> None:
    data = image_bytes(30, 20)
    standin.add_asset(data, "orig")
    base = f"{standin.url}/demo/image/upload"
    original = requests.get(f"{base}/orig.png", timeout=5)
    assert original.content == data and original.headers["Content-Type"] == "image/png"
    assert requests.get(f"{base}/orig", timeout=5).content == data
    webp = requests.get(f"{base}/v1/orig.webp", timeout=5)
    assert webp.headers["Content-Type"] == "image/webp" and decode(webp.content).format == "WEBP"
    jpg = requests.get(f"{base}/f_jpg,q_auto/orig.png", timeout=5)
    assert jpg.headers["Content-Type"] == "image/jpeg" and decode(jpg.content).format == "JPEG"


def test_delivery_errors(standin: CloudinaryStandin) -> None:
    standin.add_asset(image_bytes(), "here")
    base = f"{standin.url}/demo/image/upload"
    missing = requests.get(f"{base}/v1/not-here.jpg", timeout=5)
    assert missing.status_code == 404
    assert missing.headers["X-Cld-Error"] == "Resource not found - v1/not-here.jpg"
    bad = requests.get(f"{base}/e_sepia/v1/here.jpg", timeout=5)
    assert bad.status_code == 400
    assert bad.headers["X-Cld-Error"] == "Invalid transformation component - e_sepia"


# -- fault injection ------------------------------------------------------------------------------


def test_fault_status_then_recovery(standin: CloudinaryStandin) -> None:
    standin.add_asset(image_bytes(), "f")
    standin.inject(path_prefix="/v1_1/demo/image/tags", status=500, times=2)
    for _ in range(2):
        with pytest.raises(cloudinary.exceptions.GeneralError):
            cloudinary.uploader.add_tag("x", ["f"])
    assert cloudinary.uploader.add_tag("x", ["f"])["public_ids"] == ["f"]
    assert [c["status"] for c in tag_calls(standin)] == [500, 500, 200]
    assert standin.faults == []


def test_fault_429_404_redirect_delay(standin: CloudinaryStandin) -> None:
    standin.add_asset(image_bytes(), "g")
    standin.inject("/v1_1/demo/resources", status=429, retry_after=7)
    limited = requests.get(
        f"{standin.url}/v1_1/demo/resources/image", auth=(standin.api_key, standin.api_secret)
    )
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert limited.json() == {"error": {"message": "Rate Limit Exceeded"}}

    standin.inject("/v1_1/demo/resources", status=404)
    with pytest.raises(cloudinary.exceptions.NotFound):
        cloudinary.api.resource("g")
    assert cloudinary.api.resource("g")["public_id"] == "g"

    standin.inject("/demo/image/upload", location="http://elsewhere.invalid/g.png")
    moved = requests.get(f"{standin.url}/demo/image/upload/g.png", allow_redirects=False)
    assert moved.status_code == 302
    assert moved.headers["Location"] == "http://elsewhere.invalid/g.png"

    standin.inject("/demo/image/upload", delay_s=0.5)
    started = time.monotonic()
    slow = requests.get(f"{standin.url}/demo/image/upload/g.png", timeout=5)
    assert slow.status_code == 200 and time.monotonic() - started >= 0.5

    standin.inject("/demo/image/upload", status=503, times=None)
    assert requests.get(f"{standin.url}/demo/image/upload/g.png").status_code == 503
    assert requests.get(f"{standin.url}/demo/image/upload/g.png").status_code == 503
    standin.clear_faults()
    assert requests.get(f"{standin.url}/demo/image/upload/g.png").status_code == 200


# -- test helpers and the command line ------------------------------------------------------------


def test_public_ids_and_replaced_bytes(standin: CloudinaryStandin) -> None:
    standin.add_asset(image_bytes(), "a/first")
    standin.add_asset(b"hello", "notes.txt", resource_type="raw")
    standin.add_asset(image_bytes(color="blue"), "a/first")  # an overwrite keeps its place
    assert standin.public_ids() == ["a/first", "notes.txt"]

    before = standin.asset("a/first")
    assert before is not None
    standin.replace_bytes("a/first", b"<html>not an image</html>")
    after = standin.asset("a/first")
    assert after is not None and after["version"] == before["version"]
    assert after["bytes"] == len(b"<html>not an image</html>")
    served = requests.get(delivery_url(standin, "a/first", format="png"), timeout=10)
    assert served.status_code == 200 and served.content == b"<html>not an image</html>"
    assert standin.notifications_sent == []
    with pytest.raises(KeyError):
        standin.replace_bytes("missing", b"")


def test_presets_are_read_as_copies(standin: CloudinaryStandin) -> None:
    assert standin.presets() == {}
    cloudinary.api.create_upload_preset(name="p", unsigned=True, folder="in")
    stored = {"name": "p", "unsigned": True, "settings": {"folder": "in"}}
    preset = standin.preset("p")
    assert preset == stored
    preset["settings"]["folder"] = "changed"
    assert standin.presets() == {"p": stored}
    assert cloudinary.api.upload_preset("p")["settings"]["folder"] == "in"
    with pytest.raises(KeyError):
        standin.preset("missing")


def test_python_m_serves_and_prints_its_cloudinary_url() -> None:
    command = [sys.executable, "-m", "infra.local_cloudinary", "--port", "0", "--cloud-name", "cli"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            assert line.startswith("CLOUDINARY_URL=cloudinary://123456789012345:")
            prefix = line.split("upload_prefix=", 1)[1]
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+", prefix)
            answer = requests.get(
                f"{prefix}/v1_1/cli/ping", auth=("123456789012345", "x"), timeout=10
            )
            assert answer.status_code == 401
            assert answer.json() == {"error": {"message": "api_secret mismatch"}}
        finally:
            process.terminate()
