"""Delivery URLs and their transformations, and injected faults."""

from __future__ import annotations

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
    decode,
    delivery_url,
    image_bytes,
    tag_calls,
)

# -- delivery -------------------------------------------------------------------------------------


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
