"""Recovery after a Firestore outage: once the (official) emulator is back on the same port, the
very next redelivery succeeds; it does not wait out the gRPC channel's reconnect backoff."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from infra import emulators, processes
from tests.support.helpers import image_bytes, notification_from, sign_body

OUTAGE_DELIVERIES = 4  # Cloudinary's redeliveries (and other uploads) while Firestore is down
WAIT_S = 120


@pytest.fixture
def own_firestore() -> Iterator[dict[str, Any]]:
    """A private official emulator this test may stop and start again on the same port."""
    if not emulators.gcloud_emulator_available("firestore"):
        pytest.skip("gcloud's Firestore emulator is not installed")
    process, host = emulators.start_gcloud_emulator("firestore")
    state: dict[str, Any] = {"process": process, "host": host}
    try:
        yield state
    finally:
        processes.stop([state["process"]])


@pytest.mark.usefixtures("real_model_env")
def test_first_redelivery_after_the_outage_succeeds(make_client, standin, own_firestore) -> None:
    host = own_firestore["host"]
    client = make_client("on_upload", FIRESTORE_EMULATOR_HOST=host)
    warm = standin.add_asset(image_bytes(), public_id="recovery/warm")
    body = notification_from(warm)
    assert (
        client.post("/", data=body, headers=sign_body(body, standin.api_secret)).status_code == 200
    )

    resource = standin.add_asset(image_bytes(color=(20, 160, 60)), public_id="recovery/after")
    body = notification_from(resource)
    processes.stop([own_firestore["process"]])
    down_at = time.monotonic()
    for _ in range(OUTAGE_DELIVERIES):
        down = client.post("/", data=body, headers=sign_body(body, standin.api_secret))
        assert down.status_code == 503, down.get_data(as_text=True)
        assert "Firestore" in down.get_json()["error"]

    restarting = time.monotonic()
    outage_s = restarting - down_at
    own_firestore["process"] = emulators.start_gcloud_emulator(
        "firestore", port=int(host.rsplit(":", 1)[1])
    )[0]
    back = time.monotonic()  # the emulator answers again
    restart_s = back - restarting
    attempts = []
    while True:
        response = client.post("/", data=body, headers=sign_body(body, standin.api_secret))
        attempts.append(response.status_code)
        if response.status_code == 200 or time.monotonic() > back + WAIT_S:
            break
        time.sleep(0.1)
    recovered_s = time.monotonic() - back
    print(
        f"\n{OUTAGE_DELIVERIES} deliveries during the outage {outage_s:.2f} s, restart"
        f" {restart_s:.2f} s, emulator back -> first success: {recovered_s:.2f} s, answers"
        f" {attempts}"
    )
    assert attempts == [200], f"{attempts} over {recovered_s:.1f} s after the emulator was back"
    assert response.get_json()["status"] == "done"
