"""The page's forward spends the Admin API only on a version the store has never seen (official
Firestore emulator, Cloudinary stand-in counting Admin API calls), and its default budget fits
a free plan's hourly quota across the deployed instances."""

from __future__ import annotations

import datetime as dt

import pytest
from google.cloud import firestore

from autotagger import config
from autotagger.errors import TooManyRequests
from autotagger.web import access
from tests.support.helpers import image_bytes, notification_from, sign_body

FREE_PLAN_PER_HOUR = 500
DEPLOY_MAX_INSTANCES = 10  # infra/deploy.sh's default


def _admin_lookups(standin) -> int:
    return len([c for c in standin.calls if "/resources/" in c["path"]])


def _forward_body(resource: dict) -> dict:
    return {k: resource[k] for k in ("public_id", "version", "signature", "asset_id", "type")}


@pytest.mark.usefixtures("real_model_env")
def test_twenty_replays_of_an_overwritten_version_cost_no_lookup(make_client, standin) -> None:
    client = make_client("on_upload")
    v1 = standin.add_asset(image_bytes(color=(200, 30, 30)), public_id="quota/photo")
    v2 = standin.add_asset(image_bytes(color=(30, 30, 200)), public_id="quota/photo")
    assert v2["version"] > v1["version"] and v1["signature"]
    body = notification_from(v2)
    assert (
        client.post("/", data=body, headers=sign_body(body, standin.api_secret)).status_code == 200
    )
    before = _admin_lookups(standin)
    answers = [client.post("/forward", json=_forward_body(v1)) for _ in range(20)]
    assert [a.status_code for a in answers] == [200] * 20
    assert all(a.get_json()["status"] == "ignored" for a in answers)
    assert "superseded" in answers[0].get_json()["reason"]
    replays = [client.post("/forward", json=_forward_body(v2)) for _ in range(20)]
    assert all(r.get_json().get("duplicate") for r in replays)
    print(f"Admin API lookups for 20 + 20 replays: {_admin_lookups(standin) - before}")
    assert _admin_lookups(standin) == before


@pytest.mark.usefixtures("real_model_env")
def test_a_forward_while_the_webhook_holds_the_claim_costs_no_lookup(
    make_client, standin, base_env
) -> None:
    client = make_client("on_upload")
    resource = standin.add_asset(image_bytes(), public_id="quota/live")
    now = dt.datetime.now(dt.UTC)
    firestore.Client(project=base_env["GOOGLE_CLOUD_PROJECT"]).collection(
        base_env["FIRESTORE_COLLECTION"]
    ).document(resource["asset_id"]).set(
        {
            "asset_id": resource["asset_id"],
            "public_id": resource["public_id"],
            "version": resource["version"],
            "status": "processing",
            "resource_type": "image",
            "claim": {"id": "webhook", "expires_at": now + dt.timedelta(minutes=5)},
            "created_at": now,
            "updated_at": now,
        }
    )
    answer = client.post("/forward", json=_forward_body(resource))
    assert answer.status_code == 409  # the page keeps following the upload by asset_id
    assert _admin_lookups(standin) == 0


def test_the_default_forward_budget_fits_a_free_plan_across_instances() -> None:
    settings = config.load_settings({})
    per_hour = settings.forward_budget_per_hour * DEPLOY_MAX_INSTANCES
    assert per_hour <= FREE_PLAN_PER_HOUR // 5  # a fifth of the quota at most
    now = [0.0]
    budget = access.ForwardBudget(
        settings.forward_budget_per_min,
        clock=lambda: now[0],
        per_hour=settings.forward_budget_per_hour,
    )
    spent = 0
    for _ in range(60):  # one attempt a minute for an hour
        try:
            budget.spend()
            spent += 1
        except TooManyRequests as refused:
            assert 1 <= refused.retry_after_s <= 3600
        now[0] += 60
    assert spent == settings.forward_budget_per_hour
