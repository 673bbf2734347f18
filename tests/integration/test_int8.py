"""The int8 fast path (LiteRT) and the micro-batcher.

The int8 artifact is built once from the cached fp32 one (`.cache/models/vgg16-random-int8`).
With random weights, fp32/int8 agreement says nothing about real labels, so these tests check
shapes, validity and that the tools run, never agreement or wall-clock figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from autotagger import model
from autotagger.config import load_settings
from autotagger.errors import ConfigError
from autotagger.media import imaging
from tests.support.helpers import image_bytes, notification_from, on_upload_in_fresh_process

ROOT = Path(__file__).resolve().parents[2]


def _batch(count: int = 4) -> np.ndarray:
    rng = np.random.default_rng(11)
    pixels = [
        imaging.load_rgb(
            image_bytes(
                (int(rng.integers(200, 900)), int(rng.integers(200, 900))),
                tuple(int(v) for v in rng.integers(0, 256, 3)),  # type: ignore[arg-type]
            ),
            10**8,
        )
        for _ in range(count)
    ]
    return imaging.preprocess(np.stack(pixels))


def test_precision_and_batch_settings() -> None:
    settings = load_settings({})
    assert (settings.model_precision, settings.model_max_batch) == ("fp32", 8)
    assert load_settings({"MODEL_MAX_BATCH": "1"}).model_max_batch == 1
    assert load_settings({"MODEL_PRECISION": "INT8"}).model_precision == "int8"
    assert load_settings({"MODEL_MAX_BATCH": "8"}).model_max_batch == 8
    with pytest.raises(ConfigError, match="MODEL_PRECISION"):
        load_settings({"MODEL_PRECISION": "fp16"})
    with pytest.raises(ConfigError, match="MODEL_MAX_BATCH"):
        load_settings({"MODEL_MAX_BATCH": "0"})


@pytest.mark.slow
def test_int8_artifact_manifest(int8_model_dir: Path) -> None:
    manifest = json.loads((int8_model_dir / "manifest.json").read_text())
    assert manifest["format"] == "tflite"
    assert manifest["precision"] == "int8"
    assert manifest["name"] == "vgg16/random(seed=0)/int8"
    size = (int8_model_dir / manifest["path"]).stat().st_size
    assert 100e6 < size < 160e6  # a quarter of the fp32 weights (528 MB)


@pytest.mark.slow
def test_int8_predicts_probabilities_like_fp32(int8_model_dir: Path, model_dir: Path) -> None:
    batch = _batch()
    int8 = model.get_model(str(int8_model_dir))  # an int8 artifact is int8 whatever MODEL_PRECISION
    fp32 = model.get_model(str(model_dir))
    manifest = json.loads((int8_model_dir / "manifest.json").read_text())
    assert manifest["name"].endswith("/int8")
    assert int8.name == model.artifact_name(manifest)
    out8, out32 = int8.predict(batch), fp32.predict(batch)
    assert out8.shape == out32.shape == (4, 1000)
    assert out8.dtype == np.float32
    assert np.all(out8 >= 0)
    np.testing.assert_allclose(out8.sum(axis=1), 1.0, atol=1e-3)
    agreement = float(np.mean(out8.argmax(1) == out32.argmax(1)))
    print(f"\nint8/fp32 top-1 agreement on {len(batch)} generated images: {agreement:.0%}")


@pytest.mark.slow
def test_litert_pool_is_safe_under_concurrency(int8_model_dir: Path) -> None:
    classifier = model.get_model(str(int8_model_dir), "int8")
    batch = _batch(3)
    expected = classifier.predict(batch)
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(2):
                results.append(classifier.predict(batch))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 8
    for result in results:
        np.testing.assert_array_equal(result, expected)


@pytest.mark.slow
def test_serving_int8_never_imports_tensorflow(int8_model_dir: Path, base_env, standin) -> None:
    """A whole on_upload request (load, download, predict, tags, store) in a fresh process."""
    resource = standin.add_asset(image_bytes((1200, 800)), public_id="int8/photo")
    env = {**base_env, "MODEL_WEIGHTS": str(int8_model_dir), "MODEL_PRECISION": "int8"}
    result, _ = on_upload_in_fresh_process(notification_from(resource), standin.api_secret, env)
    assert result["status"] == 200, result
    assert result["record"]["status"] == "done"
    manifest = json.loads((int8_model_dir / "manifest.json").read_text())
    assert manifest["name"] == "vgg16/random(seed=0)/int8"
    assert result["record"]["model"] == model.artifact_name(manifest)
    assert len(result["record"]["predictions"]) == 5
    heavy = [m for m in result["modules"] if m.split(".")[0] in ("tensorflow", "keras", "tf_keras")]
    assert heavy == []  # neither tensorflow nor keras was imported


@pytest.mark.slow
def test_compare_models_runs_and_prints(
    int8_model_dir: Path, model_dir: Path, tmp_path: Path
) -> None:
    for i, size in enumerate([(320, 240), (500, 300), (240, 400)]):
        (tmp_path / f"{i}.jpg").write_bytes(image_bytes(size, (40 * i, 200 - 50 * i, 90)))
    (tmp_path / "notes.txt").write_text("not an image")
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "infra" / "compare_models.py"),
            "--images",
            str(tmp_path),
            "--fp32",
            str(model_dir),
            "--int8",
            str(int8_model_dir),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| images | top-1 agreement | top-5 agreement |" in done.stdout
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    assert stats["images"] == 3
    assert 0 <= stats["top1"] <= 1 and 0 <= stats["top5"] <= 1


class _SlowModel:
    """A stand-in classifier: row i of the answer is the first pixel of image i, plus batch size."""

    name = "slow"

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[int] = []
        self.fail = fail

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(len(batch))
        time.sleep(0.05)
        if self.fail:
            raise RuntimeError("forward failed")
        out = np.zeros((len(batch), 1000), dtype=np.float32)
        out[:, 0] = batch[:, 0, 0, 0]
        return out


def test_micro_batcher_stacks_concurrent_requests() -> None:
    inner = _SlowModel()
    batcher = model.MicroBatcher(inner, max_batch=4)
    answers: dict[int, float] = {}

    def request(i: int) -> None:
        image = np.full((1, 2, 2, 3), float(i), dtype=np.float32)
        answers[i] = float(batcher.predict(image)[0, 0])

    threads = [threading.Thread(target=request, args=(i,)) for i in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == {i: float(i) for i in range(9)}  # everyone got their own row
    assert sum(inner.calls) == 9
    assert max(inner.calls) <= 4
    assert len(inner.calls) < 9  # some requests shared a forward


def test_micro_batcher_runs_a_lone_request_at_once() -> None:
    inner = _SlowModel()
    batcher = model.MicroBatcher(inner, max_batch=8)
    out = batcher.predict(np.ones((1, 2, 2, 3), dtype=np.float32))
    assert out.shape == (1, 1000)
    assert inner.calls == [1]


def test_micro_batcher_gives_every_caller_the_error() -> None:
    batcher = model.MicroBatcher(_SlowModel(fail=True), max_batch=4)
    errors: list[str] = []

    def request() -> None:
        try:
            batcher.predict(np.zeros((1, 2, 2, 3), dtype=np.float32))
        except RuntimeError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=request) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == ["forward failed"] * 5
