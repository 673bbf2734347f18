"""The TensorFlow engine (the artifact's SavedModel) beside OpenVINO and Keras's reference
pipeline: the same labels and the same embedding on the project's seeded weights, and an artifact
built before the embedding still serving its labels.

These tests hold TensorFlow beside an OpenVINO model, so they run together in one fresh process
(`isolated`, tests/support/isolated.py): TensorFlow's import and the SavedModel's load are paid
once for the three.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autotagger import model
from autotagger.media import imaging
from tests.support import keras_reference, parity_inputs

pytestmark = [pytest.mark.slow, pytest.mark.isolated]


def test_openvino_labels_match_tensorflow_and_keras(
    model_dir: Path, keras_answers: keras_reference.Answers
) -> None:
    """OpenVINO, TensorFlow (both served from the artifact) and Keras's reference pipeline
    (`load_img` bilinear + `preprocess_input` + the Keras model) on the project's seeded
    weights: identical top-5 and probabilities within 1e-5 on every image."""
    openvino = model.get_model(str(model_dir), engine="openvino")
    tensorflow = model.get_model(str(model_dir), engine="tensorflow")
    assert getattr(openvino, "engine", None) == "openvino"
    assert getattr(tensorflow, "engine", None) == "tensorflow"
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert openvino.name == tensorflow.name == model.artifact_name(manifest)
    assert manifest["name"] == "vgg16/random(seed=0)"

    images = parity_inputs.engine_images()
    reference = keras_answers.engines.probabilities
    batch = imaging.preprocess(np.stack([imaging.load_rgb(data, 10**8) for data in images]))
    by_engine = {
        "openvino": openvino.predict(batch),
        "openvino, one at a time": np.concatenate([openvino.predict(b[None]) for b in batch]),
        "tensorflow": tensorflow.predict(batch),
    }
    # the seeded weights score like a classifier, not a coin: every image has a clear winner,
    # at least 5x the uniform 1/1000 (so 1e-5 is a tight tolerance, and top-5 is no tie-break)
    assert float(reference.max(axis=1).min()) > 0.005
    for engine, probabilities in by_engine.items():
        for other_name, other in [("keras", reference), ("tensorflow", by_engine["tensorflow"])]:
            np.testing.assert_allclose(
                probabilities, other, rtol=0, atol=1e-5, err_msg=f"{engine} vs {other_name}"
            )
            for row, (mine, theirs) in enumerate(zip(probabilities, other, strict=True)):
                assert [p.wnid for p in model.top_k(mine, 5)] == [
                    p.wnid for p in model.top_k(theirs, 5)
                ], f"{engine} vs {other_name}, image {row}"


def test_embedding_parity_openvino_tensorflow_keras(
    model_dir: Path, keras_answers: keras_reference.Answers
) -> None:
    """OpenVINO and TensorFlow (both from the artifact) against Keras's own block5_pool,
    averaged and normalised independently here: within 1e-5, in the forward that also gives
    the probabilities, batched or one by one."""
    _, batch = parity_inputs.embedding_pictures()
    keras = keras_answers.embedding
    reference, reference_probabilities = keras.embeddings, keras.probabilities

    by_engine: dict[str, model.Inference] = {}
    for engine in ("openvino", "tensorflow"):
        classifier = model.get_model(str(model_dir), engine=engine)
        assert model.embedding_dim(classifier) == 512
        by_engine[engine] = model.infer(classifier, batch)
        one_by_one = [model.infer(classifier, b[None]) for b in batch]
        by_engine[f"{engine}, one at a time"] = model.Inference(
            np.concatenate([o.probabilities for o in one_by_one]),
            np.concatenate([o.embeddings for o in one_by_one if o.embeddings is not None]),
        )
    for engine, out in by_engine.items():
        assert out.embeddings is not None and out.embeddings.shape == (len(batch), 512)
        assert out.embeddings.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(out.embeddings, axis=1), 1.0, atol=1e-5)
        np.testing.assert_allclose(out.embeddings, reference, rtol=0, atol=1e-5, err_msg=engine)
        np.testing.assert_allclose(
            out.probabilities, reference_probabilities, rtol=0, atol=1e-5, err_msg=engine
        )
    # the pictures differ more than the engines do
    distances = 1 - reference @ reference.T
    assert distances[np.triu_indices(5, k=1)].min() > 100 * 1e-5


def test_old_artifact_without_embedding_serves_labels_and_says_so_once(
    model_dir: Path, keras_answers: keras_reference.Answers, capsys: pytest.CaptureFixture[str]
) -> None:
    """An artifact built before the embedding (a single-output SavedModel, no `embedding` in
    its manifest) still serves the same labels; its classifier has no embedding, and the load
    logs that once."""
    old_artifact = keras_answers.old_artifact
    capsys.readouterr()
    old = model.get_model(str(old_artifact), engine="tensorflow")
    again = model.get_model(str(old_artifact), engine="tensorflow")
    assert again is old and model.embedding_dim(old) is None
    logged = capsys.readouterr().out
    assert logged.count("model has no embedding output") == 1
    _, batch = parity_inputs.embedding_pictures()
    out = model.infer(old, batch)
    assert out.embeddings is None
    current = model.get_model(str(model_dir), engine="tensorflow")
    np.testing.assert_allclose(out.probabilities, current.predict(batch), rtol=0, atol=1e-5)
