"""The upload page in a real browser (fixtures and what they replace: tests/e2e/conftest.py)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from infra.local_cloudinary import CloudinaryStandin
from tests.e2e.conftest import E2E, ROOT, WIDGET_URL, Harness, Servers, _human, _only, picture

pytestmark = E2E


# -- tests -------------------------------------------------------------------------------------


def test_upload_through_the_webhook_shows_the_label_and_tags(
    serve: Callable[..., Servers],
    open_page: Callable[..., Harness],
    standin: CloudinaryStandin,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The stand-in's 5 s notification timeout is not under test, and this first request also
    # loads the model (seconds on a shared machine): the stand-in waits for the answer.
    monkeypatch.setattr(standin, "notification_timeout_s", 120)
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

    sent = _answered_upload_notifications(standin)
    assert [n["status"] for n in sent] == [200]
    assert harness.forwards == []  # no ON_UPLOAD_URL: the page relied on the webhook
    assert record["label"] in (standin.asset(record["public_id"]) or {})["tags"]
    harness.assert_clean()


def _answered_upload_notifications(standin: CloudinaryStandin) -> list[dict[str, Any]]:
    """The upload notifications once one was answered (the page may show the result first)."""
    deadline = time.monotonic() + 120
    while True:
        sent = [n for n in standin.notifications_sent if n["notification_type"] == "upload"]
        if sent or time.monotonic() > deadline:
            return sent
        standin.wait_for_notifications(len(standin.notifications_sent) + 1, 1.0)


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
        standin.replace_bytes(body["public_id"], b"<html>surprise</html>")

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
    harness.wait_for("not-image")
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
        ["application/json", f"{servers.results}/assets/js/main.js", WIDGET_URL]
    )
    # The entry module imported every other one, and the browser ran them (module scripts run
    # only when served with a JavaScript MIME type).
    loaded = page.evaluate(
        "performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => n.includes('/assets/js/'))"
    )
    modules = sorted(path.name for path in (ROOT / "function" / "web" / "js").glob("*.js"))
    assert sorted({url.rsplit("/", 1)[1] for url in loaded}) == modules
    assert page.evaluate("[...document.images].every(i => !i.src.startsWith('javascript:'))")
    harness.assert_clean()


def test_polling_gives_up_says_so_and_can_check_again(
    serve: Callable[..., Servers], open_page: Callable[..., Harness], standin: CloudinaryStandin
) -> None:
    servers = serve(forward=False, webhook=False)  # nothing will classify the upload
    harness = open_page(servers, poll_timeout_s=3)
    harness.upload(picture(0))
    harness.wait_for("timeout")
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
    harness.wait_for("done")
    harness.assert_clean()


def _public_ids(standin: CloudinaryStandin) -> list[str]:
    return standin.public_ids()


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
