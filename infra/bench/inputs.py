"""The images a benchmark sends: a realistic photo at any size, photos and drawings at the
aspect ratios uploads have, and what the Cloudinary stand-in renders from them."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from infra.local_cloudinary import media as standin_media

SAMPLE_PHOTO = Path(__import__("matplotlib").get_data_path()) / "sample_data" / "grace_hopper.jpg"


def photo(size: tuple[int, int], noise: float = 4.0, quality: int = 90) -> bytes:
    """A JPEG photo of `size`: the sample portrait resized, with sensor-like noise (realistic
    file size: ~2.5 MB at 12 MP)."""
    base = Image.open(SAMPLE_PHOTO).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    pixels = np.asarray(base, dtype=np.float32)
    pixels += np.random.default_rng(size[0]).normal(0.0, noise, pixels.shape)
    out = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=quality)
    return out.getvalue()


def render(data: bytes, transformation: str) -> bytes:
    """What the stand-in delivers for `transformation` (e.g. a rendition) of `data`."""
    steps = standin_media.parse_transformation(transformation.split("/"))
    formats = [s["f"] for s in steps if "f" in s]
    return standin_media.render(data, steps, formats[-1] if formats else "png")


def resize_images() -> list[tuple[str, bytes]]:
    """Photos and drawings at the aspect ratios uploads have (portrait, 4:3, 16:9, square)."""
    portrait = Image.open(SAMPLE_PHOTO).convert("RGB")
    images = []
    for name, size in [("portrait", (600, 800)), ("4:3", (1600, 1200)), ("16:9", (1920, 1080))]:
        images.append((f"photo {name}", photo(size)))
    for name, box in [("head crop", (100, 80, 420, 400)), ("wide crop", (0, 250, 512, 450))]:
        out = io.BytesIO()
        portrait.crop(box).save(out, "JPEG", quality=92)
        images.append((f"photo {name}", out.getvalue()))
    from PIL import ImageDraw

    rng = np.random.default_rng(5)
    for i, size in enumerate([(800, 800), (1200, 600), (600, 1200), (1024, 768), (2000, 800)]):
        canvas = Image.linear_gradient("L").resize(size).convert("RGB")
        draw = ImageDraw.Draw(canvas)
        for _ in range(12):
            x0, y0 = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
            w, h = int(rng.integers(20, size[0] // 2)), int(rng.integers(20, size[1] // 2))
            color = tuple(int(v) for v in rng.integers(0, 256, 3))
            shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
            shape((x0, y0, x0 + w, y0 + h), fill=color)
        out = io.BytesIO()
        canvas.save(out, "JPEG", quality=90)
        images.append((f"drawing {i} {size[0]}x{size[1]}", out.getvalue()))
    return images
