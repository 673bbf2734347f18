"""Settings: read from the environment once, validated at start.

Every setting is listed in `.env.example` and the README. A missing or malformed one raises
`ConfigError` naming it; `main.py` turns that into one log line and a non-zero exit.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from autotagger.errors import ConfigError

DEFAULT_DELIVERY_HOST = "res.cloudinary.com"
SIGNATURE_ALGORITHMS = ("sha1", "sha256")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_HOST_RE = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$")
_COLLECTION_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_PRESET_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$")
# Pub/Sub's resource-name rule: a letter, then 2-254 of letters, digits and -_.~+%.
_TOPIC_RE = re.compile(r"^[A-Za-z][A-Za-z0-9._~+%-]{2,254}$")
WEBHOOK_MODES = ("inline", "queue")
# Decoding needs up to 4 bytes a pixel at full size (PNG, TIFF, WebP: only JPEG decodes reduced),
# so 50 MP is 200 MB a decode (imaging.py bounds how many run at once).
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
# Just above the longest function timeout (on_message's 300 s, infra/deploy.sh): no delivery
# runs longer, so an older claim is a crashed one.
DEFAULT_CLAIM_TTL_S = 330
# Admin API lookups /forward may make an hour on one instance: 10 x MAX_INSTANCES (10) = 100 an
# hour, a fifth of a free plan's 500 (infra/deploy.sh derives it from MAX_INSTANCES).
DEFAULT_FORWARD_BUDGET_PER_HOUR = 10


@dataclass(frozen=True)
class CloudinaryAccount:
    """The parts of `CLOUDINARY_URL` (the SDK's own format) the function uses."""

    cloud_name: str
    api_key: str
    api_secret: str = field(repr=False)
    signature_algorithm: str = "sha1"
    upload_prefix: str | None = None
    url: str = field(default="", repr=False)


@dataclass(frozen=True)
class Settings:
    cloudinary: CloudinaryAccount | None
    google_cloud_project: str | None
    firestore_emulator_host: str | None
    firestore_database: str
    firestore_collection: str
    model_weights: str
    top_k: int
    tag_threshold: float
    tag_prefix: str
    delivery_hosts: tuple[str, ...]
    webhook_max_age_s: int
    max_body_bytes: int
    max_image_bytes: int
    max_image_pixels: int
    download_timeout_s: float
    claim_ttl_s: int
    log_level: str
    upload_preset: str | None = None
    on_upload_url: str | None = None
    allowed_origins: tuple[str, ...] = ()
    model_precision: str = "fp32"
    model_max_batch: int = 8
    download_rendition: bool = True
    # Local Cloudinary (`make run` without an account): the page uploads to its Upload API.
    local_cloudinary: bool = False
    # Video uploads (autotagger/video.py): frames sampled per video, longest video classified.
    video_frames: int = 8
    max_video_seconds: int = 3600
    # -- access control (issue 10): who may list results, who may upload ------------------------
    results_access: str = "private"
    results_token: str | None = field(default=None, repr=False)
    upload_mode: str = "signed"
    upload_folder: str = "autotagger"
    upload_allowed_formats: tuple[str, ...] = (
        "jpg",
        "png",
        "webp",
        "gif",
        "heic",
        "avif",
        "bmp",
        "tiff",
        "mp4",
        "mov",
        "webm",
    )
    upload_max_bytes: int = 25 * 1024 * 1024
    forward_budget_per_min: int = 10
    forward_budget_per_hour: int = 10
    # OpenVINO engine (issue 14): which engine serves fp32, and OpenVINO's performance hint.
    model_engine: str = "auto"
    model_openvino_hint: str = "latency"
    # Pub/Sub queue (issue 9): the webhook publishes, `on_message` classifies.
    webhook_mode: str = "inline"
    pubsub_topic: str = "autotagger-uploads"
    pubsub_emulator_host: str | None = None
    pubsub_publish_timeout_s: float = 10.0
    # Concept tags (autotagger/concepts.py): the least summed probability a concept is kept at.
    concept_threshold: float = 0.5
    # Model loading: where a gs:// artifact is cached; load while the server boots.
    model_cache_dir: Path = field(default_factory=lambda: model_cache_dir({}))
    model_preload: bool = True
    # The account's own vocabulary: what `cli.py learn` needs, and how often serving re-reads it.
    vocabulary_min_examples: int = 10
    vocabulary_precision: float = 0.9
    vocabulary_refresh_s: int = 300
    # More like this: the cosine distance at or below which two assets are the same picture.
    near_duplicate_distance: float = 0.0012

    def missing(self) -> list[str]:
        """Settings that are unset but needed by `on_upload` (reported at start, not fatal)."""
        return [] if self.cloudinary else ["CLOUDINARY_URL"]


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (the only hosts allowed over plain http)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _hosts(raw: str) -> tuple[str, ...]:
    hosts = [DEFAULT_DELIVERY_HOST]
    for item in (h.strip().lower() for h in raw.split(",")):
        if not item:
            continue
        if "/" in item or not _HOST_RE.match(item):
            raise ConfigError(
                f"CLOUDINARY_DELIVERY_HOSTS entries must be host or host:port, got {item!r}"
            )
        hosts.append(item)
    return tuple(dict.fromkeys(hosts))


def model_cache_dir(env: Mapping[str, str]) -> Path:
    """MODEL_CACHE_DIR: where a gs:// artifact's files are fetched to (default: the system temp
    dir, in-memory on Cloud Functions); must be an absolute path."""
    import tempfile

    raw = env.get("MODEL_CACHE_DIR", "").strip()
    if not raw:
        return Path(tempfile.gettempdir())
    path = Path(raw).expanduser()
    if not path.is_absolute():
        raise ConfigError(f"MODEL_CACHE_DIR must be an absolute path, got {raw!r}")
    if path.exists() and not path.is_dir():
        raise ConfigError(f"MODEL_CACHE_DIR {raw!r} is not a directory")
    return path


def _model_precision(env: Mapping[str, str], weights: str) -> str:
    """MODEL_PRECISION; `fp16` (the fp16-compressed OpenVINO IR) is checked now where it can
    be: not with MODEL_ENGINE=tensorflow, and a local artifact has that IR."""
    import json

    precision = _choice(env, "MODEL_PRECISION", ("fp32", "int8", "fp16"))
    if precision != "fp16":
        return precision
    if env.get("MODEL_ENGINE", "").strip().lower() == "tensorflow":
        raise ConfigError("MODEL_PRECISION=fp16 is an OpenVINO IR: not for MODEL_ENGINE=tensorflow")
    if weights.startswith("gs://"):
        return precision
    try:
        manifest = json.loads((Path(weights) / "manifest.json").read_text())
    except (OSError, ValueError):
        manifest = {}
    if "openvino_fp16" not in manifest:
        raise ConfigError(
            "MODEL_PRECISION=fp16 needs MODEL_WEIGHTS to be an artifact with an fp16 IR "
            "(infra/build_model.py writes one)"
        )
    return precision


def _model_weights(raw: str) -> str:
    value = raw.strip() or "imagenet"
    if value in ("imagenet", "random") or value.startswith("gs://"):
        if value.startswith("gs://") and len(value) <= len("gs://") + 1:
            raise ConfigError("MODEL_WEIGHTS gs:// URI needs a bucket and a path")
        return value
    path = Path(value).expanduser()
    if not path.exists():
        raise ConfigError(
            f"MODEL_WEIGHTS must be imagenet, random, gs://... or an existing path; {value!r} "
            "does not exist"
        )
    return str(path.resolve())


def _http_url(name: str, value: str) -> tuple[str, str]:
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


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of an http(s) URL (the browser's notion of its origin)."""
    scheme, netloc = _http_url("URL", url)
    return f"{scheme}://{netloc}"


def _on_upload_url(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    _http_url("ON_UPLOAD_URL", value)
    parts = urlsplit(value)
    if parts.query or parts.fragment:
        raise ConfigError("ON_UPLOAD_URL must have no query string or fragment")
    return value.rstrip("/")


def _upload_preset(raw: str) -> str | None:
    value = raw.strip()
    if value and not _PRESET_RE.match(value):
        raise ConfigError(
            f"CLOUDINARY_UPLOAD_PRESET must be a preset name (letters, digits, _, -, .), "
            f"got {value!r}"
        )
    return value or None


def _origins(raw: str) -> tuple[str, ...]:
    origins: list[str] = []
    for item in (o.strip() for o in raw.split(",")):
        if not item:
            continue
        parts = urlsplit(item)
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ConfigError(
                f"ALLOWED_ORIGINS entries must be origins (scheme://host[:port]), got {item!r}"
            )
        scheme, netloc = _http_url("ALLOWED_ORIGINS", item)
        origins.append(f"{scheme}://{netloc}")
    return tuple(dict.fromkeys(origins))


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, "").strip().lower() or choices[0]
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("1", "0", "true", "false"):
        raise ConfigError(f"{name} must be 1 or 0, got {raw!r}")
    return raw in ("1", "true")


def _local_cloudinary(env: Mapping[str, str], account: CloudinaryAccount | None) -> bool:
    """LOCAL_CLOUDINARY=1: the account is the local Cloudinary (a loopback `upload_prefix`)."""
    if not _flag(env, "LOCAL_CLOUDINARY", False):
        return False
    prefix = urlsplit(account.upload_prefix or "") if account else None
    if prefix is None or not prefix.hostname or not is_loopback(prefix.hostname):
        raise ConfigError(
            "LOCAL_CLOUDINARY=1 needs CLOUDINARY_URL with upload_prefix=http://127.0.0.1:PORT "
            "(the local Cloudinary `make run` starts)"
        )
    return True


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting; raise ConfigError naming the first bad one."""
    env = os.environ if env is None else env
    raw_url = env.get("CLOUDINARY_URL", "").strip()
    account = parse_cloudinary_url(raw_url) if raw_url else None

    emulator = env.get("FIRESTORE_EMULATOR_HOST", "").strip() or None
    if emulator and not _HOST_RE.match(emulator):
        raise ConfigError(f"FIRESTORE_EMULATOR_HOST must be host:port, got {emulator!r}")
    project = env.get("GOOGLE_CLOUD_PROJECT", "").strip() or None
    if project is None and emulator:
        project = "demo-autotagger"
    collection = env.get("FIRESTORE_COLLECTION", "").strip() or "classifications"
    if not _COLLECTION_RE.match(collection):
        raise ConfigError(
            f"FIRESTORE_COLLECTION must be letters, digits, _ or - (a top-level collection), "
            f"got {collection!r}"
        )
    tag_prefix = env.get("TAG_PREFIX", "")
    if "," in tag_prefix or len(tag_prefix) > 64 or tag_prefix != tag_prefix.strip():
        raise ConfigError("TAG_PREFIX must have no commas or surrounding spaces, 64 chars at most")
    log_level = env.get("LOG_LEVEL", "").strip().upper() or "INFO"
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")

    return Settings(
        cloudinary=account,
        google_cloud_project=project,
        firestore_emulator_host=emulator,
        firestore_database=env.get("FIRESTORE_DATABASE", "").strip() or "(default)",
        firestore_collection=collection,
        model_weights=_model_weights(env.get("MODEL_WEIGHTS", "")),
        top_k=_int(env, "TOP_K", 5, 1, 20),
        tag_threshold=_float(env, "TAG_THRESHOLD", 0.2, 0.0, 1.0),
        tag_prefix=tag_prefix,
        delivery_hosts=_hosts(env.get("CLOUDINARY_DELIVERY_HOSTS", "")),
        webhook_max_age_s=_int(env, "WEBHOOK_MAX_AGE_S", 7200, 1, 7 * 86400),
        max_body_bytes=_int(env, "MAX_BODY_BYTES", 256 * 1024, 1024, 32 * 1024 * 1024),
        max_image_bytes=_int(env, "MAX_IMAGE_BYTES", 25 * 1024 * 1024, 1024, 1024**3),
        max_image_pixels=_int(env, "MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS, 1, 1_000_000_000),
        download_timeout_s=_float(env, "DOWNLOAD_TIMEOUT_S", 15.0, 0.1, 300.0),
        claim_ttl_s=_int(env, "CLAIM_TTL_S", DEFAULT_CLAIM_TTL_S, 10, 86400),
        log_level=log_level,
        upload_preset=_upload_preset(env.get("CLOUDINARY_UPLOAD_PRESET", "")),
        on_upload_url=_on_upload_url(env.get("ON_UPLOAD_URL", "")),
        allowed_origins=_origins(env.get("ALLOWED_ORIGINS", "")),
        model_precision=_model_precision(env, _model_weights(env.get("MODEL_WEIGHTS", ""))),
        model_max_batch=_int(env, "MODEL_MAX_BATCH", 8, 1, 32),
        download_rendition=_flag(env, "DOWNLOAD_RENDITION", True),
        # Local Cloudinary
        local_cloudinary=_local_cloudinary(env, account),
        # Video uploads.
        video_frames=_int(env, "VIDEO_FRAMES", 8, 1, 32),
        max_video_seconds=_int(env, "MAX_VIDEO_SECONDS", 3600, 1, 86400),
        # access control (issue 10)
        results_access=_choice(env, "RESULTS_ACCESS", RESULTS_ACCESS_MODES),
        results_token=_results_token(env.get("RESULTS_TOKEN", "")),
        upload_mode=upload_mode(env),
        upload_folder=_upload_folder(env.get("UPLOAD_FOLDER", "")),
        upload_allowed_formats=_formats(env.get("UPLOAD_ALLOWED_FORMATS", "")),
        upload_max_bytes=_int(
            env,
            "UPLOAD_MAX_BYTES",
            _int(env, "MAX_IMAGE_BYTES", 25 * 1024**2, 1024, 1024**3),
            1024,
            1024**3,
        ),
        forward_budget_per_min=_int(env, "FORWARD_BUDGET_PER_MIN", 10, 1, 10_000),
        forward_budget_per_hour=_int(
            env, "FORWARD_BUDGET_PER_HOUR", DEFAULT_FORWARD_BUDGET_PER_HOUR, 1, 100_000
        ),
        # OpenVINO engine (issue 14)
        model_engine=_model_engine(env, _model_weights(env.get("MODEL_WEIGHTS", ""))),
        model_openvino_hint=_choice(env, "MODEL_OPENVINO_HINT", ("latency", "throughput")),
        **_queue_settings(env),
        concept_threshold=_float(env, "CONCEPT_THRESHOLD", 0.5, 0.01, 1.0),
        model_cache_dir=model_cache_dir(env),
        model_preload=_flag(env, "MODEL_PRELOAD", True),
        near_duplicate_distance=_float(env, "NEAR_DUPLICATE_DISTANCE", 0.0012, 0.0, 2.0),
        **_vocabulary_settings(env),
    )


# -- access control (issue 10) ---------------------------------------------------------------

RESULTS_ACCESS_MODES = ("private", "public")
UPLOAD_MODES = ("signed", "unsigned")
DEFAULT_UPLOAD_FOLDER = Settings.upload_folder
DEFAULT_UPLOAD_FORMATS = Settings.upload_allowed_formats
MIN_TOKEN_CHARS = 32
_TOKEN_RE = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII: it travels in an HTTP header
_FOLDER_RE = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
_FORMAT_RE = re.compile(r"^[a-z0-9]{2,5}$")


def upload_mode(env: Mapping[str, str]) -> str:
    """`UPLOAD_MODE`, else `signed` unless `RESULTS_ACCESS=public` (then `unsigned`)."""
    access = _choice(env, "RESULTS_ACCESS", RESULTS_ACCESS_MODES)
    default = "unsigned" if access == "public" else "signed"
    raw = env.get("UPLOAD_MODE", "").strip().lower() or default
    if raw not in UPLOAD_MODES:
        raise ConfigError(f"UPLOAD_MODE must be one of {', '.join(UPLOAD_MODES)}, got {raw!r}")
    return raw


def _results_token(raw: str) -> str | None:
    """The listing token: long, visible ASCII. Never echoed in an error (it is a secret)."""
    value = raw.strip()
    if not value:
        return None
    if len(value) < MIN_TOKEN_CHARS or not _TOKEN_RE.match(value):
        raise ConfigError(
            f"RESULTS_TOKEN must be at least {MIN_TOKEN_CHARS} visible ASCII characters "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return value


def _upload_folder(raw: str) -> str:
    value = raw.strip().strip("/") if raw.strip() else DEFAULT_UPLOAD_FOLDER
    if not _FOLDER_RE.match(value) or len(value) > 200:
        raise ConfigError(
            f"UPLOAD_FOLDER must be folder names of letters, digits, _ or - joined by /, "
            f"got {value!r}"
        )
    return value


def _formats(raw: str) -> tuple[str, ...]:
    items = [f.strip().lower() for f in raw.split(",") if f.strip()]
    if not items:
        return DEFAULT_UPLOAD_FORMATS
    for item in items:
        if not _FORMAT_RE.match(item):
            raise ConfigError(
                f"UPLOAD_ALLOWED_FORMATS entries must be formats like jpg, got {item!r}"
            )
    return tuple(dict.fromkeys(items))


# -- OpenVINO engine (issue 14) ----------------------------------------------------------------


def _model_engine(env: Mapping[str, str], weights: str) -> str:
    """MODEL_ENGINE; `openvino` is checked now where it can be: the package is installed and a
    local artifact has an IR (a gs:// one is checked when loaded)."""
    import importlib.util
    import json

    engine = _choice(env, "MODEL_ENGINE", ("auto", "openvino", "tensorflow"))
    if engine != "openvino":
        return engine
    if importlib.util.find_spec("openvino") is None:
        raise ConfigError("MODEL_ENGINE=openvino but the openvino package is not installed")
    if weights.startswith("gs://"):
        return engine
    manifest = Path(weights) / "manifest.json"
    try:
        has_ir = "openvino" in json.loads(manifest.read_text())
    except (OSError, ValueError):
        has_ir = False
    if not has_ir:
        raise ConfigError(
            "MODEL_ENGINE=openvino needs MODEL_WEIGHTS to be an artifact with an OpenVINO IR "
            "(infra/build_model.py writes one)"
        )
    return engine


# -- Pub/Sub queue (issue 9) ----------------------------------------------------------------


def _queue_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Pub/Sub queue (issue 9): WEBHOOK_MODE, PUBSUB_TOPIC, PUBSUB_EMULATOR_HOST, timeout."""
    topic = env.get("PUBSUB_TOPIC", "").strip() or "autotagger-uploads"
    if not _TOPIC_RE.match(topic) or topic.lower().startswith("goog"):
        raise ConfigError(
            "PUBSUB_TOPIC must be a topic id (a letter, then 2-254 letters, digits or -_.~+%, "
            f"not starting with goog), got {topic!r}"
        )
    emulator = env.get("PUBSUB_EMULATOR_HOST", "").strip() or None
    if emulator and not _HOST_RE.match(emulator):
        raise ConfigError(f"PUBSUB_EMULATOR_HOST must be host:port, got {emulator!r}")
    return {
        "webhook_mode": _choice(env, "WEBHOOK_MODE", WEBHOOK_MODES),
        "pubsub_topic": topic,
        "pubsub_emulator_host": emulator,
        "pubsub_publish_timeout_s": _float(env, "PUBSUB_PUBLISH_TIMEOUT_S", 10.0, 0.5, 120.0),
    }


# -- the account's own vocabulary ------------------------------------------------------------


def _vocabulary_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """VOCABULARY_MIN_EXAMPLES (positives a tag needs to be learned), VOCABULARY_PRECISION (the
    precision a learned tag must reach on held-out folds), VOCABULARY_REFRESH_S (how stale an
    instance's copy of the published vocabulary may get)."""
    return {
        "vocabulary_min_examples": _int(env, "VOCABULARY_MIN_EXAMPLES", 10, 2, 1_000_000),
        "vocabulary_precision": _float(env, "VOCABULARY_PRECISION", 0.9, 0.5, 0.999),
        "vocabulary_refresh_s": _int(env, "VOCABULARY_REFRESH_S", 300, 1, 86400),
    }
