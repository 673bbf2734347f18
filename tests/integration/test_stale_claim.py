"""A delivery that stalls past CLAIM_TTL_S never overwrites the result of the delivery that took
the asset over, nor writes stale tags before its final write (official Firestore emulator)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from google.cloud import firestore

from autotagger.clients import cloudinary_client
from tests.support.helpers import image_bytes, notification_from, sign_body

WAIT_S = 120  # bounds on outcomes, generous for a shared machine


class Stall:
    """Hold the first call of a function until `resume` is set; `reached` tells it got there."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real, self.reached, self.resume = real, threading.Event(), threading.Event()
        self._first = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._first.acquire(blocking=False):  # only the first caller stalls
            self.reached.set()
            assert self.resume.wait(WAIT_S)
        return self.real(*args, **kwargs)


def _wait_for(check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + WAIT_S
    while not (value := check()):
        assert time.monotonic() < deadline, "timed out waiting for an outcome"
        time.sleep(0.05)
    return value


@pytest.mark.usefixtures("real_model_env")
@pytest.mark.parametrize("stalled_in", ["download_for_model", "write_tags"])
@pytest.mark.parametrize("takeover", ["newer version", "same version"])
def test_a_stalled_delivery_never_overwrites_the_takeover(
    make_client, standin, base_env, stored, monkeypatch, stalled_in: str, takeover: str
) -> None:
    client = make_client("on_upload")
    stall = Stall(getattr(cloudinary_client, stalled_in))
    monkeypatch.setattr(cloudinary_client, stalled_in, stall)
    first = standin.add_asset(image_bytes(color=(200, 30, 30)), public_id="stall/asset")
    first_body = notification_from(first)
    answers: dict[str, Any] = {}

    def deliver_first() -> None:
        headers = sign_body(first_body, standin.api_secret)
        response = client.post("/", data=first_body, headers=headers)
        answers["first"] = (response.status_code, response.get_json())

    stalled = threading.Thread(target=deliver_first)
    stalled.start()
    try:
        assert stall.reached.wait(WAIT_S)
        ref = (
            firestore.Client(project=base_env["GOOGLE_CLOUD_PROJECT"])
            .collection(base_env["FIRESTORE_COLLECTION"])
            .document(first["asset_id"])
        )
        claimed = _wait_for(lambda: (ref.get().to_dict() or {}).get("claim"))
        # CLAIM_TTL_S passes while the first delivery is stalled (its claim expires).
        expired = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        ref.update({"claim.expires_at": expired})

        if takeover == "newer version":
            _wait_for(lambda: int(time.time()) > first["version"])  # versions are unix seconds
            second = standin.add_asset(image_bytes(color=(30, 30, 200)), public_id="stall/asset")
            assert second["version"] > first["version"]
        else:
            second = first  # Cloudinary's redelivery of the same notification
        body = notification_from(second)
        taken = client.post("/", data=body, headers=sign_body(body, standin.api_secret))
        assert taken.status_code == 200, taken.get_data(as_text=True)
        winner = taken.get_json()
        assert winner["status"] == "done" and not winner.get("duplicate")
        assert winner["version"] == second["version"]
        assert (ref.get().to_dict() or {})["claim"] is None
        assert claimed["id"]
        tag_calls_after_winner = len([c for c in standin.calls if c["path"].endswith("/tags")])
    finally:
        stall.resume.set()
        stalled.join(WAIT_S)
    tag_calls = [c for c in standin.calls if c["path"].endswith("/tags")]

    (document,) = stored().values()
    assert document["version"] == second["version"]
    assert document["status"] == "done" and document["claim"] is None
    assert document["timings"] == winner["timings"]  # the takeover's record, untouched
    assert document["tags"] == winner["tags"]
    status, late = answers["first"]
    assert status == 200, late  # acknowledged: nothing to redeliver
    assert late["status"] == "ignored" and "claim lost" in late["reason"]
    if stalled_in == "download_for_model":
        # lost before its tag write: the stalled delivery wrote no tags at all
        assert len(tag_calls) == tag_calls_after_winner
