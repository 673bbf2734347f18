"""The model's input comes from Cloudinary's 224-px rendition, with the original as fallback."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from autotagger.clients.cloudinary_client import RENDITION, rendition_url
from autotagger.config import load_settings
from autotagger.errors import ConfigError
from autotagger.media import imaging
from infra.local_cloudinary import CloudinaryStandin
from tests.support.helpers import image_bytes, notification_from, sign_body

CLD = "https://res.cloudinary.com/demo/image/upload"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"{CLD}/v1712345678/dog.jpg", f"{CLD}/{RENDITION}/v1712345678/dog.jpg"),
        (f"{CLD}/v1/pets/dogs/rex.png", f"{CLD}/{RENDITION}/v1/pets/dogs/rex.png"),
        (f"{CLD}/v1/a%20b.webp", f"{CLD}/{RENDITION}/v1/a%20b.webp"),
        (
            "http://127.0.0.1:9000/c/image/upload/v2/x.gif",
            f"http://127.0.0.1:9000/c/image/upload/{RENDITION}/v2/x.gif",
        ),
    ],
)
def test_standard_delivery_urls_get_the_rendition(url: str, expected: str) -> None:
    assert rendition_url(url) == expected
    assert RENDITION == "c_scale,w_224,h_224,f_png"


@pytest.mark.parametrize(
    "url",
    [
        f"{CLD}/c_fill,w_100,h_100/v1/dog.jpg",  # already transformed
        f"{CLD}/dog.jpg",  # no version
        f"{CLD}/v1/dog",  # no extension
        f"{CLD}/v1/dog.jpg?_a=BAM",  # query (e.g. analytics or a token)
        "https://res.cloudinary.com/demo/image/private/s--sig--/v1/dog.jpg",  # signed, private
        "https://res.cloudinary.com/demo/image/authenticated/v1/dog.jpg",
        "https://res.cloudinary.com/demo/image/fetch/v1/https://example.com/dog.jpg",
        "https://res.cloudinary.com/demo/video/upload/v1/clip.mp4",
        "https://res.cloudinary.com/demo/raw/upload/v1/file.txt",
        "https://images.example.com/image/upload/v1/dog.jpg",  # CNAME without the cloud name
        "not a url",
        "",
    ],
)
def test_other_urls_are_unchanged(url: str) -> None:
    assert rendition_url(url) == url


def test_download_rendition_setting() -> None:
    assert load_settings({}).download_rendition is True
    assert load_settings({"DOWNLOAD_RENDITION": "0"}).download_rendition is False
    assert load_settings({"DOWNLOAD_RENDITION": "1"}).download_rendition is True
    with pytest.raises(ConfigError, match="DOWNLOAD_RENDITION"):
        load_settings({"DOWNLOAD_RENDITION": "maybe"})


def _deliveries(standin: CloudinaryStandin) -> list[tuple[str, int]]:
    return [
        (c["path"], c["status"])
        for c in standin.calls
        if c["method"] == "GET" and "/image/upload/" in c["path"]
    ]


def _deliver(client, standin: CloudinaryStandin, resource: dict):
    body = notification_from(resource)
    return client.post("/", data=body, headers=sign_body(body, standin.api_secret))


@pytest.mark.usefixtures("real_model_env")
def test_only_the_rendition_is_downloaded(make_client, standin: CloudinaryStandin) -> None:
    resource = standin.add_asset(image_bytes((2400, 1600)), public_id="big/photo")
    response = _deliver(make_client("on_upload"), standin, resource)
    assert response.status_code == 200
    assert response.get_json()["status"] == "done"
    assert _deliveries(standin) == [
        (
            f"/{standin.cloud_name}/image/upload/{RENDITION}/v{resource['version']}/big/photo.jpg",
            200,
        )
    ]


@pytest.mark.usefixtures("real_model_env")
def test_rendition_failure_falls_back_to_the_original(
    make_client, standin: CloudinaryStandin
) -> None:
    resource = standin.add_asset(image_bytes((800, 600)), public_id="fallback/photo")
    standin.inject(f"/{standin.cloud_name}/image/upload/{RENDITION}/", 404)
    response = _deliver(make_client("on_upload"), standin, resource)
    assert response.status_code == 200
    record = response.get_json()
    assert record["status"] == "done"
    deliveries = _deliveries(standin)
    assert [status for _, status in deliveries] == [404, 200]
    assert RENDITION in deliveries[0][0]
    assert (
        deliveries[1][0]
        == f"/{standin.cloud_name}/image/upload/v{resource['version']}/fallback/photo.jpg"
    )


@pytest.mark.usefixtures("real_model_env")
def test_rendition_can_be_turned_off(make_client, standin: CloudinaryStandin) -> None:
    resource = standin.add_asset(image_bytes((800, 600)), public_id="off/photo")
    response = _deliver(make_client("on_upload", DOWNLOAD_RENDITION="0"), standin, resource)
    assert response.get_json()["status"] == "done"
    assert [RENDITION in path for path, _ in _deliveries(standin)] == [False]


def test_rendition_has_the_geometry_of_the_full_size_path(standin: CloudinaryStandin) -> None:
    """c_scale squashes like Keras's load_img: the 224x224 pixels match our full-size decode."""
    import requests

    standin.reset()
    original = image_bytes((1600, 900), (30, 160, 220))
    resource = standin.add_asset(original, public_id="geometry/photo")
    answer = requests.get(rendition_url(resource["secure_url"]), timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(answer.content)).size == (224, 224)
    derived = imaging.load_rgb(answer.content, 10**8).astype(int)
    full = imaging.load_rgb(original, 10**8).astype(int)
    assert np.abs(derived - full).mean() < 3  # resampling filters differ, geometry does not
