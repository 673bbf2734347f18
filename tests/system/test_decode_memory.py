"""The memory one decode may take: a 100 MP RGBA PNG of 0.4 MB and a 16-bit TIFF, decoded by
`imaging.load_rgb` in a fresh process whose peak RSS (getrusage) is compared with its RSS just
before the decode. The bound is README's ("Limits"): about 4 bytes a pixel for one decode, and
at most `MAX_FULL_DECODES` decodes at full size at once."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

from autotagger.media import imaging

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024
_MEASURE = """
import json, sys, threading
import psutil
from PIL import Image
from autotagger.media import imaging
data = open({path!r}, "rb").read()
with Image.open({path!r}) as probe:
    mode, pixels = probe.mode, probe.width * probe.height
before = psutil.Process().memory_info().rss
threads = [
    threading.Thread(target=imaging.load_rgb, args=(data, {max_pixels}))
    for _ in range({threads})
]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
array = imaging.load_rgb(data, {max_pixels})
# VmHWM: this process's own high-water mark (getrusage's ru_maxrss also counts the forked
# parent's memory, which survives exec)
peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
            if line.startswith("VmHWM:"))
print(json.dumps({{"growth": peak - before, "pixels": pixels, "mode": mode,
                  "shape": list(array.shape), "bytes": len(data)}}))
"""


def _png_rgba(path: Path, width: int, height: int) -> None:
    """A width x height 8-bit RGBA PNG written row by row (never whole in memory): a gradient
    band on every row, so the file stays small (zlib) but decodes to real pixels."""
    row = bytes([0]) + bytes((x * 7) % 256 for x in range(width * 4))
    compressor = zlib.compressobj(9)
    with path.open("wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n")

        def chunk(kind: bytes, data: bytes) -> None:
            out.write(struct.pack(">I", len(data)) + kind + data)
            out.write(struct.pack(">I", zlib.crc32(kind + data)))

        chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
        idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
        chunk(b"IDAT", idat)
        chunk(b"IEND", b"")


def _tiff_16bit(path: Path, width: int, height: int) -> None:
    """A 16-bit grey TIFF (deflate), written by Pillow in its own process."""
    script = (
        "import numpy as np, sys; from PIL import Image\n"
        f"w, h = {width}, {height}\n"
        "ramp = np.linspace(0, 65535, w, dtype=np.uint16)\n"
        "Image.fromarray(np.tile(ramp, (h, 1))).save(sys.argv[1], compression='tiff_deflate')\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=600)


def _measure(path: Path, max_pixels: int, threads: int = 0) -> dict[str, Any]:
    script = _MEASURE.format(
        path=str(path),
        max_pixels=max_pixels,
        threads=threads,
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def big_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("decode") / "rgba-10000x10000.png"
    _png_rgba(path, 10_000, 10_000)
    return path


@pytest.fixture(scope="module")
def big_tiff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("decode") / "grey16-8000x6000.tif"
    _tiff_16bit(path, 8000, 6000)
    return path


def test_a_100_mp_rgba_png_decodes_within_4_bytes_a_pixel(big_png: Path) -> None:
    measured = _measure(big_png, max_pixels=100_000_000)
    print(f"100 MP RGBA PNG ({measured['bytes'] / MB:.1f} MB): +{measured['growth'] / MB:.0f} MB")
    assert measured["mode"] == "RGBA" and measured["pixels"] == 100_000_000
    assert measured["shape"] == [224, 224, 3]
    assert measured["growth"] <= 4 * measured["pixels"] + 64 * MB


def test_a_16_bit_tiff_decodes_within_4_bytes_a_pixel(big_tiff: Path) -> None:
    measured = _measure(big_tiff, max_pixels=50_000_000)
    print(f"48 MP 16-bit TIFF ({measured['bytes'] / MB:.1f} MB): +{measured['growth'] / MB:.0f} MB")
    assert measured["mode"].startswith("I;16") and measured["pixels"] == 48_000_000
    assert measured["growth"] <= 4 * measured["pixels"] + 64 * MB


def test_concurrent_full_size_decodes_are_limited(big_tiff: Path) -> None:
    """Six decodes at once hold at most MAX_FULL_DECODES full-size images (2 bytes a pixel)."""
    measured = _measure(big_tiff, max_pixels=50_000_000, threads=6)
    full = 2 * measured["pixels"]
    print(f"6 concurrent 16-bit TIFF decodes: +{measured['growth'] / MB:.0f} MB")
    assert measured["growth"] <= imaging.MAX_FULL_DECODES * full + full // 2 + 64 * MB


def test_the_default_pixel_cap_refuses_the_100_mp_png_from_its_header(big_png: Path) -> None:
    from autotagger.config import DEFAULT_MAX_IMAGE_PIXELS
    from autotagger.errors import ImageError

    with pytest.raises(ImageError, match="MAX_IMAGE_PIXELS"):
        imaging.load_rgb(big_png.read_bytes(), DEFAULT_MAX_IMAGE_PIXELS)
