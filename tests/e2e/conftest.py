"""Fixtures for the browser tests: Chromium (Playwright) against both functions, served by
functions-framework as subprocesses, the Firestore emulator, the Cloudinary stand-in and the real
VGG16 graph.

The only things replaced in the browser are outside services: the Upload widget script is
routed to tests/e2e/widget_standin.js (same `cloudinary.createUploadWidget` API and events, and
it makes the real unsigned upload to the stand-in's Upload API, which answers with the CORS
header Cloudinary's API sends). Any other request leaving 127.0.0.1 is aborted and fails the
test. The page's own code, CSP included, runs unchanged.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image, ImageDraw, ImageFilter

from autotagger.config import upload_mode
from infra.local_cloudinary import CloudinaryStandin
from infra.processes import free_port, stop, wait_until_up
from infra.processes import serve as serve_function

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
]
WIDGET_URL = "https://upload-widget.cloudinary.com/latest/global/all.js"
WIDGET_STANDIN = Path(__file__).with_name("widget_standin.js")
ROOT = Path(__file__).resolve().parents[2]
PRESET = "autotagger_page"
DONE_TIMEOUT_MS = 90_000

# Every browser test module sets `pytestmark = E2E`.
E2E = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"browser tests need Chromium at {CHROMIUM} (CI installs it)",
    ),
]

if Path(CHROMIUM).exists():
    from playwright.sync_api import Browser, BrowserContext, Page, Route, expect, sync_playwright


# -- pictures ----------------------------------------------------------------------------------

_PALETTES = [
    ((255, 179, 102), (164, 80, 139), (255, 236, 179), (76, 40, 90), (120, 60, 110)),
    ((120, 200, 255), (30, 90, 170), (255, 250, 230), (20, 70, 90), (40, 110, 120)),
    ((200, 235, 210), (90, 160, 120), (255, 245, 200), (30, 90, 60), (60, 130, 80)),
    ((255, 220, 170), (230, 140, 80), (255, 255, 240), (170, 100, 50), (200, 130, 70)),
    ((40, 50, 110), (10, 15, 40), (240, 240, 255), (20, 30, 60), (35, 45, 85)),
]


def picture(seed: int, size: tuple[int, int] = (960, 720)) -> bytes:
    """A small landscape (sky, sun, two hills), different for every seed, as JPEG."""
    top, bottom, sun, far, near = _PALETTES[seed % len(_PALETTES)]
    width, height = size
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / height
        draw.line(
            [(0, y), (width, y)],
            fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)),
        )
    cx, cy, r = width * (0.25 + 0.12 * (seed % 4)), height * 0.36, height * 0.11
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=sun)
    draw.ellipse([-width * 0.3, height * 0.55, width * 0.9, height * 1.6], fill=far)
    draw.ellipse([width * 0.3, height * 0.68, width * 1.5, height * 1.7], fill=near)
    image = image.filter(ImageFilter.GaussianBlur(1.2))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


# -- servers -----------------------------------------------------------------------------------


@dataclass
class Servers:
    results: str
    on_upload: str
    forward: bool

    def api(self, **params: str) -> list[dict[str, Any]]:
        response = requests.get(f"{self.results}/api/results", params=params, timeout=10)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()["results"]
        return found


@pytest.fixture
def serve(
    base_env: dict[str, str], real_model_env: str, standin: CloudinaryStandin
) -> Iterator[Callable[..., Servers]]:
    """Start `on_upload` and `results` under functions-framework; stopped after the test.

    `forward`: the page forwards the signed upload result (ON_UPLOAD_URL set on results);
    `webhook`: the stand-in POSTs upload notifications to on_upload; `env`: more settings for
    both functions (the page's preset is then signed when they make UPLOAD_MODE signed).
    """
    processes: list[subprocess.Popen[bytes]] = []

    def start(
        *, forward: bool = True, webhook: bool = False, env: dict[str, str] | None = None
    ) -> Servers:
        results_port, on_upload_port = free_port(), free_port()
        servers = Servers(
            f"http://127.0.0.1:{results_port}", f"http://127.0.0.1:{on_upload_port}", forward
        )
        extra = env or {}
        env = {
            **os.environ,
            **base_env,
            "MODEL_WEIGHTS": real_model_env,
            "CLOUDINARY_UPLOAD_PRESET": PRESET,
            "ALLOWED_ORIGINS": servers.results,
            **extra,
        }
        env.pop("ON_UPLOAD_URL", None)
        results_env = {**env, "ON_UPLOAD_URL": servers.on_upload} if forward else env
        for target, port, target_env, probe in (
            ("on_upload", on_upload_port, env, "/"),
            ("results", results_port, results_env, "/healthz"),
        ):
            process = serve_function(target, port, target_env)
            processes.append(process)
            wait_until_up(f"http://127.0.0.1:{port}{probe}", process)
        if webhook:
            standin.notification_url = servers.on_upload + "/"
        created = requests.post(
            f"{standin.url}/v1_1/{standin.cloud_name}/upload_presets",
            data={"name": PRESET, "unsigned": str(upload_mode(env) == "unsigned").lower()},
            auth=(standin.api_key, standin.api_secret),
            timeout=10,
        )
        created.raise_for_status()
        return servers

    try:
        yield start
    finally:
        stop(processes)


# -- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Harness:
    """One browser page on the upload page, with what it logged and requested."""

    page: Page
    servers: Servers
    standin: CloudinaryStandin
    files: list[dict[str, Any]] = field(default_factory=list)
    after_upload: Callable[[dict[str, Any]], None] | None = None
    console_errors: list[tuple[str, str]] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    polls: list[float] = field(default_factory=list)
    forwards: list[int] = field(default_factory=list)

    @property
    def current(self) -> Any:
        return self.page.locator("#current")

    def upload(
        self,
        data: bytes,
        name: str = "photo.jpg",
        mime: str = "image/jpeg",
        public_id: str | None = None,
    ) -> None:
        """Queue a file for the stand-in widget and press the page's Upload button."""
        self.files.append(
            {
                "name": name,
                "type": mime,
                "base64": base64.b64encode(data).decode(),
                "publicId": public_id,
            }
        )
        self.page.get_by_role("button", name="Upload", exact=True).click()

    def wait_for(self, state: str, timeout_ms: int = DONE_TIMEOUT_MS) -> None:
        expect(self.current).to_have_attribute("data-state", state, timeout=timeout_ms)

    def assert_clean(self, allowed_error_urls: tuple[str, ...] = ()) -> None:
        """No console errors (outside `allowed_error_urls`), no dialogs, nothing off-host."""
        errors = [
            text for text, url in self.console_errors if not url.startswith(allowed_error_urls)
        ]
        assert errors == []
        assert self.dialogs == []
        assert self.outside == []


@pytest.fixture
def open_page(browser: Browser, standin: CloudinaryStandin) -> Iterator[Callable[..., Harness]]:
    contexts: list[BrowserContext] = []

    def factory(
        servers: Servers,
        viewport: tuple[int, int] = (1280, 900),
        poll_timeout_s: int | None = None,
    ) -> Harness:
        context = browser.new_context(
            viewport={"width": viewport[0], "height": viewport[1]},
            device_scale_factor=1,
            locale="en-US",
            color_scheme="light",
        )
        contexts.append(context)
        page = context.new_page()
        harness = Harness(page, servers, standin)

        def route(route: Route) -> None:
            url = route.request.url
            if url.split("?", 1)[0] == WIDGET_URL:
                route.fulfill(path=WIDGET_STANDIN, content_type="text/javascript")
                return
            if urlsplit(url).hostname != "127.0.0.1":
                harness.outside.append(url)
                route.abort()
                return
            route.continue_()

        context.route("**/*", route)
        context.add_init_script(
            f"window.__widgetStandin = {json.dumps({'uploadUrl': standin.url})};"
        )
        if poll_timeout_s is not None:
            # A shorter time budget: rewrite the injected config before the page's script runs.
            context.add_init_script(
                "document.addEventListener('readystatechange', () => {"
                "  const node = document.getElementById('autotagger-config');"
                "  if (document.readyState !== 'interactive' || !node) return;"
                "  const config = JSON.parse(node.textContent);"
                f"  config.pollTimeoutS = {int(poll_timeout_s)};"
                "  node.textContent = JSON.stringify(config);"
                "});"
            )

        def next_file() -> dict[str, Any] | None:
            return harness.files.pop(0) if harness.files else None

        def uploaded(body: dict[str, Any]) -> None:
            if harness.after_upload is not None:
                harness.after_upload(body)

        page.expose_function("__standinNextFile", next_file)
        page.expose_function("__standinAfterUpload", uploaded)
        page.on(
            "console",
            lambda message: (
                harness.console_errors.append((message.text, message.location.get("url", "")))
                if message.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda error: harness.console_errors.append((str(error), "")))

        def dialog(opened: Any) -> None:
            harness.dialogs.append(opened.message)
            opened.dismiss()

        page.on("dialog", dialog)
        page.on(
            "request",
            lambda request: (
                harness.polls.append(time.monotonic())
                if "/api/results?asset_id=" in request.url
                else None
            ),
        )
        page.on(
            "response",
            lambda response: (
                harness.forwards.append(response.status)
                if response.url == servers.on_upload + "/forward"
                and response.request.method == "POST"
                else None
            ),
        )
        page.goto(servers.results + "/")
        expect(page.get_by_role("button", name="Upload", exact=True)).to_be_enabled()
        return harness

    try:
        yield factory
    finally:
        for context in contexts:
            context.close()


def _human(label: str) -> str:
    return label.replace("_", " ")


def _only(records: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(records) == 1, records
    return records[0]
