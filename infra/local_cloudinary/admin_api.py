"""The Admin API (HTTP basic auth, an hourly request budget): resources (by type, by tag, by
prefix, one by ID), upload presets, usage and ping."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from werkzeug.wrappers import Request, Response

from infra.local_cloudinary.params import flag, random_id
from infra.local_cloudinary.responses import Fail, JsonDict, iso, json_response
from infra.local_cloudinary.shapes import resource_json
from infra.local_cloudinary.signing import check_basic_auth
from infra.local_cloudinary.state import StandinState

ENDPOINTS = ("resources", "upload_presets", "ping", "usage")


def handle(state: StandinState, request: Request, parts: list[str], params: JsonDict) -> Response:
    """``/v1_1/<cloud>/<parts...>`` for an Admin API endpoint, after auth and the budget."""
    if parts[0] not in ENDPOINTS:
        raise Fail(404, "Not found")
    check_basic_auth(request, state.api_key, state.api_secret)
    budget = _spend_admin_request(state)
    response = _admin(state, request.method, parts, params)
    response.headers.update(budget)
    return response


def _spend_admin_request(state: StandinState) -> dict[str, str]:
    """The Admin API's hourly budget: ``X-FeatureRateLimit-*`` headers on every answer, 420
    once ``admin_rate_limit`` requests were made (None: unlimited, the headers say 5000)."""
    reset = (int(time.time()) // 3600 + 1) * 3600
    with state.lock:
        limit = state.admin_rate_limit
        if limit is not None and state.admin_used >= limit:
            raise Fail(420, f"Rate Limit Exceeded - resets at {iso(reset)}")
        state.admin_used += 1
        shown = 5000 if limit is None else limit
        remaining = max(0, shown - state.admin_used)
    return {
        "X-FeatureRateLimit-Limit": str(shown),
        "X-FeatureRateLimit-Remaining": str(remaining),
        "X-FeatureRateLimit-Reset": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(reset)),
    }


def _admin(state: StandinState, method: str, parts: list[str], params: JsonDict) -> Response:
    if parts == ["usage"] and method == "GET":
        with state.lock:
            count = len(state.stored)
        return json_response({"plan": "Standin", "resources": count, "derived_resources": 0})
    if parts == ["ping"]:
        return json_response({"status": "ok"})
    if parts[0] == "resources" and method == "GET" and len(parts) >= 2:
        return _resources(state, parts[1], parts[2:], params)
    if parts[0] == "upload_presets" and len(parts) <= 2:
        return _upload_presets(state, method, parts[1] if len(parts) == 2 else None, params)
    raise Fail(404, "Not found")


def _resources(
    state: StandinState, resource_type: str, rest: list[str], params: JsonDict
) -> Response:
    with state.lock:
        assets = [a for a in state.stored.values() if a.resource_type == resource_type]
        if len(rest) >= 2 and rest[0] != "tags":
            public_id = "/".join(rest[1:])
            found = state.stored.get((resource_type, rest[0], public_id))
            if found is None:
                raise Fail(404, f"Resource not found - {public_id}")
            return json_response({**resource_json(state, found, context=True), "derived": []})
    if rest and rest[0] == "tags":
        if len(rest) != 2:
            raise Fail(404, "Not found")
        assets = [a for a in assets if rest[1] in a.tags]
    elif rest:
        assets = [a for a in assets if a.type == rest[0]]
    prefix = params.get("prefix")
    if prefix and (not rest or rest[0] != "tags"):
        assets = [a for a in assets if a.public_id.startswith(str(prefix))]
        assets.sort(key=lambda a: a.public_id)  # documented: with a prefix, by public ID
    else:
        descending = str(params.get("direction", "desc")).lower() not in ("asc", "1")
        assets.sort(key=lambda a: (a.created_at, a.seq), reverse=descending)
    items, cursor = _page(state, assets, params)
    want_tags, want_context = flag(params.get("tags")), flag(params.get("context"))
    with state.lock:
        resources = [resource_json(state, a, want_tags, want_context) for a in items]
    return json_response({"resources": resources, **({"next_cursor": cursor} if cursor else {})})


def _page(state: StandinState, items: list[Any], params: JsonDict) -> tuple[list[Any], str | None]:
    """``max_results`` (default 10, at most 500) items from ``next_cursor`` on."""
    try:
        max_results = min(500, max(1, int(params.get("max_results") or 10)))
    except ValueError:
        raise Fail(400, f"Invalid max_results {params.get('max_results')}") from None
    start = 0
    if params.get("next_cursor"):
        with state.lock:
            found = state.cursors.get(str(params["next_cursor"]))
        if found is None:
            raise Fail(400, "Invalid next_cursor")
        start = found
    end = start + max_results
    if end >= len(items):
        return items[start:end], None
    cursor = secrets.token_hex(32)
    with state.lock:
        state.cursors[cursor] = end
    return items[start:end], cursor


def _upload_presets(
    state: StandinState, method: str, name: str | None, params: JsonDict
) -> Response:
    fields = {k: v for k, v in params.items() if k not in ("timestamp", "api_key", "signature")}
    for key in ("tags", "allowed_formats"):  # documented as comma-separated strings
        if isinstance(fields.get(key), list):
            fields[key] = ",".join(str(v) for v in fields[key])
    with state.lock:
        if name is None and method == "GET":
            presets = sorted(state.upload_presets.values(), key=lambda p: str(p["name"]))
            items, cursor = _page(state, presets, params)
            return json_response({"presets": items, **({"next_cursor": cursor} if cursor else {})})
        if name is None and method == "POST":
            new_name = str(fields.pop("name", "") or random_id(8))
            unsigned = flag(fields.pop("unsigned", False))
            state.upload_presets[new_name] = {
                "name": new_name,
                "unsigned": unsigned,
                "settings": fields,
            }
            return json_response({"message": "created", "name": new_name})
        preset = state.upload_presets.get(name or "")
        if name is None or preset is None:
            raise Fail(404 if name else 405, f"Upload preset {name} not found")
        if method == "GET":
            return json_response(json.loads(json.dumps(preset)))
        if method == "PUT":
            if "unsigned" in fields:
                preset["unsigned"] = flag(fields.pop("unsigned"))
            fields.pop("name", None)
            preset["settings"].update(fields)
            return json_response({"message": "updated"})
        if method == "DELETE":
            del state.upload_presets[name]
            return json_response({"message": "deleted"})
    raise Fail(405, f"Method {method} not allowed")
