"""`make run` with nothing configured: the local Cloudinary, the page in local mode, the model.

The whole loop in a browser is tests/e2e/test_make_run_page.py; Ctrl-C is
tests/system/test_make_run.py.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from autotagger.config import load_settings
from autotagger.errors import ConfigError
from autotagger.web import local_mode, webhook
from infra import local_defaults, processes
from infra.local_cloudinary import CloudinaryStandin
from tests.support.helpers import image_bytes

_CONFIG_RE = re.compile(r'<script type="application/json" id="autotagger-config">(.*?)</script>')
PAGE_ORIGIN = "http://127.0.0.1:8080"


def _config(html: str) -> dict[str, Any]:
    match = _CONFIG_RE.search(html)
    assert match
    config: dict[str, Any] = json.loads(match.group(1))
    return config


def _connect_src(response: Any) -> list[str]:
    policy = response.headers["Content-Security-Policy"]
    for part in policy.split(";"):
        name, *values = part.split()
        if name == "connect-src":
            return values
    raise AssertionError("no connect-src")


# -- settings ----------------------------------------------------------------------------------


def test_local_cloudinary_is_off_by_default() -> None:
    assert load_settings({}).local_cloudinary is False


def test_local_cloudinary_needs_a_loopback_upload_prefix(standin: CloudinaryStandin) -> None:
    settings = load_settings({"LOCAL_CLOUDINARY": "1", "CLOUDINARY_URL": standin.cloudinary_url})
    assert settings.local_cloudinary is True
    for url in ("", "cloudinary://k:s@cloud", "cloudinary://k:s@c?upload_prefix=https://x.example"):
        with pytest.raises(ConfigError, match="LOCAL_CLOUDINARY"):
            load_settings({"LOCAL_CLOUDINARY": "1", "CLOUDINARY_URL": url})
    with pytest.raises(ConfigError, match="LOCAL_CLOUDINARY"):
        load_settings({"LOCAL_CLOUDINARY": "yes"})


# -- the page's public configuration -----------------------------------------------------------


def test_local_mode_page_posts_to_the_local_upload_api(
    make_client, standin: CloudinaryStandin
) -> None:
    env = {"LOCAL_CLOUDINARY": "1", "CLOUDINARY_UPLOAD_PRESET": "autotagger_local"}
    response = make_client("results", **env).get("/")
    config = _config(response.get_data(as_text=True))
    assert config["localUploadUrl"] == f"{standin.url}/v1_1/{standin.cloud_name}/auto/upload"
    assert standin.url in _connect_src(response)
    assert standin.api_secret not in response.get_data(as_text=True)
    html = response.get_data(as_text=True)
    assert 'id="local-badge"' in html and "local Cloudinary — no account" in html
    assert 'id="local-file"' in html


def test_a_real_account_gets_the_widget(make_client, standin: CloudinaryStandin) -> None:
    response = make_client("results", CLOUDINARY_UPLOAD_PRESET="p").get("/")
    config = _config(response.get_data(as_text=True))
    assert config["localUploadUrl"] is None
    assert config["widgetScript"].startswith("https://upload-widget.cloudinary.com/")
    assert (
        local_mode.connect_sources(load_settings({"CLOUDINARY_URL": standin.cloudinary_url})) == []
    )


def test_random_weights_are_announced(make_client, model_dir: Path, tmp_path: Path) -> None:
    def banner(weights: str) -> bool:
        html = make_client("results", MODEL_WEIGHTS=weights).get("/").get_data(as_text=True)
        return bool(_config(html)["randomWeights"])

    assert banner("random") is True
    assert banner(str(model_dir)) is True  # an artifact built from random weights
    real = tmp_path / "vgg16-imagenet"
    real.mkdir()
    (real / "manifest.json").write_text(json.dumps({"name": "vgg16/imagenet"}))
    assert banner(str(real)) is False
    assert banner("imagenet") is False
    settings = load_settings({"MODEL_WEIGHTS": "gs://bucket/model"})
    assert local_mode.random_weights(settings) is False


# -- the local Cloudinary that make run starts -------------------------------------------------


class _Capture(BaseHTTPRequestHandler):
    received: list[tuple[bytes, dict[str, str]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((body, dict(self.headers)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def notifications() -> Iterator[tuple[str, list[tuple[bytes, dict[str, str]]]]]:
    """A stand-in for on_upload that records the notifications it gets."""
    received: list[tuple[bytes, dict[str, str]]] = []
    handler = type("Handler", (_Capture,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", received
    finally:
        server.shutdown()
        server.server_close()


def test_with_a_cloudinary_url_nothing_local_starts(capsys: pytest.CaptureFixture[str]) -> None:
    env = {"CLOUDINARY_URL": "cloudinary://k:s@cloud", "CLOUDINARY_UPLOAD_PRESET": "mine"}
    before = dict(env)
    assert local_defaults.start_local_cloudinary(env, "http://127.0.0.1:9", 0) is None
    assert env == before
    assert capsys.readouterr().out == ""


def test_local_cloudinary_takes_unsigned_uploads_and_signs_notifications(
    notifications: tuple[str, list[tuple[bytes, dict[str, str]]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    on_upload, received = notifications
    env: dict[str, str] = {"CLOUDINARY_DELIVERY_HOSTS": "media.example.com"}
    standin = local_defaults.start_local_cloudinary(env, on_upload, processes.free_port())
    assert standin is not None
    try:
        printed = capsys.readouterr().out
        assert "local Cloudinary" in printed
        assert standin.api_secret not in printed and standin.api_key not in printed
        settings = load_settings(env)  # what both functions get
        assert settings.local_cloudinary is True
        assert settings.cloudinary is not None
        assert settings.cloudinary.api_secret == standin.api_secret
        assert settings.cloudinary.upload_prefix == standin.url
        assert settings.upload_preset == local_defaults.LOCAL_PRESET
        assert standin.delivery_host in settings.delivery_hosts
        assert "media.example.com" in settings.delivery_hosts
        assert len(standin.api_secret) >= 20

        # What the page does: an unsigned upload from its origin, readable thanks to CORS.
        url = local_mode.upload_api_url(settings)
        assert url is not None
        preflight = requests.options(url, headers={"Origin": PAGE_ORIGIN}, timeout=10)
        assert preflight.status_code == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == "*"
        answer = requests.post(
            url,
            files={"file": ("cat.jpg", image_bytes(), "image/jpeg")},
            data={"upload_preset": settings.upload_preset},
            headers={"Origin": PAGE_ORIGIN},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["Access-Control-Allow-Origin"] == "*"
        uploaded = answer.json()

        # ... and on_upload gets a notification it can verify with the generated secret.
        sent = standin.wait_for_notifications(1, timeout=30)
        assert [n["status"] for n in sent] == [200]
        body, headers = received[0]
        webhook.verify_signature(
            body,
            headers["X-Cld-Timestamp"],
            headers["X-Cld-Signature"],
            settings.cloudinary,
            settings.webhook_max_age_s,
        )
        event = webhook.parse_notification(webhook.parse_json(body))
        assert isinstance(event, webhook.Upload)
        assert event.asset_id == uploaded["asset_id"]
        # The Admin API is not open to browsers.
        admin = requests.get(f"{standin.url}/v1_1/{standin.cloud_name}/ping", timeout=10)
        assert admin.status_code == 401
        assert "Access-Control-Allow-Origin" not in admin.headers
    finally:
        standin.stop()


def test_a_busy_port_is_named_with_the_setting_to_change() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        env: dict[str, str] = {}
        with pytest.raises(SystemExit, match="LOCAL_CLOUDINARY_PORT"):
            local_defaults.start_local_cloudinary(env, "http://127.0.0.1:9", taken.getsockname()[1])
        assert env == {}


# -- which weights make run uses ---------------------------------------------------------------


def test_model_weights_as_set_are_kept() -> None:
    def no_fallback(_: str) -> Path:
        raise AssertionError("must not build random weights")

    assert local_defaults.model_weights({"MODEL_WEIGHTS": "imagenet"}, no_fallback) == "imagenet"


def test_offline_falls_back_to_random_weights_and_says_how_to_get_real_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        local_defaults,
        "IMAGENET_MODEL_DIRS",
        {"fp32": tmp_path / "fp32", "int8": tmp_path / "int8"},
    )
    asked: list[str] = []

    def random_artifact(precision: str) -> Path:
        asked.append(precision)
        return tmp_path / f"random-{precision}"

    closed = f"http://127.0.0.1:{processes.free_port()}/vgg16.h5"  # nothing listens: "offline"
    chosen = local_defaults.model_weights({"MODEL_PRECISION": "int8"}, random_artifact, closed)
    assert chosen == str(tmp_path / "random-int8")
    assert asked == ["int8"]
    printed = capsys.readouterr().out
    assert "random weights" in printed
    assert "build_model.py --weights imagenet" in printed


def test_a_built_imagenet_artifact_is_used_without_the_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = tmp_path / "fp32"
    built.mkdir()
    (built / "manifest.json").write_text(json.dumps({"name": "vgg16/imagenet"}))
    monkeypatch.setattr(local_defaults, "IMAGENET_MODEL_DIRS", {"fp32": built, "int8": built})

    def no_network(*_: Any, **__: Any) -> bool:
        raise AssertionError("must not probe the network")

    monkeypatch.setattr(local_defaults, "_reachable", no_network)
    assert local_defaults.model_weights({}, lambda _: tmp_path / "random") == str(built)


def test_the_network_probe_is_bounded() -> None:
    """An address that never answers (a listening socket that never accepts) costs the bound."""
    import socket
    import time

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(0)
        started = time.monotonic()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/vgg16.h5"
        assert local_defaults._reachable(url, timeout_s=1.0) is False
        assert time.monotonic() - started < 30  # bounded by the probe, not by the OS
