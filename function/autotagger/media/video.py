"""Video uploads: a batch of evenly spaced frames through the model, one aggregated document.

Cloudinary delivers any moment of a video as an image: the video's delivery URL with a start
offset and an image extension, e.g.
`.../video/upload/so_2.5,c_scale,w_224,h_224/v<version>/<public_id>.jpg` (documented under video
thumbnails). The function never decodes video: it downloads `VIDEO_FRAMES` such 224x224 frames
concurrently (allowed hosts, `MAX_IMAGE_BYTES`, `DOWNLOAD_TIMEOUT_S`, like an image), runs them
through the model as one batch (one `predict` call), and stores the top-k of the mean of the
frames' probabilities plus each frame's offset and top-1 label.

A frame that cannot be fetched (4xx) or decoded is skipped and recorded; fewer than half the
frames left, or a video over `MAX_VIDEO_SECONDS`, is a `failed` document. A frame still failing
with 5xx/timeouts after retries fails the request like an image download (503, redelivered).
"""

from __future__ import annotations

import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from autotagger import concepts, embeddings, logs, model, tagging
from autotagger.clients import cloudinary_client
from autotagger.config import Settings
from autotagger.domain import Upload, parse_upload
from autotagger.errors import AutotaggerError, ImageError, UpstreamError
from autotagger.logs import Timings
from autotagger.media import imaging

RESOURCE_TYPE = "video"
# The frame the model needs, made by Cloudinary: the same 224x224 squash as the image rendition.
FRAME_TRANSFORMATION = "c_scale,w_224,h_224"
FRAME_FORMAT = "jpg"
MAX_ERROR_CHARS = 500
# `/<cloud>/video/upload/v<version>/<public_id>.<ext>`; a CNAME may leave out the cloud name.
_STANDARD_VIDEO_PATH = re.compile(
    r"^(?P<cloud>(?:/[^/]+)?)/video/upload/(?P<version>v\d+)/(?P<public_id>[^/][^?#]*)"
    r"\.[A-Za-z0-9]+$"
)
# Frame downloads of all requests (up to VIDEO_FRAMES each); separate from the pipeline's
# prefetch pool, whose threads wait on these.
_frame_pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="frames")


@dataclass(frozen=True)
class Frame:
    """One sampled moment: its offset (s), its pixels, or why it was skipped."""

    offset: float
    url: str
    pixels: np.ndarray | None = None  # (224, 224, 3) uint8 RGB
    error: str | None = None


def is_video(upload: Upload) -> bool:
    return upload.resource_type == RESOURCE_TYPE


def ignore_reason(upload: Upload) -> str | None:
    """Why a video upload is not classified (audio-only), or None."""
    if is_video(upload) and upload.is_audio:
        return "audio-only upload (is_audio): no frames to classify"
    return None


def complete(upload: Upload) -> Upload:
    """`upload` with `duration` and `is_audio` from the Admin API when the message lacked the
    duration (queue messages, backfill); unchanged when the asset cannot be found (the frame
    stage then records why)."""
    if not is_video(upload) or upload.duration is not None:
        return upload
    try:
        resource = cloudinary_client.resource(upload.public_id, RESOURCE_TYPE, upload.type)
    except ImageError as exc:
        logs.warning("video duration lookup failed", asset_id=upload.asset_id, error=exc.reason)
        return upload
    except AutotaggerError:
        raise
    except Exception as exc:  # the SDK's other errors: worth a redelivery, like a tag write's
        raise UpstreamError(f"video lookup failed: {type(exc).__name__}: {exc}") from exc
    found = parse_upload(dict(resource))
    if found.asset_id != upload.asset_id or found.version != upload.version:
        return upload  # another version by now: its own notification classifies it
    return found


def offsets(duration: float, count: int) -> list[float]:
    """`count` evenly spaced offsets inside the video: the middle of each of `count` equal
    slices (never the very first or last instant), rounded to 0.01 s."""
    return [round(duration * (i + 0.5) / count, 2) for i in range(count)]


def _seconds(offset: float) -> str:
    return f"{offset:.2f}".rstrip("0").rstrip(".") or "0"


def frame_url(secure_url: str, offset: float) -> str:
    """The delivery URL of the 224x224 frame at `offset` s of the video at `secure_url` (a
    standard delivery URL, no transformation, query or signature); ImageError otherwise."""
    parts = urlsplit(secure_url)
    match = _STANDARD_VIDEO_PATH.match(parts.path)
    if match is None or parts.query or parts.fragment:
        raise ImageError(f"cannot derive frame URLs from {secure_url[:200]!r}")
    transformation = f"so_{_seconds(offset)},{FRAME_TRANSFORMATION}"
    path = (
        f"{match['cloud']}/video/upload/{transformation}/{match['version']}/"
        f"{match['public_id']}.{FRAME_FORMAT}"
    )
    return urlunsplit(parts._replace(path=path))


def _fetch_frame(url: str, offset: float, settings: Settings) -> Frame:
    try:
        data = cloudinary_client.download(url, settings)
        return Frame(offset, url, pixels=imaging.load_rgb(data, settings.max_image_pixels))
    except ImageError as exc:
        return Frame(offset, url, error=exc.reason[:MAX_ERROR_CHARS])


def fetch_frames(upload: Upload, settings: Settings, timings: Timings) -> list[Frame]:
    """Every sampled frame, fetched and decoded concurrently (the `download` stage); raises
    ImageError when the video cannot be classified at all."""
    duration = upload.duration
    if duration is None:
        raise ImageError("video duration unknown (not in the message, nor from the Admin API)")
    if duration > settings.max_video_seconds:
        raise ImageError(
            f"video is {duration:g} s long, over MAX_VIDEO_SECONDS={settings.max_video_seconds}"
        )
    if duration <= 0:
        raise ImageError("video has no duration (0 s)")
    urls = [(frame_url(upload.secure_url, t), t) for t in offsets(duration, settings.video_frames)]
    with timings.stage("download"):
        futures = [_frame_pool.submit(_fetch_frame, url, t, settings) for url, t in urls]
        return [future.result() for future in futures]


def _usable(frames: list[Frame]) -> list[Frame]:
    usable = [f for f in frames if f.pixels is not None]
    if len(usable) * 2 < len(frames):
        skipped = "; ".join(f"{_seconds(f.offset)} s: {f.error}" for f in frames if f.error)
        raise ImageError(
            f"only {len(usable)} of {len(frames)} frames could be fetched and decoded "
            f"(fewer than half): {skipped}"[:MAX_ERROR_CHARS]
        )
    return usable


def classify(settings: Settings, timings: Timings, fetched: Future[list[Frame]]) -> dict[str, Any]:
    """The video's result: one forward over its frames, predictions = top-k of the mean of
    the frames' probabilities, plus `frames` (offset, top-1 label and score, or the error) and
    `embedding` (the normalised mean of the frames')."""
    frames = fetched.result()
    usable = _usable(frames)
    batch = imaging.preprocess(np.stack([f.pixels for f in usable if f.pixels is not None]))
    classifier = model.for_settings(settings, timings)
    with timings.stage("predict"):
        out = model.infer(classifier, batch)  # one forward, every frame
    probabilities = out.probabilities
    mean = probabilities.mean(axis=0)
    predictions = model.top_k(mean, settings.top_k)
    per_frame = iter(probabilities)
    described: list[dict[str, Any]] = []
    for frame in frames:
        if frame.pixels is None:
            described.append({"offset": frame.offset, "error": frame.error})
            continue
        best = model.top_k(next(per_frame), 1)[0]
        described.append(
            {"offset": frame.offset, "label": best.label, "score": round(best.score, 6)}
        )
    result = tagging.with_concepts(
        tagging.result(predictions, settings, classifier.name),
        concepts.fields(mean, settings.concept_threshold),
        settings.tag_prefix,
    )
    return {**result, "frames": described, "embedding": embeddings.of_frames(out.embeddings)}
