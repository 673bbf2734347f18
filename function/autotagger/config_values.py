"""How one setting's text becomes a value: the checks `config.Settings` declares per field.

Each reader takes the variable's name and its raw text (never empty: `config` uses the declared
default then) and returns the value or raises a one-line `ConfigError` naming the variable. A
secret's value is never put in a message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from autotagger.errors import ConfigError

Reader = Callable[[str, str], Any]

DEFAULT_DELIVERY_HOST = "res.cloudinary.com"
SIGNATURE_ALGORITHMS = ("sha1", "sha256")
MIN_TOKEN_CHARS = 32
HOST_RE = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$")
_COLLECTION_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_PRESET_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$")
# Pub/Sub's resource-name rule: a letter, then 2-254 of letters, digits and -_.~+%.
_TOPIC_RE = re.compile(r"^[A-Za-z][A-Za-z0-9._~+%-]{2,254}$")
_TOKEN_RE = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII: it travels in an HTTP header
_FOLDER_RE = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
_FORMAT_RE = re.compile(r"^[a-z0-9]{2,5}$")


@dataclass(frozen=True)
class CloudinaryAccount:
    """The parts of `CLOUDINARY_URL` (the SDK's own format) the function uses."""

    cloud_name: str
    api_key: str
    api_secret: str = field(repr=False)
    signature_algorithm: str = "sha1"
    upload_prefix: str | None = None
    url: str = field(default="", repr=False)


def parse_cloudinary_url(value: str) -> CloudinaryAccount:
    """Parse `cloudinary://key:secret@cloud[?upload_prefix=...&signature_algorithm=...]`."""
    parts = urlsplit(value)
    if parts.scheme != "cloudinary":
        raise ConfigError("CLOUDINARY_URL must start with cloudinary://")
    if not parts.hostname or not parts.username or not parts.password:
        raise ConfigError(
            "CLOUDINARY_URL must look like cloudinary://API_KEY:API_SECRET@CLOUD_NAME"
        )
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    algorithm = query.get("signature_algorithm", "sha1").lower()
    if algorithm not in SIGNATURE_ALGORITHMS:
        raise ConfigError("CLOUDINARY_URL signature_algorithm must be sha1 or sha256")
    prefix = query.get("upload_prefix")
    if prefix is not None:
        prefix_parts = urlsplit(prefix)
        if prefix_parts.scheme not in ("http", "https") or not prefix_parts.hostname:
            raise ConfigError("CLOUDINARY_URL upload_prefix must be an http(s) URL")
    # urlsplit lowercases hostname; cloud names are case-sensitive, so take it from netloc.
    cloud_name = parts.netloc.rsplit("@", 1)[-1].split(":", 1)[0]
    return CloudinaryAccount(
        cloud_name=cloud_name,
        api_key=parts.username,
        api_secret=parts.password,
        signature_algorithm=algorithm,
        upload_prefix=prefix.rstrip("/") if prefix else None,
        url=value,
    )


def cloudinary_url(name: str, raw: str) -> CloudinaryAccount:
    return parse_cloudinary_url(raw.strip())


def integer(low: int, high: int) -> Reader:
    def read(name: str, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw.strip()!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
        return value

    return read


def number(low: float, high: float) -> Reader:
    def read(name: str, raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw.strip()!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
        return value

    return read


def flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("1", "0", "true", "false"):
        raise ConfigError(f"{name} must be 1 or 0, got {value!r}")
    return value in ("1", "true")


def choice(*choices: str, upper: bool = False) -> Reader:
    def read(name: str, raw: str) -> str:
        value = raw.strip().upper() if upper else raw.strip().lower()
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    return read


def text(name: str, raw: str) -> str:
    return raw.strip()


def host_port(name: str, raw: str) -> str:
    value = raw.strip()
    if not HOST_RE.match(value):
        raise ConfigError(f"{name} must be host:port, got {value!r}")
    return value


def delivery_hosts(name: str, raw: str) -> tuple[str, ...]:
    hosts = [DEFAULT_DELIVERY_HOST]
    for item in (h.strip().lower() for h in raw.split(",")):
        if not item:
            continue
        if "/" in item or not HOST_RE.match(item):
            raise ConfigError(f"{name} entries must be host or host:port, got {item!r}")
        hosts.append(item)
    return tuple(dict.fromkeys(hosts))


def collection(name: str, raw: str) -> str:
    value = raw.strip()
    if not _COLLECTION_RE.match(value):
        raise ConfigError(
            f"{name} must be letters, digits, _ or - (a top-level collection), got {value!r}"
        )
    return value


def tag_prefix(name: str, raw: str) -> str:
    if "," in raw or len(raw) > 64 or raw != raw.strip():
        raise ConfigError(f"{name} must have no commas or surrounding spaces, 64 chars at most")
    return raw


def model_weights(name: str, raw: str) -> str:
    value = raw.strip()
    if value in ("imagenet", "random") or value.startswith("gs://"):
        if value.startswith("gs://") and len(value) <= len("gs://") + 1:
            raise ConfigError(f"{name} gs:// URI needs a bucket and a path")
        return value
    path = Path(value).expanduser()
    if not path.exists():
        raise ConfigError(
            f"{name} must be imagenet, random, gs://... or an existing path; {value!r} "
            "does not exist"
        )
    return str(path.resolve())


def cache_dir(name: str, raw: str) -> Path:
    path = Path(raw.strip()).expanduser()
    if not path.is_absolute():
        raise ConfigError(f"{name} must be an absolute path, got {raw.strip()!r}")
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{name} {raw.strip()!r} is not a directory")
    return path


def http_url(name: str, value: str) -> tuple[str, str]:
    """Check an absolute http(s) URL without credentials; return (scheme, lowercase netloc)."""
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{name} has an invalid port: {value!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    if parts.username or parts.password:
        raise ConfigError(f"{name} must not carry credentials")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return parts.scheme, host if port is None else f"{host}:{port}"


def endpoint_url(name: str, raw: str) -> str:
    value = raw.strip()
    http_url(name, value)
    parts = urlsplit(value)
    if parts.query or parts.fragment:
        raise ConfigError(f"{name} must have no query string or fragment")
    return value.rstrip("/")


def origins(name: str, raw: str) -> tuple[str, ...]:
    found: list[str] = []
    for item in (o.strip() for o in raw.split(",")):
        if not item:
            continue
        parts = urlsplit(item)
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ConfigError(
                f"{name} entries must be origins (scheme://host[:port]), got {item!r}"
            )
        scheme, netloc = http_url(name, item)
        found.append(f"{scheme}://{netloc}")
    return tuple(dict.fromkeys(found))


def preset(name: str, raw: str) -> str:
    value = raw.strip()
    if not _PRESET_RE.match(value):
        raise ConfigError(f"{name} must be a preset name (letters, digits, _, -, .), got {value!r}")
    return value


def token(name: str, raw: str) -> str:
    """A secret: long, visible ASCII. Never echoed in the error."""
    value = raw.strip()
    if len(value) < MIN_TOKEN_CHARS or not _TOKEN_RE.match(value):
        raise ConfigError(
            f"{name} must be at least {MIN_TOKEN_CHARS} visible ASCII characters "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return value


def folder(name: str, raw: str) -> str:
    value = raw.strip().strip("/")
    if not _FOLDER_RE.match(value) or len(value) > 200:
        raise ConfigError(
            f"{name} must be folder names of letters, digits, _ or - joined by /, got {value!r}"
        )
    return value


def formats(name: str, raw: str) -> tuple[str, ...]:
    items = [f.strip().lower() for f in raw.split(",") if f.strip()]
    if not items:
        raise ConfigError(f"{name} must name at least one format, got {raw.strip()!r}")
    for item in items:
        if not _FORMAT_RE.match(item):
            raise ConfigError(f"{name} entries must be formats like jpg, got {item!r}")
    return tuple(dict.fromkeys(items))


def topic(name: str, raw: str) -> str:
    value = raw.strip()
    if not _TOPIC_RE.match(value) or value.lower().startswith("goog"):
        raise ConfigError(
            f"{name} must be a topic id (a letter, then 2-254 letters, digits or -_.~+%, "
            f"not starting with goog), got {value!r}"
        )
    return value
