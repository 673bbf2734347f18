"""Parity with Keras's own VGG16 pipeline on the same weights.

Our serving path (imaging.load_rgb + imaging.preprocess + the SavedModel artifact + model.top_k)
against Keras's (`load_img(..., interpolation="bilinear")` + `preprocess_input` + the Keras
model + `decode_predictions`). The one documented deviation, bilinear instead of `load_img`'s
default nearest-neighbour resize (and JPEG draft decoding), is outside what this compares.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from autotagger import model
from autotagger.media import imaging
from tests.support import keras_reference
from tests.support.helpers import image_bytes

pytestmark = pytest.mark.slow


def _images() -> list[bytes]:
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 255, (300, 260, 3), dtype=np.uint8)
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    return [
        image_bytes((640, 480), (220, 40, 40), "PNG"),
        image_bytes((300, 500), (20, 200, 90), "PNG"),
        buffer.getvalue(),
    ]


@pytest.mark.isolated  # imports Keras, hence TensorFlow
def test_preprocess_matches_keras() -> None:
    from keras.applications.vgg16 import preprocess_input

    batch = np.random.default_rng(1).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    np.testing.assert_allclose(
        imaging.preprocess(batch), preprocess_input(batch.astype(np.float32)), rtol=0, atol=1e-4
    )


@pytest.mark.isolated  # imports Keras, hence TensorFlow
def test_decode_matches_keras(monkeypatch: pytest.MonkeyPatch) -> None:
    from keras.src.applications import imagenet_utils

    # Keras would download this very file; hand it our shipped copy instead (no network).
    monkeypatch.setattr(
        imagenet_utils, "CLASS_INDEX", json.loads(model.CLASS_INDEX_PATH.read_text())
    )
    probabilities = np.random.default_rng(3).dirichlet(np.ones(1000), size=2).astype(np.float32)
    theirs = imagenet_utils.decode_predictions(probabilities, top=5)
    for row, decoded in zip(probabilities, theirs, strict=True):
        ours = model.top_k(row, 5)
        assert [(p.wnid, p.label) for p in ours] == [(w, label) for w, label, _ in decoded]
        np.testing.assert_allclose([p.score for p in ours], [s for *_, s in decoded])


def test_end_to_end_matches_keras(model_dir: Path) -> None:
    served = model.get_model(str(model_dir))
    assert served.name.startswith("vgg16/random(seed=0)@")
    images = _images()
    keras = keras_reference.of_images(images)
    assert keras.pixels is not None
    for data, keras_pixels, keras_probs in zip(
        images, keras.pixels, keras.probabilities, strict=True
    ):
        our_pixels = imaging.load_rgb(data, 10**8)
        np.testing.assert_array_equal(our_pixels, keras_pixels.astype(np.uint8))
        our_probs = served.predict(imaging.preprocess(our_pixels[None]))[0]
        np.testing.assert_allclose(our_probs, keras_probs, rtol=1e-3, atol=1e-6)
        assert [p.wnid for p in model.top_k(our_probs, 5)] == [
            p.wnid for p in model.top_k(keras_probs, 5)
        ]
