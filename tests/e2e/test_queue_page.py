"""The upload page with WEBHOOK_MODE=queue: "Queued" until the worker stores the result."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from infra import local_pubsub, processes
from infra.local_cloudinary import CloudinaryStandin
from tests.e2e.conftest import E2E, Harness, Servers, _human, _only, picture

pytestmark = E2E


def test_queued_upload_shows_queued_then_the_result(
    serve: Callable[..., Servers],
    open_page: Callable[..., Harness],
    standin: CloudinaryStandin,
    pubsub_host: str,
    base_env: dict[str, str],
    real_model_env: str,
    stored: Callable[[], dict[str, dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = f"page-{uuid.uuid4().hex[:8]}"
    project = base_env["GOOGLE_CLOUD_PROJECT"]
    for key, value in {
        "WEBHOOK_MODE": "queue",
        "PUBSUB_EMULATOR_HOST": pubsub_host,
        "PUBSUB_TOPIC": topic,
    }.items():
        monkeypatch.setenv(key, value)
    worker_port = processes.free_port()
    # The worker is not running yet: the emulator keeps retrying the push until it is.
    local_pubsub.setup(
        pubsub_host,
        f"http://127.0.0.1:{worker_port}",
        project,
        topic,
        max_delivery_attempts=100,
    )
    servers = serve(forward=True, webhook=True)  # both paths publish
    harness = open_page(servers)
    harness.upload(picture(4), name="queued.jpg")
    harness.wait_for("queued")
    expect(harness.page.locator("#current-status")).to_have_text("Queued")
    assert stored() == {}

    env = {**os.environ, **base_env, "MODEL_WEIGHTS": real_model_env, "PUBSUB_TOPIC": topic}
    worker = processes.serve("on_message", worker_port, env)
    try:
        harness.wait_for("done")
        record = _only(servers.api())
        expect(harness.page.locator("#current-title")).to_have_text(_human(record["label"]))
        assert harness.forwards == [202]
        assert stored()[record["asset_id"]]["status"] == "done"
        assert record["label"] in (standin.asset(record["public_id"]) or {})["tags"]
        harness.assert_clean()
    finally:
        processes.stop([worker])
