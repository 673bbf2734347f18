"""Settings: every one declared once (below), read from the environment once, checked at start.

`Settings`'s fields are the declaration: variable, default, check, who reads it, whether it is a
secret, what it means. `.env.example`, the README's configuration table and `infra/deploy.sh`'s
pass-through lists are generated from it (`python infra/settings_docs.py`) and a unit test fails
when they drift. A malformed setting raises a one-line `ConfigError` naming it; `main.py` turns
that into one log line and a non-zero exit.
"""

# The settings' docs are the README's, its typography (dashes, signs) included.
# ruff: noqa: RUF001

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from autotagger import config_values as check
from autotagger.config_values import (
    DEFAULT_DELIVERY_HOST,
    CloudinaryAccount,
    http_url,
    parse_cloudinary_url,
)
from autotagger.errors import ConfigError

__all__ = [
    "DEFAULT_DELIVERY_HOST",
    "CloudinaryAccount",
    "ConfigError",
    "Settings",
    "Var",
    "is_loopback",
    "load_settings",
    "origin_of",
    "parse_cloudinary_url",
]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
WEBHOOK_MODES = ("inline", "queue")
RESULTS_ACCESS_MODES = ("private", "public")
UPLOAD_MODES = ("signed", "unsigned")
# Decoding needs up to 4 bytes a pixel at full size (PNG, TIFF, WebP: only JPEG decodes reduced),
# so 50 MP is 200 MB a decode (imaging.py bounds how many run at once).
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
# Just above the longest function timeout (on_message's 300 s, infra/deploy.sh): no delivery
# runs longer, so an older claim is a crashed one.
DEFAULT_CLAIM_TTL_S = 330
# Admin API lookups /forward may make an hour on one instance: 10 x MAX_INSTANCES (10) = 100 an
# hour, a fifth of a free plan's 500 (infra/deploy.sh derives it from MAX_INSTANCES).
DEFAULT_FORWARD_BUDGET_PER_HOUR = 10
DEFAULT_UPLOAD_FOLDER = "autotagger"
DEFAULT_UPLOAD_FORMATS: tuple[str, ...] = ("jpg", "png", "webp", "gif", "heic", "avif", "bmp")
DEFAULT_UPLOAD_FORMATS += ("tiff", "mp4", "mov", "webm")

# Who reads a setting: the three functions, the CLI, and `make run` (infra/local.py).
SERVED = ("on_upload", "on_message")
PIPELINE = (*SERVED, "cli")
EVERYONE = ("on_upload", "on_message", "results", "cli")
WITH_PAGE = (*PIPELINE, "results")
ON_UPLOAD, PAGE, CLI, PUBLISHERS = ("on_upload",), ("results",), ("cli",), ("on_upload", "cli")
FUNCTIONS = ("on_upload", "on_message", "results")


@dataclass(frozen=True)
class Var:
    """One environment variable and everything the docs, `.env.example` and deploy.sh say."""

    name: str
    doc: str  # one line of Markdown: the README's "meaning"
    read_by: tuple[str, ...]
    default: Any = None
    check: check.Reader | None = None  # None: read elsewhere (infra/local.py)
    derive: Callable[[dict[str, Any]], Any] | None = None  # the default, from earlier fields
    shown: str | None = None  # the README's default, when not the value itself
    example: str | None = None  # what .env.example assigns, when not the default
    # How infra/deploy.sh sets it: "pass" (to the functions that read it, when set), "deploy.sh"
    # (the script sets it itself), "secret" (from Secret Manager), "" (never deployed).
    deploy: str = ""
    secret: bool = False
    env_only: bool = False  # not read from .env: commented out there


def _var(
    name: str,
    default: Any,
    reader: check.Reader,
    read_by: tuple[str, ...],
    deploy: str,
    doc: str,
    factory: Callable[[], Any] | None = None,
    **more: Any,
) -> Any:
    """A `Settings` field declaring its variable (a secret's field stays out of the repr)."""
    if factory is not None:
        more["derive"] = lambda values: factory()
    var = Var(name, doc, read_by, default, reader, deploy=deploy, **more)
    metadata = {"var": var}
    if factory is not None:
        return field(default_factory=factory, repr=not var.secret, metadata=metadata)
    return field(default=default, repr=not var.secret, metadata=metadata)


def _system_temp() -> Path:
    import tempfile

    return Path(tempfile.gettempdir())


@dataclass(frozen=True)
class Settings:
    """Every setting the function and the CLI read; each field declares its variable."""

    # fmt: off
    cloudinary: CloudinaryAccount | None = _var(  # noqa: RUF009 (frozen: never shared state)
        "CLOUDINARY_URL", None, check.cloudinary_url, EVERYONE, "secret",
        "`cloudinary://KEY:SECRET@CLOUD` (the SDK's format); query `signature_algorithm=sha256` "
        "for SHA-256 accounts, `upload_prefix=` for another API host. Unset: `make run` starts a "
        "local Cloudinary and sets it; a deployed `on_upload` answers 503 saying so",
        shown="— (`make run`: a local Cloudinary)",
        example="cloudinary://API_KEY:API_SECRET@CLOUD_NAME",
        secret=True)
    delivery_hosts: tuple[str, ...] = _var(
        "CLOUDINARY_DELIVERY_HOSTS", (DEFAULT_DELIVERY_HOST,), check.delivery_hosts, WITH_PAGE,
        "pass",
        "extra hosts (`host` or `host:port`, comma-separated) to download from besides "
        "`res.cloudinary.com`; plain http only for loopback",
        shown="—", example="")
    firestore_emulator_host: str | None = _var(
        "FIRESTORE_EMULATOR_HOST", None, check.host_port, EVERYONE, "",
        "`host:port` of a Firestore emulator (the client then uses it); `make run` starts one and "
        "sets it when empty")
    google_cloud_project: str | None = _var(
        "GOOGLE_CLOUD_PROJECT", None, check.text, EVERYONE, "deploy.sh",
        "Firestore project",
        derive=lambda v: "demo-autotagger" if v["firestore_emulator_host"] else None,
        shown="ADC's project; `demo-autotagger` with an emulator")
    firestore_database: str = _var(
        "FIRESTORE_DATABASE", "(default)", check.text, EVERYONE, "deploy.sh",
        "Firestore database id")
    firestore_collection: str = _var(
        "FIRESTORE_COLLECTION", "classifications", check.collection, EVERYONE, "deploy.sh",
        "collection of the documents")
    model_weights: str = _var(
        "MODEL_WEIGHTS", "imagenet", check.model_weights, PIPELINE, "deploy.sh",
        "`imagenet` (Keras downloads the weights), an artifact directory from "
        "`infra/build_model.py`, a SavedModel, a `.tflite`, `.keras` or `.h5` file, "
        "`gs://bucket/path`, or `random` (the real VGG16 graph with seeded random weights, "
        "recorded as such)",
        shown="`imagenet` (`make run`: the ImageNet artifact in `.cache/`, built once when the "
        "weights can be downloaded, else random weights)",
        example="")
    model_precision: str = _var(
        "MODEL_PRECISION", "fp32", check.choice("fp32", "int8", "fp16"), PIPELINE, "pass",
        "`fp32`, `fp16` (the artifact's OpenVINO IR with fc1's kernel, its largest weight, stored "
        "as fp16: 0.63x the bytes to ship and fetch, the same labels within 1e-4, the same "
        "embeddings (similar search and the learned vocabulary carry over); decompressed to fp32 "
        "at compile; named `…/fp16`; OpenVINO only, so not the default; see [From Cloud "
        "Storage](model.md#from-cloud-storage-the-production-cold-path)) or `int8`, the opt-in "
        "fast path: "
        "dynamic-range int8 VGG16 under LiteRT, TensorFlow never imported (see "
        "[int8](model.md#int8-fast-path); needs ≥ 99% top-1 agreement first). An int8 artifact in "
        "`MODEL_WEIGHTS` is served as int8 whatever this says; other weights are converted at load"
        " (slow, imports TensorFlow)")
    model_max_batch: int = _var("MODEL_MAX_BATCH", 8, check.integer(1, 32), PIPELINE, "pass",
        "fp32: images of concurrent requests are stacked into one forward of at most this many "
        "(micro-batching; `1` = off); int8 and OpenVINO's `throughput` hint ignore it")
    model_engine: str = _var(
        "MODEL_ENGINE", "auto", check.choice("auto", "openvino", "tensorflow"), PIPELINE, "pass",
        "fp32's engine: `openvino` (the artifact's OpenVINO IR; TensorFlow never imported), "
        "`tensorflow` (the SavedModel), or `auto`: OpenVINO when the artifact has an IR and the "
        "`openvino` package is installed, else TensorFlow. Same weights, same labels, same model "
        "name; which is faster depends on the CPU (see [OpenVINO "
        "engine](model.md#openvino-engine))")
    model_openvino_hint: str = _var(
        "MODEL_OPENVINO_HINT", "latency", check.choice("latency", "throughput"), PIPELINE, "pass",
        "OpenVINO's performance hint: `latency` (one stream on every core; concurrent requests are"
        " micro-batched) or `throughput` (one stream per core, a pool of infer requests, no "
        "batching)")
    model_preload: bool = _var("MODEL_PRELOAD", True, check.flag, SERVED, "pass",
        "`1`: `on_upload` (inline mode) and `on_message` load the model while the server boots, in"
        " the forked gunicorn worker, instead of on the first request (a request arriving mid-load"
        " waits for it); `results` never loads it. `0`: on first use")
    model_cache_dir: Path = _var(  # noqa: RUF009 (a default_factory)
        "MODEL_CACHE_DIR", None, check.cache_dir, SERVED, "pass",
        "where a `gs://` artifact's files are fetched to (only the engine's, each checked against "
        "the manifest's sha256; see [From Cloud "
        "Storage](model.md#from-cloud-storage-the-production-cold-path)); an absolute path",
        factory=_system_temp, shown="system temp (in memory on Cloud Functions)", example="")
    download_rendition: bool = _var("DOWNLOAD_RENDITION", True, check.flag, PIPELINE, "pass",
        "`1`: download Cloudinary's derived 224×224 rendition of standard delivery URLs instead of"
        " the original, which stays the fallback; `0`: always the original. A derived image is a "
        "Cloudinary transformation (billed)")
    top_k: int = _var("TOP_K", 5, check.integer(1, 20), PIPELINE, "deploy.sh",
        "predictions stored (1–20)")
    tag_threshold: float = _var("TAG_THRESHOLD", 0.2, check.number(0.0, 1.0), PIPELINE, "deploy.sh",
        "top-k labels at or above it become tags; the top-1 label always does")
    tag_prefix: str = _var("TAG_PREFIX", "", check.tag_prefix, WITH_PAGE, "deploy.sh",
        "prefix for our tags, e.g. `auto:` (labels and concepts alike)",
        shown="empty")
    concept_threshold: float = _var(
        "CONCEPT_THRESHOLD", 0.5, check.number(0.01, 1.0), PIPELINE, "pass",
        "a concept (dog, car, food, …) is stored and written as a tag when the summed probability "
        "of its ImageNet classes is at least this (0.01–1); see [Concept tags](concepts.md)")
    webhook_max_age_s: int = _var(
        "WEBHOOK_MAX_AGE_S", 7200, check.integer(1, 7 * 86400), ON_UPLOAD, "pass",
        "oldest signature timestamp accepted (the SDK's default)")
    max_body_bytes: int = _var(
        "MAX_BODY_BYTES", 256 * 1024, check.integer(1024, 32 * 1024 * 1024), ON_UPLOAD, "pass",
        "largest notification body")
    max_image_bytes: int = _var(
        "MAX_IMAGE_BYTES", 25 * 1024 * 1024, check.integer(1024, 1024**3), PIPELINE, "pass",
        "largest download")
    max_image_pixels: int = _var(
        "MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS, check.integer(1, 10**9), PIPELINE, "pass",
        "largest width × height, checked from the header before decoding; a full-size decode takes"
        " up to 4 bytes a pixel (see [Limits](../README.md#decode-memory))")
    download_timeout_s: float = _var(
        "DOWNLOAD_TIMEOUT_S", 15.0, check.number(0.1, 300.0), PIPELINE, "pass",
        "per download",
        shown="`15`", example="15")
    claim_ttl_s: int = _var(
        "CLAIM_TTL_S", DEFAULT_CLAIM_TTL_S, check.integer(10, 86400), PIPELINE, "pass",
        "how long a claim of a crashed instance blocks other deliveries of the asset: just above "
        "the longest function timeout (`on_message`'s 300 s; `deploy.sh` refuses less). A "
        "redelivery of the same Pub/Sub message continues its own claim at once")
    log_level: str = _var(
        "LOG_LEVEL", "INFO", check.choice(*LOG_LEVELS, upper=True), EVERYONE, "deploy.sh",
        "`DEBUG`, `INFO`, `WARNING`, `ERROR`")
    upload_preset: str | None = _var(
        "CLOUDINARY_UPLOAD_PRESET", None, check.preset, PAGE, "deploy.sh",
        "unsigned upload preset the page's widget uses (`infra/cloudinary_setup.py` creates it); "
        "empty: uploads off")
    on_upload_url: str | None = _var(
        "ON_UPLOAD_URL", None, check.endpoint_url, PAGE, "deploy.sh",
        "where the page forwards signed upload results (`{ON_UPLOAD_URL}/forward`)",
        shown="— (`make run`: `http://127.0.0.1:8081`)")
    allowed_origins: tuple[str, ...] = _var(
        "ALLOWED_ORIGINS", (), check.origins, ("on_upload", "results"), "deploy.sh",
        "comma-separated origins (`scheme://host[:port]`) allowed by CORS on the JSON API and "
        "`/forward`",
        shown="— (`make run`: `http://127.0.0.1:8080`)")
    local_cloudinary: bool = _var(
        "LOCAL_CLOUDINARY", False, check.flag, ("on_upload", "results"), "",
        "`1`: `CLOUDINARY_URL` is the local Cloudinary (its `upload_prefix` must be a loopback "
        "URL): the page uploads through the browser's file chooser and drag-and-drop to its Upload"
        ' API and shows the "local Cloudinary — no account" badge. Set by `make run`, not by hand',
        shown="`0` (`make run` without `CLOUDINARY_URL`: `1`)")
    video_frames: int = _var("VIDEO_FRAMES", 8, check.integer(1, 32), PIPELINE, "pass",
        "frames sampled per video (1–32), evenly spaced, classified as one batch; each is a "
        "Cloudinary derived image")
    max_video_seconds: int = _var(
        "MAX_VIDEO_SECONDS", 3600, check.integer(1, 86400), PIPELINE, "pass",
        "longer videos end `failed` with the reason (1–86400)")
    results_access: str = _var(
        "RESULTS_ACCESS", "private", check.choice(*RESULTS_ACCESS_MODES), PAGE, "deploy.sh",
        "`private`: listing `/api/results` needs the access key (see [Access "
        "control](security.md)); `public`: anyone may list",
        shown="`private` (`make run`: `public`)", example="")
    results_token: str | None = _var("RESULTS_TOKEN", None, check.token, PAGE, "secret",
        "the access key, a secret of ≥ 32 visible ASCII characters (never logged, never sent to "
        "the browser); `deploy.sh` creates it in Secret Manager. Unset while private: listings "
        "answer 503",
        secret=True)
    upload_mode: str = _var(
        "UPLOAD_MODE", "signed", check.choice(*UPLOAD_MODES), PAGE, "pass",
        "`signed`: the page's uploads are signed by `results` for the access key only, with a "
        "signed preset; `unsigned`: anyone with the page may upload",
        derive=lambda v: "unsigned" if v["results_access"] == "public" else "signed",
        shown="`signed` when private, `unsigned` when public",
        example="")
    upload_folder: str = _var(
        "UPLOAD_FOLDER", DEFAULT_UPLOAD_FOLDER, check.folder, PAGE, "pass",
        "the folder every signed upload must go to")
    upload_allowed_formats: tuple[str, ...] = _var(
        "UPLOAD_ALLOWED_FORMATS", DEFAULT_UPLOAD_FORMATS, check.formats, PAGE, "pass",
        "formats a signature request may name (never more)")
    upload_max_bytes: int = _var(
        "UPLOAD_MAX_BYTES", 25 * 1024 * 1024, check.integer(1024, 1024**3), PAGE, "pass",
        "largest `max_file_size` a signature request may name",
        derive=lambda v: v["max_image_bytes"], shown="`MAX_IMAGE_BYTES`", example="")
    forward_budget_per_min: int = _var(
        "FORWARD_BUDGET_PER_MIN", 10, check.integer(1, 10_000), ON_UPLOAD, "pass",
        "Admin API calls `/forward` may make per minute on one instance; then `429` with "
        "`Retry-After`")
    forward_budget_per_hour: int = _var(
        "FORWARD_BUDGET_PER_HOUR", DEFAULT_FORWARD_BUDGET_PER_HOUR, check.integer(1, 100_000),
        ON_UPLOAD, "pass",
        "Admin API calls `/forward` may make per hour on one instance: × the instance cap, at most"
        " a fifth of the plan's hourly quota (10 × 10 instances = 100 of a free plan's 500)",
        shown="`10` (`deploy.sh`: `ADMIN_API_QUOTA` / 5 / `MAX_INSTANCES`; `make run`, one "
        "instance: `100`)")
    webhook_mode: str = _var(
        "WEBHOOK_MODE", "inline", check.choice(*WEBHOOK_MODES), ON_UPLOAD, "pass",
        "`inline`: `on_upload` classifies in the request; `queue`: it publishes to `PUBSUB_TOPIC` "
        "and answers 202, `on_message` classifies (see [Queue mode](queue.md))")
    pubsub_topic: str = _var(
        "PUBSUB_TOPIC", "autotagger-uploads", check.topic, PUBLISHERS, "pass",
        "topic of the upload messages (a topic id, not a path)")
    pubsub_emulator_host: str | None = _var(
        "PUBSUB_EMULATOR_HOST", None, check.host_port, PUBLISHERS, "",
        "`host:port` of a Pub/Sub emulator (the client library then uses it)",
        shown="— (`make run`: its emulator)")
    pubsub_publish_timeout_s: float = _var(
        "PUBSUB_PUBLISH_TIMEOUT_S", 10.0, check.number(0.5, 120.0), PUBLISHERS, "pass",
        "longest a publish may take, retries included, before `on_upload` answers 503 (0.5–120 s)",
        shown="`10`", example="10")
    near_duplicate_distance: float = _var(
        "NEAR_DUPLICATE_DISTANCE", 0.0012, check.number(0.0, 2.0), PAGE, "pass",
        "cosine distance at or below which `/api/similar` marks a result `near_duplicate: true` "
        "(0–2); measured for the random-weights artifact, measure yours with "
        "`infra/near_duplicates.py` (see [More like this](similar.md))")
    vocabulary_min_examples: int = _var(
        "VOCABULARY_MIN_EXAMPLES", 10, check.integer(2, 1_000_000), CLI, "",
        "`cli.py learn`: images a person's tag must be on to be learned (2–1000000); fewer are "
        "reported \"too few examples\" (see [The account's own "
        "vocabulary](vocabulary.md))")
    vocabulary_precision: float = _var(
        "VOCABULARY_PRECISION", 0.9, check.number(0.5, 0.999), CLI, "",
        "`cli.py learn`: the precision a tag must reach on held-out folds (0.5–0.999); its "
        "threshold is set there, and a tag that cannot reach it is refused as not visual")
    vocabulary_refresh_s: int = _var(
        "VOCABULARY_REFRESH_S", 300, check.integer(1, 86400), PIPELINE, "pass",
        "how stale an instance's copy of the published vocabulary may get (1–86400 s): a newly "
        "learned vocabulary is served within this, without a restart")

    # fmt: on

    def missing(self) -> list[str]:
        """Settings that are unset but needed by `on_upload` (reported at start, not fatal)."""
        return [] if self.cloudinary else ["CLOUDINARY_URL"]


# Read by `make run` (infra/local.py), the tests and the benchmarks, never by a function.
MAKE_RUN = ("make run",)
LOCAL_VARS = (
    Var(
        "FIRESTORE_EMULATOR",
        "which emulator `make run`, the tests, `make load` and `make bench` start: `auto` "
        "(gcloud's official one when installed, else npm), `official`, `npm`",
        MAKE_RUN,
        default="auto",
    ),
    Var("LOCAL_CLOUDINARY_PORT", "port of the local Cloudinary", MAKE_RUN, default=8082),
    Var("RESULTS_PORT", "port of `results`", MAKE_RUN, default=8080, env_only=True),
    Var("ON_UPLOAD_PORT", "port of `on_upload`", MAKE_RUN, default=8081, env_only=True),
    Var("ON_MESSAGE_PORT", "port of `on_message`", MAKE_RUN, default=8083, env_only=True),
    Var("ENV_FILE", "the file `make run` reads settings from", MAKE_RUN, ".env", env_only=True),
)


def declared() -> dict[str, Var]:
    """Every setting's declaration by attribute of `Settings` (in order)."""
    return {f.name: f.metadata["var"] for f in fields(Settings)}


def every_var() -> tuple[Var, ...]:
    """The functions' settings, then those only `make run` reads."""
    return (*declared().values(), *LOCAL_VARS)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and check every setting; raise ConfigError naming the first bad one."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for attr, var in declared().items():
        raw = env.get(var.name, "")
        if raw.strip() and var.check is not None:
            values[attr] = var.check(var.name, raw)
        else:
            values[attr] = var.derive(values) if var.derive else var.default
    _check_together(values)
    return Settings(**values)


def _check_together(values: dict[str, Any]) -> None:
    """Settings that are only right in combination, checked where they can be at start."""
    if values["local_cloudinary"]:
        account = values["cloudinary"]
        prefix = urlsplit(account.upload_prefix or "") if account else None
        if prefix is None or not prefix.hostname or not is_loopback(prefix.hostname):
            raise ConfigError(
                "LOCAL_CLOUDINARY=1 needs CLOUDINARY_URL with upload_prefix="
                "http://127.0.0.1:PORT (the local Cloudinary `make run` starts)"
            )
    weights, engine = values["model_weights"], values["model_engine"]
    if values["model_precision"] == "fp16":
        if engine == "tensorflow":
            raise ConfigError(
                "MODEL_PRECISION=fp16 is an OpenVINO IR: not for MODEL_ENGINE=tensorflow"
            )
        if not _local_manifest_has(weights, "openvino_fp16"):
            raise ConfigError(
                "MODEL_PRECISION=fp16 needs MODEL_WEIGHTS to be an artifact with an fp16 IR "
                "(infra/build_model.py writes one)"
            )
    if engine == "openvino":
        import importlib.util

        if importlib.util.find_spec("openvino") is None:
            raise ConfigError("MODEL_ENGINE=openvino but the openvino package is not installed")
        if not _local_manifest_has(weights, "openvino"):
            raise ConfigError(
                "MODEL_ENGINE=openvino needs MODEL_WEIGHTS to be an artifact with an OpenVINO IR "
                "(infra/build_model.py writes one)"
            )


def _local_manifest_has(weights: str, key: str) -> bool:
    """Whether a local artifact's manifest has `key` (a gs:// one is checked when loaded)."""
    import json

    if weights.startswith("gs://"):
        return True
    try:
        return key in json.loads((Path(weights) / "manifest.json").read_text())
    except (OSError, ValueError):
        return False


def _read(env: Mapping[str, str], attr: str) -> Any:
    var = declared()[attr]
    raw = env.get(var.name, "")
    return var.check(var.name, raw) if raw.strip() and var.check else var.default


def upload_mode(env: Mapping[str, str]) -> str:
    """`UPLOAD_MODE`, else `signed` unless `RESULTS_ACCESS=public` (then `unsigned`)."""
    if env.get("UPLOAD_MODE", "").strip():
        return str(_read(env, "upload_mode"))
    return "unsigned" if _read(env, "results_access") == "public" else "signed"


def model_cache_dir(env: Mapping[str, str]) -> Path:
    """MODEL_CACHE_DIR: where a gs:// artifact's files are fetched to (default: the system temp
    dir, in-memory on Cloud Functions); must be an absolute path."""
    raw = env.get("MODEL_CACHE_DIR", "")
    return check.cache_dir("MODEL_CACHE_DIR", raw) if raw.strip() else _system_temp()


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (the only hosts allowed over plain http)."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of an http(s) URL (the browser's notion of its origin)."""
    scheme, netloc = http_url("URL", url)
    return f"{scheme}://{netloc}"
