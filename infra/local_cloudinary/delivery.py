"""Delivery: ``GET /<cloud>/<resource_type>/<type>/[<transformation>/][v<version>/]<id>.<ext>``
answers the original or its rendition (a video's frame when an image extension is asked), and
``delivery_url`` is the URL the APIs show for an asset.

Renditions go through ``media.render`` and frames through ``deliver_frame``, both looked up at
each request, so a benchmark can wrap them to keep derived assets as Cloudinary does.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
import re

from werkzeug.wrappers import Response

from infra.local_cloudinary import media
from infra.local_cloudinary.responses import Fail
from infra.local_cloudinary.state import Asset, StandinState


def delivery_url(state: StandinState, a: Asset) -> str:
    ext = f".{a.format}" if a.format and a.resource_type != "raw" else ""
    path = f"{a.resource_type}/{a.type}/v{a.version}/{a.public_id}{ext}"
    return f"{state.url}/{state.cloud_name}/{path}"


def _find(
    state: StandinState, resource_type: str, type_: str, path: str
) -> tuple[Asset, str | None] | None:
    with state.lock:
        exact = state.stored.get((resource_type, type_, path))
        if exact is not None:
            return exact, None
        stem, dot, ext = path.rpartition(".")
        found = state.stored.get((resource_type, type_, stem)) if dot else None
        return (found, ext.lower()) if found else None


def _locate(
    state: StandinState, resource_type: str, type_: str, segments: list[str]
) -> tuple[list[str], Asset, str | None] | None:
    """Split ``[transformation/][v<version>/]<public_id>.<ext>`` into its parts."""
    version_at = next((i for i, s in enumerate(segments) if re.fullmatch(r"v\d+", s)), None)
    if version_at is not None:  # the version number itself is ignored, as on Cloudinary
        found = _find(state, resource_type, type_, "/".join(segments[version_at + 1 :]))
        return (segments[:version_at], *found) if found else None
    # Without a version component, leading segments are a transformation only if the rest
    # names an asset (public IDs may contain folders).
    for split in range(len(segments)):
        found = _find(state, resource_type, type_, "/".join(segments[split:]))
        if found:
            return (segments[:split], *found)
    return None


def deliver(state: StandinState, resource_type: str, type_: str, segments: list[str]) -> Response:
    """The original, or the rendition its URL describes; delivery errors in ``X-Cld-Error``."""
    located = _locate(state, resource_type, type_, segments)
    if located is None:
        raise Fail(404, f"Resource not found - {'/'.join(segments)}", delivery=True)
    transformation, asset, ext = located
    try:
        steps = media.parse_transformation(transformation)
    except ValueError as exc:
        raise Fail(400, f"Invalid transformation component - {exc}", delivery=True) from None
    if asset.resource_type == "video" and ext in media.FORMAT_TO_PIL and ext != asset.format:
        return deliver_frame(state, asset, steps, ext)
    if asset.resource_type != "image" or asset.format not in media.FORMAT_TO_PIL:
        if steps or (ext and ext != asset.format):
            message = f"Transformations are not supported for {asset.public_id}"
            raise Fail(400, message, delivery=True)
        mime = mimetypes.guess_type(f"x.{asset.format or ext or asset.public_id}")[0]
        return Response(asset.data, 200, content_type=mime or "application/octet-stream")
    forced = [s["f"] for s in steps if s.get("f") not in (None, "auto")]
    fmt = (forced[-1] if forced else ext or asset.format).replace("jpeg", "jpg")
    if fmt not in media.FORMAT_TO_PIL:
        raise Fail(400, f"Invalid extension - {fmt}", delivery=True)
    if fmt == asset.format and not any(k in s for s in steps for k in ("w", "h", "q")):
        data = asset.data
    else:
        data = media.render(asset.data, steps, fmt)
    headers = {"ETag": f'"{hashlib.md5(data).hexdigest()}"'}
    return Response(data, 200, headers, content_type=media.MIME.get(fmt, f"image/{fmt}"))


def deliver_frame(
    state: StandinState, asset: Asset, steps: list[dict[str, str]], ext: str
) -> Response:
    """A video's frame as an image: at ``so_<seconds>`` (else the middle), transformed."""
    offsets = [float(step["so"]) for step in steps if "so" in step]
    duration = asset.media.duration if asset.media else None
    at = offsets[-1] if offsets else (duration or 0.0) / 2
    try:
        frame = media.video_frame(asset.data, at)
    except ValueError as exc:
        raise Fail(400, f"Video could not be decoded - {exc}", delivery=True) from None
    still = io.BytesIO()
    frame.save(still, "PNG")
    rest = [kept for step in steps if (kept := {k: v for k, v in step.items() if k != "so"})]
    forced = [s["f"] for s in rest if s.get("f") not in (None, "auto")]
    fmt = (forced[-1] if forced else ext).replace("jpeg", "jpg")
    data = media.render(still.getvalue(), rest, fmt)
    headers = {"ETag": f'"{hashlib.md5(data).hexdigest()}"'}
    return Response(data, 200, headers, content_type=media.MIME.get(fmt, f"image/{fmt}"))
