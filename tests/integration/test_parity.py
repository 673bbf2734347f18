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
from autotagger.model import build
from tests.support.helpers import image_bytes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def keras_vgg16():
    keras_model, name = build.build_keras_vgg16("random")
    assert name == "vgg16/random(seed=0)"
    return keras_model


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


def test_preprocess_matches_keras() -> None:
    from keras.applications.vgg16 import preprocess_input

    batch = np.random.default_rng(1).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    np.testing.assert_allclose(
        imaging.preprocess(batch), preprocess_input(batch.astype(np.float32)), rtol=0, atol=1e-4
    )


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


def test_end_to_end_matches_keras(keras_vgg16, model_dir: Path, tmp_path: Path) -> None:
    from keras.applications.vgg16 import preprocess_input
    from keras.utils import img_to_array, load_img

    served = model.get_model(str(model_dir))
    for i, data in enumerate(_images()):
        path = tmp_path / f"{i}.png"
        path.write_bytes(data)
        keras_pixels = img_to_array(
            load_img(path, target_size=(224, 224), interpolation="bilinear")
        )
        our_pixels = imaging.load_rgb(data, 10**8)
        np.testing.assert_array_equal(our_pixels, keras_pixels.astype(np.uint8))

        keras_probs = keras_vgg16.predict(preprocess_input(keras_pixels[None]), verbose=0)[0]
        our_probs = served.predict(imaging.preprocess(our_pixels[None]))[0]
        np.testing.assert_allclose(our_probs, keras_probs, rtol=1e-3, atol=1e-6)
        assert [p.wnid for p in model.top_k(our_probs, 5)] == [
            p.wnid for p in model.top_k(keras_probs, 5)
        ]
