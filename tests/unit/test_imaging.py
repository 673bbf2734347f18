"""Decoding odd images into VGG16's input (Pillow only, no model)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from autotagger.errors import ImageError
from autotagger.media.imaging import BGR_MEAN, load_rgb, preprocess
from tests.support.helpers import image_bytes

MAX_PIXELS = 100_000_000


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _split(left: tuple[int, ...], right: tuple[int, ...], mode: str = "RGB") -> Image.Image:
    image = Image.new(mode, (200, 100), left)
    image.paste(right, (100, 0, 200, 100))
    return image


def test_jpeg_is_decoded_to_224_rgb() -> None:
    array = load_rgb(image_bytes((4000, 3000)), MAX_PIXELS)
    assert array.shape == (224, 224, 3)
    assert array.dtype == np.uint8
    # the red square (placed at 1/4..1/2 of the width and height) survives the draft decode
    assert tuple(int(v) for v in array[84, 84]) == pytest.approx((200, 30, 30), abs=12)


def test_exif_orientation_is_applied() -> None:
    image = _split((255, 0, 0), (0, 0, 255))  # red left, blue right
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    array = load_rgb(_save(image, "JPEG", exif=exif, quality=95), MAX_PIXELS)
    top, bottom = array[20, 112], array[200, 112]
    assert top[0] > 200 and top[2] < 60  # red is on top after the rotation
    assert bottom[2] > 200 and bottom[0] < 60


def test_alpha_is_composited_on_white() -> None:
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    array = load_rgb(_save(image, "PNG"), MAX_PIXELS)
    assert array.min() == 255


def test_palette_with_transparency() -> None:
    image = Image.new("P", (64, 64), 1)
    image.putpalette([0, 0, 0, 10, 200, 10] + [0] * 762)
    array = load_rgb(_save(image, "PNG", transparency=0), MAX_PIXELS)
    assert tuple(array[10, 10]) == (10, 200, 10)


def test_cmyk_jpeg() -> None:
    image = Image.new("CMYK", (64, 64), (0, 255, 255, 0))  # pure red in CMYK
    array = load_rgb(_save(image, "JPEG", quality=95), MAX_PIXELS)
    assert array[32, 32, 0] > 200 and array[32, 32, 1] < 60


def test_sixteen_bit_png_is_scaled_not_clipped() -> None:
    values = np.full((64, 64), 32768, dtype=np.uint16)  # mid grey in 16 bits
    array = load_rgb(_save(Image.fromarray(values), "PNG"), MAX_PIXELS)
    assert 120 <= int(array[10, 10, 0]) <= 135


def test_animated_gif_uses_the_first_frame() -> None:
    frames = [Image.new("RGB", (32, 32), c) for c in ((250, 0, 0), (0, 250, 0))]
    data = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    array = load_rgb(data, MAX_PIXELS)
    assert array[5, 5, 0] > 200 and array[5, 5, 1] < 60


def test_one_pixel_image() -> None:
    assert load_rgb(_save(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG"), MAX_PIXELS).shape == (
        224,
        224,
        3,
    )


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels in a few dozen bytes (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = b"IDAT" + zlib.compress(b"\x00" * 64)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk)),
            struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat)),
            struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND")),
        ]
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"<!doctype html><html><body>not an image</body></html>", "identify"),
        (image_bytes((640, 480))[:2000], "decode"),  # truncated JPEG
        (_png_header_only(20000, 20000), "pixels"),
    ],
)
def test_broken_input_raises_image_error(data: bytes, reason: str) -> None:
    with pytest.raises(ImageError) as caught:
        load_rgb(data, MAX_PIXELS)
    assert reason in caught.value.reason


def test_pixel_cap_is_checked_before_decoding() -> None:
    with pytest.raises(ImageError, match="MAX_IMAGE_PIXELS"):
        load_rgb(image_bytes((400, 300)), max_pixels=100_000)


def test_preprocess_is_bgr_minus_imagenet_means() -> None:
    batch = np.zeros((1, 2, 2, 3), dtype=np.uint8)
    batch[..., 0] = 10  # R
    batch[..., 2] = 30  # B
    out = preprocess(batch)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0, 0], np.array([30, 0, 10]) - BGR_MEAN, rtol=1e-6)
