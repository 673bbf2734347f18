"""Decode any image Pillow understands into VGG16's input, safely and fast.

Keras's VGG16 pipeline is `load_img(path, target_size=(224, 224))` (a squash resize, no crop)
followed by `preprocess_input` ("caffe" mode: RGB->BGR, minus the ImageNet channel means, no
scaling). We do the same with one documented deviation: the resize is bilinear with Pillow's
antialiasing (Keras's `load_img` defaults to nearest), and JPEGs are first decoded at a reduced
scale with `Image.draft()`, which is Pillow's DCT-domain downscale, so big photos are never fully
decoded. `tests/test_parity.py` checks the rest is identical to Keras.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from autotagger.errors import ImageError

INPUT_SIZE = (224, 224)
# ImageNet channel means in BGR order, as keras.applications.imagenet_utils uses for "caffe".
BGR_MEAN = np.array([103.939, 116.779, 123.68], dtype=np.float32)
_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}

ImageFile.LOAD_TRUNCATED_IMAGES = False
# Pillow's own bomb check (a warning at 89 MP) is replaced by MAX_IMAGE_PIXELS, checked in
# `_open` from the header, before any pixel is decoded.
Image.MAX_IMAGE_PIXELS = None


def _describe(exc: Exception) -> str:
    """The reason stored in the `failed` record: the exception's type and its message."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def _open(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise ImageError("empty file (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageError("not an image Pillow can identify") from None
    except Exception as exc:  # any plugin's failure on these bytes is the file's fault
        raise ImageError(f"cannot open image: {_describe(exc)}") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError("image has no pixels")
    if width * height > max_pixels:
        raise ImageError(
            f"image is {width}x{height} = {width * height} pixels, "
            f"over MAX_IMAGE_PIXELS={max_pixels}"
        )
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    """Flatten any mode to 8-bit RGB: alpha over white, CMYK/palette converted, 16-bit scaled."""
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "F":
        values = np.asarray(image, dtype=np.float32)
        peak = float(values.max()) if values.size else 0.0
        scale = 255.0 / 65535.0 if peak > 255 else 1.0
        gray = np.clip(values * scale, 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "RGBa", "La", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode != "RGB":
        return image.convert("RGB")
    return image


def load_rgb(data: bytes, max_pixels: int, size: tuple[int, int] = INPUT_SIZE) -> np.ndarray:
    """Decode `data` to a (224, 224, 3) uint8 RGB array; raise ImageError when impossible."""
    image = _open(data, max_pixels)
    try:
        if image.tell() != 0:  # animated GIF/WebP/APNG: the first frame (open is there already;
            image.seek(0)  # SPIDER's seek raises on single-image files)
        if image.format == "JPEG":
            # Decode at the smallest DCT scale that is still >= 2x the target (for antialiasing).
            image.draft("RGB", (size[0] * 2, size[1] * 2))
        image = ImageOps.exif_transpose(image)
        rgb = _to_rgb(image)
        resized = rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=None)
        array = np.asarray(resized, dtype=np.uint8)
    except ImageError:
        raise
    except Exception as exc:  # NotImplementedError, struct.error, ...: the file's fault too
        raise ImageError(f"cannot decode image: {_describe(exc)}") from None
    if array.shape != (size[1], size[0], 3):
        raise ImageError(f"unexpected decoded shape {array.shape}")
    return array


def preprocess(batch: np.ndarray) -> np.ndarray:
    """Keras's VGG16 `preprocess_input` for uint8 RGB (N, H, W, 3): BGR float32 minus means."""
    return batch[..., ::-1].astype(np.float32) - BGR_MEAN
