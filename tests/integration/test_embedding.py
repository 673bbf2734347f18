"""The VGG16 embedding: one forward with the probabilities on every engine, its checks, and
what is stored (a top-level Firestore Vector on every `done` document, never in the API)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autotagger import embeddings, model
from autotagger.media import imaging
from autotagger.model import engines
from infra import local, near_duplicates
from infra.local_cloudinary import CloudinaryStandin
from tests.support import parity_inputs
from tests.support.helpers import notification_from, sign_body

# -- units (no model) ---------------------------------------------------------------------------


def test_normalised_and_video_mean() -> None:
    rng = np.random.default_rng(5)
    vector = rng.random(512)
    out = embeddings.normalised(vector)
    assert out is not None and out.dtype == np.float32
    assert abs(float(np.linalg.norm(out)) - 1) < 1e-6
    np.testing.assert_allclose(out, vector / np.linalg.norm(vector), rtol=1e-6)
    assert embeddings.normalised(np.zeros(512)) is None  # no direction: not stored
    assert embeddings.normalised(np.full(512, np.nan)) is None
    assert embeddings.normalised(np.ones(10)) is None  # too short to describe anything
    assert embeddings.normalised(np.ones(4096)) is None  # over Firestore's 2048

    frames = rng.random((8, 512)).astype(np.float32)
    frames /= np.linalg.norm(frames, axis=1, keepdims=True)
    mean = embeddings.of_frames(frames)
    assert mean is not None
    expected = frames.mean(axis=0) / np.linalg.norm(frames.mean(axis=0))
    np.testing.assert_allclose(mean, expected, rtol=1e-5)
    assert embeddings.of_frames(None) is None
    assert embeddings.of_image(None) is None
    assert embeddings.cosine_distance(frames[0], frames[0]) == pytest.approx(0, abs=1e-6)
    assert embeddings.cosine_distance(frames[0], -frames[0]) == pytest.approx(2, abs=1e-6)


def test_outputs_are_told_apart_by_shape() -> None:
    assert engines.pick_outputs([1000, 512]) == (0, 1)
    assert engines.pick_outputs([512, 1000]) == (1, 0)
    assert engines.pick_outputs([1000]) == (0, None)
    with pytest.raises(ValueError, match="unexpected model outputs"):
        engines.pick_outputs([512, 256])
    probabilities, vectors = np.zeros((2, 1000)), np.ones((2, 512))
    named = engines.split_outputs({"embedding": vectors, "probabilities": probabilities})
    assert named.probabilities.shape == (2, 1000) and named.embeddings is not None
    assert named.embeddings.shape == (2, 512)
    alone = engines.split_outputs(probabilities)
    assert alone.embeddings is None and alone.probabilities.shape == (2, 1000)


class _TwoOutputs:
    """A slow stand-in network that says which image each row came from, in both outputs."""

    name = "two-outputs"
    embedding_dim = 512

    def __init__(self) -> None:
        self.calls: list[int] = []

    def infer(self, batch: np.ndarray) -> model.Inference:
        self.calls.append(len(batch))
        time.sleep(0.05)
        probabilities = np.zeros((len(batch), 1000), dtype=np.float32)
        probabilities[:, 0] = batch[:, 0, 0, 0]
        vectors = np.zeros((len(batch), 512), dtype=np.float32)
        vectors[:, 1] = batch[:, 0, 0, 0]
        return model.Inference(probabilities, vectors)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.infer(batch).probabilities


def test_micro_batcher_gives_each_caller_its_own_rows_of_both_outputs() -> None:
    inner = _TwoOutputs()
    batcher = model.MicroBatcher(inner, max_batch=4)
    assert batcher.embedding_dim == 512
    answers: dict[int, tuple[float, float]] = {}

    def request(i: int) -> None:
        image = np.full((1, 2, 2, 3), float(i), dtype=np.float32)
        out = model.infer(batcher, image)
        assert out.embeddings is not None
        answers[i] = (float(out.probabilities[0, 0]), float(out.embeddings[0, 1]))

    threads = [threading.Thread(target=request, args=(i,)) for i in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == {i: (float(i), float(i)) for i in range(9)}
    assert sum(inner.calls) == 9 and len(inner.calls) < 9  # some shared a forward
    # predict still answers the probabilities alone
    assert batcher.predict(np.full((1, 2, 2, 3), 7.0, dtype=np.float32))[0, 0] == 7.0


def test_a_classifier_with_only_predict_gives_no_embedding() -> None:
    class Old:
        name = "old"

        def predict(self, batch: np.ndarray) -> np.ndarray:
            return np.ones((len(batch), 1000), dtype=np.float32) / 1000

    out = model.infer(Old(), np.zeros((2, 224, 224, 3), dtype=np.float32))
    assert out.embeddings is None and out.probabilities.shape == (2, 1000)


# -- the artifact's engines ----------------------------------------------------------------------


@pytest.mark.slow
def test_manifests_record_the_embedding(model_dir: Path, int8_model_dir: Path) -> None:
    for directory in (model_dir, int8_model_dir):
        manifest = json.loads((directory / "manifest.json").read_text())
        assert manifest["embedding"]["name"] == model.EMBEDDING_NAME == "vgg16/block5_pool/gap/l2"
        assert manifest["embedding"]["dim"] == model.EMBEDDING_DIM == 512
    assert local._is_current(model_dir)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    del manifest["embedding"]
    stale = Path(model_dir.parent / "stale-check")
    stale.mkdir(exist_ok=True)
    try:
        (stale / "manifest.json").write_text(json.dumps(manifest))
        (stale / "weights.bin").write_bytes(b"")
        assert not local._is_current(stale)  # a cache built before the embedding is rebuilt
    finally:
        for child in stale.iterdir():
            child.unlink()
        stale.rmdir()


@pytest.mark.slow
def test_int8_embedding_stays_close_to_fp32(model_dir: Path, int8_model_dir: Path) -> None:
    """LiteRT int8 (dynamic-range) against fp32: each component within 5e-3 and cosine distance
    under 2e-4, i.e. well under the near-duplicate threshold and the distances between
    different pictures (measured: max component 2e-3, cosine distance ~3e-5)."""
    _, batch = parity_inputs.embedding_pictures()
    int8 = model.get_model(str(int8_model_dir))
    fp32 = model.get_model(str(model_dir))
    assert model.embedding_dim(int8) == 512
    out8, out32 = model.infer(int8, batch), model.infer(fp32, batch)
    assert out8.embeddings is not None and out32.embeddings is not None
    np.testing.assert_allclose(np.linalg.norm(out8.embeddings, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out8.embeddings, out32.embeddings, rtol=0, atol=5e-3)
    cosine = 1 - np.sum(out8.embeddings.astype(np.float64) * out32.embeddings, axis=1)
    largest = float(np.abs(out8.embeddings - out32.embeddings).max())
    print(f"\nint8 vs fp32 embedding: max |diff| {largest:.2e}, cosine max {cosine.max():.2e}")
    assert float(cosine.max()) < 2e-4


# -- stored on every done document ---------------------------------------------------------------


def _deliver(client: Any, standin: CloudinaryStandin, resource: dict[str, Any]) -> Any:
    body = notification_from(resource)
    return client.post("/", data=body, headers=sign_body(body, standin.api_secret))


def _check_vector(value: Any) -> np.ndarray:
    from google.cloud.firestore_v1.vector import Vector

    assert isinstance(value, Vector), type(value)
    numbers = np.asarray(list(value), dtype=np.float64)
    assert 64 <= numbers.size <= 2048 and numbers.size == 512
    assert abs(float(np.linalg.norm(numbers)) - 1) < 1e-3
    return numbers


@pytest.mark.slow
def test_done_document_stores_the_embedding_never_the_api(
    make_client, standin: CloudinaryStandin, stored, real_model_env: str
) -> None:
    client = make_client("on_upload")
    data = near_duplicates.picture(3)
    resource = standin.add_asset(data, public_id="pics/three")
    response = _deliver(client, standin, resource)
    assert response.status_code == 200, response.get_data(as_text=True)
    record = response.get_json()
    assert record["status"] == "done" and "embedding" not in record
    assert record["has_embedding"] is True  # what tells the page /api/similar can answer

    document = stored()[resource["asset_id"]]
    vector = _check_vector(document["embedding"])
    # the very vector the served model gives the 224-px rendition the pipeline downloaded
    import requests

    from autotagger.clients import cloudinary_client

    source = requests.get(cloudinary_client.rendition_url(resource["secure_url"]), timeout=10)
    source.raise_for_status()
    expected = model.infer(
        model.get_model(real_model_env),
        imaging.preprocess(imaging.load_rgb(source.content, 10**8)[None]),
    ).embeddings
    assert expected is not None
    assert embeddings.cosine_distance(vector, expected[0]) < 1e-3

    # neither the results API nor a duplicate delivery answer it
    results = make_client("results").get(f"/api/results?asset_id={resource['asset_id']}")
    assert results.status_code == 200
    assert results.get_json()["results"][0]["asset_id"] == resource["asset_id"]
    assert "embedding" not in results.get_json()["results"][0]
    assert '"embedding"' not in json.dumps(results.get_json())
    duplicate = _deliver(client, standin, resource).get_json()
    assert duplicate["duplicate"] is True and "embedding" not in duplicate

    failed = standin.add_asset(near_duplicates.picture(4), public_id="pics/broken")
    standin.replace_bytes("pics/broken", b"<html>surprise</html>")
    assert _deliver(client, standin, failed).get_json()["status"] == "failed"
    assert stored()[failed["asset_id"]].get("embedding") is None


@pytest.mark.slow
def test_video_document_stores_the_normalised_mean_of_its_frames(
    make_client, standin: CloudinaryStandin, stored, real_model_env: str
) -> None:
    from tests.support.videos import make_mp4

    client = make_client("on_upload", VIDEO_FRAMES="4")
    resource = standin.add_asset(make_mp4(scenes=2, scene_s=1.0), "clips/two", "video")
    record = _deliver(client, standin, resource).get_json()
    assert record["status"] == "done", record
    assert "embedding" not in record
    vector = _check_vector(stored()[resource["asset_id"]]["embedding"])

    import requests

    from autotagger.media import video

    frames = []
    for offset in video.offsets(float(resource["duration"]), 4):
        response = requests.get(video.frame_url(resource["secure_url"], offset), timeout=10)
        frames.append(imaging.load_rgb(response.content, 10**8))
    out = model.infer(model.get_model(real_model_env), imaging.preprocess(np.stack(frames)))
    expected = embeddings.of_frames(out.embeddings)
    assert expected is not None
    assert embeddings.cosine_distance(vector, expected) < 1e-5


# -- backfill brings documents without an embedding up to date ------------------------------------


def _strip_embeddings(base_env: dict[str, str], asset_ids: list[str]) -> None:
    """Make documents look classified before embeddings existed."""
    from google.cloud import firestore

    client = firestore.Client(project=base_env["GOOGLE_CLOUD_PROJECT"])
    collection = client.collection(base_env["FIRESTORE_COLLECTION"])
    for asset_id in asset_ids:
        ref = collection.document(asset_id)
        ref.update({"embedding": firestore.DELETE_FIELD})
        if "embedding" in (ref.get().to_dict() or {}):  # the npm emulator ignores DELETE_FIELD
            ref.update({"embedding": None})


def test_backfill_wants_done_documents_without_an_embedding() -> None:
    from autotagger.cli.selection import wanted
    from autotagger.web.webhook import upload_from_resource

    upload = upload_from_resource(
        {
            "asset_id": "a1",
            "public_id": "p",
            "version": 3,
            "secure_url": "https://res.cloudinary.com/c/image/upload/v3/p.jpg",
            "resource_type": "image",
            "type": "upload",
        }
    )
    done = {"version": 3, "status": "done", "model": "m", "embedding": [0.1]}
    assert wanted(done, upload, None) is None
    assert wanted({**done, "embedding": None}, upload, None) == "backfill"
    assert wanted({**done, "embedding": None}, upload, "m") == "backfill"
    assert wanted({**done, "embedding": None}, upload, "other") == "reclassify"
    failed = {"version": 3, "status": "failed", "embedding": None}
    assert wanted(failed, upload, None) is None  # nothing to describe
    newer = {**done, "version": 4, "embedding": None}
    assert wanted(newer, upload, None) is None


@pytest.mark.slow
def test_backfill_gives_old_documents_an_embedding(
    make_client,
    standin: CloudinaryStandin,
    stored,
    base_env: dict[str, str],
    real_model_env: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from autotagger import cli

    client = make_client("on_upload")
    resources = [
        standin.add_asset(near_duplicates.picture(20 + i), public_id=f"old/{i}") for i in range(3)
    ]
    for resource in resources:
        assert _deliver(client, standin, resource).get_json()["status"] == "done"
    before = stored()
    _strip_embeddings(base_env, [r["asset_id"] for r in resources[:2]])
    assert stored()[resources[0]["asset_id"]].get("embedding") is None

    # --enqueue --dry-run: the two are what would be published (as `backfill`)
    assert cli.main(["backfill", "--enqueue", "--dry-run", "--prefix", "old/"]) == 0
    assert "3 images listed, 1 already classified, would publish 2" in capsys.readouterr().out

    assert cli.main(["backfill", "--prefix", "old/"]) == 0
    captured = capsys.readouterr()
    assert "3 images under 'old/', 1 already classified, 2 to classify" in captured.out
    assert "classified 2 of 2: 2 done" in captured.out
    after = stored()
    for resource in resources:
        document = after[resource["asset_id"]]
        vector = _check_vector(document["embedding"])
        np.testing.assert_allclose(
            vector, np.asarray(list(before[resource["asset_id"]]["embedding"])), atol=1e-6
        )
        assert document["label"] == before[resource["asset_id"]]["label"]
        asset = standin.asset(resource["public_id"])
        assert asset is not None and document["tags"] == asset["tags"]
    assert after[resources[2]["asset_id"]] == before[resources[2]["asset_id"]]  # untouched

    assert cli.main(["backfill", "--prefix", "old/"]) == 0
    assert "3 images under 'old/', 3 already classified, 0 to classify" in (capsys.readouterr().out)


@pytest.mark.slow
def test_a_queued_backfill_message_gives_an_old_document_its_embedding(
    make_client, standin: CloudinaryStandin, stored, base_env: dict[str, str], real_model_env: str
) -> None:
    """What `backfill --enqueue` publishes (origin `backfill`), as `on_message` consumes it;
    a webhook's duplicate delivery leaves the old document as it is."""
    import base64

    from autotagger import config
    from autotagger.queue import messages, worker
    from autotagger.web.webhook import upload_from_resource

    client = make_client("on_upload")
    resource = standin.add_asset(near_duplicates.picture(30), public_id="queued/old")
    assert _deliver(client, standin, resource).get_json()["status"] == "done"
    _strip_embeddings(base_env, [resource["asset_id"]])
    assert _deliver(client, standin, resource).get_json()["duplicate"] is True
    assert stored()[resource["asset_id"]].get("embedding") is None

    def event(origin: str) -> dict[str, Any]:
        message = messages.AssetMessage(upload_from_resource(resource), origin)
        data, attributes = messages.build(message)
        encoded = base64.b64encode(data).decode()
        return {"message": {"data": encoded, "attributes": attributes, "messageId": "1"}}

    settings = config.load_settings()
    assert worker.consume(event("webhook"), settings)["duplicate"] is True
    assert stored()[resource["asset_id"]].get("embedding") is None
    record = worker.consume(event("backfill"), settings)
    assert record["status"] == "done" and not record.get("duplicate")
    _check_vector(stored()[resource["asset_id"]]["embedding"])
    assert worker.consume(event("backfill"), settings)["duplicate"] is True  # now complete
