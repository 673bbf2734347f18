"""Access control: who may list results, who may upload, and how much `/forward` may spend.

- `RESULTS_ACCESS=private` (the default): every listing of `/api/results` (no filter, `label`,
  `public_id`, `tag`) needs `Authorization: Bearer <RESULTS_TOKEN>`, compared in constant time.
  A lookup by `asset_id` stays open: Cloudinary's asset_id is a random 32-hex id, so knowing it
  is the capability (it is how the page follows its own upload), and a guessed one is the same
  single Firestore point read as any other miss. `public` is the old behaviour: anyone may list.
- `UPLOAD_MODE=signed` (the default when private): `POST /api/sign-upload` signs the Upload
  widget's `params_to_sign` with the API secret, for a valid token only, and only when they ask
  for what we pin: our signed preset (which carries the allowed formats and the size cap), our
  folder, a fresh timestamp; formats or a size cap in the request must lie within ours, and any
  other parameter (eager transformations, notification URLs, public ids, ...) is refused.
- `redact`: an answer without the access key (the open `?asset_id=` lookup, public listings)
  shows no delivery URL that is a capability (a `private` or `authenticated` asset's, or any
  signed one) and no raw exception text in `error`.
- `ForwardBudget`: Admin API calls the page's forward path may make on one instance, per minute
  and per hour (FORWARD_BUDGET_PER_MIN, FORWARD_BUDGET_PER_HOUR), so a flood of signed forwards
  cannot spend the account's hourly quota that backfill and webhooks need: the hourly budget
  times the instance cap stays a fraction of the plan's quota (README, "Access control").

The token is a secret: it is never logged, never part of an error message, never sent to the
browser (the page keeps the key a person types in sessionStorage and sends it as the header).
"""

from __future__ import annotations

import hmac
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import cloudinary.utils

from autotagger import parsing
from autotagger.config import Settings
from autotagger.errors import BadRequest, BearerRequired, ConfigError, NotFound, TooManyRequests

SIGN_UPLOAD_PATH = "/api/sign-upload"
MAX_SIGN_BODY_BYTES = 16 * 1024
# What the Upload widget puts in params_to_sign for our options (`source` is the widget's own
# "uw"), plus the limits we pin, which a request may repeat but never widen.
SIGNABLE = ("timestamp", "source", "upload_preset", "folder", "allowed_formats", "max_file_size")
WIDGET_SOURCE = "uw"
# Cloudinary refuses signatures older than an hour; a timestamp in the future would outlive that.
MAX_TIMESTAMP_AGE_S = 3600
MAX_TIMESTAMP_SKEW_S = 600
# Query parameters that look like a credential: a key never belongs in a URL (logs, history).
_CREDENTIAL_PARAMS = frozenset(
    {"token", "access_token", "access_key", "key", "api_key", "auth", "authorization", "bearer"}
)
_FILTERS = ("public_id", "label", "tag")
# Delivery types whose URL is a capability (Cloudinary serves them only with a signature/token).
CAPABILITY_TYPES = frozenset({"private", "authenticated"})
_SIGNED_URL = re.compile(r"/s--[A-Za-z0-9_-]+--/")
_TRANSIENT_ERROR = "a temporary failure (the upload is retried)"


# -- the Bearer token ----------------------------------------------------------------------------


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        return None
    return value


def token_matches(given: str, settings: Settings) -> bool:
    """Constant-time comparison with RESULTS_TOKEN (False when none is configured)."""
    expected = settings.results_token
    if expected is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def require_token(authorization: str | None, settings: Settings, what: str) -> None:
    """Raise BearerRequired (401) unless `authorization` carries RESULTS_TOKEN."""
    if settings.results_token is None:
        raise ConfigError(f"RESULTS_TOKEN is not set: {what} is off (RESULTS_ACCESS=private)")
    given = bearer(authorization)
    if given is None:
        raise BearerRequired(f"{what} needs the access key: Authorization: Bearer <key>")
    if not token_matches(given, settings):
        raise BearerRequired("the access key is not valid", error="invalid_token")


# -- listing -------------------------------------------------------------------------------------


def _token_in_url(args: Mapping[str, Any], settings: Settings) -> bool:
    values = args.getlist if hasattr(args, "getlist") else lambda name: [args[name]]
    for name in args:
        if name.lower() in _CREDENTIAL_PARAMS:
            return True
        if any(token_matches(str(value), settings) for value in values(name)):
            return True
    return False


def is_listing(args: Mapping[str, Any]) -> bool:
    """True unless the query is a lookup by asset_id alone (the only open form when private)."""
    return "asset_id" not in args or any(name in args for name in _FILTERS)


def check_listing(args: Mapping[str, Any], authorization: str | None, settings: Settings) -> None:
    """Raise unless this `/api/results` query may be answered (before parameters are parsed)."""
    if settings.results_access == "public":
        return
    if _token_in_url(args, settings):
        raise BearerRequired(
            "send the access key in the Authorization header, never in a URL",
            error="invalid_request",
        )
    if is_listing(args):
        require_token(authorization, settings, "listing results")


def is_authorized(authorization: str | None, settings: Settings) -> bool:
    """True when the request carries RESULTS_TOKEN (it may see everything)."""
    given = bearer(authorization)
    return given is not None and token_matches(given, settings)


def public_error(error: str) -> str:
    """A stored failure reason without exception text: our own sentence up to its first ": "
    (what follows is a library's message, a URL or a server's answer)."""
    if error.startswith("transient:"):
        return _TRANSIENT_ERROR
    return error.split(": ", 1)[0][:200]


def redact(record: dict[str, Any]) -> dict[str, Any]:
    """`record` (a public view) as an answer without the access key may show it."""
    out = dict(record)
    url = out.get("secure_url")
    if out.get("type") in CAPABILITY_TYPES or (isinstance(url, str) and _SIGNED_URL.search(url)):
        out.pop("secure_url", None)
    if isinstance(out.get("error"), str):
        out["error"] = public_error(out["error"])
    if isinstance(out.get("frames"), list):
        out["frames"] = [
            {**frame, "error": public_error(frame["error"])}
            if isinstance(frame, dict) and isinstance(frame.get("error"), str)
            else frame
            for frame in out["frames"]
        ]
    return out


# -- signed uploads ------------------------------------------------------------------------------


def _scalar(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or len(str(value)) > 256:
        raise BadRequest(f"params_to_sign.{name} must be a short string or integer")
    return str(value)


def _timestamp(value: Any, now: float) -> None:
    text = _scalar("timestamp", value)
    if not parsing.is_ascii_int(text):
        raise BadRequest("params_to_sign.timestamp must be unix seconds")
    if not now - MAX_TIMESTAMP_AGE_S <= int(text) <= now + MAX_TIMESTAMP_SKEW_S:
        raise BadRequest("params_to_sign.timestamp is not current: check this device's clock")


def _formats(value: Any, settings: Settings) -> None:
    items = value if isinstance(value, list) else str(_scalar("allowed_formats", value)).split(",")
    asked = [_scalar("allowed_formats", item).strip().lower() for item in items]
    outside = [fmt for fmt in asked if fmt not in settings.upload_allowed_formats]
    if not asked or outside:
        allowed = ",".join(settings.upload_allowed_formats)
        raise BadRequest(f"refusing to sign allowed_formats beyond {allowed}")


def pinned_params(payload: Mapping[str, Any], settings: Settings, now: float) -> dict[str, Any]:
    """The widget's `params_to_sign`, checked against what we pin; BadRequest for anything else."""
    params = payload.get("params_to_sign")
    if not isinstance(params, dict) or not params:
        raise BadRequest('body must be {"params_to_sign": {...}} (the widget\'s parameters)')
    extra = sorted(name for name in params if name not in SIGNABLE)
    if extra:
        raise BadRequest(
            f"refusing to sign {', '.join(repr(name[:64]) for name in extra[:5])}: "
            f"only {', '.join(SIGNABLE)} are signed"
        )
    if settings.upload_preset is None:
        raise ConfigError("CLOUDINARY_UPLOAD_PRESET is not set: signed uploads are off")
    if _scalar("upload_preset", params.get("upload_preset", "")) != settings.upload_preset:
        raise BadRequest(f"upload_preset must be {settings.upload_preset!r}")
    if _scalar("folder", params.get("folder", "")) != settings.upload_folder:
        raise BadRequest(f"folder must be {settings.upload_folder!r}")
    if "source" in params and _scalar("source", params["source"]) != WIDGET_SOURCE:
        raise BadRequest(f"source must be {WIDGET_SOURCE!r}")
    _timestamp(params.get("timestamp", ""), now)
    if "allowed_formats" in params:
        _formats(params["allowed_formats"], settings)
    if "max_file_size" in params:
        size = _scalar("max_file_size", params["max_file_size"])
        if not parsing.is_ascii_int(size) or not 0 < int(size) <= settings.upload_max_bytes:
            raise BadRequest(f"max_file_size must be at most {settings.upload_max_bytes}")
    return dict(params)


def sign_upload(
    payload: Mapping[str, Any],
    authorization: str | None,
    settings: Settings,
    now: Callable[[], float] = time.time,
) -> dict[str, str]:
    """Answer `POST /api/sign-upload`: the signature of the pinned params, for the token only."""
    if settings.upload_mode != "signed":
        raise NotFound("signed uploads are off (UPLOAD_MODE=unsigned)")
    require_token(authorization, settings, "signing an upload")
    account = settings.cloudinary
    if account is None:
        raise ConfigError("CLOUDINARY_URL is not set: cannot sign uploads")
    params = pinned_params(payload, settings, now())
    signature: str = cloudinary.utils.api_sign_request(
        params, account.api_secret, account.signature_algorithm
    )
    return {"signature": signature}


def page_config(settings: Settings) -> dict[str, Any]:
    """What the page needs to know about access (public values only; never the token)."""
    signed = settings.upload_mode == "signed"
    account = settings.cloudinary
    return {
        "access": settings.results_access,
        "uploadMode": settings.upload_mode,
        "signUploadApi": SIGN_UPLOAD_PATH if signed else None,
        "uploadFolder": settings.upload_folder if signed else None,
        # The API key is public by Cloudinary's design (every upload response carries it); the
        # widget needs it for signed uploads. The API secret never leaves the server.
        "apiKey": account.api_key if signed and account else None,
    }


# -- the forward budget --------------------------------------------------------------------------


class ForwardBudget:
    """At most `per_minute` Admin API calls in any 60-second window and `per_hour` in any hour,
    on this instance."""

    WINDOW_S = 60.0
    HOUR_S = 3600.0

    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        per_hour: int | None = None,
    ) -> None:
        self.per_minute = per_minute
        self.per_hour = per_hour if per_hour is not None else per_minute * 60
        self._clock = clock
        self._spent: deque[float] = deque()
        self._lock = threading.Lock()

    def spend(self) -> None:
        """Count one call, or raise TooManyRequests (429, Retry-After) when the budget is spent."""
        with self._lock:
            now = self._clock()
            while self._spent and self._spent[0] <= now - self.HOUR_S:
                self._spent.popleft()
            last_minute = [t for t in self._spent if t > now - self.WINDOW_S]
            if len(last_minute) >= self.per_minute:
                self._refuse(f"{self.per_minute} a minute", last_minute[0] + self.WINDOW_S - now)
            if len(self._spent) >= self.per_hour:
                self._refuse(f"{self.per_hour} an hour", self._spent[0] + self.HOUR_S - now)
            self._spent.append(now)

    @staticmethod
    def _refuse(budget: str, retry_after_s: float) -> None:
        raise TooManyRequests(
            f"forward budget spent ({budget} Admin API calls on this instance): the webhook "
            "still classifies the upload; retry later",
            math.ceil(retry_after_s),
        )
