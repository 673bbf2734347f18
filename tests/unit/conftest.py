"""Unit tests start nothing: the shared fixtures that start an emulator, the local Cloudinary or
build a model fail here, and so does starting any process, so a test that needs one belongs in
tests/integration or tests/system."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

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


@pytest.fixture(scope="session")
def int8_model_dir() -> None:
    _refuse("a VGG16 artifact")


@pytest.fixture(scope="session")
def keras_answers() -> None:
    _refuse("Keras's reference answers")


@pytest.fixture(scope="package", autouse=True)
def _no_subprocess() -> Iterator[None]:
    """Nothing here starts a process (an emulator's JVM, Node, a server): it would fail loudly.
    Package-scoped, so the tests that run after these in the same process may again."""

    def refuse(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        _refuse(f"a subprocess ({args!r})")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "__init__", refuse)
        yield
