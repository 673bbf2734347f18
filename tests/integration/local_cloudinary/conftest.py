"""A "demo" cloud per module, the SDK pointed at it; a second (sha256) cloud; a webhook receiver."""

from __future__ import annotations

import os
from collections.abc import Iterator

import cloudinary
import cloudinary.api
import cloudinary.exceptions
import cloudinary.uploader
import cloudinary.utils
import pytest

from infra.local_cloudinary import CloudinaryStandin
from tests.integration.local_cloudinary.support import Receiver


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


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.stop()
