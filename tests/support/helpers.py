"""Helpers shared by tests: generated images, payloads from tests/data, signatures."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cloudinary.utils
from PIL import Image

DATA = Path(__file__).resolve().parents[1] / "data"
ROOT = Path(__file__).resolve().parents[2]
_FRESH_REQUEST = """
import json, sys
import functions_framework
app = functions_framework.create_app("on_upload", {main!r}).test_client()
response = app.post("/", data={body!r}.encode(), headers=json.loads({headers!r}))
print(json.dumps({{"status": response.status_code, "record": response.get_json(),
                  "modules": sorted(sys.modules)}}))
"""


def image_bytes(
    size: tuple[int, int] = (320, 240),
    color: tuple[int, int, int] = (200, 30, 30),
    fmt: str = "JPEG",
) -> bytes:
    """A small generated picture (a gradient with a colored square)."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    image.paste(color, (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def load_payload(name: str, **fields: Any) -> dict[str, Any]:
    """A notification from tests/data with `fields` filled in."""
    payload: dict[str, Any] = json.loads((DATA / name).read_text())
    payload.update(fields)
    return payload


def sign_body(
    body: bytes, secret: str, algorithm: str = "sha1", timestamp: int | None = None
) -> dict[str, str]:
    """Headers Cloudinary sends, made with the SDK's own hash function."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = cloudinary.utils.compute_hex_hash(body.decode() + stamp + secret, algorithm)
    return {
        "X-Cld-Timestamp": stamp,
        "X-Cld-Signature": signature,
        "Content-Type": "application/json",
    }


def notification_from(resource: dict[str, Any], name: str = "upload_notification.json") -> bytes:
    """A compact upload notification body for a stand-in resource."""
    keys = (
        "asset_id",
        "public_id",
        "version",
        "version_id",
        "width",
        "height",
        "format",
        "resource_type",
        "type",
        "bytes",
        "duration",
        "is_audio",
        "etag",
        "url",
        "secure_url",
        "original_filename",
        "api_key",
    )
    payload = load_payload(name, **{k: resource[k] for k in keys if k in resource})
    return json.dumps(payload, separators=(",", ":")).encode()


def on_upload_in_fresh_process(
    body: bytes, secret: str, env: dict[str, str]
) -> tuple[dict[str, Any], str]:
    """One signed `on_upload` request (load, download, predict, tags, store) in a new Python
    process that imported nothing before it: (its status, record and every module it ended up
    importing; the process's whole output)."""
    script = _FRESH_REQUEST.format(
        main=str(ROOT / "function" / "main.py"),
        body=body.decode(),
        headers=json.dumps(sign_body(body, secret)),
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result, done.stdout + done.stderr
