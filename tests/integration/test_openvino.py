"""The OpenVINO engine: the IR in the fp32 artifact, MODEL_ENGINE, label fidelity against
TensorFlow and Keras's reference pipeline, and serving without TensorFlow.

The artifact (`.cache/models/vgg16-random-fp32`) holds the same seeded random weights as a
SavedModel + weights.bin and as an OpenVINO IR. These tests check outcomes (labels, values,
modules imported), never timings: `make bench` measures speed.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from autotagger import model
from autotagger.config import load_settings
from autotagger.errors import ConfigError
from autotagger.media import imaging
from autotagger.model import artifact
from tests.support.helpers import image_bytes, notification_from, on_upload_in_fresh_process

ROOT = Path(__file__).resolve().parents[2]


# -- settings and engine choice (no runtime needed) -----------------------------------------------


def test_engine_settings(tmp_path: Path) -> None:
    settings = load_settings({})
    assert (settings.model_engine, settings.model_openvino_hint) == ("auto", "latency")
    assert load_settings({"MODEL_ENGINE": "TensorFlow"}).model_engine == "tensorflow"
    assert load_settings({"MODEL_OPENVINO_HINT": "throughput"}).model_openvino_hint == (
        "throughput"
    )
    with pytest.raises(ConfigError, match="MODEL_ENGINE must be one of auto, openvino"):
        load_settings({"MODEL_ENGINE": "onnx"})
    with pytest.raises(ConfigError, match="MODEL_OPENVINO_HINT"):
        load_settings({"MODEL_OPENVINO_HINT": "fast"})
    # openvino without an IR to serve is a configuration error, found at start
    with pytest.raises(ConfigError, match="OpenVINO IR"):
        load_settings({"MODEL_ENGINE": "openvino", "MODEL_WEIGHTS": "random"})
    (tmp_path / "manifest.json").write_text('{"name": "old", "format": "saved_model"}')
    with pytest.raises(ConfigError, match="OpenVINO IR"):
        load_settings({"MODEL_ENGINE": "openvino", "MODEL_WEIGHTS": str(tmp_path)})
    gs = {"MODEL_ENGINE": "openvino", "MODEL_WEIGHTS": "gs://bucket/model"}
    assert load_settings(gs).model_engine == "openvino"  # checked when loaded


def test_choose_engine() -> None:
    old = {"name": "vgg16/t", "format": "saved_model", "path": "saved_model"}
    with_ir = {**old, "openvino": {"xml": "openvino/model.xml", "bin": "openvino/model.bin"}}
    assert model.choose_engine(with_ir, "auto") == "openvino"
    assert model.choose_engine(with_ir, "tensorflow") == "tensorflow"
    assert model.choose_engine(old, "auto") == "tensorflow"
    with pytest.raises(ValueError, match="no OpenVINO IR"):
        model.choose_engine(old, "openvino")
    with pytest.raises(ValueError, match="engine must be one of"):
        model.choose_engine(with_ir, "onnx")


def test_auto_falls_back_to_tensorflow_without_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(artifact, "openvino_available", lambda: False)
    with_ir = {
        "name": "vgg16/t",
        "format": "saved_model",
        "path": "saved_model",
        "openvino": {"xml": "openvino/model.xml", "bin": "openvino/model.bin"},
    }
    assert model.choose_engine(with_ir, "auto") == "tensorflow"


# -- the artifact ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_artifact_lists_the_ir(model_dir: Path) -> None:
    manifest = json.loads((model_dir / "manifest.json").read_text())
    entry = manifest["openvino"]
    binary = model_dir / entry["bin"]
    assert (model_dir / entry["xml"]).is_file()
    assert entry["precision"] == "fp32"
    assert binary.stat().st_size == entry["bytes"]
    # fp32, not compressed: as big as the float32 weights.bin (528 MB), not half of it
    assert abs(entry["bytes"] - manifest["weights"]["bytes"]) < 1e6
    digest = hashlib.sha256()
    with binary.open("rb") as data:
        for chunk in iter(lambda: data.read(1 << 22), b""):
            digest.update(chunk)
    assert entry["sha256"] == digest.hexdigest()
    assert 'element_type="f16"' not in (model_dir / entry["xml"]).read_text()


@pytest.mark.slow
def test_old_artifact_without_ir_loads_with_tensorflow(model_dir: Path, tmp_path: Path) -> None:
    """An artifact built before the IR existed: `auto` serves it with TensorFlow."""
    old = tmp_path / "old"
    old.mkdir()
    manifest = json.loads((model_dir / "manifest.json").read_text())
    del manifest["openvino"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    (old / "saved_model").symlink_to(model_dir / "saved_model")
    (old / "weights.bin").symlink_to(model_dir / "weights.bin")
    classifier = model.get_model(str(old), engine="auto")
    assert getattr(classifier, "engine", None) == "tensorflow"
    assert classifier.name == model.artifact_name(manifest)
    assert classifier.name.startswith("vgg16/random(seed=0)")
    with pytest.raises(ValueError, match="no OpenVINO IR"):
        model.get_model(str(old), engine="openvino")


# -- label fidelity -------------------------------------------------------------------------------


# -- concurrency ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("hint", ["latency", "throughput"])
def test_openvino_is_safe_under_concurrency(model_dir: Path, hint: str) -> None:
    classifier = model.get_model(str(model_dir), max_batch=8, engine="openvino", openvino_hint=hint)
    # latency: one stream, so concurrent requests are stacked; throughput: a pool of requests
    assert isinstance(classifier, model.MicroBatcher) == (hint == "latency")
    batch = imaging.preprocess(
        np.random.default_rng(3).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    )
    expected = [classifier.predict(batch[i : i + 1])[0] for i in range(3)]
    results: list[tuple[int, np.ndarray]] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(2):
                results.append((i, classifier.predict(batch[i : i + 1])[0]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i % 3,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 12
    for i, result in results:  # everyone got their own image's answer
        np.testing.assert_allclose(result, expected[i], rtol=0, atol=1e-6)


# -- serving without TensorFlow -------------------------------------------------------------------


@pytest.mark.slow
def test_serving_openvino_never_imports_tensorflow(model_dir: Path, base_env, standin) -> None:
    """A whole on_upload request (load, download, predict, tags, store) in a fresh process,
    with MODEL_ENGINE=auto (the default) on an artifact with an IR."""
    resource = standin.add_asset(image_bytes((1200, 800)), public_id="openvino/photo")
    env = {**base_env, "MODEL_WEIGHTS": str(model_dir)}
    env.pop("MODEL_ENGINE", None)
    result, output = on_upload_in_fresh_process(
        notification_from(resource), standin.api_secret, env
    )
    assert result["status"] == 200, result
    assert result["record"]["status"] == "done"
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert result["record"]["model"] == model.artifact_name(manifest)  # not the engine
    assert len(result["record"]["predictions"]) == 5
    assert "openvino" in result["modules"]
    heavy = [
        m
        for m in result["modules"]
        if m.split(".")[0] in ("tensorflow", "keras", "tf_keras", "ai_edge_litert")
        or m == "autotagger.model.build"
    ]
    assert heavy == []  # no tensorflow, keras, LiteRT or build-time code
    loaded = [json.loads(line) for line in output.splitlines() if '"model loaded"' in line]
    assert [line["engine"] for line in loaded] == ["openvino"]


# -- deployment -----------------------------------------------------------------------------------


def _dry_run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    artifact = tmp_path / "vgg16-imagenet"
    artifact.mkdir(exist_ok=True)
    (artifact / "manifest.json").write_text('{"name": "vgg16/imagenet", "openvino": {}}')
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PROJECT": "demo-proj"}
    return subprocess.run(
        ["bash", str(ROOT / "infra" / "deploy.sh")],
        env={**base, "BUCKET": "demo-models", "MODEL_DIR": str(artifact), "DRY_RUN": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _line(output: str, prefix: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("+ " + prefix))


def test_deploy_openvino_ships_only_the_ir_without_tensorflow(tmp_path: Path) -> None:
    done = _dry_run(tmp_path, MODEL_ENGINE="openvino", WITHOUT_TENSORFLOW="1")
    assert done.returncode == 0, done.stderr
    rsync = _line(done.stdout, "gcloud storage rsync")
    assert "gs://demo-models/models/vgg16-imagenet-openvino " in rsync
    assert "'--exclude=^(saved_model/.*|weights\\.bin)$'" in rsync
    deploy = _line(done.stdout, "gcloud functions deploy autotagger-on-upload")
    assert " --memory=2Gi " in deploy
    assert f" --source={ROOT / 'function'} " not in deploy  # a copy without tensorflow-cpu
    assert "on_upload without tensorflow-cpu" in done.stdout
    env = deploy.split("'--set-env-vars=^|^")[1].removesuffix("'").split("|")
    assert "MODEL_ENGINE=openvino" in env
    assert "MODEL_WEIGHTS=gs://demo-models/models/vgg16-imagenet-openvino" in env


def test_deploy_engine_checks(tmp_path: Path) -> None:
    done = _dry_run(tmp_path, WITHOUT_TENSORFLOW="1")
    assert done.returncode == 1
    assert "WITHOUT_TENSORFLOW=1 needs MODEL_ENGINE=openvino or MODEL_PRECISION=int8" in done.stderr
    done = _dry_run(tmp_path, MODEL_ENGINE="onnx")
    assert done.returncode == 1 and "MODEL_ENGINE must be" in done.stderr
    tensorflow = _dry_run(tmp_path, MODEL_ENGINE="tensorflow")
    assert tensorflow.returncode == 0, tensorflow.stderr
    rsync = _line(tensorflow.stdout, "gcloud storage rsync")
    assert "models/vgg16-imagenet-tensorflow " in rsync
    assert "'--exclude=^openvino(-fp16)?/.*$'" in rsync
    assert " --memory=4Gi " in _line(tensorflow.stdout, "gcloud functions deploy autotagger-on")
    (tmp_path / "vgg16-imagenet" / "manifest.json").write_text('{"name": "old"}')
    done = subprocess.run(
        ["bash", str(ROOT / "infra" / "deploy.sh")],
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "PROJECT": "p",
            "MODEL_DIR": str(tmp_path / "vgg16-imagenet"),
            "DRY_RUN": "1",
            "MODEL_ENGINE": "openvino",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1 and "has no OpenVINO IR" in done.stderr
