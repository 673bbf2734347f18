"""The inputs the parity tests give both our pipeline and Keras's: fixed, seeded, lossless (PNG),
so both decode the very same pixels. One module, so Keras answers all of them in one process
(tests/support/keras_reference.py)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

from autotagger.media import imaging
from infra import near_duplicates
from tests.support.helpers import image_bytes


def parity_images() -> list[bytes]:
    """Two flat colours and a noise image: the end-to-end pipeline against Keras's."""
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 255, (300, 260, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    return [
        image_bytes((640, 480), (220, 40, 40), "PNG"),
        image_bytes((300, 500), (20, 200, 90), "PNG"),
        buffer.getvalue(),
    ]


def engine_images() -> list[bytes]:
    """Photo-like, drawn and noisy images of several sizes and aspect ratios: every engine's
    labels against Keras's."""
    rng = np.random.default_rng(14)
    images = [
        image_bytes((640, 480), (220, 40, 40), "PNG"),
        image_bytes((300, 500), (20, 200, 90), "PNG"),
    ]
    for size in [(800, 600), (500, 900), (1024, 256), (224, 224)]:
        canvas = Image.linear_gradient("L").resize(size).convert("RGB")
        draw = ImageDraw.Draw(canvas)
        for _ in range(10):
            x0, y0 = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
            box = (x0, y0, x0 + int(rng.integers(10, size[0])), y0 + int(rng.integers(10, size[1])))
            color = tuple(int(v) for v in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=color)
        out = io.BytesIO()
        canvas.save(out, "PNG")
        images.append(out.getvalue())
    for size in [(260, 300), (640, 640)]:
        out = io.BytesIO()
        noise = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(noise).save(out, "PNG")
        images.append(out.getvalue())
    return images


def embedding_pictures() -> tuple[list[bytes], np.ndarray]:
    """Five different pictures and near-duplicates of the first; and our preprocessed batch of
    them (what the embedding tests feed every engine, Keras's model included)."""
    images = [near_duplicates.picture(seed) for seed in range(5)]
    images += near_duplicates.variants(images[0])
    pixels = np.stack([imaging.load_rgb(data, 10**8) for data in images])
    return images, imaging.preprocess(pixels)


def preprocess_pixels() -> np.ndarray:
    """uint8 RGB batch for our preprocessing against Keras's `preprocess_input`."""
    return np.random.default_rng(1).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)


def decode_probabilities() -> np.ndarray:
    """Random distributions for our top-k against Keras's `decode_predictions`."""
    return np.random.default_rng(3).dirichlet(np.ones(1000), size=2).astype(np.float32)
