"""Cloudinary: download delivered assets and write tags through the official SDK."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import cloudinary
import cloudinary.api
import cloudinary.exceptions
import cloudinary.uploader
import cloudinary.utils
import requests
from requests.adapters import HTTPAdapter

from autotagger import logs, parsing
from autotagger.config import CloudinaryAccount, Settings, is_loopback
from autotagger.errors import ConfigError, ImageError, RateLimitExceeded, TransientError
from autotagger.retry import with_retries

MAX_REDIRECTS = 3
API_TIMEOUT_S = 20
_CHUNK = 64 * 1024
_session = requests.Session()
_session.mount("https://", HTTPAdapter(pool_connections=4, pool_maxsize=32))
_session.mount("http://", HTTPAdapter(pool_connections=4, pool_maxsize=32))
_session.headers["User-Agent"] = "autotagger/1.0"
# The derived image the model needs, made by Cloudinary: a squash resize to 224x224 (the geometry
# of Keras's load_img), lossless PNG (alpha kept, flattened by imaging like the original's).
RENDITION = "c_scale,w_224,h_224,f_png"
_STANDARD_DELIVERY_PATH = re.compile(
    r"^/(?P<cloud>[^/]+)/image/upload/(?P<version>v\d+)/(?P<public_id>[^/][^?#]*\.[A-Za-z0-9]+)$"
)


SDK_POOL_MAXSIZE = 32  # connections kept per host: one per concurrent request thread


def _pooled_sdk_connections() -> None:
    """The SDK sends Upload and Admin API calls through module-level urllib3 pool managers that
    keep ONE connection per host: at 8 concurrent tag writes, 7 open a fresh connection (TLS
    handshake included) and drop it after one call. Give them a pool as large as the request
    threads, with the SDK's own connector (keep-alive, proxy, certificates)."""
    import cloudinary.api_client.call_api as admin_api

    options = {**cloudinary.CERT_KWARGS, "maxsize": SDK_POOL_MAXSIZE}
    for module in (cloudinary.uploader, admin_api):
        module._http = cloudinary.utils.get_http_connector(cloudinary.config(), options)


def configure(account: CloudinaryAccount | None) -> None:
    """Point the SDK's global config at `account` (and nothing else)."""
    cloudinary.reset_config()
    if account is None:
        return
    options: dict[str, Any] = {
        "cloud_name": account.cloud_name,
        "api_key": account.api_key,
        "api_secret": account.api_secret,
        "signature_algorithm": account.signature_algorithm,
        "secure": True,
    }
    if account.upload_prefix:
        options["upload_prefix"] = account.upload_prefix
    cloudinary.config(**options)
    _pooled_sdk_connections()


def require_account(settings: Settings) -> CloudinaryAccount:
    if settings.cloudinary is None:
        raise ConfigError("CLOUDINARY_URL is not set: cannot verify or tag Cloudinary uploads")
    return settings.cloudinary


def check_delivery_url(url: str, settings: Settings) -> None:
    """Raise ImageError unless `url` is on an allowed delivery host (https; http for loopback)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    if parts.scheme not in ("https", "http") or not host:
        raise ImageError(f"refusing to download {parts.scheme or 'relative'} URL")
    if parts.scheme == "http" and not is_loopback(host):
        raise ImageError(f"refusing plain http download from {host}")
    if netloc not in settings.delivery_hosts and host not in settings.delivery_hosts:
        raise ImageError(f"refusing to download from {netloc}: not a Cloudinary delivery host")
    if parts.username or parts.password:
        raise ImageError("refusing a delivery URL with credentials")


def _is_transient_status(status: int) -> bool:
    return status == 429 or status >= 500


def _download_once(url: str, settings: Settings) -> bytes:
    deadline = time.monotonic() + settings.download_timeout_s
    for _ in range(MAX_REDIRECTS + 1):
        check_delivery_url(url, settings)
        try:
            response = _session.get(
                url, stream=True, allow_redirects=False, timeout=(5.0, settings.download_timeout_s)
            )
        except requests.RequestException as exc:
            raise TransientError(f"download failed: {type(exc).__name__}") from exc
        with response:
            if response.is_redirect and "location" in response.headers:
                url = urljoin(url, response.headers["location"])
                continue
            if _is_transient_status(response.status_code):
                raise TransientError(f"download answered HTTP {response.status_code}")
            if response.status_code != 200:
                detail = response.headers.get("x-cld-error", "")
                suffix = f": {detail[:200]}" if detail else ""
                raise ImageError(f"download answered HTTP {response.status_code}{suffix}")
            declared = response.headers.get("content-length", "")
            if parsing.is_ascii_int(declared) and int(declared) > settings.max_image_bytes:
                raise ImageError(
                    f"image is {declared} bytes, over MAX_IMAGE_BYTES={settings.max_image_bytes}"
                )
            chunks: list[bytes] = []
            size = 0
            try:
                for chunk in response.iter_content(_CHUNK):
                    size += len(chunk)
                    if size > settings.max_image_bytes:
                        raise ImageError(
                            f"image is over MAX_IMAGE_BYTES={settings.max_image_bytes} bytes"
                        )
                    if time.monotonic() > deadline:
                        raise TransientError("download exceeded DOWNLOAD_TIMEOUT_S")
                    chunks.append(chunk)
            except requests.RequestException as exc:
                raise TransientError(f"download interrupted: {type(exc).__name__}") from exc
            return b"".join(chunks)
    raise ImageError(f"too many redirects (more than {MAX_REDIRECTS})")


def download(url: str, settings: Settings) -> bytes:
    """Fetch a delivered asset into memory (never to disk), within size and time limits."""
    return with_retries("download", lambda: _download_once(url, settings))


def rendition_url(url: str, transformation: str = RENDITION) -> str:
    """The delivery URL of a derived rendition of `url`, or `url` itself when it is not a
    standard delivery URL (`/<cloud>/image/upload/v<version>/<public_id>.<ext>`: no
    transformation, signature, query, other resource or delivery type already in it)."""
    parts = urlsplit(url)
    match = _STANDARD_DELIVERY_PATH.match(parts.path)
    if match is None or parts.query or parts.fragment:
        return url
    path = (
        f"/{match['cloud']}/image/upload/{transformation}/{match['version']}/{match['public_id']}"
    )
    return urlunsplit(parts._replace(path=path))


def download_for_model(url: str, settings: Settings) -> bytes:
    """What the model needs of the asset at `url`: Cloudinary's 224-px rendition when
    DOWNLOAD_RENDITION is on and `url` is a standard delivery URL (one try: a 224x224 PNG,
    never a 12 MP decode); the original (`download`) otherwise or when the rendition fails."""
    derived = rendition_url(url) if settings.download_rendition else url
    if derived != url:
        try:
            return _download_once(derived, settings)
        except (ImageError, TransientError) as exc:
            logs.warning("rendition failed, downloading the original", url=derived, error=str(exc))
    return download(url, settings)


def _is_transient_api_error(exc: BaseException) -> bool:
    if isinstance(exc, cloudinary.exceptions.RateLimited | cloudinary.exceptions.GeneralError):
        return True
    # The SDK raises the base Error for network failures and non-JSON answers.
    return type(exc) is cloudinary.exceptions.Error


def _api(what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("timeout", API_TIMEOUT_S)
    try:
        return with_retries(what, lambda: call(*args, **kwargs), _is_transient_api_error)
    except cloudinary.exceptions.NotFound as exc:
        raise ImageError(f"asset not found in Cloudinary ({what}): {exc}") from exc


def write_tags(
    public_id: str,
    add: list[str],
    remove: list[str],
    resource_type: str = "image",
    delivery_type: str = "upload",
) -> None:
    """Add our tags to the asset (one call) and remove our stale ones from an older version."""
    options = {"resource_type": resource_type, "type": delivery_type}
    stale = [t for t in remove if t not in add]
    if stale:
        _api("remove tags", cloudinary.uploader.remove_tag, stale, [public_id], **options)
    if add:
        _api("add tags", cloudinary.uploader.add_tag, add, [public_id], **options)


def resource(public_id: str, resource_type: str = "image", delivery_type: str = "upload") -> Any:
    """The Admin API's description of an asset (asset_id, version, secure_url, tags, ...)."""
    return _api(
        "resource lookup",
        cloudinary.api.resource,
        public_id,
        resource_type=resource_type,
        type=delivery_type,
    )


def list_images(
    prefix: str | None = None, page_size: int = 500, resource_type: str = "image"
) -> Iterator[dict[str, Any]]:
    """Every image (or video) of delivery type `upload` (under `prefix`), through the Admin
    API's pages (`list_page`)."""
    cursor: str | None = None
    while True:
        page = list_page(prefix, cursor, page_size, resource_type)
        yield from page.resources
        cursor = page.next_cursor
        if not cursor:
            return


@dataclass(frozen=True)
class ResourcePage:
    """One page of the Admin API's resource list, with the account's hourly budget after it
    (`X-FeatureRateLimit-Limit`, `-Remaining`, `-Reset`; None when not sent)."""

    resources: list[dict[str, Any]]
    next_cursor: str | None
    rate_limit: int | None = None
    rate_remaining: int | None = None
    rate_reset_at: str | None = None


def _budget(response: Any) -> dict[str, Any]:
    reset = getattr(response, "rate_limit_reset_at", None)
    return {
        "rate_limit": getattr(response, "rate_limit_allowed", None),
        "rate_remaining": getattr(response, "rate_limit_remaining", None),
        "rate_reset_at": time.strftime("%Y-%m-%d %H:%M UTC", reset) if reset else None,
    }


def list_page(
    prefix: str | None,
    cursor: str | None,
    page_size: int = 500,
    resource_type: str = "image",
    *,
    tags: bool = False,
) -> ResourcePage:
    """One Admin API page of assets (delivery type `upload`; with `tags`, each with its tags).
    An exhausted hourly budget (the SDK's RateLimited) raises RateLimitExceeded at once:
    retrying within the hour cannot help."""
    options: dict[str, Any] = {
        "type": "upload",
        "resource_type": resource_type,
        "max_results": page_size,
        "timeout": API_TIMEOUT_S,
    }
    if tags:
        options["tags"] = True
    if prefix:
        options["prefix"] = prefix
    if cursor:
        options["next_cursor"] = cursor

    def call() -> Any:
        try:
            return cloudinary.api.resources(**options)
        except cloudinary.exceptions.RateLimited as exc:
            raise RateLimitExceeded(f"Admin API rate limit reached: {exc}") from exc

    response = with_retries("list resources", call, _is_transient_api_error)
    return ResourcePage(
        resources=list(response.get("resources") or []),
        next_cursor=response.get("next_cursor") or None,
        **_budget(response),
    )


def total_assets() -> int | None:
    """The account's asset count from the Admin API's usage report (all resource types: an upper
    bound for images); None when unavailable. Costs one Admin API request."""
    try:
        usage = _api("usage", cloudinary.api.usage)
    except Exception as exc:  # only a progress estimate
        logs.warning("usage report unavailable", error=str(exc)[:200])
        return None
    count = usage.get("resources")
    return count if isinstance(count, int) else None
