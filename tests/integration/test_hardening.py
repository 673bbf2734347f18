"""Hardening: odd images, hostile input, faults, concurrent duplicates, expired claims."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from google.cloud import firestore
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from autotagger.config import parse_cloudinary_url
from autotagger.errors import BadRequest, Unauthorized
from autotagger.web.webhook import Ignored, Upload, parse_json, parse_notification, verify_signature
from infra import emulators, processes
from infra.local_cloudinary import CloudinaryStandin
from tests.support.helpers import image_bytes, notification_from, sign_body

ACCOUNT = parse_cloudinary_url("cloudinary://123456789012345:top-secret@demo")


# -- property-based: parsing and signatures ------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "notification_type",
    "resource_type",
    "asset_id",
    "public_id",
    "version",
    "secure_url",
    "type",
    "bytes",
    "width",
]


@given(st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), json_values, max_size=12))
@settings(max_examples=300, deadline=None)
def test_any_json_object_parses_or_is_a_bad_request(payload: dict) -> None:
    try:
        event = parse_notification(payload)
    except BadRequest:
        return
    assert isinstance(event, Upload | Ignored)
    if isinstance(event, Upload):
        assert payload["notification_type"] == "upload"
        assert payload["resource_type"] == "image"
        assert event.version > 0 and event.asset_id and event.public_id


@given(st.binary(max_size=2048))
@settings(max_examples=300, deadline=None)
def test_any_body_bytes_parse_or_are_a_bad_request(body: bytes) -> None:
    with contextlib.suppress(BadRequest):
        parse_notification(parse_json(body))


@given(body=st.binary(min_size=1, max_size=512), timestamp=st.integers(0, 2**31))
@settings(max_examples=200, deadline=None)
def test_signature_verifies_only_the_exact_body_and_timestamp(body: bytes, timestamp: int) -> None:
    headers = sign_body(body.hex().encode(), "top-secret", timestamp=timestamp)
    signed = body.hex().encode()
    verify_signature(
        signed, headers["X-Cld-Timestamp"], headers["X-Cld-Signature"], ACCOUNT, 60, timestamp
    )
    with pytest.raises(Unauthorized):
        verify_signature(
            signed + b" ",
            headers["X-Cld-Timestamp"],
            headers["X-Cld-Signature"],
            ACCOUNT,
            60,
            timestamp,
        )
    with pytest.raises(Unauthorized):
        verify_signature(
            signed, str(timestamp + 1), headers["X-Cld-Signature"], ACCOUNT, 60, timestamp
        )


@given(signature=st.text(max_size=80), timestamp=st.text(max_size=14))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_headers_never_pass(signature: str, timestamp: str) -> None:
    with pytest.raises(Unauthorized):
        verify_signature(b"{}", timestamp, signature, ACCOUNT, 7200)


# -- a generated corpus of odd images, through the whole pipeline ---------------------------------


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _png_bomb(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    chunks = [(b"IHDR", ihdr), (b"IDAT", idat), (b"IEND", b"")]
    out = b"\x89PNG\r\n\x1a\n"
    for kind, data in chunks:
        out += (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )
    return out


def _corpus() -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, expected status)."""
    exif = Image.Exif()
    exif[0x0112] = 8
    frames = [Image.new("RGB", (48, 48), c) for c in ((200, 0, 0), (0, 200, 0))]
    palette = Image.new("P", (64, 64), 1)
    palette.putpalette([0, 0, 0, 30, 140, 220] + [0] * 762)
    sixteen = Image.fromarray(np.linspace(0, 65535, 64 * 64, dtype=np.uint16).reshape(64, 64))
    return {
        "truncated.jpg": (image_bytes((800, 600))[:3000], "failed"),
        "cmyk.jpg": (_save(Image.new("CMYK", (80, 60), (10, 200, 30, 0)), "JPEG"), "done"),
        "sixteen-bit.png": (_save(sixteen, "PNG"), "done"),
        "palette-alpha.png": (_save(palette, "PNG", transparency=0), "done"),
        "animated.gif": (_save(frames[0], "GIF", save_all=True, append_images=frames[1:]), "done"),
        "animated.webp": (
            _save(frames[0], "WEBP", save_all=True, append_images=frames[1:]),
            "done",
        ),
        "exif-rotated.jpg": (
            _save(Image.new("RGB", (90, 40), (9, 99, 199)), "JPEG", exif=exif),
            "done",
        ),
        "one-pixel.png": (_save(Image.new("RGB", (1, 1), (5, 5, 5)), "PNG"), "done"),
        "bomb-20000x20000.png": (_png_bomb(20000, 20000), "failed"),
        "zero-bytes.jpg": (b"", "failed"),
        "html-as.jpg": (b"<!doctype html><title>x</title><p>hello</p>", "failed"),
    }


def _serve_bytes(standin: CloudinaryStandin, public_id: str, data: bytes) -> dict:
    """An image asset whose delivered bytes are `data` (Cloudinary accepted it; now it is odd)."""
    resource = standin.add_asset(image_bytes((32, 32), fmt="PNG"), public_id=public_id)
    standin.replace_bytes(public_id, data)
    return resource


@pytest.mark.usefixtures("real_model_env")
def test_odd_image_corpus_ends_done_or_failed(make_client, standin, stored) -> None:
    client = make_client("on_upload", MAX_IMAGE_PIXELS="50000000")
    outcomes = {}
    for name, (data, expected) in _corpus().items():
        resource = _serve_bytes(standin, f"corpus/{name.replace('.', '-')}", data)
        body = notification_from(resource)
        response = client.post("/", data=body, headers=sign_body(body, standin.api_secret))
        assert response.status_code == 200, (name, response.get_data(as_text=True))
        record = response.get_json()
        outcomes[name] = record["status"]
        assert record["status"] == expected, (name, record)
        if expected == "failed":
            assert record["error"]
        else:
            assert len(record["predictions"]) == 5
    assert len(stored()) == len(outcomes)


# -- hostile input -------------------------------------------------------------------------------


@pytest.mark.usefixtures("real_model_env")
def test_download_byte_cap(make_client, standin, stored) -> None:
    # The full-size download (the 224-px rendition of this photo is under the cap).
    client = make_client("on_upload", MAX_IMAGE_BYTES="4096", DOWNLOAD_RENDITION="0")
    resource = standin.add_asset(image_bytes((1200, 900)), public_id="big/photo")
    body = notification_from(resource)
    record = client.post("/", data=body, headers=sign_body(body, standin.api_secret)).get_json()
    assert record["status"] == "failed"
    assert "MAX_IMAGE_BYTES" in record["error"]


ODD_PUBLIC_IDS = [
    "folder/sub folder/ünïcødé-名前",
    'quotes/it\'s "quoted"',
    "x/<script>alert(1)</script>",
]


@pytest.mark.usefixtures("real_model_env")
@pytest.mark.parametrize("public_id", ODD_PUBLIC_IDS)
def test_odd_public_ids_are_stored_and_returned_verbatim(
    make_client, standin, stored, public_id: str
) -> None:
    on_upload, results = make_client("on_upload"), make_client("results")
    resource = standin.add_asset(image_bytes(), public_id=public_id)
    body = notification_from(resource)
    record = on_upload.post("/", data=body, headers=sign_body(body, standin.api_secret)).get_json()
    assert record["status"] == "done"
    assert stored()[resource["asset_id"]]["public_id"] == public_id
    response = results.get("/api/results", query_string={"public_id": public_id})
    assert response.mimetype == "application/json"
    assert response.get_json()["results"][0]["public_id"] == public_id
    assert response.headers["Content-Type"].startswith("application/json")


def test_signature_is_checked_before_the_body_is_parsed(make_client, standin, stored) -> None:
    client = make_client("on_upload")
    response = client.post("/", data=b"\x00\xff not json", headers=sign_body(b"{}", "x"))
    assert response.status_code == 401  # not 400: nothing was parsed


# -- faults: Cloudinary stand-in -----------------------------------------------------------------


@pytest.mark.usefixtures("real_model_env")
def test_rate_limited_tag_api_is_retried(make_client, standin) -> None:
    client = make_client("on_upload")
    resource = standin.add_asset(image_bytes(), public_id="faults/ratelimited")
    standin.inject("/v1_1/autotagger-test/image/tags", 429, retry_after=1, times=2)
    body = notification_from(resource)
    record = client.post("/", data=body, headers=sign_body(body, standin.api_secret)).get_json()
    assert record["status"] == "done"
    assert record["label"] in standin.asset("faults/ratelimited")["tags"]


@pytest.mark.usefixtures("real_model_env")
def test_slow_delivery_times_out_as_503_and_is_not_acknowledged(
    make_client, standin, stored
) -> None:
    client = make_client("on_upload", DOWNLOAD_TIMEOUT_S="0.5")
    resource = standin.add_asset(image_bytes(), public_id="faults/slow")
    standin.inject("/autotagger-test/image/upload/", delay_s=2.0, times=None)
    body = notification_from(resource)
    response = client.post("/", data=body, headers=sign_body(body, standin.api_secret))
    assert response.status_code == 503
    assert stored()[resource["asset_id"]]["status"] == "processing"  # not done, not failed
    standin.clear_faults()
    retried = client.post("/", data=body, headers=sign_body(body, standin.api_secret))
    assert retried.get_json()["status"] == "done"


# -- exactly-once under concurrent deliveries ------------------------------------------------------


@pytest.mark.usefixtures("real_model_env")
def test_concurrent_duplicates_classify_and_tag_once(make_client, standin, stored) -> None:
    client = make_client("on_upload")
    make_client("on_upload")  # warm the model so all deliveries race on the claim, not the load
    resource = standin.add_asset(image_bytes(), public_id="race/same")
    body = notification_from(resource)
    barrier = threading.Barrier(8)
    answers: list[tuple[int, dict]] = []

    def deliver() -> None:
        barrier.wait()
        response = client.post("/", data=body, headers=sign_body(body, standin.api_secret))
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fresh = [
        a for s, a in answers if s == 200 and a.get("status") == "done" and not a.get("duplicate")
    ]
    assert len(fresh) == 1
    assert all(s in (200, 409) for s, _ in answers)
    tag_writes = [c for c in standin.calls if c["path"].endswith("/tags")]
    assert len(tag_writes) == 1
    assert list(stored()) == [resource["asset_id"]]


@pytest.mark.usefixtures("real_model_env")
def test_expired_claim_is_taken_over_and_live_claim_answers_409(
    make_client, standin, base_env, stored
) -> None:
    client = make_client("on_upload")
    resource = standin.add_asset(image_bytes(), public_id="claims/stuck")
    ref = (
        firestore.Client(project=base_env["GOOGLE_CLOUD_PROJECT"])
        .collection(base_env["FIRESTORE_COLLECTION"])
        .document(resource["asset_id"])
    )
    now = dt.datetime.now(dt.UTC)
    claim = {
        "asset_id": resource["asset_id"],
        "public_id": "claims/stuck",
        "version": resource["version"],
        "status": "processing",
        "created_at": now,
    }
    ref.set({**claim, "claim": {"id": "other", "expires_at": now + dt.timedelta(minutes=5)}})
    body = notification_from(resource)
    live = client.post("/", data=body, headers=sign_body(body, standin.api_secret))
    assert live.status_code == 409
    ref.set({**claim, "claim": {"id": "crashed", "expires_at": now - dt.timedelta(seconds=1)}})
    taken = client.post("/", data=body, headers=sign_body(body, standin.api_secret))
    assert taken.status_code == 200
    assert taken.get_json()["status"] == "done"


# -- faults: Firestore emulator stopped and restarted ---------------------------------------------


@pytest.fixture
def own_emulator() -> Iterator[Callable[[], None]]:
    """A private emulator this test may stop; yields a function that restarts it on its port."""
    process, host = emulators.start_emulator()
    port = host.rsplit(":", 1)[1]
    state = {"process": process}

    def restart() -> None:
        state["process"] = emulators.start_emulator(port=int(port))[0]

    yield host, state, restart  # type: ignore[misc]
    processes.stop([state["process"]])


@pytest.mark.usefixtures("real_model_env")
def test_firestore_outage_is_503_then_redelivery_succeeds(
    make_client, standin, own_emulator
) -> None:
    host, state, restart = own_emulator
    client = make_client("on_upload", FIRESTORE_EMULATOR_HOST=host)
    resource = standin.add_asset(image_bytes(), public_id="faults/firestore")
    body = notification_from(resource)
    processes.stop([state["process"]])
    response = client.post("/", data=body, headers=sign_body(body, standin.api_secret))
    assert response.status_code == 503
    assert "Firestore" in response.get_json()["error"]
    assert [c for c in standin.calls if c["path"].endswith("/tags")] == []
    restart()
    # Cloudinary redelivers after a 5xx; the gRPC channel reconnects with its own backoff, so
    # redeliver until it is back (bounded), exactly as Cloudinary would.
    deadline = time.monotonic() + 90
    while True:
        retried = client.post("/", data=body, headers=sign_body(body, standin.api_secret))
        if retried.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert retried.status_code == 200, retried.get_data(as_text=True)
    assert retried.get_json()["status"] == "done"
    results = make_client("results", FIRESTORE_EMULATOR_HOST=host)
    found = results.get(f"/api/results?asset_id={resource['asset_id']}").get_json()["results"]
    assert found[0]["status"] == "done"
    assert json.loads(body)["asset_id"] == found[0]["asset_id"]
