"""The production cold path: a model artifact fetched from Cloud Storage (`MODEL_WEIGHTS=gs://…`)
against a real fake-gcs-server on loopback: only the chosen engine's files are read, in parallel
ranged reads, each verified against the manifest's sha256; a corrupted, truncated or unlisted
file is a clear error and never a served model."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from autotagger import model
from autotagger.clients import gcs
from autotagger.domain import Manifest
from autotagger.model import build, preload
from infra import local_gcs

KIB = 1024


@pytest.fixture(scope="module")
def server() -> Iterator[local_gcs.LocalGcs]:
    running = local_gcs.start()
    running.create_bucket("models")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def emulator(server: local_gcs.LocalGcs, monkeypatch: pytest.MonkeyPatch) -> local_gcs.LocalGcs:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
    monkeypatch.setattr(gcs, "_session", None)
    monkeypatch.setattr(gcs, "CHUNK_BYTES", 64 * KIB)  # many ranged reads on small files
    return server


def _artifact(directory: Path) -> dict:
    """A small stand-in artifact: an IR pair, a SavedModel folder and weights.bin (random bytes:
    several chunks each), and a manifest recording every file as build_model.py does."""
    rng = np.random.default_rng(7)
    sizes = {
        "openvino/model.xml": 3 * KIB,
        "openvino/model.bin": 900 * KIB + 17,
        "saved_model/saved_model.pb": 5 * KIB,
        "saved_model/variables/variables.index": 100,
        "weights.bin": 700 * KIB + 3,
    }
    for path, size in sizes.items():
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_bytes(rng.bytes(size))
    manifest = {
        "name": "vgg16/test",
        "format": "saved_model",
        "path": "saved_model",
        "weights": {"path": "weights.bin"},
        "openvino": {"xml": "openvino/model.xml", "bin": "openvino/model.bin"},
        "files": build.file_entries(directory),
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def _put(emulator: local_gcs.LocalGcs, tmp_path: Path, prefix: str) -> tuple[Path, str]:
    source = tmp_path / "artifact"
    source.mkdir()
    _artifact(source)
    return source, emulator.put_artifact(source, "models", prefix)


def _openvino(manifest: Manifest) -> list[str]:
    return model.artifact_files(manifest, "fp32", "openvino")


def test_fetches_only_the_engines_files_verified(emulator, tmp_path: Path) -> None:
    source, uri = _put(emulator, tmp_path, "only-ir")
    cache = tmp_path / "cache"
    fetched = gcs.fetch(uri, _openvino, cache)
    assert fetched.files == ("openvino/model.xml", "openvino/model.bin")
    local = sorted(p.relative_to(fetched.path).as_posix() for p in fetched.path.rglob("*"))
    assert local == ["manifest.json", "openvino", "openvino/model.bin", "openvino/model.xml"]
    for path in ("openvino/model.xml", "openvino/model.bin", "manifest.json"):
        assert (fetched.path / path).read_bytes() == (source / path).read_bytes()
    manifest_bytes = (source / "manifest.json").stat().st_size
    assert fetched.bytes_read == 3 * KIB + 900 * KIB + 17 + manifest_bytes  # never weights.bin
    assert (fetched.path.stat().st_mode & 0o077) == 0  # private to this user

    again = gcs.fetch(uri, _openvino, cache)  # cached: only the manifest is read
    assert again.path == fetched.path
    assert again.files == ()
    assert again.bytes_read == manifest_bytes

    tensorflow = gcs.fetch(uri, lambda m: model.artifact_files(m, "fp32", "tensorflow"), cache)
    assert set(tensorflow.files) == {
        "saved_model/saved_model.pb",
        "saved_model/variables/variables.index",
        "weights.bin",
    }


def test_concurrent_fetches_of_one_artifact_copy_it_once(emulator, tmp_path: Path) -> None:
    """Two fetches of the same URI at once (the copy ahead of the server and a worker's load):
    one reads the files, the other waits for it and finds them cached and verified."""
    _, uri = _put(emulator, tmp_path, "twice")
    cache = tmp_path / "cache"
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: gcs.fetch(uri, _openvino, cache), range(2)))
    assert sorted(len(r.files) for r in results) == [0, 2]
    assert results[0].path == results[1].path
    locks = [p for p in (cache / "autotagger-models").iterdir() if p.name.endswith(".lock")]
    assert len(locks) == 1 and (locks[0].stat().st_mode & 0o077) == 0


def test_the_copy_ahead_of_the_server_fetches_what_the_settings_name_or_says_why(
    emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The copy's process (`python -m autotagger.model.preload`, run here in-process) reads the
    server's settings and fetches what its engine reads; a corrupted artifact ends it with a
    warning, nothing cached: the worker's load then fetches again and reports the error."""
    _, uri = _put(emulator, tmp_path, "ahead")
    cache = tmp_path / "cache"
    for name, value in {"MODEL_WEIGHTS": uri, "MODEL_ENGINE": "openvino"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MODEL_CACHE_DIR", str(cache))
    assert preload._copy() == 0
    assert "model copied ahead of the server" in capsys.readouterr().out
    assert gcs.fetch(uri, _openvino, cache).files == ()  # the worker's load: cached

    stored = emulator.root / "models" / "ahead" / "openvino" / "model.bin"
    corrupted = tmp_path / "corrupted.bin"
    corrupted.write_bytes(stored.read_bytes()[::-1])
    emulator.put("models", "ahead/openvino/model.bin", corrupted)
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path / "fresh"))
    assert preload._copy() == 1
    warning = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert warning["severity"] == "WARNING"
    assert warning["message"] == "model copy failed: the worker's load fetches again"
    assert "does not match the manifest" in warning["error"]
    assert not list((tmp_path / "fresh").rglob("model.bin"))


def test_a_corrupted_file_is_an_error_and_never_cached(
    emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, uri = _put(emulator, tmp_path, "corrupted")
    stored = emulator.root / "models" / "corrupted" / "openvino" / "model.bin"
    data = bytearray(stored.read_bytes())
    data[500 * KIB] ^= 0x01  # one bit, in the middle of a chunk in the middle of the file
    corrupted = tmp_path / "corrupted.bin"
    corrupted.write_bytes(bytes(data))
    emulator.put("models", "corrupted/openvino/model.bin", corrupted)
    cache = tmp_path / "cache"
    with pytest.raises(gcs.ArtifactError, match=r"openvino/model\.bin: sha256 .* does not match"):
        gcs.fetch(uri, _openvino, cache)
    left = [p.name for p in cache.rglob("*") if p.is_file()]
    assert "model.bin" not in left
    assert not [name for name in left if name.endswith(".part")]
    monkeypatch.setenv("MODEL_CACHE_DIR", str(cache))
    with pytest.raises(gcs.ArtifactError, match="does not match"):  # and the loader never serves
        model._load(uri, engine="openvino")


def test_a_truncated_or_missing_file_is_an_error(emulator, tmp_path: Path) -> None:
    source, uri = _put(emulator, tmp_path, "truncated")
    short = tmp_path / "short.bin"
    short.write_bytes((source / "openvino" / "model.bin").read_bytes()[: 800 * KIB])
    emulator.put("models", "truncated/openvino/model.bin", short)
    with pytest.raises(gcs.ArtifactError, match="not the manifest's"):
        gcs.fetch(uri, _openvino, tmp_path / "cache")
    (emulator.root / "models" / "truncated" / "weights.bin").unlink()
    with pytest.raises(gcs.ArtifactError, match=r"weights\.bin: cannot read it: object not found"):
        gcs.fetch(uri, lambda m: ["weights.bin"], tmp_path / "cache")


def test_unverifiable_artifacts_are_refused(emulator, tmp_path: Path) -> None:
    source, uri = _put(emulator, tmp_path, "unlisted")
    manifest = json.loads((source / "manifest.json").read_text())
    with pytest.raises(gcs.ArtifactError, match=r"no sha256 for extra\.bin"):
        gcs.fetch(uri, lambda m: ["extra.bin"], tmp_path / "cache")
    with pytest.raises(gcs.ArtifactError, match="unsafe path"):
        gcs.fetch(uri, lambda m: ["../../etc/passwd"], tmp_path / "cache")
    del manifest["files"]  # an older artifact: no per-file sha256
    old = tmp_path / "old.json"
    old.write_text(json.dumps(manifest))
    emulator.put("models", "unlisted/manifest.json", old)
    with pytest.raises(gcs.ArtifactError, match="records no sha256 per file"):
        gcs.fetch(uri, _openvino, tmp_path / "cache")
    with pytest.raises(gcs.ArtifactError, match=r"cannot read manifest\.json"):
        gcs.fetch("gs://models/nothing-here", _openvino, tmp_path / "cache")


def test_artifact_files_per_engine(model_dir: Path) -> None:
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert model.artifact_files(manifest, "fp32", "openvino") == [
        "openvino/model.xml",
        "openvino/model.bin",
    ]
    assert model.artifact_files(manifest, "fp16", "auto") == [
        "openvino-fp16/model.xml",
        "openvino-fp16/model.bin",
    ]
    tensorflow = model.artifact_files(manifest, "fp32", "tensorflow")
    assert "weights.bin" in tensorflow
    assert all(p == "weights.bin" or p.startswith("saved_model/") for p in tensorflow)
    assert {p for p in manifest["files"] if p.startswith("saved_model/")} <= set(tensorflow)
    for path, entry in manifest["files"].items():  # what build_model.py recorded is the truth
        if entry["bytes"] < 1 << 20:
            assert hashlib.sha256((model_dir / path).read_bytes()).hexdigest() == entry["sha256"]
    tflite = {"name": "vgg16/int8", "format": "tflite", "path": "model.tflite"}
    assert model.artifact_files(tflite, "int8", "auto") == ["model.tflite"]
    with pytest.raises(ValueError, match="not with MODEL_ENGINE=tensorflow"):
        model.artifact_files(manifest, "fp16", "tensorflow")


@pytest.mark.slow
def test_the_real_model_served_from_gs(
    emulator, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """VGG16's IR from the emulator through the same getter a deployment uses: the same
    probabilities as the local artifact, and only the IR and the manifest were read."""
    for path in ("manifest.json", "openvino/model.xml", "openvino/model.bin"):
        emulator.put("models", f"served/{path}", model_dir / path)
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path))
    served = model._load("gs://models/served", engine="openvino")
    batch = np.random.default_rng(3).uniform(-120, 130, (2, 224, 224, 3)).astype(np.float32)
    local = model._load(str(model_dir), engine="openvino")
    np.testing.assert_allclose(served.predict(batch), local.predict(batch), atol=1e-6)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert served.name == model.artifact_name(manifest)
    cached = sorted(p.name for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".lock")
    assert cached == ["manifest.json", "model.bin", "model.xml"]
