"""An asset as Cloudinary's JSON shows it: the Upload API response (also the body of upload
notifications and ``asset()``) and the Admin API resource, each in Cloudinary's field order."""

from __future__ import annotations

import hashlib
from typing import Any

from infra.local_cloudinary.delivery import delivery_url
from infra.local_cloudinary.responses import JsonDict, iso
from infra.local_cloudinary.signing import sign
from infra.local_cloudinary.state import Asset, StandinState


def upload_json(state: StandinState, a: Asset, **extra: Any) -> JsonDict:
    """Upload API response, in Cloudinary's field order."""
    signed = {"public_id": a.public_id, "version": a.version}
    body: JsonDict = {
        "asset_id": a.asset_id,
        "public_id": a.public_id,
        "version": a.version,
        "version_id": a.version_id,
        "signature": sign(signed, state.api_secret, state.signature_algorithm, 1),
    }
    if a.width is not None:
        body.update(width=a.width, height=a.height)
    if a.format:
        body["format"] = a.format
    body.update(resource_type=a.resource_type, created_at=iso(a.created_at), tags=list(a.tags))
    if a.context:
        body["context"] = {"custom": dict(a.context)}
    url = delivery_url(state, a)
    body.update(bytes=len(a.data), type=a.type, etag=hashlib.md5(a.data).hexdigest())
    # secure_url is plain http on purpose: the stand-in serves no TLS.
    body.update(placeholder=False, url=url, secure_url=url)
    body.update(asset_folder=a.asset_folder, display_name=a.display_name)
    body.update(media_json(a))
    body.update(extra)
    body.update(original_filename=a.original_filename, api_key=state.api_key)
    return body


def media_json(a: Asset) -> JsonDict:
    """Video fields of upload responses and resources (``is_audio`` for audio files)."""
    if a.resource_type != "video":
        return {}
    media = a.media
    body: JsonDict = {"is_audio": bool(media and media.is_audio)}
    if media and media.frame_rate:
        body["frame_rate"] = round(media.frame_rate, 3)
    if media and media.duration is not None:
        body["duration"] = round(media.duration, 6)
    return body


def resource_json(
    state: StandinState, a: Asset, tags: bool = True, context: bool = False
) -> JsonDict:
    """Admin API resource shape (listings; details add ``derived``)."""
    body: JsonDict = {"asset_id": a.asset_id, "public_id": a.public_id}
    if a.format:
        body["format"] = a.format
    body.update(version=a.version, resource_type=a.resource_type, type=a.type)
    body.update(created_at=iso(a.created_at), bytes=len(a.data))
    if a.width is not None:
        body.update(width=a.width, height=a.height)
    url = delivery_url(state, a)
    body.update(asset_folder=a.asset_folder, display_name=a.display_name)
    body.update(media_json(a))
    body.update(url=url, secure_url=url)
    if tags:
        body["tags"] = list(a.tags)
    if context and a.context:
        body["context"] = {"custom": dict(a.context)}
    return body
