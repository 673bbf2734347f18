"""What the local Cloudinary tests share: documented field lists, images, signature checks."""

from __future__ import annotations

import io
import re
import threading
from typing import Any

import cloudinary
import cloudinary.api
import cloudinary.exceptions
import cloudinary.uploader
import cloudinary.utils
from PIL import Image
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from infra.local_cloudinary import CloudinaryStandin

HEX32 = re.compile(r"^[0-9a-f]{32}$")
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
# Documented Upload API response fields.
# fmt: off
UPLOAD_FIELDS = {
    "asset_id", "public_id", "version", "version_id", "signature", "width", "height", "format",
    "resource_type", "created_at", "tags", "bytes", "type", "etag", "placeholder", "url",
    "secure_url", "asset_folder", "display_name", "original_filename", "api_key",
}
# Upload notification fields, in the order of the upload response they repeat.
NOTIFICATION_FIELDS = [
    "notification_type", "timestamp", "request_id", "asset_id", "public_id", "version",
    "version_id", "width", "height", "format", "resource_type", "created_at", "tags", "bytes",
    "type", "etag", "placeholder", "url", "secure_url", "asset_folder", "display_name",
    "original_filename", "api_key", "notification_context", "signature_key",
]
# fmt: on


def image_bytes(width: int = 64, height: int = 48, fmt: str = "PNG", color: str = "red") -> bytes:
    """A small generated image (no binary fixtures in the repository)."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, fmt)
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


class Receiver:
    """A webhook endpoint that records what it gets."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.status = 200
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/hook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _app(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        self.received.append((request.get_data(), dict(request.headers)))
        return Response("ok", self.status)(environ, start_response)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def verify(body: bytes, headers: dict[str, str]) -> bool:
    """What the function will do: the SDK's check over the raw body and the two headers."""
    return bool(
        cloudinary.utils.verify_notification_signature(
            body.decode(), headers["X-Cld-Timestamp"], headers["X-Cld-Signature"]
        )
    )


def tag_calls(standin: CloudinaryStandin) -> list[dict[str, Any]]:
    return [c for c in standin.calls if c["path"] == f"/v1_1/{standin.cloud_name}/image/tags"]


def delivery_url(standin: CloudinaryStandin, public_id: str, **options: Any) -> str:
    url, _ = cloudinary.utils.cloudinary_url(
        public_id, secure=False, cname=standin.delivery_host, **options
    )
    return str(url)
