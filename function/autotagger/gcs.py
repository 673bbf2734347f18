"""Cloud Storage: copy a model artifact (`gs://bucket/path`, a file or a folder) to local disk once.

Uses the JSON API through google-auth's AuthorizedSession (no extra client library). Honours
`STORAGE_EMULATOR_HOST` like the official client. The copy lives under `MODEL_CACHE_DIR`
(default: the system temp dir, which on Cloud Functions is in-memory).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

import requests


def _session() -> requests.Session:
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        return requests.Session()
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    credentials, _ = google.auth.default(
        scopes=["https://www.googleapis.com/auth/devstorage.read_only"]
    )
    return AuthorizedSession(credentials)


def _base_url() -> str:
    return os.environ.get("STORAGE_EMULATOR_HOST", "https://storage.googleapis.com").rstrip("/")


def split_uri(uri: str) -> tuple[str, str]:
    """`gs://bucket/some/path` -> ("bucket", "some/path")."""
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    if not bucket or not name:
        raise ValueError(f"not a gs://bucket/path URI: {uri!r}")
    return bucket, name.rstrip("/")


def fetch(uri: str) -> Path:
    """Download the object or every object under the prefix; return the local path."""
    bucket, name = split_uri(uri)
    cache = Path(os.environ.get("MODEL_CACHE_DIR") or tempfile.gettempdir()) / "autotagger-models"
    target = cache / hashlib.sha256(uri.encode()).hexdigest()[:16] / Path(name).name
    if target.exists():
        return target
    session = _session()
    base = f"{_base_url()}/storage/v1/b/{quote(bucket, safe='')}/o"
    names: list[str] = []
    page_token: str | None = None
    while True:
        params = {"prefix": name + "/", "fields": "items(name),nextPageToken"}
        if page_token:
            params["pageToken"] = page_token
        listing = session.get(base, params=params, timeout=30)
        listing.raise_for_status()
        body = listing.json()
        names += [item["name"] for item in body.get("items", [])]
        page_token = body.get("nextPageToken")
        if not page_token:
            break
    staging = Path(tempfile.mkdtemp(dir=cache.parent if cache.parent.exists() else None))
    try:
        for object_name in names or [name]:
            relative = object_name[len(name) + 1 :] if names else Path(name).name
            destination = staging / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            url = f"{base}/{quote(object_name, safe='')}"
            with session.get(url, params={"alt": "media"}, stream=True, timeout=60) as response:
                response.raise_for_status()
                with destination.open("wb") as out:
                    shutil.copyfileobj(response.raw, out, 1024 * 1024)
        target.parent.mkdir(parents=True, exist_ok=True)
        source = staging if names else staging / Path(name).name
        os.replace(source, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
