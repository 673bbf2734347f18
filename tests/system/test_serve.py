"""Both functions under the real functions-framework server (gunicorn), as `make run` runs them.

A signed upload through the real SDK to the Cloudinary stand-in makes it POST the notification to
`on_upload`; the tag lands in the stand-in and the document is found through `results`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import cloudinary
import cloudinary.uploader
import pytest
import requests

from infra.local_cloudinary import CloudinaryStandin
from infra.processes import free_port, serve, stop, wait_until_up
from tests.support.helpers import image_bytes

pytestmark = pytest.mark.slow


@pytest.fixture
def servers(base_env: dict[str, str], model_dir: Path) -> Iterator[dict[str, str]]:
    env = {**os.environ, **base_env, "MODEL_WEIGHTS": str(model_dir)}
    urls: dict[str, str] = {}
    processes = []
    try:
        for target in ("results", "on_upload"):
            port = free_port()
            process = serve(target, port, env)
            processes.append(process)
            urls[target] = f"http://127.0.0.1:{port}"
            wait_until_up(urls[target] + "/", process)
        yield urls
    finally:
        stop(processes)


def _upload(standin: CloudinaryStandin, public_id: str, notification_url: str) -> dict:
    cloudinary.config(
        cloud_name=standin.cloud_name,
        api_key=standin.api_key,
        api_secret=standin.api_secret,
        upload_prefix=standin.url,
    )
    return cloudinary.uploader.upload(
        image_bytes((1024, 768)), public_id=public_id, notification_url=notification_url
    )


def _upload_notification(standin: CloudinaryStandin, public_id: str) -> dict:
    """Wait for the answer to the upload notification of `public_id` (not the tag-change one)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for sent in standin.wait_for_notifications(len(standin.notifications_sent) + 1, 1.0):
            if sent["notification_type"] == "upload" and public_id.encode() in sent["body"]:
                return sent
    raise TimeoutError(public_id)


def test_sdk_upload_is_tagged_through_the_running_functions(
    servers: dict[str, str], standin: CloudinaryStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(standin, "notification_timeout_s", 120)  # the session's stand-in
    timings = []
    for public_id in ["served/first", "served/second"]:
        started = time.perf_counter()
        uploaded = _upload(standin, public_id, servers["on_upload"] + "/")
        sent = _upload_notification(standin, public_id)
        timings.append(time.perf_counter() - started)
        assert sent["status"] == 200, sent
        assert sent["error"] is None
        asset = standin.asset(public_id)
        assert asset is not None
        tags = asset["tags"]
        found = requests.get(
            servers["results"] + "/api/results",
            params={"asset_id": uploaded["asset_id"]},
            timeout=10,
        ).json()["results"]
        assert found[0]["status"] == "done"
        assert found[0]["label"] in tags
        assert len(found[0]["predictions"]) == 5
    # Informational (no wall-clock assertion): cold vs warm end to end through gunicorn.
    print(f"\nfirst request {timings[0] * 1e3:.0f} ms, warm request {timings[1] * 1e3:.0f} ms")


def test_runs_under_gunicorn_threads(servers: dict[str, str]) -> None:
    """The page answers while the process is up (functions-framework's production server)."""
    response = requests.get(servers["results"] + "/", timeout=10)
    assert response.status_code == 200
    assert "text/html" in response.headers["Content-Type"]
    assert requests.get(servers["on_upload"] + "/", timeout=10).status_code == 405
