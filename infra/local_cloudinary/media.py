"""Decoding and rendering with Pillow and PyAV: what a file is (image probe, video/audio probe),
Cloudinary's transformation strings, and the rendition they describe (video frames included).

Only the transformations ``parse_transformation`` accepts exist in the stand-in.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from PIL import Image, ImageOps

PIL_TO_FORMAT = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
FORMAT_TO_PIL = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}
MIME = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
VIDEO_EXTS = {"mp4", "mov", "webm", "avi", "mkv", "m4v", "ogv"}
AUDIO_EXTS = {"mp3", "wav", "m4a", "aac", "ogg", "oga", "flac", "opus"}
_GRAVITY = {"center": (0.5, 0.5), "auto": (0.5, 0.5), "north": (0.5, 0.0), "south": (0.5, 1.0)}
_GRAVITY.update(east=(1.0, 0.5), west=(0.0, 0.5), north_east=(1.0, 0.0), north_west=(0.0, 0.0))
_GRAVITY.update(south_east=(1.0, 1.0), south_west=(0.0, 1.0))
_QUALITY = {"auto": 80, "auto:best": 92, "auto:good": 80, "auto:eco": 65, "auto:low": 50}


def probe_image(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) when Pillow can decode ``data``, else None."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            name = img.format or ""
            return PIL_TO_FORMAT.get(name, name.lower()), img.width, img.height
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def parse_transformation(segments: Iterable[str]) -> list[dict[str, str]]:
    """``["c_fill,w_224,h_224", "f_png"]`` → one dict per chained step; ValueError(component)."""
    steps = []
    for segment in segments:
        step: dict[str, str] = {}
        for component in segment.split(","):
            key, _, value = component.partition("_")
            valid = {
                "c": value in ("fill", "scale", "fit", "limit"),
                "w": re.fullmatch(r"\d+(\.\d+)?", value) is not None,
                "h": re.fullmatch(r"\d+(\.\d+)?", value) is not None,
                "g": value in _GRAVITY,
                "f": value in ("jpg", "jpeg", "png", "webp", "gif", "auto"),
                "so": re.fullmatch(r"\d+(\.\d+)?", value) is not None,
                "q": value in _QUALITY or (value.isdigit() and 1 <= int(value) <= 100),
            }.get(key, False)
            if not valid:
                raise ValueError(component)
            step[key] = value
        steps.append(step)
    return steps


def _dimension(value: str | None, original: int) -> int | None:
    """``w_224`` → 224; ``w_0.5`` → half of the original (Cloudinary's relative sizes)."""
    if value is None:
        return None
    return max(1, round(original * float(value))) if "." in value else int(value)


def _apply_step(img: Image.Image, step: Mapping[str, str]) -> Image.Image:
    """One transformation step with Pillow: c_fill, c_scale (the default), c_fit, c_limit."""
    width, height = img.size
    w, h = _dimension(step.get("w"), width), _dimension(step.get("h"), height)
    crop = step.get("c", "scale")
    if w is None and h is None:
        return img
    if crop == "fill" and w and h:
        centering = _GRAVITY[step.get("g", "center")]
        return ImageOps.fit(img, (w, h), Image.Resampling.LANCZOS, centering=centering)
    if crop in ("fit", "limit"):
        ratio = min(w / width if w else float("inf"), h / height if h else float("inf"))
        if crop == "limit" and ratio >= 1:
            return img
        w, h = round(width * ratio), round(height * ratio)
    elif w is None:  # scale (or fill) with one side given keeps the aspect ratio
        assert h is not None
        w = round(width * h / height)
    elif h is None:
        h = round(height * w / width)
    return img.resize((max(1, w), max(1, h)), Image.Resampling.LANCZOS)


@dataclass(frozen=True)
class Media:
    """What PyAV reads from a video or audio file."""

    duration: float | None
    width: int | None
    height: int | None
    frame_rate: float | None
    is_audio: bool
    format: str | None = None


def probe_media(data: bytes) -> Media | None:
    """Duration, size and kind of a video/audio file, or None when PyAV cannot read it."""
    import av

    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            videos, audios = container.streams.video, container.streams.audio
            if not videos and not audios:
                return None
            names = container.format.name.split(",")
            fmt = "mp4" if "mp4" in names else names[0]
            duration = container.duration / av.time_base if container.duration else None
            if not videos:
                return Media(duration, None, None, None, is_audio=True, format=fmt)
            stream = videos[0]
            if duration is None and stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            rate = float(stream.average_rate) if stream.average_rate else None
            return Media(duration, stream.width, stream.height, rate, is_audio=False, format=fmt)
    except (av.FFmpegError, ValueError, OSError):
        return None


def video_frame(data: bytes, at: float) -> Image.Image:
    """The frame shown at `at` seconds (the last one for times past the end); ValueError if the
    video cannot be decoded."""
    import av

    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video:
                raise ValueError("no video stream")
            stream = container.streams.video[0]
            if at > 0 and stream.time_base:
                container.seek(int(at / stream.time_base), stream=stream)  # keyframe before `at`
            chosen = None
            for frame in container.decode(stream):
                if chosen is not None and frame.time is not None and frame.time > at + 1e-6:
                    break
                chosen = frame
            if chosen is None:
                raise ValueError("no decodable frame")
            return chosen.to_image()
    except (av.FFmpegError, OSError) as exc:
        raise ValueError(str(exc)) from None


def render(data: bytes, steps: list[dict[str, str]], fmt: str) -> bytes:
    """Decode, apply ``steps`` in order, encode as ``fmt``."""
    quality = 90
    with Image.open(io.BytesIO(data)) as src:
        img: Image.Image = ImageOps.exif_transpose(src) or src
        for step in steps:
            img = _apply_step(img, step)
            q = step.get("q")
            if q:
                quality = _QUALITY[q] if q in _QUALITY else int(q)
        pil_format = FORMAT_TO_PIL[fmt]
        if pil_format == "JPEG" and img.mode not in ("RGB", "L"):
            img = img.convert("RGB")
        elif pil_format == "WEBP" and img.mode not in ("RGB", "RGBA"):
            img = img.convert("RGBA")
        out = io.BytesIO()
        options = {"quality": quality} if pil_format in ("JPEG", "WEBP") else {}
        img.save(out, pil_format, **options)
        return out.getvalue()
