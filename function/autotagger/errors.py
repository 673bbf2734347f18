"""One small exception hierarchy; `main.py` maps it to HTTP status codes in one place."""

from __future__ import annotations


class AutotaggerError(Exception):
    """Base class: `status` is the HTTP status the request gets, `message` what the caller sees."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.headers: dict[str, str] = {}  # extra response headers (WWW-Authenticate, ...)


class ConfigError(AutotaggerError):
    """A missing or malformed setting (raised at start, or when a feature needs an unset one)."""

    status = 503


class BadRequest(AutotaggerError):
    """The request is malformed (bad JSON, bad query parameter)."""

    status = 400


class Unauthorized(AutotaggerError):
    """Missing, forged, wrong-secret or stale signature."""

    status = 401


class BearerRequired(Unauthorized):
    """A listing (or upload signature) without the right `Authorization: Bearer` token.

    `error` is RFC 6750's code: None when no token was sent, `invalid_token` when it was wrong.
    """

    def __init__(self, message: str, error: str | None = None) -> None:
        super().__init__(message)
        challenge = 'Bearer realm="autotagger"'
        if error:
            challenge += f', error="{error}"'
        self.headers["WWW-Authenticate"] = challenge


class NotFound(AutotaggerError):
    status = 404


class TooManyRequests(AutotaggerError):
    """A per-instance budget is spent; `Retry-After` says when to come back."""

    status = 429

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)
        self.headers["Retry-After"] = str(self.retry_after_s)


class MethodNotAllowed(AutotaggerError):
    status = 405


class PayloadTooLarge(AutotaggerError):
    status = 413


class InProgress(AutotaggerError):
    """Another delivery of the same asset version holds the claim; Cloudinary retries later."""

    status = 409


class UpstreamError(AutotaggerError):
    """Firestore or Cloudinary's API failed after bounded retries: 5xx, so Cloudinary redelivers."""

    status = 503


class TransientError(Exception):
    """A failure worth retrying (network, 5xx, 429); UpstreamError once retries run out."""


class ImageError(Exception):
    """The asset cannot be classified (gone, not an image, too large, corrupt).

    Retrying will not help: the pipeline records a `failed` document with `reason` and answers 2xx.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- Pub/Sub queue (issue 9) ----------------------------------------------------------------------


class MalformedMessage(BadRequest):
    """A Pub/Sub message that can never be processed: logged with its messageId and acknowledged."""


class PublishError(UpstreamError):
    """Pub/Sub did not accept a message within the bounded retries: 503, the sender retries."""


class RateLimitExceeded(UpstreamError):
    """Cloudinary's Admin API hourly budget is used up (420/429): stop, resume after the reset."""


class Conflict(AutotaggerError):
    """The request is valid but the resource is not in a state that can answer it."""

    status = 409
