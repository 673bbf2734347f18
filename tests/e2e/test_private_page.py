"""The upload page with RESULTS_ACCESS=private, in a real browser (fixtures: tests/e2e/conftest.py).

Without the access key the gallery is this browser's own uploads (asset_ids in localStorage, looked
up by asset_id, which needs no key); the key (sessionStorage only, sent only as a Bearer header)
unlocks every result and the label filters; signed uploads go through `POST /api/sign-upload`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import requests as http
from playwright.sync_api import Page, Request, expect

from infra.local_cloudinary import CloudinaryStandin
from tests.e2e.conftest import E2E, Harness, Servers, _only, picture

pytestmark = E2E

TOKEN = "e2e-access-key-" + "Zq7x" * 8
WRONG = "e2e-wrong-key-" + "Qq1w" * 8
PRIVATE = {"RESULTS_ACCESS": "private", "RESULTS_TOKEN": TOKEN}


def _seed_others(base_env: dict[str, str]) -> None:
    """Two results uploaded by someone else, earlier (visible only with the key)."""
    from google.cloud import firestore

    collection = firestore.Client(project=base_env["GOOGLE_CLOUD_PROJECT"]).collection(
        base_env["FIRESTORE_COLLECTION"]
    )
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    for i, label in enumerate(["tabby", "goldfish"]):
        collection.document(f"other{i}").set(
            {
                "asset_id": f"other{i}",
                "public_id": f"others/p{i}",
                "version": 1,
                "secure_url": "",
                "status": "done",
                "label": label,
                "score": 0.6,
                "predictions": [{"label": label, "wnid": "n0", "score": 0.6}],
                "tags": [label],
                "created_at": start + dt.timedelta(minutes=i),
                "updated_at": start + dt.timedelta(minutes=i),
            }
        )


def _record_requests(page: Page) -> list[Request]:
    seen: list[Request] = []

    def record(request: Request) -> None:  # a plain function: Playwright tags its handlers
        seen.append(request)

    page.context.on("request", record)
    return seen


def _unlock(page: Page, key: str) -> None:
    page.locator("#access-key").fill(key)
    page.get_by_role("button", name="Unlock", exact=True).click()


def _storage(page: Page) -> str:
    return str(
        page.evaluate("JSON.stringify([{...localStorage}, {...sessionStorage}, document.cookie])")
    )


def _assert_key_stays_in_the_header(requests: list[Request], pages: list[Page]) -> None:
    assert requests, "no requests were recorded"
    for request in requests:
        assert TOKEN not in request.url and WRONG not in request.url, request.url
        assert TOKEN not in (request.post_data or "")
    with_key = [r for r in requests if TOKEN in (r.headers.get("authorization") or "")]
    assert with_key, "the key was never sent"
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in with_key)
    for page in pages:
        assert TOKEN not in page.content()  # not in the page's HTML (nor the input's value)
        assert TOKEN not in json.loads(_storage(page))[0].values()  # never in localStorage


def test_private_page_own_uploads_then_the_gallery_with_the_key(
    serve: Callable[..., Servers],
    open_page: Callable[..., Harness],
    standin: CloudinaryStandin,
    base_env: dict[str, str],
) -> None:
    _seed_others(base_env)
    servers = serve(forward=True, env={**PRIVATE, "UPLOAD_MODE": "unsigned"})
    harness = open_page(servers)
    page = harness.page
    requests = _record_requests(page)
    cards = page.locator("#gallery-grid .card")
    expect(page.locator("#access")).to_be_visible()
    expect(page.locator("#gallery-message")).to_have_text(
        "Your uploads from this browser appear here."
    )
    expect(cards).to_have_count(0)

    # an upload shows its own result and appears in "Recent results" without a key
    harness.upload(picture(1), name="lake.jpg")
    harness.wait_for("done")
    (mine,) = [a for a in (standin.asset(p) for p in standin.public_ids()) if a]
    expect(cards).to_have_count(1)
    expect(page.locator("#gallery-grid .card-id")).to_have_text([mine["public_id"]])
    expect(page.locator("#gallery-count")).to_have_text("1 uploaded from this browser")
    expect(page.locator("#filters")).to_be_hidden()

    # a wrong key says so and unlocks nothing
    _unlock(page, WRONG)
    expect(page.locator("#access-message")).to_have_text("That access key is not valid.")
    expect(cards).to_have_count(1)

    # the right key: every result, and the label filters
    _unlock(page, TOKEN)
    expect(cards).to_have_count(3)
    expect(page.locator("#access-message")).to_be_hidden()
    expect(page.get_by_role("button", name="Lock", exact=True)).to_be_visible()
    filters = page.locator("#filters")
    expect(filters).to_be_visible()
    filters.get_by_role("button", name="goldfish").click()
    expect(page.locator("#gallery-grid .card-id")).to_have_text(["others/p1"])
    filters.get_by_role("button", name="All").click()
    expect(cards).to_have_count(3)
    assert page.locator("#access-key").input_value() == ""

    # reloading this tab keeps the key (sessionStorage); a new tab starts without it
    page.reload()
    expect(cards).to_have_count(3)
    other_tab = page.context.new_page()
    other_tab.goto(servers.results + "/")
    expect(other_tab.locator("#gallery-grid .card")).to_have_count(1)
    expect(other_tab.locator("#gallery-grid .card-id")).to_have_text([mine["public_id"]])

    # locking forgets the key; reloading still shows this browser's own upload
    page.get_by_role("button", name="Lock", exact=True).click()
    expect(cards).to_have_count(1)
    assert TOKEN not in _storage(page)
    page.reload()
    expect(cards).to_have_count(1)
    expect(page.locator("#gallery-grid .card-id")).to_have_text([mine["public_id"]])

    _assert_key_stays_in_the_header(requests, [page, other_tab])
    # the only errors are the API's 401 answers to the wrong key (and the 401 probe of it)
    harness.assert_clean(allowed_error_urls=(f"{servers.results}/api/results",))


def test_signed_upload_needs_the_key_and_the_servers_signature(
    serve: Callable[..., Servers],
    open_page: Callable[..., Harness],
    standin: CloudinaryStandin,
) -> None:
    servers = serve(forward=True, env={**PRIVATE, "UPLOAD_FOLDER": "team"})
    harness = open_page(servers)
    page = harness.page
    requests = _record_requests(page)
    signing: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda r: (
            signing.append(json.loads(r.post_data or "{}"))
            if r.url.endswith("/api/sign-upload")
            else None
        ),
    )

    # without the key, Upload asks for it and nothing is uploaded
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#access-message")).to_have_text("Enter the access key to upload.")
    expect(page.locator("#access-key")).to_be_focused()
    assert standin.public_ids() == []

    _unlock(page, TOKEN)
    expect(page.get_by_role("button", name="Lock", exact=True)).to_be_visible()
    harness.upload(picture(2), name="forest.jpg")
    harness.wait_for("done")
    record = _only([r for r in servers_api(servers) if r["public_id"].startswith("team/")])
    expect(page.locator("#current-title")).to_have_text(record["label"].replace("_", " "))
    (asked,) = signing
    params = asked["params_to_sign"]
    assert params["source"] == "uw" and params["folder"] == "team"
    assert params["upload_preset"] == "autotagger_page" and int(params["timestamp"]) > 0
    (upload,) = [c for c in standin.calls if c["path"].endswith("/image/upload")]
    assert upload["status"] == 200 and upload["params"]["signature"]
    assert upload["params"]["api_key"] == standin.api_key

    # a modified client asking to sign more is refused: an error, and nothing is uploaded
    for tamper, reason in (
        ({"eager": "c_fill,w_4000,h_4000"}, "refusing to sign 'eager'"),
        ({"folder": "elsewhere"}, "folder must be 'team'"),
        ({"allowed_formats": "svg"}, "refusing to sign allowed_formats"),
    ):
        page.evaluate("(tamper) => { window.__widgetStandin.tamper = tamper; }", tamper)
        harness.upload(picture(3))
        harness.wait_for("error", timeout_ms=15_000)
        expect(page.locator("#current-detail")).to_contain_text(reason)
    assert len(signing) == 4
    assert len(standin.public_ids()) == 1
    assert len([c for c in standin.calls if c["path"].endswith("/image/upload")]) == 1

    # a new tab has no key, yet shows this browser's upload in "Recent results"
    other_tab = page.context.new_page()
    other_tab.goto(servers.results + "/")
    expect(other_tab.locator("#gallery-grid .card-id")).to_have_text([record["public_id"]])

    _assert_key_stays_in_the_header(requests, [page, other_tab])
    # Every byte served is checked in tests/integration/test_access_signing.py.
    assert standin.api_secret not in page.content()
    harness.assert_clean(allowed_error_urls=(f"{servers.results}/api/sign-upload",))


def servers_api(servers: Servers) -> list[dict[str, Any]]:
    """Every result, read with the key (the listing is private)."""
    response = http.get(
        f"{servers.results}/api/results",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["results"]
    return found
