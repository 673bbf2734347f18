"""Unit tests start nothing: the shared fixtures that start an emulator, the local Cloudinary or
build a model fail here, so a test that needs one belongs in tests/integration."""

from __future__ import annotations

import pytest


def _refuse(what: str) -> None:
    pytest.fail(f"a unit test asked for {what}: move it to tests/integration", pytrace=False)


@pytest.fixture(scope="session")
def emulator_host() -> str:
    _refuse("the Firestore emulator")
    raise AssertionError


@pytest.fixture(scope="session")
def pubsub_host() -> str:
    _refuse("the Pub/Sub emulator")
    raise AssertionError


@pytest.fixture(scope="session")
def standin() -> None:
    _refuse("the local Cloudinary")


@pytest.fixture(scope="session")
def model_dir() -> None:
    _refuse("a VGG16 artifact")
