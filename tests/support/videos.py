"""Real short media files for the video tests and `python -m infra.bench.video`, made with PyAV."""

from __future__ import annotations

import io
import math
import struct
import wave

from PIL import Image, ImageDraw

# One look per scene: background, shape color, shape ("ellipse" | "rectangle" | "stripes").
_SCENES = [
    ((20, 90, 200), (250, 220, 40), "ellipse"),
    ((30, 140, 60), (120, 70, 30), "rectangle"),
    ((230, 230, 230), (200, 20, 20), "stripes"),
    ((15, 15, 30), (240, 240, 255), "ellipse"),
    ((240, 150, 40), (40, 40, 160), "rectangle"),
    ((120, 30, 120), (30, 200, 200), "stripes"),
]


def scene(index: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A still picture, clearly different for every `index` (mod 6)."""
    background, color, shape = _SCENES[index % len(_SCENES)]
    width, height = size
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    if shape == "ellipse":
        draw.ellipse([width * 0.25, height * 0.2, width * 0.75, height * 0.8], fill=color)
    elif shape == "rectangle":
        draw.rectangle([width * 0.1, height * 0.45, width * 0.9, height * 0.9], fill=color)
    else:
        for x in range(0, width, 24):
            draw.rectangle([x, 0, x + 11, height], fill=color)
    return image


def make_mp4(
    scenes: int = 4,
    scene_s: float = 1.0,
    fps: int = 10,
    size: tuple[int, int] = (320, 240),
) -> bytes:
    """An H.264 MP4 of `scenes` still scenes of `scene_s` seconds each (a keyframe per second)."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = fps
        for index in range(scenes):
            picture = scene(index, size)
            for _ in range(round(scene_s * fps)):
                frame = av.VideoFrame.from_image(picture)
                container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def make_wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A mono 440 Hz tone: an audio-only upload."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        samples = (
            int(12000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(seconds * rate))
        )
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return buffer.getvalue()
