"""Videos on the upload page, in a real browser: poster frame, the strip of sampled frames with
their labels, and recent results mixing images and videos."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import expect

from infra.local_cloudinary import CloudinaryStandin
from tests.e2e.conftest import E2E, ROOT, Harness, Servers, _human, picture
from tests.support.videos import make_mp4

pytestmark = E2E


def _loaded(harness: Harness, selector: str) -> list[bool]:
    """For each <img> matching `selector`: did it load real pixels?"""
    result: list[bool] = harness.page.eval_on_selector_all(
        selector, "images => images.map(i => i.complete && i.naturalWidth > 0)"
    )
    return result


def test_video_upload_shows_poster_frame_strip_and_labels(
    serve: Callable[..., Servers],
    open_page: Callable[..., Harness],
    standin: CloudinaryStandin,
    tmp_path: Path,
) -> None:
    servers = serve(forward=True)
    harness = open_page(servers)
    page = harness.page

    harness.upload(picture(3), name="dunes.jpg")
    harness.wait_for("done")
    expect(page.locator("#current-frames-block")).to_be_hidden()  # images have no strip

    harness.upload(make_mp4(scenes=4, scene_s=1.0), name="scenes.mp4", mime="video/mp4")
    # The photo's "done" is still showing until the video's state replaces it: wait for the strip.
    expect(page.locator("#current-frames .frame")).to_have_count(8, timeout=90_000)
    harness.wait_for("done")
    videos = [r for r in servers.api() if r.get("resource_type") == "video"]
    assert len(videos) == 1
    record = videos[0]
    assert record["status"] == "done" and record["duration"] == 4.0
    assert harness.forwards == [200, 200]

    expect(page.locator("#current-title")).to_have_text(_human(record["label"]))
    poster = page.locator("#current-image")
    expect(poster).to_be_visible()
    poster_url = poster.get_attribute("src") or ""
    assert "/video/upload/so_" in poster_url and poster_url.endswith(".jpg")
    assert _loaded(harness, "#current-image") == [True]

    strip = page.locator("#current-frames .frame")
    expect(strip).to_have_count(8)
    expect(page.locator("#current-frames .frame-label")).to_have_text(
        [_human(f["label"]) for f in record["frames"]]
    )
    expect(page.locator("#current-frames .frame-time").first).to_have_text("0:00.25")
    expect(page.locator("#current-frames .frame-time").last).to_have_text("0:03.75")
    frame_urls = page.eval_on_selector_all(
        "#current-frames img", "images => images.map(i => i.src)"
    )
    assert [u.split("/video/upload/")[1].split(",")[0] for u in frame_urls] == [
        f"so_{f['offset']:g}" for f in record["frames"]
    ]
    page.wait_for_function(
        "() => [...document.querySelectorAll('#current-frames img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    expect(page.locator("#current-predictions .prediction")).to_have_count(5)
    expect(page.locator("#current-tags .tag")).to_have_text(record["tags"])

    # Recent results: the video and the photo, each with a picture that loaded.
    cards = page.locator("#gallery-grid .card")
    expect(cards).to_have_count(2)
    expect(page.locator("#gallery-grid .card-badge")).to_have_text(["Video · 0:04"])
    page.wait_for_function(
        "() => [...document.querySelectorAll('#gallery-grid .card-media img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    sources = page.eval_on_selector_all(
        "#gallery-grid .card-media img", "images => images.map(i => i.src)"
    )
    assert sum("/video/upload/so_" in s for s in sources) == 1
    assert sum("/image/upload/" in s for s in sources) == 1

    shot = tmp_path / "video-page.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("UPDATE_SCREENSHOT") == "1":  # the README's picture of a video result
        shutil.copyfile(shot, ROOT / "docs" / "screenshot-video.png")

    # Back to the photo from the gallery: no strip; back to the video: the strip again.
    page.locator("#gallery-grid .card", has_not=page.locator(".card-badge")).click()
    expect(page.locator("#current-frames-block")).to_be_hidden()
    page.locator("#gallery-grid .card", has=page.locator(".card-badge")).click()
    expect(strip).to_have_count(8)
    harness.assert_clean()
