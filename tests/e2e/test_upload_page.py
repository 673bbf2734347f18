"""The upload page in a real browser: Chromium (Playwright) against both functions, served by
functions-framework as subprocesses, the Firestore emulator, the Cloudinary stand-in and the real
VGG16 graph.

The only things replaced in the browser are outside services: the Upload widget script is
routed to tests/e2e/widget_standin.js (same `cloudinary.createUploadWidget` API and events, and
it makes the real unsigned upload to the stand-in's Upload API), and the stand-in's Upload API
answers get the CORS header Cloudinary's API sends. Any other request leaving 127.0.0.1 is
aborted and fails the test. The page's own code, CSP included, runs unchanged.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os
import shutil
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

from infra import local
from tests.cloudinary_standin import CloudinaryStandin

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

pytestmark = [
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
    `webhook`: the stand-in POSTs upload notifications to on_upload.
    """
    processes: list[subprocess.Popen[bytes]] = []

    def start(*, forward: bool = True, webhook: bool = False) -> Servers:
        results_port, on_upload_port = local.free_port(), local.free_port()
        servers = Servers(
            f"http://127.0.0.1:{results_port}", f"http://127.0.0.1:{on_upload_port}", forward
        )
        env = {
            **os.environ,
            **base_env,
            "MODEL_WEIGHTS": real_model_env,
            "CLOUDINARY_UPLOAD_PRESET": PRESET,
            "ALLOWED_ORIGINS": servers.results,
        }
        env.pop("ON_UPLOAD_URL", None)
        results_env = {**env, "ON_UPLOAD_URL": servers.on_upload} if forward else env
        for target, port, target_env, probe in (
            ("on_upload", on_upload_port, env, "/"),
            ("results", results_port, results_env, "/healthz"),
        ):
            process = local.serve(target, port, target_env)
            processes.append(process)
            local.wait_until_up(f"http://127.0.0.1:{port}{probe}", process)
        if webhook:
            standin.notification_url = servers.on_upload + "/"
        created = requests.post(
            f"{standin.url}/v1_1/{standin.cloud_name}/upload_presets",
            data={"name": PRESET, "unsigned": "true"},
            auth=(standin.api_key, standin.api_secret),
            timeout=10,
        )
        created.raise_for_status()
        return servers

    try:
        yield start
    finally:
        local.stop(processes)


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
            if url.startswith(f"{standin.url}/v1_1/"):
                # Cloudinary's Upload API allows any origin; the stand-in sends no CORS headers.
                answer = route.fetch()
                headers = {**answer.headers, "access-control-allow-origin": "*"}
                route.fulfill(response=answer, headers=headers)
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


# -- tests -------------------------------------------------------------------------------------


def test_upload_through_the_webhook_shows_the_label_and_tags(
    serve: Callable[..., Servers], open_page: Callable[..., Harness], standin: CloudinaryStandin
) -> None:
    servers = serve(forward=False, webhook=True)
    harness = open_page(servers)
    harness.upload(picture(1), name="lake.jpg")
    harness.wait_for("done")

    record = _only(servers.api())
    page = harness.page
    expect(page.locator("#current-title")).to_have_text(_human(record["label"]))
    expect(page.locator("#current-status")).to_have_text("Done")
    labels = [_human(p["label"]) for p in record["predictions"]]
    expect(page.locator("#current-predictions .prediction-label")).to_have_text(labels)
    expect(page.locator("#current-tags .tag")).to_have_text(record["tags"])
    expect(page.locator("#current-image")).to_be_visible()
    expect(page.locator("#gallery-grid .card")).to_have_count(1)
    expect(page.locator("#gallery-grid .card-label")).to_have_text(_human(record["label"]))

    sent = [n for n in standin.notifications_sent if n["notification_type"] == "upload"]
    assert [n["status"] for n in sent] == [200]
    assert harness.forwards == []  # no ON_UPLOAD_URL: the page relied on the webhook
    assert record["label"] in (standin.asset(record["public_id"]) or {})["tags"]
    harness.assert_clean()


def test_forward_classifies_without_a_webhook(
    serve: Callable[..., Servers],
    open_page: Callable[..., Harness],
    standin: CloudinaryStandin,
    stored: Callable[[], dict[str, dict[str, Any]]],
) -> None:
    servers = serve(forward=True, webhook=False)
    harness = open_page(servers)
    harness.upload(picture(2), name="forest.jpg")
    harness.wait_for("done")

    record = _only(servers.api())
    expect(harness.page.locator("#current-title")).to_have_text(_human(record["label"]))
    assert harness.forwards == [200]
    assert standin.notifications_sent == []
    assert stored()[record["asset_id"]]["status"] == "done"
    harness.assert_clean()


def test_failed_classification_shows_the_reason(
    serve: Callable[..., Servers], open_page: Callable[..., Harness], standin: CloudinaryStandin
) -> None:
    servers = serve(forward=True)
    harness = open_page(servers)

    def corrupt(body: dict[str, Any]) -> None:
        # Cloudinary says "image", but the bytes it delivers are not one.
        key = ("image", "upload", body["public_id"])
        standin._assets[key].data = b"<html>surprise</html>"

    harness.after_upload = corrupt
    harness.upload(picture(3))
    harness.wait_for("failed")

    record = _only(servers.api())
    assert record["status"] == "failed"
    page = harness.page
    expect(page.locator("#current-status")).to_have_text("Failed")
    expect(page.locator("#current-detail")).to_have_text(record["error"])
    expect(page.locator("#current-predictions .prediction")).to_have_count(0)
    expect(page.locator("#gallery-grid .card[data-status='failed']")).to_have_count(1)
    harness.assert_clean()


def test_a_file_that_is_not_an_image(
    serve: Callable[..., Servers], open_page: Callable[..., Harness], standin: CloudinaryStandin
) -> None:
    servers = serve(forward=True)
    harness = open_page(servers)
    harness.upload(b"just some notes, not a picture\n", name="notes.txt", mime="text/plain")
    harness.wait_for("not-image", timeout_ms=15_000)
    expect(harness.page.locator("#current-title")).to_have_text("That's not an image")
    expect(harness.page.locator("#current-detail")).to_have_text("Invalid image file")
    assert servers.api() == []
    # the only error is the Upload API's own 400 answer to the widget
    harness.assert_clean(allowed_error_urls=(f"{standin.url}/v1_1/",))


def test_crafted_names_and_labels_are_shown_as_text(
    serve: Callable[..., Servers],
    open_page: Callable[..., Harness],
    base_env: dict[str, str],
) -> None:
    from google.cloud import firestore

    evil_label = "<img src=x onerror=alert('label')>"
    evil_id = "\"><svg onload=alert('id')>"
    collection = firestore.Client(project=base_env["GOOGLE_CLOUD_PROJECT"]).collection(
        base_env["FIRESTORE_COLLECTION"]
    )
    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3)
    collection.document("crafted1").set(
        {
            "asset_id": "crafted1",
            "public_id": evil_id,
            "version": 1,
            "secure_url": "javascript:alert('url')",
            "status": "done",
            "label": evil_label,
            "score": 0.9,
            "predictions": [{"label": evil_label, "wnid": "n0", "score": 0.9}],
            "tags": [evil_label],
            "created_at": at,
            "updated_at": at,
        }
    )
    servers = serve(forward=True)
    harness = open_page(servers)
    page = harness.page
    expect(page.locator("#gallery-grid .card-label")).to_have_text([evil_label])
    expect(page.locator("#filters").get_by_role("button", name=evil_label)).to_be_visible()

    public_id = "x<script>alert('upload')</script><img src=x onerror=alert(1)>"
    harness.upload(picture(4), public_id=public_id)
    harness.wait_for("done")
    expect(page.locator("#current-meta dd").first).to_have_text(public_id)
    expect(page.locator("#gallery-grid .card-id").first).to_have_text(public_id)

    page.locator("#gallery-grid .card").nth(1).click()
    expect(page.locator("#current-title")).to_have_text(evil_label)
    expect(page.locator("#current-tags .tag")).to_have_text([evil_label])
    expect(page.locator("#current-meta dd").first).to_have_text(evil_id)

    assert page.locator("img[src='x'], svg[onload]").count() == 0
    scripts = page.evaluate("[...document.scripts].map(s => s.src || s.type)")
    assert sorted(scripts) == sorted(
        ["application/json", f"{servers.results}/assets/app.js", WIDGET_URL]
    )
    assert page.evaluate("[...document.images].every(i => !i.src.startsWith('javascript:'))")
    harness.assert_clean()


def test_polling_gives_up_says_so_and_can_check_again(
    serve: Callable[..., Servers], open_page: Callable[..., Harness], standin: CloudinaryStandin
) -> None:
    servers = serve(forward=False, webhook=False)  # nothing will classify the upload
    harness = open_page(servers, poll_timeout_s=3)
    harness.upload(picture(0))
    harness.wait_for("timeout", timeout_ms=15_000)
    page = harness.page
    expect(page.locator("#current-detail")).to_contain_text("Stopped waiting after 3 s")
    polls = len(harness.polls)
    assert polls >= 3
    page.wait_for_timeout(2500)
    assert len(harness.polls) == polls  # it stopped on its own

    # the notification arrives late; "Check again" then finds the result
    (resource,) = [a for a in (standin.asset(p) for p in _public_ids(standin)) if a]
    body, headers = standin.notification_for(resource)
    answer = requests.post(servers.on_upload + "/", data=body, headers=headers, timeout=60)
    assert answer.status_code == 200
    page.get_by_role("button", name="Check again").click()
    harness.wait_for("done", timeout_ms=15_000)
    harness.assert_clean()


def _public_ids(standin: CloudinaryStandin) -> list[str]:
    return [key[2] for key in standin._assets]


def test_gallery_filters_by_label_on_a_phone(
    serve: Callable[..., Servers],
    open_page: Callable[..., Harness],
    standin: CloudinaryStandin,
    base_env: dict[str, str],
    tmp_path: Path,
) -> None:
    from google.cloud import firestore

    collection = firestore.Client(project=base_env["GOOGLE_CLOUD_PROJECT"]).collection(
        base_env["FIRESTORE_COLLECTION"]
    )
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    labels = ["tabby", "goldfish", "tabby", "pizza", "goldfish", "tabby"]
    for i, label in enumerate(labels):
        asset = standin.add_asset(picture(i, (480, 360)), public_id=f"seed/p{i}")
        collection.document(asset["asset_id"]).set(
            {
                "asset_id": asset["asset_id"],
                "public_id": asset["public_id"],
                "version": asset["version"],
                "secure_url": asset["secure_url"],
                "status": "done",
                "label": label,
                "score": 0.4 + i / 20,
                "predictions": [{"label": label, "wnid": "n0", "score": 0.4 + i / 20}],
                "tags": [label],
                "created_at": start + dt.timedelta(minutes=i),
                "updated_at": start + dt.timedelta(minutes=i),
            }
        )
    servers = serve(forward=True)
    harness = open_page(servers, viewport=(390, 844))
    page = harness.page
    cards = page.locator("#gallery-grid .card")
    expect(cards).to_have_count(6)
    chips = page.locator("#filters .chip")
    expect(chips).to_have_text(["All", "tabby3", "goldfish2", "pizza1"])

    filters = page.locator("#filters")
    filters.get_by_role("button", name="goldfish").click()
    expect(cards).to_have_count(2)
    expect(page.locator("#gallery-grid .card-label")).to_have_text(["goldfish", "goldfish"])
    expect(filters.get_by_role("button", name="goldfish")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#gallery-count")).to_have_text("2 labelled “goldfish”")
    filters.get_by_role("button", name="All").click()
    expect(cards).to_have_count(6)

    cards.first.click()  # newest first: seed/p5, a tabby
    expect(page.locator("#current-title")).to_have_text("tabby")
    expect(page.locator("#current-meta dd").first).to_have_text("seed/p5")

    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    box = page.get_by_role("button", name="Upload", exact=True).bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    expect(page.locator("#gallery-grid img").first).to_be_visible()
    page.screenshot(path=str(tmp_path / "upload-page-phone.png"), full_page=True)
    harness.assert_clean()


def test_screenshot_of_a_result_and_the_gallery(
    serve: Callable[..., Servers], open_page: Callable[..., Harness], tmp_path: Path
) -> None:
    servers = serve(forward=True)
    harness = open_page(servers, viewport=(1280, 900))
    page = harness.page
    for seed in (3, 2, 4, 1, 0):
        harness.upload(picture(seed), name=f"landscape-{seed}.jpg")
        harness.wait_for("done")
    expect(page.locator("#gallery-grid .card")).to_have_count(5)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#gallery-grid img, #current-image')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    page.wait_for_timeout(800)  # let the confidence bars finish growing
    shot = tmp_path / "upload-page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("UPDATE_SCREENSHOT") == "1":  # refresh the README's picture on demand
        shutil.copyfile(shot, ROOT / "docs" / "screenshot.png")
    harness.assert_clean()
