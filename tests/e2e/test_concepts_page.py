"""The page's concepts in a real browser: concept filter chips (served by `?tag=`, TAG_PREFIX
applied) and a result's concepts beside its top-5 labels."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from infra.local_cloudinary import CloudinaryStandin
from tests.e2e.conftest import E2E, Harness, Servers, picture

pytestmark = E2E
PREFIX = "auto:"
DOG: list[dict[str, Any]] = [
    {"name": "animal", "wnid": "n00015388", "score": 0.93},
    {"name": "dog", "wnid": "n02084071", "score": 0.86},
]
CAR: list[dict[str, Any]] = [
    {"name": "vehicle", "wnid": "n04524313", "score": 0.95},
    {"name": "car", "wnid": "n02958343", "score": 0.9},
]


def test_concept_chips_filter_by_tag_and_a_result_shows_its_concepts(
    serve: Callable[..., Servers],
    open_page: Callable[..., Harness],
    standin: CloudinaryStandin,
    base_env: dict[str, str],
) -> None:
    from google.cloud import firestore

    collection = firestore.Client(project=base_env["GOOGLE_CLOUD_PROJECT"]).collection(
        base_env["FIRESTORE_COLLECTION"]
    )
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    seeded = [("beagle", DOG), ("sports_car", CAR), ("basset", DOG)]
    for i, (label, found) in enumerate(seeded):
        asset = standin.add_asset(picture(i, (480, 360)), public_id=f"seed/c{i}")
        collection.document(asset["asset_id"]).set(
            {
                "asset_id": asset["asset_id"],
                "public_id": asset["public_id"],
                "version": asset["version"],
                "secure_url": asset["secure_url"],
                "status": "done",
                "label": label,
                "score": 0.3,
                "predictions": [{"label": label, "wnid": "n0", "score": 0.3}],
                "concepts": found,
                "tags": [PREFIX + label, *(PREFIX + c["name"] for c in found)],
                "created_at": start + dt.timedelta(minutes=i),
                "updated_at": start + dt.timedelta(minutes=i),
            }
        )
    servers = serve(forward=True, env={"TAG_PREFIX": PREFIX})
    harness = open_page(servers)
    page = harness.page
    cards = page.locator("#gallery-grid .card")
    expect(cards).to_have_count(3)
    chips = page.locator("#filters .chip")
    # concepts first (most common first), then the labels
    expect(chips).to_have_text(
        ["All", "animal2", "dog2", "car1", "vehicle1", "basset1", "beagle1", "sports car1"]
    )

    filters = page.locator("#filters")
    filters.get_by_role("button", name="dog").click()
    expect(cards).to_have_count(2)
    expect(page.locator("#gallery-grid .card-label")).to_have_text(["basset", "beagle"])
    expect(page.locator("#gallery-count")).to_have_text("2 tagged “dog”")
    filters.get_by_role("button", name="vehicle").click()
    expect(page.locator("#gallery-grid .card-label")).to_have_text(["sports car"])
    filters.get_by_role("button", name="All").click()
    expect(cards).to_have_count(3)

    cards.first.click()  # newest first: seed/c2, the basset
    concepts = page.locator("#current-concepts .concept")
    expect(concepts).to_have_text(["animal93%", "dog86%"])
    expect(page.locator("#current-concepts-block")).to_be_visible()
    expect(page.locator("#current-tags .tag")).to_have_text(
        ["auto:basset", "auto:animal", "auto:dog"]
    )
    harness.assert_clean()
