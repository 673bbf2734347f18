""" "More like this" on the upload page, in a real browser (fixtures: tests/e2e/conftest.py).

The current result shows a strip of its most similar stored assets (`/api/similar`), each a
clickable thumbnail, near-duplicates marked; in private mode only with the access key, sent as
a Bearer header.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import requests as http
from playwright.sync_api import Page, Request, expect

from infra import near_duplicates
from infra.local_cloudinary import CloudinaryStandin
from tests.e2e.conftest import E2E, Harness, Servers
from tests.support.helpers import notification_from, sign_body

pytestmark = E2E

TOKEN = "e2e-similar-key-" + "Hy6u" * 8
PRIVATE = {"RESULTS_ACCESS": "private", "RESULTS_TOKEN": TOKEN, "UPLOAD_MODE": "unsigned"}


def _classify(servers: Servers, standin: CloudinaryStandin, data: bytes, public_id: str) -> str:
    """Another upload, classified through the webhook (as Cloudinary would notify)."""
    resource = standin.add_asset(data, public_id=public_id)
    body = notification_from(resource)
    response = http.post(
        servers.on_upload + "/", data=body, headers=sign_body(body, standin.api_secret), timeout=60
    )
    assert response.status_code == 200 and response.json()["status"] == "done", response.text
    return str(resource["asset_id"])


def _seed(servers: Servers, standin: CloudinaryStandin, original: bytes) -> None:
    """Two near-duplicates of `original` (70% size, JPEG q45) and three other pictures."""
    small, q45, _ = near_duplicates.variants(original)
    _classify(servers, standin, small, "seed/small")
    _classify(servers, standin, q45, "seed/q45")
    for n in range(3):
        _classify(servers, standin, near_duplicates.picture(200 + n), f"seed/other{n}")


def _similar_requests(page: Page) -> list[Request]:
    seen: list[Request] = []

    def record(request: Request) -> None:
        if "/api/similar?" in request.url:
            seen.append(request)

    page.on("request", record)
    return seen


def test_more_like_this_strip_marks_near_duplicates_and_navigates(
    serve: Callable[..., Servers], open_page: Callable[..., Harness], standin: CloudinaryStandin
) -> None:
    servers = serve(forward=True)
    original = near_duplicates.picture(7)
    _seed(servers, standin, original)
    harness = open_page(servers)
    page = harness.page
    asked = _similar_requests(page)

    harness.upload(original, name="scene.png", mime="image/png")
    harness.wait_for("done")
    block = page.locator("#current-similar-block")
    expect(block).to_be_visible()
    expect(block.get_by_role("heading", name="More like this")).to_be_visible()
    items = page.locator("#current-similar .similar-item")
    expect(items).to_have_count(5)
    # the two copies come first, marked; the other pictures are not
    near = page.locator("#current-similar .near-duplicate")
    expect(near).to_have_count(2)
    expect(items.nth(0)).to_have_class("similar-item near-duplicate")
    expect(items.nth(1)).to_have_class("similar-item near-duplicate")
    expect(near.locator(".similar-badge")).to_have_text(["Near-duplicate", "Near-duplicate"])
    titles = [items.nth(i).locator("button").get_attribute("title") or "" for i in range(5)]
    assert {t.split(" ")[0] for t in titles[:2]} == {"seed/small", "seed/q45"}
    expect(items.first.locator("img")).to_have_attribute(
        "src", re.compile(r"^http://127\.0\.0\.1:\d+/.*/c_fill,g_auto,w_200,h_150")
    )
    assert len(asked) == 1 and "limit=8" in asked[0].url
    # styled as a strip (a stylesheet rule left open would nest, and drop, every rule after it)
    strip = page.locator("#current-similar")
    assert strip.evaluate("e => getComputedStyle(e).display") == "grid"
    assert strip.evaluate("e => getComputedStyle(e).gridAutoFlow") == "column"
    badge = near.first.locator(".similar-badge")
    assert badge.evaluate("e => getComputedStyle(e).position") == "absolute"

    # a thumbnail is clickable: it becomes the current result, with its own strip
    items.nth(2).locator("button").click()
    clicked = titles[2].split(" ")[0]
    expect(page.locator("#current-meta")).to_contain_text(clicked)
    expect(items).to_have_count(5)
    assert len(asked) == 2
    harness.assert_clean()


def test_more_like_this_in_private_mode_needs_the_key(
    serve: Callable[..., Servers], open_page: Callable[..., Harness], standin: CloudinaryStandin
) -> None:
    servers = serve(forward=True, env=PRIVATE)
    original = near_duplicates.picture(8)
    _seed(servers, standin, original)
    harness = open_page(servers)
    page = harness.page
    asked = _similar_requests(page)

    # without the key: the result, and a word about the strip; no listing is asked for
    harness.upload(original, name="scene.png", mime="image/png", public_id="mine/scene")
    harness.wait_for("done")
    expect(page.locator("#current-similar-message")).to_have_text(
        "Enter the access key to see more like this."
    )
    expect(page.locator("#current-similar .similar-item")).to_have_count(0)
    assert asked == []

    # unlocking fills the strip of the result on screen
    page.locator("#access-key").fill(TOKEN)
    page.get_by_role("button", name="Unlock", exact=True).click()
    expect(page.get_by_role("button", name="Lock", exact=True)).to_be_visible()
    items = page.locator("#current-similar .similar-item")
    expect(items).to_have_count(5)
    # locking empties it again; a result opened from the gallery with the key has its strip
    page.get_by_role("button", name="Lock", exact=True).click()
    expect(page.locator("#current-similar-message")).to_have_text(
        "Enter the access key to see more like this."
    )
    expect(items).to_have_count(0)
    page.locator("#access-key").fill(TOKEN)
    page.get_by_role("button", name="Unlock", exact=True).click()
    expect(items).to_have_count(5)
    page.locator("#gallery-grid .card").filter(has_text="mine/scene").first.click()
    expect(items).to_have_count(5)
    expect(page.locator("#current-similar .near-duplicate")).to_have_count(2)
    expect(page.locator("#current-similar-message")).to_be_hidden()
    assert asked and all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in asked)
    assert all(TOKEN not in r.url for r in asked)
    harness.assert_clean()
