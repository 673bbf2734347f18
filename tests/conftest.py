"""Shared fixtures: the real Firestore emulator, the Cloudinary stand-in, the VGG16 artifact."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from infra import emulators, local, processes
from infra.local_cloudinary import CloudinaryStandin

if TYPE_CHECKING:
    from tests.support.keras_reference import Answers

pytest_plugins = ["tests.support.memory", "tests.support.isolated", "tests.support.prebuild"]

ROOT = Path(__file__).resolve().parents[1]
MAIN = str(ROOT / "function" / "main.py")


@pytest.fixture(scope="session")
def emulator_host() -> Iterator[str]:
    """A gRPC Firestore emulator: an already running one (FIRESTORE_EMULATOR_HOST), else a fresh
    one for this session: gcloud's official emulator when installed, else the npm one
    (FIRESTORE_EMULATOR=official|npm forces the choice)."""
    existing = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if existing:
        yield existing
        return
    print(emulators.describe_firestore_emulator())
    process, host = emulators.start_emulator()
    try:
        yield host
    finally:
        processes.stop([process])


@pytest.fixture(scope="session")
def pubsub_host() -> Iterator[str]:
    """gcloud's official Pub/Sub emulator: an already running one (PUBSUB_EMULATOR_HOST), else a
    fresh one for this session. Skipped where gcloud's Pub/Sub emulator is not installed."""
    existing = os.environ.get("PUBSUB_EMULATOR_HOST")
    if existing:
        yield existing
        return
    if not emulators.gcloud_emulator_available("pubsub"):
        pytest.skip("gcloud's Pub/Sub emulator is not installed")
    process, host = emulators.start_gcloud_emulator("pubsub")
    try:
        yield host
    finally:
        processes.stop([process])


@pytest.fixture(scope="session")
def standin() -> Iterator[CloudinaryStandin]:
    server = CloudinaryStandin(cloud_name="autotagger-test").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _release_models() -> Iterator[None]:
    """A model stays warm from test to test while it is the only one; a test that leaves a
    second one (another engine, hint or artifact) releases them all, so the suite's memory is
    one or two models, not every artifact, engine and hint it went through."""
    yield
    import gc
    import sys

    loaded = sys.modules.get("autotagger.model")
    if loaded is not None and loaded.compiled_count() > 1:
        loaded.release_all()
        gc.collect()
        _return_freed_memory()


@pytest.fixture(scope="module", autouse=True)
def _release_models_after_the_module() -> Iterator[None]:
    yield
    import gc
    import sys

    loaded = sys.modules.get("autotagger.model")
    if loaded is not None and loaded.compiled_count() > 0:
        loaded.release_all()
        gc.collect()
        _return_freed_memory()


def _return_freed_memory() -> None:
    """glibc keeps freed heap for reuse; hand it back, so the next module starts low."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The real VGG16 graph with seeded random weights, saved by infra/build_model.py."""
    return local.ensure_random_model()


@pytest.fixture(scope="session")
def int8_model_dir() -> Path:
    """The same seeded VGG16 converted to LiteRT int8 (dynamic range)."""
    return local.ensure_random_model("int8")


@pytest.fixture(scope="session")
def keras_answers() -> Answers:
    """Keras's own answers to every parity input (tests/support/keras_reference.py)."""
    from tests.support import keras_reference

    return keras_reference.answers()


@pytest.fixture
def base_env(
    emulator_host: str, standin: CloudinaryStandin, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Environment for one test: its own Firestore collection and a fresh stand-in state."""
    standin.reset()
    env = {
        "CLOUDINARY_URL": standin.cloudinary_url,
        "CLOUDINARY_DELIVERY_HOSTS": standin.delivery_host,
        "FIRESTORE_EMULATOR_HOST": emulator_host,
        "GOOGLE_CLOUD_PROJECT": "demo-autotagger-test",
        "FIRESTORE_COLLECTION": f"t{uuid.uuid4().hex[:12]}",
        "MODEL_WEIGHTS": "random",
        "DOWNLOAD_TIMEOUT_S": "5",
        # The open listing; private mode's tests (tests/integration/test_access_*.py) override it.
        "RESULTS_ACCESS": "public",
    }
    for key in list(os.environ):
        if key in {"TAG_PREFIX", "TAG_THRESHOLD", "TOP_K", "MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS"}:
            monkeypatch.delenv(key)
        if key in {"RESULTS_TOKEN", "UPLOAD_MODE", "UPLOAD_FOLDER", "FORWARD_BUDGET_PER_MIN"}:
            monkeypatch.delenv(key)
        if key in {"FORWARD_BUDGET_PER_HOUR", "CLAIM_TTL_S"}:
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


AppFactory = Callable[..., Any]


@pytest.fixture
def make_client(base_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> AppFactory:
    """`make_client("on_upload", TOP_K="3")`: the real Flask app of a function, as a test client."""
    import functions_framework

    def factory(target: str, **overrides: str) -> Any:
        for key, value in overrides.items():
            monkeypatch.setenv(key, value)
        return functions_framework.create_app(target, MAIN).test_client()

    return factory


@pytest.fixture
def real_model_env(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, base_env: dict[str, str]
) -> str:
    monkeypatch.setenv("MODEL_WEIGHTS", str(model_dir))
    base_env["MODEL_WEIGHTS"] = str(model_dir)
    return str(model_dir)


@pytest.fixture
def stored(base_env: dict[str, str]) -> Callable[[], dict[str, dict[str, Any]]]:
    """Read back every document of this test's collection, straight from the emulator."""
    from google.cloud import firestore

    client = firestore.Client(project=base_env["GOOGLE_CLOUD_PROJECT"])

    def read() -> dict[str, dict[str, Any]]:
        collection = client.collection(base_env["FIRESTORE_COLLECTION"])
        return {doc.id: doc.to_dict() or {} for doc in collection.stream()}

    return read
