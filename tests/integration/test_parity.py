"""Parity with Keras's own VGG16 pipeline on the same weights.

Our serving path (imaging.load_rgb + imaging.preprocess + the SavedModel artifact + model.top_k)
against Keras's (`load_img(..., interpolation="bilinear")` + `preprocess_input` + the Keras
model + `decode_predictions`). The one documented deviation, bilinear instead of `load_img`'s
default nearest-neighbour resize (and JPEG draft decoding), is outside what this compares.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autotagger import model
from autotagger.media import imaging
from tests.support import keras_reference, parity_inputs

pytestmark = pytest.mark.slow


def test_preprocess_matches_keras(keras_answers: keras_reference.Answers) -> None:
    pixels = parity_inputs.preprocess_pixels()
    theirs = keras_answers.preprocessed
    np.testing.assert_allclose(imaging.preprocess(pixels), theirs, rtol=0, atol=1e-4)


def test_decode_matches_keras(keras_answers: keras_reference.Answers) -> None:
    probabilities = parity_inputs.decode_probabilities()
    theirs = keras_answers.decoded
    assert len(theirs) == len(probabilities)
    for row, decoded in zip(probabilities, theirs, strict=True):
        ours = model.top_k(row, 5)
        assert [(p.wnid, p.label) for p in ours] == [(w, label) for w, label, _ in decoded]
        np.testing.assert_allclose([p.score for p in ours], [s for *_, s in decoded])


def test_end_to_end_matches_keras(model_dir: Path, keras_answers: keras_reference.Answers) -> None:
    served = model.get_model(str(model_dir))
    assert served.name.startswith("vgg16/random(seed=0)@")
    images = parity_inputs.parity_images()
    keras = keras_answers.parity
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
