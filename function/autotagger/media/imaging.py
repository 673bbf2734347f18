"""Decode any image Pillow understands into VGG16's input, safely and fast.

Keras's VGG16 pipeline is `load_img(path, target_size=(224, 224))` (a squash resize, no crop)
followed by `preprocess_input` ("caffe" mode: RGB->BGR, minus the ImageNet channel means, no
scaling). We do the same with one documented deviation: the resize is bilinear with Pillow's
antialiasing (Keras's `load_img` defaults to nearest), and JPEGs are first decoded at a reduced
scale with `Image.draft()`, which is Pillow's DCT-domain downscale, so big photos are never fully
decoded. `tests/integration/test_parity.py` checks the rest is identical to Keras.

Memory: other formats (PNG, TIFF, WebP, ...) decode at full size, at most 4 bytes a pixel
(`MAX_IMAGE_PIXELS` caps the pixels, checked from the header). The full-size image is reduced
(`Image.reduce`, a box filter, to no less than twice the model's input) before any conversion,
and freed before the next step, so mode conversions, alpha flattening and EXIF rotation work on
a small image; at most `MAX_FULL_DECODES` such decodes run at once. One decode's peak is then
about 4 bytes x MAX_IMAGE_PIXELS, the process's about MAX_FULL_DECODES times that (README,
"Limits").
"""

from __future__ import annotations

import contextlib
import io
import threading

import numpy as np
from PIL import ExifTags, Image, ImageFile, UnidentifiedImageError

from autotagger.errors import ImageError

INPUT_SIZE = (224, 224)
# ImageNet channel means in BGR order, as keras.applications.imagenet_utils uses for "caffe".
BGR_MEAN = np.array([103.939, 116.779, 123.68], dtype=np.float32)
_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}

# Decodes of more pixels than this (16 MB at 4 bytes a pixel) take a slot of MAX_FULL_DECODES.
FULL_DECODE_PIXELS = 4_000_000
MAX_FULL_DECODES = 2
STRIP_PIXELS = 1_000_000  # the rows of an alpha image reduced at once (`_reduce_in_strips`)
_full_decodes = threading.BoundedSemaphore(MAX_FULL_DECODES)
# EXIF orientation -> the transpose that shows the picture upright (as ImageOps.exif_transpose).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = {
    Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_270,
}
_REDUCIBLE_MODES = {"L", "LA", "La", "PA", "RGB", "RGBA", "RGBa", "CMYK", "YCbCr", "I", "F"}

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


def _reduce(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image` box-filtered down by whole factors to no less than twice `size` (itself when it
    is already that small): Pillow's `reduce` where the mode has it, else a BOX resize (16-bit
    grey; palette and bilevel images, which Pillow resizes by nearest neighbour)."""
    factors = (max(1, image.width // (2 * size[0])), max(1, image.height // (2 * size[1])))
    if factors == (1, 1):
        return image
    if image.mode in ("LA", "RGBA"):
        return _reduce_in_strips(image, factors)
    if image.mode in _REDUCIBLE_MODES:
        return image.reduce(factors)
    target = (image.width // factors[0], image.height // factors[1])
    return image.resize(target, Image.Resampling.BOX)


def _reduce_in_strips(image: Image.Image, factors: tuple[int, int]) -> Image.Image:
    """`image.reduce(factors)` for a mode with alpha, which Pillow premultiplies (a full-size
    copy) before reducing: here one strip of rows at a time, so the copies stay small."""
    rows = factors[1] * max(1, STRIP_PIXELS // (image.width * factors[1]))
    strips = [
        image.crop((0, top, image.width, min(top + rows, image.height))).reduce(factors)
        for top in range(0, image.height, rows)
    ]
    out = Image.new(image.mode, (strips[0].width, sum(strip.height for strip in strips)))
    top = 0
    for strip in strips:
        out.paste(strip, (0, top))
        top += strip.height
    return out


def _decode_small(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Decode `image` and return it upright and reduced (`_reduce`); a full-size decode holds a
    MAX_FULL_DECODES slot until its full-size pixels are freed."""
    big = image.width * image.height > FULL_DECODE_PIXELS
    with _full_decodes if big else contextlib.nullcontext():
        image.load()
        orientation = image.getexif().get(ExifTags.Base.Orientation)
        transpose = _ORIENTATION.get(orientation) if isinstance(orientation, int) else None
        if transpose in _SWAPS_AXES:
            size = (size[1], size[0])  # reduced before the rotation: the axes swap
        # Only a big decode is reduced (memory); smaller ones keep Keras's exact resize.
        reduced = _reduce(image, size) if big else image
        if reduced is not image:
            image.close()  # frees the full-size pixels now, not when collected
    return reduced.transpose(transpose) if transpose is not None else reduced


def load_rgb(data: bytes, max_pixels: int, size: tuple[int, int] = INPUT_SIZE) -> np.ndarray:
    """Decode `data` to a (224, 224, 3) uint8 RGB array; raise ImageError when impossible."""
    image = _open(data, max_pixels)
    try:
        if image.tell() != 0:  # animated GIF/WebP/APNG: the first frame (open is there already;
            image.seek(0)  # SPIDER's seek raises on single-image files)
        if image.format == "JPEG":
            # Decode at the smallest DCT scale that is still >= 2x the target (for antialiasing).
            image.draft("RGB", (size[0] * 2, size[1] * 2))
        small = _decode_small(image, size)
        rgb = _to_rgb(small)
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
