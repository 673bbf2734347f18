"""The Upload API: ``upload`` (signed, or unsigned through an unsigned preset; a multipart file,
a data URI or a loopback URL) and ``tags``, plus storing an asset directly for tests."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote_to_bytes, urlparse

import requests
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from infra.local_cloudinary.media import AUDIO_EXTS, VIDEO_EXTS, probe_image, probe_media
from infra.local_cloudinary.notifications import (
    send_async,
    tags_entry,
    tags_payload,
    upload_payload,
)
from infra.local_cloudinary.params import flag, parse_context, random_id, split
from infra.local_cloudinary.responses import Fail, JsonDict, json_response
from infra.local_cloudinary.shapes import upload_json
from infra.local_cloudinary.signing import NOTIFICATION_KEYS, check_signature
from infra.local_cloudinary.state import Asset, StandinState

# Parameters an unsigned upload may carry; anything else is refused like Cloudinary does.
# fmt: off
_UNSIGNED_ALLOWED = {
    "upload_preset", "callback", "public_id", "public_id_prefix", "folder", "asset_folder",
    "display_name", "tags", "context", "metadata", "face_coordinates", "custom_coordinates",
    "regions", "source", "filename_override", "timestamp", "file",
}
# fmt: on
_TAG_COMMANDS = ("add", "remove", "replace", "remove_all", "set_exclusive")
_DATA_URI = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?(?:;[\w.+-]+=[\w.+-]+)*(;base64)?,(.*)$", re.S)


def _check_signature(state: StandinState, params: JsonDict, excluded: set[str]) -> None:
    check_signature(params, excluded, state.api_key, state.api_secret, state.signature_algorithm)


def _read_file(upload: FileStorage | None, value: Any) -> tuple[bytes, str]:
    """Bytes and original file name from a multipart file, a data URI or a loopback URL."""
    if upload is not None:
        return upload.read(), upload.filename or "file"
    if not value:
        raise Fail(400, "Missing required parameter - file")
    text = str(value)
    match = _DATA_URI.match(text)
    if match:
        try:
            data = base64.b64decode(match[3]) if match[2] else unquote_to_bytes(match[3])
        except (binascii.Error, ValueError):
            raise Fail(400, "Invalid file parameter - malformed data URI") from None
        return data, "file"
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https"):
        raise Fail(400, f"Invalid file parameter - {text[:100]}")
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise Fail(400, f"Error in loading {text} - the stand-in fetches loopback URLs only")
    try:
        fetched = requests.get(text, timeout=10)
        fetched.raise_for_status()
    except requests.RequestException as exc:
        raise Fail(400, f"Error in loading {text} - {exc}") from None
    return fetched.content, PurePosixPath(parsed.path).name or "file"


def _upload_settings(state: StandinState, params: JsonDict) -> tuple[bool, JsonDict]:
    """(signed, preset settings) after the signed/unsigned rules of the Upload API."""
    signed = "signature" in params
    if signed:
        _check_signature(state, params, set())
    preset_name = params.get("upload_preset")
    if not preset_name:
        if not signed:
            raise Fail(400, "Upload preset must be specified when using unsigned upload")
        return signed, {}
    with state.lock:
        preset = state.upload_presets.get(str(preset_name))
    if preset is None:
        raise Fail(400, f"Upload preset {preset_name} not found")
    if not signed and not preset["unsigned"]:
        raise Fail(400, "Upload preset must be whitelisted for unsigned uploads")
    if not signed and (extra := sorted(set(params) - _UNSIGNED_ALLOWED)):
        allowed = ",".join(sorted(_UNSIGNED_ALLOWED - {"file", "timestamp"}))
        raise Fail(
            400,
            f"{extra[0].capitalize()} parameter is not allowed when using unsigned upload. "
            f"Only {allowed} upload parameters are allowed.",
        )
    return signed, dict(preset["settings"])


def _public_id(options: JsonDict, resource_type: str, stem: str, ext: str) -> tuple[str, str]:
    """(public ID, folder) of an upload: the one asked for, the file name (``use_filename``) or
    a random one; raw files keep their extension; the folder prefixes it."""
    public_id = str(options.get("public_id") or "")
    if not public_id:
        if flag(options.get("use_filename")) and stem:
            unique = flag(options.get("unique_filename"), True)
            public_id = stem + (f"_{random_id(6)}" if unique else "")
        else:
            public_id = random_id(20)
        if resource_type == "raw" and ext:
            public_id += f".{ext}"
    folder = str(options.get("folder") or "").strip("/")
    if folder:
        public_id = f"{folder}/{public_id}"
    return public_id, folder


def upload(
    state: StandinState, resource_type: str, params: JsonDict, file: FileStorage | None
) -> Response:
    """``POST /v1_1/<cloud>/<resource_type>/upload``."""
    signed, settings = _upload_settings(state, params)
    options = {**settings, **{k: v for k, v in params.items() if v not in (None, "")}}
    if flag(settings.get("disallow_public_id")):
        options.pop("public_id", None)
    tags = split([*split(settings.get("tags")), *split(params.get("tags"))])

    data, filename = _read_file(file, params.get("file"))
    name = PurePosixPath(str(options.get("filename_override") or filename)).name
    stem, _, ext = name.rpartition(".") if "." in name else (name, "", "")
    ext = ext.lower()
    limit = options.get("max_file_size")
    if limit and len(data) > int(limit):
        raise Fail(400, f"File size too large. Got {len(data)}. Maximum is {int(limit)}.")
    probe = probe_image(data) if resource_type in ("image", "auto") else None
    if resource_type == "image" and probe is None:
        raise Fail(400, "Invalid image file")
    if resource_type == "auto":
        media_exts = VIDEO_EXTS | AUDIO_EXTS
        resource_type = "image" if probe else "video" if ext in media_exts else "raw"
    media = probe_media(data) if resource_type == "video" else None
    fmt, width, height = probe or (
        (ext or None) if resource_type == "video" else None,
        media.width if media else None,
        media.height if media else None,
    )
    allowed_formats = split(options.get("allowed_formats"))
    if allowed_formats and (fmt or ext) not in allowed_formats:
        raise Fail(400, f"{resource_type.capitalize()} format {fmt or ext} not allowed")

    public_id, folder = _public_id(options, resource_type, stem, ext)
    type_ = str(options.get("type") or "upload")
    notification_url = str(options.get("notification_url") or "") or None
    with state.lock:
        existing = state.stored.get((resource_type, type_, public_id))
        if existing is not None and not flag(options.get("overwrite"), default=signed):
            return json_response(upload_json(state, existing, existing=True))
        asset = Asset(
            public_id, resource_type, type_, data, fmt, width, height, tags=tags, media=media
        )
        asset.context = parse_context(options.get("context"))
        asset.asset_folder = str(options.get("asset_folder") or folder)
        asset.display_name = str(options.get("display_name") or "")
        asset.original_filename, asset.notification_url = stem or name, notification_url
        overwritten = state.store(asset)
        body = upload_json(state, asset, **({"overwritten": True} if overwritten else {}))
    url = notification_url or state.notification_url
    if url:
        send_async(state, url, upload_payload(state, asset))
    return json_response(body)


def _retagged(current: list[str], command: str, tags: list[str]) -> list[str]:
    """An asset's tags after ``command`` (``set_exclusive`` adds here; others lose the tags)."""
    if command in ("add", "set_exclusive"):
        return current + [t for t in tags if t not in current]
    if command == "remove":
        return [t for t in current if t not in tags]
    return list(tags) if command == "replace" else []  # replace, remove_all


def _tag_changes_by_url(
    state: StandinState, changes: list[tuple[Asset, list[str]]], call_url: str | None
) -> dict[str, list[JsonDict]]:
    """The ``resource_tags_changed`` entries to send, grouped by notification URL: the call's,
    else the account's, else the one the asset was uploaded with (when enabled)."""
    by_url: dict[str, list[JsonDict]] = {}
    for asset, before in changes:
        added = [t for t in asset.tags if t not in before]
        removed = [t for t in before if t not in asset.tags]
        fallback = asset.notification_url if state.notify_tag_changes_to_upload_url else None
        url = call_url or state.notification_url or fallback
        if url and (added or removed):
            fields = upload_json(state, asset)
            by_url.setdefault(url, []).append(tags_entry(fields, added, removed))
    return by_url


def change_tags(state: StandinState, resource_type: str, params: JsonDict) -> Response:
    """``POST /v1_1/<cloud>/<resource_type>/tags``: a signed tag command; notifies the changes."""
    _check_signature(state, params, NOTIFICATION_KEYS)
    command = params.get("command")
    if not command:
        raise Fail(400, "Missing required parameter - command")
    if command not in _TAG_COMMANDS:
        raise Fail(400, f"Invalid command {command}")
    tags = split(params.get("tag"))
    if command != "remove_all" and not tags:
        raise Fail(400, "Missing required parameter - tag")
    raw_ids = params.get("public_ids")
    public_ids = [str(p) for p in raw_ids] if isinstance(raw_ids, list) else split(raw_ids)
    if not public_ids:
        raise Fail(400, "Missing required parameter - public_ids")
    type_ = str(params.get("type") or "upload")
    changes: list[tuple[Asset, list[str]]] = []
    updated: list[str] = []
    with state.lock:
        for public_id in public_ids:
            asset = state.stored.get((resource_type, type_, public_id))
            if asset is None:
                continue
            changes.append((asset, list(asset.tags)))
            asset.tags = _retagged(asset.tags, command, tags)
            updated.append(public_id)
        if command == "set_exclusive":
            for key, other in state.stored.items():
                if key[:2] != (resource_type, type_) or other.public_id in updated:
                    continue
                if any(t in other.tags for t in tags):
                    changes.append((other, list(other.tags)))
                    other.tags = [t for t in other.tags if t not in tags]
        by_url = _tag_changes_by_url(state, changes, params.get("notification_url"))
    for url, resources in by_url.items():
        send_async(state, url, tags_payload(state, resources))
    return json_response({"public_ids": updated})


def add_asset(
    state: StandinState,
    data: bytes,
    public_id: str | None = None,
    resource_type: str = "image",
    format: str | None = None,
    tags: Iterable[str] = (),
    notify: bool = False,
    *,
    notification_url: str | None = None,
) -> JsonDict:
    """Store an asset directly; returns the upload response. ``notify`` sends the upload
    notification to ``notification_url`` (else the global one)."""
    probe = probe_image(data) if resource_type == "image" else None
    if resource_type == "image" and probe is None:
        raise ValueError("Invalid image file")
    media = probe_media(data) if resource_type == "video" else None
    fmt, width, height = probe or (
        format or (media.format if media else None),
        media.width if media else None,
        media.height if media else None,
    )
    public_id = public_id or random_id(20)
    asset = Asset(public_id, resource_type, "upload", data, format or fmt, width, height)
    asset.media = media
    asset.tags, asset.notification_url = split(list(tags)), notification_url
    asset.original_filename = public_id.rsplit("/", 1)[-1]
    state.store(asset)
    if notify:
        url = notification_url or state.notification_url
        if not url:
            raise ValueError("notify=True needs notification_url or standin.notification_url")
        send_async(state, url, upload_payload(state, asset))
    return upload_json(state, asset)
