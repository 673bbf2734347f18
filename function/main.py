"""HTTP entry points (Cloud Functions gen2 / functions-framework).

- `on_upload`: Cloudinary's upload notification (webhook) -> verify -> classify -> tag -> store;
  `POST /forward`: the upload page's forward of a signed Upload API response, same pipeline.
  With WEBHOOK_MODE=queue both publish to Pub/Sub instead and answer 202.
- `on_message`: a Pub/Sub `messagePublished` CloudEvent (one asset) -> the same pipeline.
- `results`: `GET /api/results` queries the stored classifications (`?tag=` any tag written: a
  label or a concept), `GET /api/similar` finds an asset's most similar ones (vector search);
  `GET /` the upload page.

Settings are read and validated once, at import (cold start); a bad one stops the process with
one log line naming it. The functions that classify load the model while the server boots
(`autotagger.model.preload`).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from autotagger import config, logs
from autotagger.errors import ConfigError
from autotagger.model import preload


def _load_settings() -> config.Settings:
    try:
        settings = config.load_settings()
    except ConfigError as exc:
        logs.log("CRITICAL", f"configuration error: {exc.message}")
        raise SystemExit(2) from None
    logs.set_level(settings.log_level)
    return settings


# The settings first, then a gs:// model's copy started (a process of its own), then the heavy
# imports, which the copy overlaps.
SETTINGS = _load_settings()
TARGET = preload.function_target(sys.argv, os.environ)
MODEL_COPY = preload.prefetch(SETTINGS, TARGET)

import flask
import functions_framework
from cloudevents.http import CloudEvent

from autotagger import parsing, pipeline
from autotagger.clients import cloudinary_client, store
from autotagger.errors import (
    AutotaggerError,
    BadRequest,
    MethodNotAllowed,
    PayloadTooLarge,
)
from autotagger.queue import worker
from autotagger.web import access, forward, page, similar, webhook

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
RESULT_FILTERS = ("asset_id", "public_id", "label", "tag")

cloudinary_client.configure(SETTINGS.cloudinary)
for name in SETTINGS.missing():
    logs.warning(f"{name} is not set: on_upload answers 503 until it is")
FORWARD_BUDGET = access.ForwardBudget(
    SETTINGS.forward_budget_per_min, per_hour=SETTINGS.forward_budget_per_hour
)
preload.schedule(SETTINGS, TARGET)


def _json(body: Any, status: int = 200) -> flask.Response:
    response = flask.Response(
        json.dumps(body, ensure_ascii=False, default=str), status, mimetype="application/json"
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _errors_as_json(handler: Callable[[flask.Request], flask.Response]) -> Any:
    """Map the exception hierarchy to HTTP status codes, in this one place."""

    @functools.wraps(handler)
    def wrapper(request: flask.Request) -> flask.Response:
        try:
            return handler(request)
        except AutotaggerError as exc:
            severity = "ERROR" if exc.status >= 500 else "WARNING"
            logs.log(severity, f"{handler.__name__}: {exc.message}", status=exc.status)
            response = _json({"error": exc.message}, exc.status)
            response.headers.update(exc.headers)
            return response
        except Exception as exc:
            logs.error(
                f"{handler.__name__}: unhandled {type(exc).__name__}",
                traceback=traceback.format_exc(limit=20),
            )
            return _json({"error": "internal error"}, 500)

    return wrapper


Handler = Callable[[flask.Request], flask.Response]


def _cors(methods: tuple[str, ...], applies: Callable[[str], bool]) -> Callable[[Handler], Any]:
    """CORS on the JSON API: preflights answered here; ALLOWED_ORIGINS may read the answers."""

    def decorate(handler: Handler) -> Any:
        @functools.wraps(handler)
        def wrapper(request: flask.Request) -> flask.Response:
            if not applies(request.path):
                return handler(request)
            origin = request.headers.get("Origin")
            if request.method == "OPTIONS":
                return page.preflight(origin, methods, SETTINGS)
            return page.add_cors(handler(request), origin, SETTINGS)

        return wrapper

    return decorate


def _read_body(request: flask.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"body over {limit} bytes")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"body over {limit} bytes")
    return body


@functions_framework.http
@_cors(("POST",), forward.is_forward)
@_errors_as_json
def on_upload(request: flask.Request) -> flask.Response:
    """Cloudinary notification (or the page's signed forward): verify first, then classify."""
    if request.method != "POST":
        raise MethodNotAllowed("POST a Cloudinary notification")
    account = cloudinary_client.require_account(SETTINGS)
    body = _read_body(request, SETTINGS.max_body_bytes)
    if forward.is_forward(request.path):
        payload = webhook.parse_json(body)
        return _answer(forward.handle(payload, SETTINGS, account, FORWARD_BUDGET, _process))
    webhook.verify_signature(
        body,
        request.headers.get("X-Cld-Timestamp"),
        request.headers.get("X-Cld-Signature"),
        account,
        SETTINGS.webhook_max_age_s,
    )
    event = webhook.parse_notification(webhook.parse_json(body))
    if isinstance(event, webhook.Ignored):
        logs.info("notification ignored", reason=event.reason)
        return _json({"status": "ignored", "reason": event.reason})
    return _answer(_process(event, SETTINGS))


def _process(upload: webhook.Upload, settings: config.Settings) -> dict[str, Any]:
    """Classify now (WEBHOOK_MODE=inline) or publish to Pub/Sub (queue)."""
    if settings.webhook_mode == "queue":
        return worker.submit(upload, settings)
    return pipeline.process_upload(upload, settings)


def _answer(record: Any) -> flask.Response:
    queued = isinstance(record, dict) and record.get("status") == "queued"
    return _json(record, 202 if queued else 200)


@functions_framework.cloud_event
def on_message(event: CloudEvent) -> None:
    """Pub/Sub `messagePublished`: one queued asset. Return = acknowledged; raise = redelivered."""
    worker.consume(event.get_data(), SETTINGS)


def _results_query(args: Any) -> tuple[str | None, str | None, int]:
    """Validate `?asset_id=|public_id=|label=|tag=&limit=`; return (field, value, limit)."""
    unknown = sorted(set(args) - {*RESULT_FILTERS, "limit"})
    if unknown:
        raise BadRequest(f"unknown parameter(s): {', '.join(unknown)}")
    raw_limit = args.get("limit", str(DEFAULT_LIMIT))
    if not parsing.is_ascii_int(raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise BadRequest(f"limit must be an integer from 1 to {MAX_LIMIT}")
    given = [name for name in RESULT_FILTERS if name in args]
    if len(given) > 1:
        raise BadRequest(f"use one filter at a time, got {', '.join(given)}")
    if not given:
        return None, None, int(raw_limit)
    field = given[0]
    value = args.get(field, "")
    if not value or len(value) > 1024:
        raise BadRequest(f"{field} must be 1 to 1024 characters")
    if field == "asset_id" and not parsing.is_document_id(value):
        raise BadRequest("asset_id must be 1 to 128 letters, digits, _ or - (not __...__)")
    return field, value, int(raw_limit)


def _similar(request: flask.Request) -> flask.Response:
    """`GET /api/similar?asset_id=X`: X's nearest stored embeddings (private by default)."""
    similar.check_access(request.args, request.headers.get("Authorization"), SETTINGS)
    return _json(similar.find(SETTINGS, similar.parse_query(request.args)))


_ROUTES: dict[str, Handler] = {
    "/healthz": lambda _request: _json({"status": "ok"}),
    similar.PATH: _similar,
}


@functions_framework.http
@_cors(("GET", "HEAD"), lambda path: path.startswith("/api/"))
@_errors_as_json
def results(request: flask.Request) -> flask.Response:
    """The upload page and its static files, the query API, and upload signatures."""
    if request.method == "POST" and request.path.rstrip("/") == access.SIGN_UPLOAD_PATH:
        body = webhook.parse_json(_read_body(request, access.MAX_SIGN_BODY_BYTES))
        return _json(access.sign_upload(body, request.headers.get("Authorization"), SETTINGS))
    if request.method not in ("GET", "HEAD"):
        raise MethodNotAllowed("results is read-only: use GET")
    path = request.path.rstrip("/") or "/"
    if path == "/":
        return page.page_response(SETTINGS)
    if path.startswith(page.ASSETS_PREFIX):
        static = page.static_response(path.removeprefix(page.ASSETS_PREFIX), SETTINGS, request)
        if static is not None:
            return static
    if path in _ROUTES:
        return _ROUTES[path](request)
    if path != "/api/results":
        return _json({"error": f"no such path: {request.path}"}, 404)
    access.check_listing(request.args, request.headers.get("Authorization"), SETTINGS)
    field, value, limit = _results_query(request.args)
    if field == "asset_id":
        found = store.get(SETTINGS, value or "")
        documents = [found] if found else []
    elif field == "tag":
        documents = store.query_tag(SETTINGS, value or "", limit)
    else:
        documents = store.query(SETTINGS, field, value, limit)
    items = [pipeline.to_public(doc) for doc in documents]
    if not access.is_authorized(request.headers.get("Authorization"), SETTINGS):
        items = [access.redact(item) for item in items]
    return _json({"results": items, "count": len(items)})
