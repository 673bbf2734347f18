"""What the upload page needs to know when it runs on `make run`'s defaults (no account).

- `LOCAL_CLOUDINARY=1` (set by `make run` when `CLOUDINARY_URL` is empty): the account is the
  local Cloudinary (`infra/local_cloudinary/`), so the page uploads through the browser's file
  chooser straight to its Upload API (the `upload_prefix` of `CLOUDINARY_URL`, a loopback URL)
  instead of loading Cloudinary's Upload widget, and shows a "local Cloudinary" badge.
- Random weights (`MODEL_WEIGHTS=random`, or an artifact built from them): the page shows a
  banner saying the labels are meaningless.

Only public facts leave this module: a loopback Upload API URL and a boolean.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from autotagger.config import Settings, origin_of
from autotagger.domain import Manifest, ManifestError


def upload_api_url(settings: Settings) -> str | None:
    """The local Cloudinary's unsigned Upload API URL (resource type `auto`: images and videos),
    or None (a real account)."""
    account = settings.cloudinary
    if not settings.local_cloudinary or account is None or not account.upload_prefix:
        return None
    return f"{account.upload_prefix}/v1_1/{account.cloud_name}/auto/upload"


def connect_sources(settings: Settings) -> list[str]:
    """CSP `connect-src` additions: the local Upload API's origin, when local."""
    url = upload_api_url(settings)
    return [origin_of(url)] if url else []


@functools.cache
def _artifact_name(directory: str) -> str:
    try:
        return Manifest.read(Path(directory)).name
    except (OSError, ManifestError):
        return ""


def random_weights(settings: Settings) -> bool:
    """True when the served model has seeded random weights (its labels mean nothing)."""
    weights = settings.model_weights
    if weights == "random":
        return True
    if weights in ("imagenet",) or weights.startswith("gs://") or not Path(weights).is_dir():
        return False
    return _artifact_name(weights).startswith("vgg16/random")


def public_config(settings: Settings) -> dict[str, Any]:
    """The page's public configuration for local mode and the random-weights banner."""
    return {"localUploadUrl": upload_api_url(settings), "randomWeights": random_weights(settings)}
