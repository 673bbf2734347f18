#!/usr/bin/env python3
"""The local Cloudinary: a stand-in for Cloudinary's HTTP APIs (Cloudinary ships no emulator).

One threaded WSGI server answers, in Cloudinary's documented formats:

* Upload API: ``POST /v1_1/<cloud>/<resource_type>/upload`` and ``.../tags`` (signed or unsigned);
* Admin API (basic auth): resources, resources by tag, upload presets, usage, ping, with the
  hourly budget's ``X-FeatureRateLimit-*`` headers (``admin_rate_limit`` simulates a small one);
* delivery: ``GET /<cloud>/<resource_type>/upload/[<transformation>/][v<version>/]<id>.<ext>``;
* webhooks: signed ``upload`` and ``resource_tags_changed`` notifications.

Point the real SDK at it with ``CLOUDINARY_URL=<standin.cloudinary_url>`` (it sets
``upload_prefix``); build delivery URLs with ``cname=standin.delivery_host, secure=False``.

Video (and audio, which Cloudinary stores as ``video``) is probed with PyAV at upload:
``duration``, ``width``/``height``, ``frame_rate`` and ``is_audio`` appear in upload responses,
notifications and the Admin API; a delivery URL of a video with an image extension is a frame of
it (``so_<seconds>``, else the middle frame, as Cloudinary's video thumbnails), decoded with PyAV
at that time and transformed like an image.

Deliberate deviations, all for a loopback test server: plain ``http`` everywhere (``secure_url``
too); remote-URL uploads fetch loopback URLs only; a video PyAV cannot read is stored undecoded
(no duration); notifications are POSTed once, never retried; only the transformations listed in
``_parse_transformation`` exist. Run ``python infra/local_cloudinary.py --port 8090`` for demos.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import io
import json
import mimetypes
import re
import secrets
import string
import threading
import time
import traceback
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes, urlparse

import requests
from PIL import Image, ImageOps
from werkzeug.datastructures import FileStorage
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

JsonDict = dict[str, Any]

_HASHES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
# Never part of an Upload API signature (documented: file, cloud_name, resource_type, api_key).
_UNSIGNED_KEYS = {"file", "api_key", "resource_type", "cloud_name", "signature"}
# The tags/context/metadata endpoints accept these but leave them out of the signature (the SDK's
# uploader._NON_SIGNABLE_NOTIFICATION_PARAMS says so).
_NOTIFICATION_KEYS = {"notification_url", "batch_id"}
# Parameters an unsigned upload may carry; anything else is refused like Cloudinary does.
# fmt: off
_UNSIGNED_ALLOWED = {
    "upload_preset", "callback", "public_id", "public_id_prefix", "folder", "asset_folder",
    "display_name", "tags", "context", "metadata", "face_coordinates", "custom_coordinates",
    "regions", "source", "filename_override", "timestamp", "file",
}
# fmt: on
_TAG_COMMANDS = ("add", "remove", "replace", "remove_all", "set_exclusive")
_PIL_TO_FORMAT = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
_FORMAT_TO_PIL = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}
_MIME = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
_VIDEO_EXTS = {"mp4", "mov", "webm", "avi", "mkv", "m4v", "ogv"}
_AUDIO_EXTS = {"mp3", "wav", "m4a", "aac", "ogg", "oga", "flac", "opus"}
_GRAVITY = {"center": (0.5, 0.5), "auto": (0.5, 0.5), "north": (0.5, 0.0), "south": (0.5, 1.0)}
_GRAVITY.update(east=(1.0, 0.5), west=(0.0, 0.5), north_east=(1.0, 0.0), north_west=(0.0, 0.0))
_GRAVITY.update(south_east=(1.0, 1.0), south_west=(0.0, 1.0))
_QUALITY = {"auto": 80, "auto:best": 92, "auto:good": 80, "auto:eco": 65, "auto:low": 50}
_DATA_URI = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?(?:;[\w.+-]+=[\w.+-]+)*(;base64)?,(.*)$", re.S)
_LIST_KEY = re.compile(r"^(.+)\[\d*\]$")
# The Upload API answers browsers of any origin (unsigned uploads from a page).
_UPLOAD_API_PATH = re.compile(r"^/v1_1/[^/]+/(image|video|raw|auto)/upload$")
_UPLOAD_API_PREFLIGHT = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, X-Requested-With, X-Unique-Upload-Id",
    "Access-Control-Max-Age": "600",
}
# An upload notification is notification_type, timestamp and request_id, then these fields of
# the upload response (same order), then notification_context and signature_key.
# fmt: off
_UPLOAD_NOTIFICATION_FIELDS = (
    "asset_id", "public_id", "version", "version_id", "width", "height", "format",
    "resource_type", "created_at", "tags", "context", "bytes", "type", "etag", "placeholder",
    "url", "secure_url", "asset_folder", "display_name", "is_audio", "frame_rate", "duration",
    "original_filename", "api_key",
)
# fmt: on


def string_to_sign(params: Mapping[str, Any], signature_version: int = 2) -> str:
    """Cloudinary's string to sign: non-empty ``k=v`` pairs (lists comma-joined), sorted, ``&``."""
    pairs = []
    for key, value in params.items():
        if not value:
            continue
        if isinstance(value, list):
            text = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            text = str(value).lower()
        else:
            text = str(value)
        pair = f"{key}={text}"
        # Version 2 escapes "&" inside values so parameters cannot be smuggled.
        pairs.append(pair.replace("&", "%26") if signature_version >= 2 else pair)
    return "&".join(sorted(pairs))


def sign(params: Mapping[str, Any], secret: str, algorithm: str = "sha1", version: int = 2) -> str:
    """Hex digest of ``string_to_sign(params) + secret`` (a plain hash, not an HMAC)."""
    return _HASHES[algorithm]((string_to_sign(params, version) + secret).encode()).hexdigest()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _random_id(length: int) -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(length))


def _json(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(payload)
    return Response(
        body, status, dict(headers or {}), content_type="application/json; charset=utf-8"
    )


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """Cloudinary's API error body: ``{"error": {"message": ...}}``."""
    return _json({"error": {"message": message}}, status, headers)


def _cld_error(status: int, message: str) -> Response:
    """Delivery errors carry their reason in the ``X-Cld-Error`` header, not in the body."""
    return Response(b"", status, {"X-Cld-Error": message}, content_type="text/plain")


class _Fail(Exception):
    """Raised by handlers; answered as Cloudinary would (JSON body, or ``X-Cld-Error``)."""

    def __init__(self, status: int, message: str, delivery: bool = False) -> None:
        super().__init__(message)
        self.status, self.message, self.delivery = status, message, delivery

    def response(self) -> Response:
        if self.delivery:
            return _cld_error(self.status, self.message)
        return _error(self.status, self.message)


def _flag(value: Any, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes")


def _split(value: Any) -> list[str]:
    """``"a, b"`` or ``["a", "b,c"]`` → unique, stripped, non-empty items, in order."""
    items = value if isinstance(value, list) else [] if value in (None, "") else [value]
    out: list[str] = []
    for part in (p.strip() for item in items for p in str(item).split(",")):
        if part and part not in out:
            out.append(part)
    return out


def _parse_context(value: Any) -> dict[str, str]:
    """``"k=v|k2=v2"`` (``\\|`` and ``\\=`` escaped) or a dict → dict."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    out = {}
    for pair in re.split(r"(?<!\\)\|", str(value or "")):
        parts = re.split(r"(?<!\\)=", pair, maxsplit=1)
        if len(parts) == 2 and parts[0]:
            key, val = (part.replace("\\=", "=").replace("\\|", "|") for part in parts)
            out[key] = val
    return out


def _request_params(request: Request) -> JsonDict:
    """Query string, form fields and a JSON body, merged; ``k[]``/``k[0]`` keys become lists."""
    params: JsonDict = {}
    for source in (request.args, request.form):
        for key, values in source.lists():
            match = _LIST_KEY.match(key)
            if match:
                params.setdefault(match.group(1), []).extend(values)
            else:
                params[key] = values[-1]
    if request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            params.update(body)
    return params


def _probe_image(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) when Pillow can decode ``data``, else None."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            name = img.format or ""
            return _PIL_TO_FORMAT.get(name, name.lower()), img.width, img.height
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def _parse_transformation(segments: Iterable[str]) -> list[dict[str, str]]:
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
class _Media:
    """What PyAV reads from a video or audio file."""

    duration: float | None
    width: int | None
    height: int | None
    frame_rate: float | None
    is_audio: bool
    format: str | None = None


def _probe_media(data: bytes) -> _Media | None:
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
                return _Media(duration, None, None, None, is_audio=True, format=fmt)
            stream = videos[0]
            if duration is None and stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            rate = float(stream.average_rate) if stream.average_rate else None
            return _Media(duration, stream.width, stream.height, rate, is_audio=False, format=fmt)
    except (av.FFmpegError, ValueError, OSError):
        return None


def _video_frame(data: bytes, at: float) -> Image.Image:
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


def _render(data: bytes, steps: list[dict[str, str]], fmt: str) -> bytes:
    """Decode, apply ``steps`` in order, encode as ``fmt``."""
    quality = 90
    with Image.open(io.BytesIO(data)) as src:
        img: Image.Image = ImageOps.exif_transpose(src) or src
        for step in steps:
            img = _apply_step(img, step)
            q = step.get("q")
            if q:
                quality = _QUALITY[q] if q in _QUALITY else int(q)
        pil_format = _FORMAT_TO_PIL[fmt]
        if pil_format == "JPEG" and img.mode not in ("RGB", "L"):
            img = img.convert("RGB")
        elif pil_format == "WEBP" and img.mode not in ("RGB", "RGBA"):
            img = img.convert("RGBA")
        out = io.BytesIO()
        options = {"quality": quality} if pil_format in ("JPEG", "WEBP") else {}
        img.save(out, pil_format, **options)
        return out.getvalue()


@dataclass
class Fault:
    """An injected misbehaviour for requests whose path starts with ``path_prefix``.

    ``times`` matching requests (None: all of them) first sleep ``delay_s``, then, when
    ``status`` is set, get that status (302 + ``Location`` when ``location`` is set; 429 adds
    ``Retry-After``) instead of the normal answer.
    """

    path_prefix: str
    status: int | None = None
    times: int | None = 1
    delay_s: float = 0.0
    retry_after: int | None = None
    location: str | None = None
    method: str | None = None


@dataclass
class _Asset:
    public_id: str
    resource_type: str
    type: str
    data: bytes
    format: str | None
    width: int | None
    height: int | None
    asset_id: str = ""
    version: int = 0
    version_id: str = ""
    created_at: float = 0.0
    seq: int = 0
    tags: list[str] = field(default_factory=list)
    context: dict[str, str] = field(default_factory=dict)
    asset_folder: str = ""
    display_name: str = ""
    original_filename: str = ""
    notification_url: str | None = None
    media: _Media | None = None  # videos and audio


class _Request(Request):
    # Data-URI uploads arrive as plain form fields: allow them the size of a real upload.
    max_form_memory_size = 100 * 1024 * 1024


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Keep test output clean: no access log."""


class CloudinaryStandin:
    """Cloudinary's Upload, Admin and delivery APIs on a local port, plus signed webhooks."""

    def __init__(
        self,
        cloud_name: str = "demo",
        api_key: str = "123456789012345",
        api_secret: str = "standin-secret",
        signature_algorithm: str = "sha1",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if signature_algorithm not in _HASHES:
            raise ValueError(f"signature_algorithm must be one of {sorted(_HASHES)}")
        self.cloud_name, self.api_key, self.api_secret = cloud_name, api_key, api_secret
        self.signature_algorithm, self.host, self.port = signature_algorithm, host, port
        self.notification_url: str | None = None  # the account-wide ("global") notification URL
        # Cloudinary sends resource_tags_changed to the call's or the global notification URL;
        # as the brief asks, the stand-in also falls back to the URL the asset was uploaded with.
        self.notify_tag_changes_to_upload_url = True
        self.notification_timeout_s = 5.0
        self.calls: list[JsonDict] = []
        self.faults: list[Fault] = []
        self.notifications_sent: list[JsonDict] = []
        self._assets: dict[tuple[str, str, str], _Asset] = {}
        self._presets: dict[str, JsonDict] = {}
        self._cursors: dict[str, int] = {}
        self._seq = 0
        self.admin_rate_limit: int | None = None  # Admin API requests per hour (None: no limit)
        self._admin_used = 0
        self._lock = threading.RLock()
        self._sent = threading.Condition()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle and addresses -------------------------------------------------------------------

    def start(self, quiet: bool = True) -> CloudinaryStandin:
        """Serve in a daemon thread (port 0 picks a free port)."""
        handler = _QuietHandler if quiet else WSGIRequestHandler
        self._server = make_server(
            self.host, self.port, self, threaded=True, request_handler=handler
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="cloudinary-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> CloudinaryStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.delivery_host}"

    @property
    def delivery_host(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def cloudinary_url(self) -> str:
        url = f"cloudinary://{self.api_key}:{self.api_secret}@{self.cloud_name}"
        url += f"?upload_prefix={self.url}"
        return url + ("&signature_algorithm=sha256" if self.signature_algorithm == "sha256" else "")

    # -- test helpers ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget assets, presets, logs, faults and the global notification URL."""
        with self._lock:
            self._assets.clear()
            self._presets.clear()
            self._cursors.clear()
            self.calls.clear()
            self.faults.clear()
            self.notification_url = None
            self.admin_rate_limit, self._admin_used = None, 0
        with self._sent:
            self.notifications_sent.clear()

    def add_asset(
        self,
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
        probe = _probe_image(data) if resource_type == "image" else None
        if resource_type == "image" and probe is None:
            raise ValueError("Invalid image file")
        media = _probe_media(data) if resource_type == "video" else None
        fmt, width, height = probe or (
            format or (media.format if media else None),
            media.width if media else None,
            media.height if media else None,
        )
        public_id = public_id or _random_id(20)
        asset = _Asset(public_id, resource_type, "upload", data, format or fmt, width, height)
        asset.media = media
        asset.tags, asset.notification_url = _split(list(tags)), notification_url
        asset.original_filename = public_id.rsplit("/", 1)[-1]
        self._store(asset)
        if notify:
            url = notification_url or self.notification_url
            if not url:
                raise ValueError("notify=True needs notification_url or standin.notification_url")
            self._send_async(url, self._upload_payload(asset))
        return self._upload_json(asset)

    def asset(
        self, public_id: str, resource_type: str = "image", type: str = "upload"
    ) -> JsonDict | None:
        """The asset's current state, shaped like an upload response (incl. ``tags``)."""
        with self._lock:
            found = self._assets.get((resource_type, type, public_id))
            return self._upload_json(found) if found else None

    def notification_for(
        self,
        resource: Mapping[str, Any],
        notification_type: str = "upload",
        *,
        added: Iterable[str] | None = None,
        removed: Iterable[str] = (),
    ) -> tuple[bytes, dict[str, str]]:
        """The exact body and headers Cloudinary would POST for ``resource``, without sending.

        ``resource`` is an upload response / ``asset()`` dict (stored state fills in gaps).
        For ``resource_tags_changed``, ``added`` defaults to the resource's tags.
        """
        kind = str(resource.get("resource_type", "image")), str(resource.get("type", "upload"))
        with self._lock:
            stored = self._assets.get((*kind, str(resource.get("public_id"))))
            fields = {**(self._upload_json(stored) if stored else {}), **resource}
        fields.setdefault("resource_type", kind[0])
        fields.setdefault("type", kind[1])
        if notification_type == "upload":
            fields.setdefault("api_key", self.api_key)
            payload = self._upload_payload(fields)
        elif notification_type == "resource_tags_changed":
            tags = list(fields.get("tags", []) if added is None else added)
            payload = self._tags_payload([self._tags_entry(fields, tags, list(removed))])
        else:
            raise ValueError(f"unsupported notification_type {notification_type!r}")
        return self._sign_notification(payload)

    def inject(
        self,
        path_prefix: str,
        status: int | None = None,
        *,
        times: int | None = 1,
        delay_s: float = 0.0,
        retry_after: int | None = None,
        location: str | None = None,
        method: str | None = None,
    ) -> Fault:
        """Make the next ``times`` requests under ``path_prefix`` fail, stall or redirect."""
        if location and status is None:
            status = 302
        fault = Fault(path_prefix, status, times, delay_s, retry_after, location, method)
        with self._lock:
            self.faults.append(fault)
        return fault

    def limit_admin_api(self, requests_per_hour: int | None) -> None:
        """Start a new hour with this Admin API budget (None: unlimited)."""
        with self._lock:
            self.admin_rate_limit, self._admin_used = requests_per_hour, 0

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def wait_for_notifications(self, count: int = 1, timeout: float = 60.0) -> list[JsonDict]:
        """Block until ``count`` notifications were sent (or ``timeout``); returns the log."""
        with self._sent:
            self._sent.wait_for(lambda: len(self.notifications_sent) >= count, timeout)
            return list(self.notifications_sent)

    # -- storage and JSON shapes -------------------------------------------------------------------

    def _store(self, asset: _Asset) -> bool:
        """Create or overwrite (True); asset_id stays, version strictly increases (unix s)."""
        with self._lock:
            key = (asset.resource_type, asset.type, asset.public_id)
            previous = self._assets.get(key)
            self._seq += 1
            asset.seq, asset.created_at, asset.version_id = self._seq, time.time(), uuid.uuid4().hex
            asset.asset_id = previous.asset_id if previous else uuid.uuid4().hex
            asset.version = max(int(asset.created_at), previous.version + 1 if previous else 0)
            asset.display_name = asset.display_name or asset.public_id.rsplit("/", 1)[-1]
            self._assets[key] = asset
            return previous is not None

    def _delivery_url(self, a: _Asset) -> str:
        ext = f".{a.format}" if a.format and a.resource_type != "raw" else ""
        path = f"{a.resource_type}/{a.type}/v{a.version}/{a.public_id}{ext}"
        return f"{self.url}/{self.cloud_name}/{path}"

    def _upload_json(self, a: _Asset, **extra: Any) -> JsonDict:
        """Upload API response, in Cloudinary's field order."""
        signed = {"public_id": a.public_id, "version": a.version}
        body: JsonDict = {
            "asset_id": a.asset_id,
            "public_id": a.public_id,
            "version": a.version,
            "version_id": a.version_id,
            "signature": sign(signed, self.api_secret, self.signature_algorithm, 1),
        }
        if a.width is not None:
            body.update(width=a.width, height=a.height)
        if a.format:
            body["format"] = a.format
        body.update(resource_type=a.resource_type, created_at=_iso(a.created_at), tags=list(a.tags))
        if a.context:
            body["context"] = {"custom": dict(a.context)}
        url = self._delivery_url(a)
        body.update(bytes=len(a.data), type=a.type, etag=hashlib.md5(a.data).hexdigest())
        # secure_url is plain http on purpose: the stand-in serves no TLS.
        body.update(placeholder=False, url=url, secure_url=url)
        body.update(asset_folder=a.asset_folder, display_name=a.display_name)
        body.update(self._media_json(a))
        body.update(extra)
        body.update(original_filename=a.original_filename, api_key=self.api_key)
        return body

    @staticmethod
    def _media_json(a: _Asset) -> JsonDict:
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

    def _resource_json(self, a: _Asset, tags: bool = True, context: bool = False) -> JsonDict:
        """Admin API resource shape (listings; details add ``derived``)."""
        body: JsonDict = {"asset_id": a.asset_id, "public_id": a.public_id}
        if a.format:
            body["format"] = a.format
        body.update(version=a.version, resource_type=a.resource_type, type=a.type)
        body.update(created_at=_iso(a.created_at), bytes=len(a.data))
        if a.width is not None:
            body.update(width=a.width, height=a.height)
        url = self._delivery_url(a)
        body.update(asset_folder=a.asset_folder, display_name=a.display_name)
        body.update(self._media_json(a))
        body.update(url=url, secure_url=url)
        if tags:
            body["tags"] = list(a.tags)
        if context and a.context:
            body["context"] = {"custom": dict(a.context)}
        return body

    # -- notifications -----------------------------------------------------------------------------

    def _context(self) -> JsonDict:
        triggered_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        return {
            "triggered_at": triggered_at.replace("+00:00", "Z"),
            "triggered_by": {"source": "api", "id": self.api_key},
        }

    def _upload_payload(self, resource: _Asset | Mapping[str, Any]) -> JsonDict:
        fields = self._upload_json(resource) if isinstance(resource, _Asset) else resource
        payload: JsonDict = {
            "notification_type": "upload",
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "request_id": uuid.uuid4().hex,
        }
        payload.update({k: fields[k] for k in _UPLOAD_NOTIFICATION_FIELDS if k in fields})
        payload.update(notification_context=self._context(), signature_key=self.api_key)
        return payload

    @staticmethod
    def _tags_entry(fields: Mapping[str, Any], added: list[str], removed: list[str]) -> JsonDict:
        entry = {k: fields.get(k) for k in ("asset_id", "public_id", "type", "resource_type")}
        return {**entry, "added": added, "removed": removed}

    def _tags_payload(self, resources: list[JsonDict]) -> JsonDict:
        return {
            "notification_type": "resource_tags_changed",
            "source": "api",
            "resources": resources,
            "notification_context": self._context(),
            "signature_key": self.api_key,
        }

    def _sign_notification(self, payload: JsonDict) -> tuple[bytes, dict[str, str]]:
        """Compact JSON body; ``X-Cld-Signature`` = hex(hash(body + timestamp + api_secret))."""
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        timestamp = str(int(time.time()))
        digest = _HASHES[self.signature_algorithm](body + (timestamp + self.api_secret).encode())
        headers = {
            "Content-Type": "application/json",
            "X-Cld-Timestamp": timestamp,
            "X-Cld-Signature": digest.hexdigest(),
        }
        return body, headers

    def _send_async(self, url: str, payload: JsonDict) -> None:
        body, headers = self._sign_notification(payload)

        def post() -> None:
            record: JsonDict = {"url": url, "notification_type": payload["notification_type"]}
            record.update(body=body, headers=headers, status=None, error=None)
            try:
                timeout = self.notification_timeout_s
                answer = requests.post(
                    url, data=body, headers=headers, timeout=timeout, allow_redirects=False
                )
                record["status"] = answer.status_code
            except requests.RequestException as exc:
                record["error"] = f"{type(exc).__name__}: {exc}"
            with self._sent:
                self.notifications_sent.append(record)
                self._sent.notify_all()

        threading.Thread(target=post, name="cloudinary-standin-webhook", daemon=True).start()

    # -- HTTP --------------------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = _Request(environ)
        params = _request_params(request)
        upload_api = _UPLOAD_API_PATH.match(request.path) is not None
        try:
            if upload_api and request.method == "OPTIONS":
                response = Response(b"", 204, _UPLOAD_API_PREFLIGHT)
            else:
                response = self._apply_fault(request) or self._route(request, params)
        except _Fail as fail:
            response = fail.response()
        except Exception as exc:  # a stand-in bug must show up as a 500, not a dropped socket
            traceback.print_exc()
            response = _error(500, f"General Error - {type(exc).__name__}: {exc}")
        if request.path.startswith("/v1_1/"):
            response.headers["X-Request-Id"] = uuid.uuid4().hex
        if upload_api:  # browsers upload from any origin (the Admin API has no CORS)
            response.headers["Access-Control-Allow-Origin"] = "*"
        logged = dict(params)
        if len(str(logged.get("file", ""))) > 200:
            logged["file"] = f"<{len(str(logged['file']))} chars>"
        upload = request.files.get("file")
        if upload is not None:
            logged["file"] = f"<file {upload.filename}>"
        entry = {"method": request.method, "path": request.path, "params": logged}
        with self._lock:
            self.calls.append({**entry, "status": response.status_code, "time": time.time()})
        return response(environ, start_response)

    def _apply_fault(self, request: Request) -> Response | None:
        with self._lock:
            matching = (
                f
                for f in self.faults
                if request.path.startswith(f.path_prefix)
                and (f.method is None or f.method.upper() == request.method)
            )
            fault = next(matching, None)
            if fault is None:
                return None
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
        if fault.delay_s:
            time.sleep(fault.delay_s)
        if fault.status is None:
            return None
        messages = {404: "Resource not found", 429: "Rate Limit Exceeded", 500: "General Error"}
        message = messages.get(fault.status) or HTTPStatus(fault.status).phrase
        response = _Fail(fault.status, message, not request.path.startswith("/v1_1/")).response()
        if fault.location:
            response.headers["Location"] = fault.location
        if fault.retry_after is not None or fault.status == 429:
            response.headers["Retry-After"] = str(
                1 if fault.retry_after is None else fault.retry_after
            )
        return response

    def _route(self, request: Request, params: JsonDict) -> Response:
        parts = [p for p in request.path.split("/") if p]
        if len(parts) >= 3 and parts[0] == "v1_1":
            if parts[1] != self.cloud_name:
                raise _Fail(401, f"Invalid cloud_name {parts[1]}")
            return self._api(request, parts[2:], params)
        if len(parts) >= 4 and parts[0] == self.cloud_name and request.method in ("GET", "HEAD"):
            return self._deliver(parts[1], parts[2], parts[3:])
        raise _Fail(404, "Resource not found", delivery=True)

    def _api(self, request: Request, parts: list[str], params: JsonDict) -> Response:
        method = request.method
        if len(parts) == 2 and method == "POST" and parts[1] in ("upload", "tags"):
            if parts[0] not in ("image", "video", "raw", "auto"):
                raise _Fail(400, f"Invalid resource_type {parts[0]}")
            if parts[1] == "tags":
                return self._tags(parts[0], params)
            return self._upload(parts[0], params, request.files.get("file"))
        if parts[0] not in ("resources", "upload_presets", "ping", "usage"):
            raise _Fail(404, "Not found")
        self._check_basic_auth(request)
        budget = self._spend_admin_request()
        response = self._admin(method, parts, params)
        response.headers.update(budget)
        return response

    def _spend_admin_request(self) -> dict[str, str]:
        """The Admin API's hourly budget: ``X-FeatureRateLimit-*`` headers on every answer, 420
        once ``admin_rate_limit`` requests were made (None: unlimited, the headers say 5000)."""
        reset = (int(time.time()) // 3600 + 1) * 3600
        with self._lock:
            limit = self.admin_rate_limit
            if limit is not None and self._admin_used >= limit:
                raise _Fail(420, f"Rate Limit Exceeded - resets at {_iso(reset)}")
            self._admin_used += 1
            shown = 5000 if limit is None else limit
            remaining = max(0, shown - self._admin_used)
        return {
            "X-FeatureRateLimit-Limit": str(shown),
            "X-FeatureRateLimit-Remaining": str(remaining),
            "X-FeatureRateLimit-Reset": time.strftime(
                "%a, %d %b %Y %H:%M:%S GMT", time.gmtime(reset)
            ),
        }

    def _admin(self, method: str, parts: list[str], params: JsonDict) -> Response:
        if parts == ["usage"] and method == "GET":
            with self._lock:
                count = len(self._assets)
            return _json({"plan": "Standin", "resources": count, "derived_resources": 0})
        if parts == ["ping"]:
            return _json({"status": "ok"})
        if parts[0] == "resources" and method == "GET" and len(parts) >= 2:
            return self._resources(parts[1], parts[2:], params)
        if parts[0] == "upload_presets" and len(parts) <= 2:
            return self._upload_presets(method, parts[1] if len(parts) == 2 else None, params)
        raise _Fail(404, "Not found")

    def _check_basic_auth(self, request: Request) -> None:
        """Admin API: HTTP basic auth with api_key:api_secret."""
        auth = request.authorization
        if auth is None or auth.type != "basic" or not auth.username:
            raise _Fail(401, "Must supply api_key")
        if auth.username != self.api_key:
            raise _Fail(401, f"Unknown API key {auth.username}")
        if not hmac.compare_digest(str(auth.password or "").encode(), self.api_secret.encode()):
            raise _Fail(401, "api_secret mismatch")

    def _check_signature(self, params: JsonDict, excluded: set[str]) -> None:
        """Signed-request rules: known api_key, matching signature, timestamp under 1 hour old."""
        api_key = params.get("api_key")
        if not api_key:
            raise _Fail(401, "Must supply api_key")
        if api_key != self.api_key:
            raise _Fail(401, f"Unknown API key {api_key}")
        to_sign = {k: v for k, v in params.items() if k not in _UNSIGNED_KEYS | excluded}
        given = str(params.get("signature") or "")
        # The SDK signs with version 2 ("&" escaped) by default; version 1 is still accepted.
        expected = [sign(to_sign, self.api_secret, self.signature_algorithm, v) for v in (2, 1)]
        if not any(hmac.compare_digest(given.encode(), e.encode()) for e in expected):
            to_sign_text = string_to_sign(to_sign)
            raise _Fail(401, f"Invalid Signature {given}. String to sign - '{to_sign_text}'.")
        try:
            timestamp = int(params.get("timestamp") or "")
        except ValueError:
            raise _Fail(400, "Missing required parameter - timestamp") from None
        if timestamp < time.time() - 3600:
            when = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S +0000")
            message = f"Stale request - reported time is {when} which is more than 1 hour ago"
            raise _Fail(401, message)

    # -- Upload API --------------------------------------------------------------------------------

    def _read_file(self, upload: FileStorage | None, value: Any) -> tuple[bytes, str]:
        """Bytes and original file name from a multipart file, a data URI or a loopback URL."""
        if upload is not None:
            return upload.read(), upload.filename or "file"
        if not value:
            raise _Fail(400, "Missing required parameter - file")
        text = str(value)
        match = _DATA_URI.match(text)
        if match:
            try:
                data = base64.b64decode(match[3]) if match[2] else unquote_to_bytes(match[3])
            except (binascii.Error, ValueError):
                raise _Fail(400, "Invalid file parameter - malformed data URI") from None
            return data, "file"
        parsed = urlparse(text)
        if parsed.scheme not in ("http", "https"):
            raise _Fail(400, f"Invalid file parameter - {text[:100]}")
        if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise _Fail(400, f"Error in loading {text} - the stand-in fetches loopback URLs only")
        try:
            fetched = requests.get(text, timeout=10)
            fetched.raise_for_status()
        except requests.RequestException as exc:
            raise _Fail(400, f"Error in loading {text} - {exc}") from None
        return fetched.content, PurePosixPath(parsed.path).name or "file"

    def _upload_settings(self, params: JsonDict) -> tuple[bool, JsonDict]:
        """(signed, preset settings) after the signed/unsigned rules of the Upload API."""
        signed = "signature" in params
        if signed:
            self._check_signature(params, set())
        preset_name = params.get("upload_preset")
        if not preset_name:
            if not signed:
                raise _Fail(400, "Upload preset must be specified when using unsigned upload")
            return signed, {}
        with self._lock:
            preset = self._presets.get(str(preset_name))
        if preset is None:
            raise _Fail(400, f"Upload preset {preset_name} not found")
        if not signed and not preset["unsigned"]:
            raise _Fail(400, "Upload preset must be whitelisted for unsigned uploads")
        if not signed and (extra := sorted(set(params) - _UNSIGNED_ALLOWED)):
            allowed = ",".join(sorted(_UNSIGNED_ALLOWED - {"file", "timestamp"}))
            raise _Fail(
                400,
                f"{extra[0].capitalize()} parameter is not allowed when using unsigned upload. "
                f"Only {allowed} upload parameters are allowed.",
            )
        return signed, dict(preset["settings"])

    def _upload(self, resource_type: str, params: JsonDict, upload: FileStorage | None) -> Response:
        signed, settings = self._upload_settings(params)
        options = {**settings, **{k: v for k, v in params.items() if v not in (None, "")}}
        if _flag(settings.get("disallow_public_id")):
            options.pop("public_id", None)
        tags = _split([*_split(settings.get("tags")), *_split(params.get("tags"))])

        data, filename = self._read_file(upload, params.get("file"))
        name = PurePosixPath(str(options.get("filename_override") or filename)).name
        stem, _, ext = name.rpartition(".") if "." in name else (name, "", "")
        ext = ext.lower()
        limit = options.get("max_file_size")
        if limit and len(data) > int(limit):
            raise _Fail(400, f"File size too large. Got {len(data)}. Maximum is {int(limit)}.")
        probe = _probe_image(data) if resource_type in ("image", "auto") else None
        if resource_type == "image" and probe is None:
            raise _Fail(400, "Invalid image file")
        if resource_type == "auto":
            media_exts = _VIDEO_EXTS | _AUDIO_EXTS
            resource_type = "image" if probe else "video" if ext in media_exts else "raw"
        media = _probe_media(data) if resource_type == "video" else None
        fmt, width, height = probe or (
            (ext or None) if resource_type == "video" else None,
            media.width if media else None,
            media.height if media else None,
        )
        allowed_formats = _split(options.get("allowed_formats"))
        if allowed_formats and (fmt or ext) not in allowed_formats:
            raise _Fail(400, f"{resource_type.capitalize()} format {fmt or ext} not allowed")

        public_id = str(options.get("public_id") or "")
        if not public_id:
            if _flag(options.get("use_filename")) and stem:
                unique = _flag(options.get("unique_filename"), True)
                public_id = stem + (f"_{_random_id(6)}" if unique else "")
            else:
                public_id = _random_id(20)
            if resource_type == "raw" and ext:
                public_id += f".{ext}"
        folder = str(options.get("folder") or "").strip("/")
        if folder:
            public_id = f"{folder}/{public_id}"
        type_ = str(options.get("type") or "upload")
        notification_url = str(options.get("notification_url") or "") or None
        with self._lock:
            existing = self._assets.get((resource_type, type_, public_id))
            if existing is not None and not _flag(options.get("overwrite"), default=signed):
                return _json(self._upload_json(existing, existing=True))
            asset = _Asset(
                public_id, resource_type, type_, data, fmt, width, height, tags=tags, media=media
            )
            asset.context = _parse_context(options.get("context"))
            asset.asset_folder = str(options.get("asset_folder") or folder)
            asset.display_name = str(options.get("display_name") or "")
            asset.original_filename, asset.notification_url = stem or name, notification_url
            overwritten = self._store(asset)
            body = self._upload_json(asset, **({"overwritten": True} if overwritten else {}))
        url = notification_url or self.notification_url
        if url:
            self._send_async(url, self._upload_payload(asset))
        return _json(body)

    def _tags(self, resource_type: str, params: JsonDict) -> Response:
        self._check_signature(params, _NOTIFICATION_KEYS)
        command = params.get("command")
        if not command:
            raise _Fail(400, "Missing required parameter - command")
        if command not in _TAG_COMMANDS:
            raise _Fail(400, f"Invalid command {command}")
        tags = _split(params.get("tag"))
        if command != "remove_all" and not tags:
            raise _Fail(400, "Missing required parameter - tag")
        raw_ids = params.get("public_ids")
        public_ids = [str(p) for p in raw_ids] if isinstance(raw_ids, list) else _split(raw_ids)
        if not public_ids:
            raise _Fail(400, "Missing required parameter - public_ids")
        type_ = str(params.get("type") or "upload")
        changes: list[tuple[_Asset, list[str]]] = []
        updated: list[str] = []
        with self._lock:
            for public_id in public_ids:
                asset = self._assets.get((resource_type, type_, public_id))
                if asset is None:
                    continue
                changes.append((asset, list(asset.tags)))
                if command in ("add", "set_exclusive"):
                    asset.tags += [t for t in tags if t not in asset.tags]
                elif command == "remove":
                    asset.tags = [t for t in asset.tags if t not in tags]
                else:  # replace, remove_all
                    asset.tags = list(tags) if command == "replace" else []
                updated.append(public_id)
            if command == "set_exclusive":
                for key, other in self._assets.items():
                    if key[:2] != (resource_type, type_) or other.public_id in updated:
                        continue
                    if any(t in other.tags for t in tags):
                        changes.append((other, list(other.tags)))
                        other.tags = [t for t in other.tags if t not in tags]
            by_url: dict[str, list[JsonDict]] = {}
            for asset, before in changes:
                added = [t for t in asset.tags if t not in before]
                removed = [t for t in before if t not in asset.tags]
                fallback = asset.notification_url if self.notify_tag_changes_to_upload_url else None
                url = params.get("notification_url") or self.notification_url or fallback
                if url and (added or removed):
                    fields = self._upload_json(asset)
                    by_url.setdefault(url, []).append(self._tags_entry(fields, added, removed))
        for url, resources in by_url.items():
            self._send_async(url, self._tags_payload(resources))
        return _json({"public_ids": updated})

    # -- Admin API ---------------------------------------------------------------------------------

    def _resources(self, resource_type: str, rest: list[str], params: JsonDict) -> Response:
        with self._lock:
            assets = [a for a in self._assets.values() if a.resource_type == resource_type]
            if len(rest) >= 2 and rest[0] != "tags":
                public_id = "/".join(rest[1:])
                found = self._assets.get((resource_type, rest[0], public_id))
                if found is None:
                    raise _Fail(404, f"Resource not found - {public_id}")
                return _json({**self._resource_json(found, context=True), "derived": []})
        if rest and rest[0] == "tags":
            if len(rest) != 2:
                raise _Fail(404, "Not found")
            assets = [a for a in assets if rest[1] in a.tags]
        elif rest:
            assets = [a for a in assets if a.type == rest[0]]
        prefix = params.get("prefix")
        if prefix and (not rest or rest[0] != "tags"):
            assets = [a for a in assets if a.public_id.startswith(str(prefix))]
            assets.sort(key=lambda a: a.public_id)  # documented: with a prefix, by public ID
        else:
            descending = str(params.get("direction", "desc")).lower() not in ("asc", "1")
            assets.sort(key=lambda a: (a.created_at, a.seq), reverse=descending)
        items, cursor = self._page(assets, params)
        want_tags, want_context = _flag(params.get("tags")), _flag(params.get("context"))
        with self._lock:
            resources = [self._resource_json(a, want_tags, want_context) for a in items]
        return _json({"resources": resources, **({"next_cursor": cursor} if cursor else {})})

    def _page(self, items: list[Any], params: JsonDict) -> tuple[list[Any], str | None]:
        """``max_results`` (default 10, at most 500) items from ``next_cursor`` on."""
        try:
            max_results = min(500, max(1, int(params.get("max_results") or 10)))
        except ValueError:
            raise _Fail(400, f"Invalid max_results {params.get('max_results')}") from None
        start = 0
        if params.get("next_cursor"):
            with self._lock:
                found = self._cursors.get(str(params["next_cursor"]))
            if found is None:
                raise _Fail(400, "Invalid next_cursor")
            start = found
        end = start + max_results
        if end >= len(items):
            return items[start:end], None
        cursor = secrets.token_hex(32)
        with self._lock:
            self._cursors[cursor] = end
        return items[start:end], cursor

    def _upload_presets(self, method: str, name: str | None, params: JsonDict) -> Response:
        fields = {k: v for k, v in params.items() if k not in ("timestamp", "api_key", "signature")}
        for key in ("tags", "allowed_formats"):  # documented as comma-separated strings
            if isinstance(fields.get(key), list):
                fields[key] = ",".join(str(v) for v in fields[key])
        with self._lock:
            if name is None and method == "GET":
                presets = sorted(self._presets.values(), key=lambda p: str(p["name"]))
                items, cursor = self._page(presets, params)
                return _json({"presets": items, **({"next_cursor": cursor} if cursor else {})})
            if name is None and method == "POST":
                new_name = str(fields.pop("name", "") or _random_id(8))
                unsigned = _flag(fields.pop("unsigned", False))
                self._presets[new_name] = {
                    "name": new_name,
                    "unsigned": unsigned,
                    "settings": fields,
                }
                return _json({"message": "created", "name": new_name})
            preset = self._presets.get(name or "")
            if name is None or preset is None:
                raise _Fail(404 if name else 405, f"Upload preset {name} not found")
            if method == "GET":
                return _json(json.loads(json.dumps(preset)))
            if method == "PUT":
                if "unsigned" in fields:
                    preset["unsigned"] = _flag(fields.pop("unsigned"))
                fields.pop("name", None)
                preset["settings"].update(fields)
                return _json({"message": "updated"})
            if method == "DELETE":
                del self._presets[name]
                return _json({"message": "deleted"})
        raise _Fail(405, f"Method {method} not allowed")

    # -- delivery ----------------------------------------------------------------------------------

    def _find(self, resource_type: str, type_: str, path: str) -> tuple[_Asset, str | None] | None:
        with self._lock:
            exact = self._assets.get((resource_type, type_, path))
            if exact is not None:
                return exact, None
            stem, dot, ext = path.rpartition(".")
            found = self._assets.get((resource_type, type_, stem)) if dot else None
            return (found, ext.lower()) if found else None

    def _locate(
        self, resource_type: str, type_: str, segments: list[str]
    ) -> tuple[list[str], _Asset, str | None] | None:
        """Split ``[transformation/][v<version>/]<public_id>.<ext>`` into its parts."""
        version_at = next((i for i, s in enumerate(segments) if re.fullmatch(r"v\d+", s)), None)
        if version_at is not None:  # the version number itself is ignored, as on Cloudinary
            found = self._find(resource_type, type_, "/".join(segments[version_at + 1 :]))
            return (segments[:version_at], *found) if found else None
        # Without a version component, leading segments are a transformation only if the rest
        # names an asset (public IDs may contain folders).
        for split in range(len(segments)):
            found = self._find(resource_type, type_, "/".join(segments[split:]))
            if found:
                return (segments[:split], *found)
        return None

    def _deliver(self, resource_type: str, type_: str, segments: list[str]) -> Response:
        located = self._locate(resource_type, type_, segments)
        if located is None:
            raise _Fail(404, f"Resource not found - {'/'.join(segments)}", delivery=True)
        transformation, asset, ext = located
        try:
            steps = _parse_transformation(transformation)
        except ValueError as exc:
            raise _Fail(400, f"Invalid transformation component - {exc}", delivery=True) from None
        if asset.resource_type == "video" and ext in _FORMAT_TO_PIL and ext != asset.format:
            return self._deliver_frame(asset, steps, ext)
        if asset.resource_type != "image" or asset.format not in _FORMAT_TO_PIL:
            if steps or (ext and ext != asset.format):
                message = f"Transformations are not supported for {asset.public_id}"
                raise _Fail(400, message, delivery=True)
            mime = mimetypes.guess_type(f"x.{asset.format or ext or asset.public_id}")[0]
            return Response(asset.data, 200, content_type=mime or "application/octet-stream")
        forced = [s["f"] for s in steps if s.get("f") not in (None, "auto")]
        fmt = (forced[-1] if forced else ext or asset.format).replace("jpeg", "jpg")
        if fmt not in _FORMAT_TO_PIL:
            raise _Fail(400, f"Invalid extension - {fmt}", delivery=True)
        if fmt == asset.format and not any(k in s for s in steps for k in ("w", "h", "q")):
            data = asset.data
        else:
            data = _render(asset.data, steps, fmt)
        headers = {"ETag": f'"{hashlib.md5(data).hexdigest()}"'}
        return Response(data, 200, headers, content_type=_MIME.get(fmt, f"image/{fmt}"))

    def _deliver_frame(self, asset: _Asset, steps: list[dict[str, str]], ext: str) -> Response:
        """A video's frame as an image: at ``so_<seconds>`` (else the middle), transformed."""
        offsets = [float(step["so"]) for step in steps if "so" in step]
        duration = asset.media.duration if asset.media else None
        at = offsets[-1] if offsets else (duration or 0.0) / 2
        try:
            frame = _video_frame(asset.data, at)
        except ValueError as exc:
            raise _Fail(400, f"Video could not be decoded - {exc}", delivery=True) from None
        still = io.BytesIO()
        frame.save(still, "PNG")
        rest = [kept for step in steps if (kept := {k: v for k, v in step.items() if k != "so"})]
        forced = [s["f"] for s in rest if s.get("f") not in (None, "auto")]
        fmt = (forced[-1] if forced else ext).replace("jpeg", "jpg")
        data = _render(still.getvalue(), rest, fmt)
        headers = {"ETag": f'"{hashlib.md5(data).hexdigest()}"'}
        return Response(data, 200, headers, content_type=_MIME.get(fmt, f"image/{fmt}"))


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted; prints the CLOUDINARY_URL to use."""
    parser = argparse.ArgumentParser(description="Local Cloudinary stand-in for demos and tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--cloud-name", default="demo")
    parser.add_argument("--api-key", default="123456789012345")
    parser.add_argument("--api-secret", default="standin-secret")
    parser.add_argument("--signature-algorithm", choices=sorted(_HASHES), default="sha1")
    parser.add_argument("--notification-url", help="account-wide notification URL")
    args = parser.parse_args(argv)
    standin = CloudinaryStandin(
        args.cloud_name,
        args.api_key,
        args.api_secret,
        args.signature_algorithm,
        args.host,
        args.port,
    ).start(quiet=False)
    standin.notification_url = args.notification_url
    print(f"CLOUDINARY_URL={standin.cloudinary_url}", flush=True)
    print(
        f"delivery: {standin.url}/{standin.cloud_name}/image/upload/<public_id>.<ext>", flush=True
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        standin.stop()


if __name__ == "__main__":
    main()
