"""Cloudinary's answers: JSON bodies, API error bodies, and delivery's ``X-Cld-Error`` header."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Response

JsonDict = dict[str, Any]


def iso(ts: float) -> str:
    """A unix time as Cloudinary writes ``created_at``: ``2024-01-31T12:00:00Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    body = json.dumps(payload)
    return Response(
        body, status, dict(headers or {}), content_type="application/json; charset=utf-8"
    )


def api_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """Cloudinary's API error body: ``{"error": {"message": ...}}``."""
    return json_response({"error": {"message": message}}, status, headers)


def delivery_error(status: int, message: str) -> Response:
    """Delivery errors carry their reason in the ``X-Cld-Error`` header, not in the body."""
    return Response(b"", status, {"X-Cld-Error": message}, content_type="text/plain")


class Fail(Exception):
    """Raised by handlers; answered as Cloudinary would (JSON body, or ``X-Cld-Error``)."""

    def __init__(self, status: int, message: str, delivery: bool = False) -> None:
        super().__init__(message)
        self.status, self.message, self.delivery = status, message, delivery

    def response(self) -> Response:
        if self.delivery:
            return delivery_error(self.status, self.message)
        return api_error(self.status, self.message)
