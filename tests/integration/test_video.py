"""Video uploads: real MP4s (made with PyAV) through the stand-in, the emulator and VGG16."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import cloudinary.uploader
import numpy as np
import pytest
import requests
from PIL import Image

from autotagger import concepts, model
from autotagger.config import load_settings
from autotagger.errors import ConfigError, ImageError
from autotagger.media import imaging, video
from autotagger.web.webhook import Ignored, Upload, parse_notification
from infra.local_cloudinary import CloudinaryStandin
from tests.support.helpers import load_payload, notification_from, sign_body
from tests.support.videos import make_mp4, make_wav, scene

FOUR_SECONDS = [0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.25, 3.75]


@pytest.fixture(scope="module")
def clip() -> bytes:
    """4 s, four 1-s scenes that look nothing alike."""
    return make_mp4(scenes=4, scene_s=1.0)


# -- units --------------------------------------------------------------------------------------


def test_offsets_are_evenly_spaced_inside_the_video() -> None:
    assert video.offsets(4.0, 8) == FOUR_SECONDS
    assert video.offsets(12.5, 1) == [6.25]
    assert video.offsets(3600.0, 3) == [600.0, 1800.0, 3000.0]


def test_frame_url_is_cloudinarys_documented_frame_delivery() -> None:
    url = "https://res.cloudinary.com/demo/video/upload/v1763979400/clips/surf.mp4"
    assert video.frame_url(url, 2.5) == (
        "https://res.cloudinary.com/demo/video/upload/so_2.5,c_scale,w_224,h_224"
        "/v1763979400/clips/surf.jpg"
    )
    assert "/so_0.25,c_scale" in video.frame_url(url, 0.25)
    assert "/so_12," in video.frame_url(url, 12.0)
    cname = "https://media.example.com/video/upload/v7/a/b.mov"
    assert video.frame_url(cname, 1) == (
        "https://media.example.com/video/upload/so_1,c_scale,w_224,h_224/v7/a/b.jpg"
    )
    for odd in (
        "https://res.cloudinary.com/demo/video/upload/e_blur/v1/clips/surf.mp4",
        "https://res.cloudinary.com/demo/video/upload/v1/clips/surf.mp4?x=1",
        "https://res.cloudinary.com/demo/image/upload/v1/clips/surf.jpg",
    ):
        with pytest.raises(ImageError):
            video.frame_url(odd, 1.0)


def test_video_notifications_are_uploads_audio_is_ignored() -> None:
    event = parse_notification(load_payload("video_upload_notification.json"))
    assert isinstance(event, Upload)
    assert (event.resource_type, event.duration, event.is_audio) == ("video", 12.5, False)
    audio = parse_notification(load_payload("audio_upload_notification.json"))
    assert isinstance(audio, Ignored)
    assert "audio-only" in audio.reason
    no_duration = load_payload("video_upload_notification.json", duration="12.5")
    parsed = parse_notification(no_duration)
    assert isinstance(parsed, Upload)
    assert parsed.duration is None  # looked up from the Admin API instead
    raw = parse_notification(load_payload("video_upload_notification.json", resource_type="raw"))
    assert isinstance(raw, Ignored)


def test_video_settings() -> None:
    settings = load_settings({})
    assert (settings.video_frames, settings.max_video_seconds) == (8, 3600)
    settings = load_settings({"VIDEO_FRAMES": "32", "MAX_VIDEO_SECONDS": "60"})
    assert (settings.video_frames, settings.max_video_seconds) == (32, 60)
    for name, value in (("VIDEO_FRAMES", "0"), ("VIDEO_FRAMES", "33"), ("MAX_VIDEO_SECONDS", "x")):
        with pytest.raises(ConfigError, match=name):
            load_settings({name: value})


# -- the local Cloudinary ----------------------------------------------------------------------


def _difference(data: bytes, index: int) -> float:
    """Mean absolute pixel difference between a delivered frame and scene `index`."""
    delivered = Image.open(io.BytesIO(data)).convert("RGB")
    expected = scene(index).resize(delivered.size)
    return float(np.abs(np.asarray(delivered, float) - np.asarray(expected, float)).mean())


def test_standin_stores_video_answers_duration_and_delivers_frames(
    standin: CloudinaryStandin, clip: bytes
) -> None:
    standin.reset()
    account = {
        "cloud_name": standin.cloud_name,
        "api_key": standin.api_key,
        "api_secret": standin.api_secret,
        "upload_prefix": standin.url,
    }
    result = cloudinary.uploader.upload(
        ("scenes.mp4", clip), resource_type="video", public_id="st/scenes", **account
    )
    assert (result["resource_type"], result["format"], result["is_audio"]) == (
        "video",
        "mp4",
        False,
    )
    assert (result["width"], result["height"]) == (320, 240)
    assert result["duration"] == pytest.approx(4.0)
    body, _ = standin.notification_for(result)
    assert json.loads(body)["duration"] == pytest.approx(4.0)
    admin = requests.get(
        f"{standin.url}/v1_1/{standin.cloud_name}/resources/video/upload/st/scenes",
        auth=(standin.api_key, standin.api_secret),
        timeout=10,
    ).json()
    assert admin["duration"] == pytest.approx(4.0)

    base = f"{standin.url}/{standin.cloud_name}/video/upload"
    assert requests.get(result["secure_url"], timeout=10).content == clip
    for index, offset in enumerate((0.5, 1.5, 2.5, 3.5)):
        url = f"{base}/so_{offset},c_scale,w_224,h_224/v{result['version']}/st/scenes.jpg"
        answer = requests.get(url, timeout=10)
        assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/jpeg"
        assert Image.open(io.BytesIO(answer.content)).size == (224, 224)
        differences = [_difference(answer.content, other) for other in range(4)]
        assert min(differences) == differences[index] < 10  # the scene shown at that time
    middle = requests.get(f"{base}/st/scenes.png", timeout=10)  # no so_: the middle frame
    assert middle.headers["Content-Type"] == "image/png"
    assert _difference(middle.content, 2) < 10

    wav = cloudinary.uploader.upload(
        ("tone.wav", make_wav()), resource_type="auto", public_id="st/tone", **account
    )
    assert (wav["resource_type"], wav["is_audio"]) == ("video", True)
    assert wav["duration"] == pytest.approx(1.0)
    no_picture = requests.get(f"{base}/so_0.5/st/tone.jpg", timeout=10)
    assert no_picture.status_code == 400
    assert "could not be decoded" in no_picture.headers["X-Cld-Error"]


# -- the whole pipeline -------------------------------------------------------------------------


def _deliver(client: Any, standin: CloudinaryStandin, resource: dict[str, Any], **fields: Any):
    payload = json.loads(notification_from(resource, "video_upload_notification.json"))
    payload.update(fields)
    for key in [k for k, v in fields.items() if v is None]:
        payload.pop(key)
    body = json.dumps(payload, separators=(",", ":")).encode()
    return client.post("/", data=body, headers=sign_body(body, standin.api_secret))


def _frame_gets(standin: CloudinaryStandin) -> list[str]:
    calls = standin.calls
    return [c["path"] for c in calls if c["method"] == "GET" and "/upload/so_" in c["path"]]


def _tag_writes(standin: CloudinaryStandin) -> list[dict[str, Any]]:
    return [c for c in standin.calls if c["path"].endswith("/tags")]


@pytest.fixture
def forwards(real_model_env: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], list[int]]:
    """`forwards(max_batch)`: the batch sizes of every forward of the warm model's network."""
    sizes: list[int] = []

    def count(max_batch: str) -> list[int]:
        weights = load_settings().model_weights  # the key the function uses (path resolved)
        classifier = model.get_model(weights, "fp32", int(max_batch))
        network: Any = getattr(classifier, "inner", classifier)
        original = network.infer  # the one forward giving probabilities and embeddings

        def infer(batch: np.ndarray) -> Any:
            sizes.append(len(batch))
            return original(batch)

        monkeypatch.setattr(network, "infer", infer)
        return sizes

    return count


def _expected(secure_url: str, offsets: list[float], weights: str, top_k: int = 5):
    """Independently: fetch the frames, run them, average: what the document must say."""
    pixels = []
    for offset in offsets:
        response = requests.get(video.frame_url(secure_url, offset), timeout=10)
        response.raise_for_status()
        pixels.append(imaging.load_rgb(response.content, 10**8))
    network: Any = model.get_model(weights, "fp32", 1)
    probabilities = np.asarray(network.predict(imaging.preprocess(np.stack(pixels))))
    return probabilities, model.top_k(probabilities.mean(axis=0), top_k)


@pytest.mark.parametrize("max_batch", ["8", "3"])
def test_video_is_classified_from_its_frames_in_one_forward(
    make_client, standin: CloudinaryStandin, stored, forwards, real_model_env, clip, max_batch
) -> None:
    client = make_client(
        "on_upload", MODEL_MAX_BATCH=max_batch, TAG_THRESHOLD="0.01", CONCEPT_THRESHOLD="0.05"
    )
    resource = standin.add_asset(clip, public_id="clips/scenes", resource_type="video")
    assert resource["duration"] == pytest.approx(4.0)
    sizes = forwards(max_batch)

    response = _deliver(client, standin, resource)
    assert response.status_code == 200, response.get_data(as_text=True)
    record = response.get_json()
    assert record["status"] == "done", record
    assert record["resource_type"] == "video"
    assert record["duration"] == pytest.approx(4.0)
    assert sizes == [8]  # exactly one forward, all eight frames (even above MODEL_MAX_BATCH)

    assert [f["offset"] for f in record["frames"]] == FOUR_SECONDS
    assert all(f["label"] and 0 < f["score"] <= 1 for f in record["frames"])
    gets = _frame_gets(standin)
    assert sorted(gets) == sorted(
        f"/autotagger-test/video/upload/so_{t:g},c_scale,w_224,h_224/v{resource['version']}"
        "/clips/scenes.jpg"
        for t in FOUR_SECONDS
    )
    # Distinct scenes, distinct frames: the frames really come from their offsets.
    assert len({(f["label"], round(f["score"], 4)) for f in record["frames"]}) >= 2

    weights = load_settings().model_weights
    probabilities, expected = _expected(resource["secure_url"], FOUR_SECONDS, weights)
    assert [p["label"] for p in record["predictions"]] == [p.label for p in expected]
    for got, want in zip(record["predictions"], expected, strict=True):
        assert got["score"] == pytest.approx(want.score, abs=1e-4)
    per_frame = [model.top_k(p, 1)[0].label for p in probabilities]
    assert [f["label"] for f in record["frames"]] == per_frame
    scores = [p["score"] for p in record["predictions"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 5
    # concepts: from the same mean of the frames' probabilities, written as tags too
    wanted = concepts.fields(probabilities.mean(axis=0), 0.05)["concepts"]
    assert wanted  # random weights spread their mass: `animal` alone holds ~40% of it
    assert [c["name"] for c in record["concepts"]] == [c["name"] for c in wanted]
    for got_concept, want_concept in zip(record["concepts"], wanted, strict=True):
        assert got_concept["score"] == pytest.approx(want_concept["score"], abs=1e-4)
    assert {c["name"] for c in record["concepts"]} <= set(record["tags"])

    asset = standin.asset("clips/scenes", resource_type="video")
    assert asset is not None and asset["tags"] == record["tags"]
    assert record["label"] in record["tags"]
    assert [c["path"] for c in _tag_writes(standin)] == ["/v1_1/autotagger-test/video/tags"]
    assert {"claim", "download", "predict", "tags", "total"} <= set(record["timings"])

    document = stored()[resource["asset_id"]]
    for key in ("status", "label", "predictions", "frames", "resource_type", "duration", "tags"):
        assert document[key] == record[key]
    assert document["claim"] is None


def test_duplicate_is_not_classified_again_and_a_new_version_is(
    make_client, standin: CloudinaryStandin, stored, forwards, clip
) -> None:
    client = make_client("on_upload")
    sizes = forwards("8")
    first = standin.add_asset(clip, public_id="clips/dup", resource_type="video")
    record = _deliver(client, standin, first).get_json()
    assert record["status"] == "done"
    frames_fetched, documents = len(_frame_gets(standin)), stored()

    again = _deliver(client, standin, first)
    assert again.status_code == 200
    assert again.get_json()["duplicate"] is True
    assert again.get_json()["frames"] == record["frames"]
    assert sizes == [8]
    assert len(_tag_writes(standin)) == 1
    assert stored() == documents
    assert frames_fetched == 8

    shorter = make_mp4(scenes=2, scene_s=1.0)
    second = standin.add_asset(shorter, public_id="clips/dup", resource_type="video")
    assert second["asset_id"] == first["asset_id"] and second["version"] > first["version"]
    newer = _deliver(client, standin, second).get_json()
    assert newer["status"] == "done"
    assert newer["version"] == second["version"]
    assert [f["offset"] for f in newer["frames"]] == video.offsets(2.0, 8)
    assert sizes == [8, 8]
    assert stored()[first["asset_id"]]["version"] == second["version"]


def test_video_over_max_video_seconds_fails_without_fetching(
    make_client, standin: CloudinaryStandin, stored, clip
) -> None:
    client = make_client("on_upload", MAX_VIDEO_SECONDS="3")
    resource = standin.add_asset(clip, public_id="clips/long", resource_type="video")
    response = _deliver(client, standin, resource)
    assert response.status_code == 200
    record = response.get_json()
    assert record["status"] == "failed"
    assert "MAX_VIDEO_SECONDS=3" in record["error"]
    assert _frame_gets(standin) == []
    assert _tag_writes(standin) == []
    assert stored()[resource["asset_id"]]["status"] == "failed"


def test_corrupt_video_fails_when_no_frame_decodes(
    make_client, standin: CloudinaryStandin, stored
) -> None:
    client = make_client("on_upload")
    resource = standin.add_asset(
        b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 500,
        public_id="clips/broken",
        resource_type="video",
        format="mp4",
    )
    assert "duration" not in resource  # the stand-in could not read it either
    response = _deliver(client, standin, resource, duration=3.0)
    assert response.status_code == 200
    record = response.get_json()
    assert record["status"] == "failed"
    assert "only 0 of 8 frames" in record["error"]
    assert "Video could not be decoded" in record["error"]
    assert len(_frame_gets(standin)) == 8
    assert _tag_writes(standin) == []
    assert stored()[resource["asset_id"]]["error"] == record["error"]


def test_a_missing_frame_is_skipped_and_recorded_too_many_fail_the_video(
    make_client, real_model_env, standin: CloudinaryStandin, stored, clip
) -> None:
    client = make_client("on_upload")
    resource = standin.add_asset(clip, public_id="clips/holes", resource_type="video")
    standin.inject("/autotagger-test/video/upload/so_1.25,", 404, times=None)
    record = _deliver(client, standin, resource).get_json()
    assert record["status"] == "done"
    skipped = [f for f in record["frames"] if "error" in f]
    assert [f["offset"] for f in skipped] == [1.25]
    assert "HTTP 404" in skipped[0]["error"]
    assert len([f for f in record["frames"] if "label" in f]) == 7

    standin.clear_faults()
    other = standin.add_asset(clip, public_id="clips/holier", resource_type="video")
    standin.inject("/autotagger-test/video/upload/so_", 404, times=5)
    failed = _deliver(client, standin, other).get_json()
    assert failed["status"] == "failed"
    assert "only 3 of 8 frames" in failed["error"]
    assert stored()[other["asset_id"]]["status"] == "failed"


def test_frame_server_errors_are_retried_then_503_and_redelivery_classifies(
    make_client, real_model_env, standin: CloudinaryStandin, stored, clip
) -> None:
    client = make_client("on_upload")
    resource = standin.add_asset(clip, public_id="clips/flaky", resource_type="video")
    standin.inject("/autotagger-test/video/upload/so_2.25,", 500, times=None)
    response = _deliver(client, standin, resource)
    assert response.status_code == 503
    assert stored()[resource["asset_id"]]["status"] == "processing"  # claim released
    standin.clear_faults()
    redelivered = _deliver(client, standin, resource)
    assert redelivered.status_code == 200
    assert redelivered.get_json()["status"] == "done"


def test_duration_missing_from_the_message_comes_from_the_admin_api(
    make_client, real_model_env, standin: CloudinaryStandin, clip
) -> None:
    client = make_client("on_upload", VIDEO_FRAMES="4")
    resource = standin.add_asset(clip, public_id="clips/queued", resource_type="video")
    record = _deliver(client, standin, resource, duration=None).get_json()
    assert record["status"] == "done"
    assert record["duration"] == pytest.approx(4.0)
    assert [f["offset"] for f in record["frames"]] == [0.5, 1.5, 2.5, 3.5]
    assert any(c["path"].startswith("/v1_1/autotagger-test/resources/video") for c in standin.calls)


def test_audio_only_upload_is_ignored(make_client, standin: CloudinaryStandin, stored) -> None:
    client = make_client("on_upload")
    resource = standin.add_asset(
        make_wav(), public_id="clips/tone", resource_type="video", format="wav"
    )
    assert resource["is_audio"] is True
    response = _deliver(client, standin, resource)
    assert response.status_code == 200
    assert response.get_json()["status"] == "ignored"
    assert "audio-only" in response.get_json()["reason"]
    # A queue message without is_audio or duration: the Admin API says it is audio.
    queued = _deliver(client, standin, resource, is_audio=None, duration=None)
    assert queued.get_json()["status"] == "ignored"
    assert stored() == {}
    assert _tag_writes(standin) == []


def test_forwarded_video_upload_is_classified(
    make_client, real_model_env, standin: CloudinaryStandin, stored, clip
) -> None:
    env = {"ON_UPLOAD_URL": "http://127.0.0.1:8081", "ALLOWED_ORIGINS": "http://127.0.0.1:8080"}
    client = make_client("on_upload", VIDEO_FRAMES="2", **env)
    resource = standin.add_asset(clip, public_id="clips/forwarded", resource_type="video")
    body = {k: resource[k] for k in ("public_id", "version", "signature", "asset_id", "type")}
    response = client.post("/forward", json={**body, "resource_type": "video"})
    assert response.status_code == 200, response.get_data(as_text=True)
    record = response.get_json()
    assert record["status"] == "done"
    assert [f["offset"] for f in record["frames"]] == [1.0, 3.0]
    assert stored()[resource["asset_id"]]["resource_type"] == "video"


def test_backfill_videos_classifies_the_accounts_videos(
    base_env, real_model_env, standin: CloudinaryStandin, stored, capsys, monkeypatch, clip
) -> None:
    from autotagger import cli

    monkeypatch.setenv("VIDEO_FRAMES", "2")
    standin.add_asset(make_mp4(scenes=2), public_id="bf/short", resource_type="video")
    standin.add_asset(make_wav(), public_id="bf/tone", resource_type="video", format="wav")
    standin.add_asset(clip, public_id="bf/long", resource_type="video")
    assert cli.main(["backfill", "--videos"]) == 0
    out = capsys.readouterr().out
    assert "3 videos, 0 already classified, 3 to classify" in out
    assert "2 done" in out and "1 ignored" in out
    documents = stored()
    assert {d["public_id"] for d in documents.values()} == {"bf/short", "bf/long"}
    for document in documents.values():
        assert (document["resource_type"], document["status"]) == ("video", "done")
        assert len(document["frames"]) == 2
    assert cli.main(["backfill", "--videos"]) == 0
    assert "3 videos, 2 already classified, 1 to classify" in capsys.readouterr().out
