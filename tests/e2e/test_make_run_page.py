"""A newcomer's first `make run`: no `.env`, no Cloudinary account, a real Chromium.

`infra/local.py run` starts as `make run` does (its own process group, a clean environment, the
official Firestore emulator when installed, the local Cloudinary). The page must show the local
badge and the random-weights banner, upload through the browser's own file chooser (and by
drag-and-drop), end with the label, top-5 and tags, and Ctrl-C must leave nothing behind. Nothing
is routed or replaced in the browser: requests leaving 127.0.0.1 are only recorded and refused.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import Browser, Page, Route, expect

from autotagger import model
from tests.e2e.conftest import E2E, _human, picture
from tests.support import make_run

pytestmark = E2E

# The acceptance: the label, top-5 and tags on the page within 60 s of choosing the file.
RESULT_TIMEOUT_MS = 60_000


@pytest.fixture
def newcomer(model_dir: Path, tmp_path: Path) -> Iterator[make_run.MakeRun]:
    """`make run` with nothing configured (random weights given, so no download is tried)."""
    run = make_run.start(tmp_path / "make-run.log", MODEL_WEIGHTS=str(model_dir))
    try:
        yield run
    finally:
        if run.process.poll() is None or run.leftovers():
            run.kill()


def _record(results: str, asset_id: str) -> dict[str, Any]:
    answer = requests.get(f"{results}/api/results", params={"asset_id": asset_id}, timeout=30)
    answer.raise_for_status()
    found: list[dict[str, Any]] = answer.json()["results"]
    assert len(found) == 1, found
    return found[0]


def _expect_result_shown(page: Page, record: dict[str, Any]) -> None:
    expect(page.locator("#current-title")).to_have_text(_human(record["label"]))
    labels = [_human(p["label"]) for p in record["predictions"]]
    assert len(labels) == 5
    expect(page.locator("#current-predictions .prediction-label")).to_have_text(labels)
    assert record["tags"]
    expect(page.locator("#current-tags .tag")).to_have_text(record["tags"])
    expect(page.locator("#current-image")).to_be_visible()


def test_make_run_without_an_account_classifies_a_chosen_photo(
    newcomer: make_run.MakeRun, browser: Browser, tmp_path: Path, model_dir: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    outside: list[str] = []
    errors: list[str] = []

    def refuse_outside(route: Route) -> None:
        if urlsplit(route.request.url).hostname != "127.0.0.1":
            outside.append(route.request.url)
            route.abort()
            return
        route.continue_()

    context.route("**/*", refuse_outside)
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))

    def console(message: Any) -> None:
        # The page forwards the upload to on_upload as with the widget, while the local
        # Cloudinary's notification classifies it too: one of them may get 409 "in progress".
        url = message.location.get("url", "")
        if message.type == "error" and not (url.endswith("/forward") and "409" in message.text):
            errors.append(f"{message.text} ({url})")

    page.on("console", console)
    uploads: list[str] = []
    page.on(
        "request",
        lambda request: (
            uploads.append(request.url) if request.url.endswith("/auto/upload") else None
        ),
    )
    try:
        page.goto(newcomer.results + "/")
        expect(page.locator("#local-badge")).to_be_visible()
        expect(page.locator("#local-badge")).to_have_text("local Cloudinary — no account")
        expect(page.locator("#weights-banner")).to_be_visible()
        expect(page.locator("#weights-banner")).to_have_text(
            "random weights: labels are meaningless"
        )
        expect(page.locator("#setup-notice")).to_be_hidden()
        button = page.get_by_role("button", name="Upload", exact=True)
        expect(button).to_be_enabled()

        # 1. The Upload button opens the browser's file chooser; choose a JPEG.
        photo = tmp_path / "lake.jpg"
        photo.write_bytes(picture(3))
        with page.expect_file_chooser() as chooser:
            button.click()
        started = time.monotonic()
        chooser.value.set_files(photo)
        expect(page.locator("#current")).to_have_attribute(
            "data-state", "done", timeout=RESULT_TIMEOUT_MS
        )
        print(f"file chosen -> label on the page: {time.monotonic() - started:.1f} s")
        public_id = page.locator("#current-meta dd.mono").first.inner_text()
        listed = requests.get(
            f"{newcomer.results}/api/results", params={"public_id": public_id}, timeout=30
        ).json()["results"]
        record = _record(newcomer.results, listed[0]["asset_id"])
        assert record["status"] == "done"
        manifest = json.loads((model_dir / "manifest.json").read_text())
        assert record["model"] == model.artifact_name(manifest)  # the served artifact's name
        _expect_result_shown(page, record)
        assert uploads == [
            f"http://127.0.0.1:{newcomer.ports['cloudinary']}/v1_1/local/auto/upload"
        ]

        # 2. Drag-and-drop onto the page uploads too.
        dropped = base64.b64encode(picture(4)).decode()
        page.evaluate(
            """(data) => {
                const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                const transfer = new DataTransfer();
                transfer.items.add(new File([bytes], "hills.jpg", { type: "image/jpeg" }));
                for (const type of ["dragenter", "dragover", "drop"]) {
                  const init = { bubbles: true, cancelable: true, dataTransfer: transfer };
                  document.body.dispatchEvent(new DragEvent(type, init));
                }
            }""",
            dropped,
        )
        expect(page.locator("#current-meta dd.mono").first).not_to_have_text(
            public_id, timeout=RESULT_TIMEOUT_MS
        )
        expect(page.locator("#current")).to_have_attribute(
            "data-state", "done", timeout=RESULT_TIMEOUT_MS
        )
        assert len(uploads) == 2
        expect(page.locator("#gallery-grid .card")).to_have_count(2)

        assert outside == []  # no widget script, no Cloudinary, nothing off this machine
        assert errors == []

        # 3. Ctrl-C with the page still open in the browser: nothing is left behind.
        seconds = newcomer.interrupt()
        print(f"Ctrl-C with the page open -> every process gone: {seconds:.2f} s")
        assert newcomer.leftovers() == []
        assert newcomer.busy_ports() == []
    finally:
        context.close()
