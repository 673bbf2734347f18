"""Webhooks: signed ``upload`` and ``resource_tags_changed`` notifications, POSTed once each from
a thread of their own and logged in ``notifications_sent``."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import requests

from infra.local_cloudinary.responses import JsonDict
from infra.local_cloudinary.shapes import upload_json
from infra.local_cloudinary.signing import sign_notification
from infra.local_cloudinary.state import Asset, StandinState

# An upload notification is notification_type, timestamp and request_id, then these fields of
# the upload response (same order), then notification_context and signature_key.
# fmt: off
_UPLOAD_NOTIFICATION_FIELDS = (
    "asset_id", "public_id", "version", "version_id", "width", "height", "format",
    "resource_type", "created_at", "tags", "context", "bytes", "type", "etag", "placeholder",
    "url", "secure_url", "asset_folder", "display_name", "is_audio", "frame_rate", "duration",
    "original_filename", "api_key",
)
# fmt: on


def _context(state: StandinState) -> JsonDict:
    triggered_at = datetime.now(UTC).isoformat(timespec="milliseconds")
    return {
        "triggered_at": triggered_at.replace("+00:00", "Z"),
        "triggered_by": {"source": "api", "id": state.api_key},
    }


def upload_payload(state: StandinState, resource: Asset | Mapping[str, Any]) -> JsonDict:
    fields = upload_json(state, resource) if isinstance(resource, Asset) else resource
    payload: JsonDict = {
        "notification_type": "upload",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "request_id": uuid.uuid4().hex,
    }
    payload.update({k: fields[k] for k in _UPLOAD_NOTIFICATION_FIELDS if k in fields})
    payload.update(notification_context=_context(state), signature_key=state.api_key)
    return payload


def tags_entry(fields: Mapping[str, Any], added: list[str], removed: list[str]) -> JsonDict:
    entry = {k: fields.get(k) for k in ("asset_id", "public_id", "type", "resource_type")}
    return {**entry, "added": added, "removed": removed}


def tags_payload(state: StandinState, resources: list[JsonDict]) -> JsonDict:
    return {
        "notification_type": "resource_tags_changed",
        "source": "api",
        "resources": resources,
        "notification_context": _context(state),
        "signature_key": state.api_key,
    }


def signed(state: StandinState, payload: JsonDict) -> tuple[bytes, dict[str, str]]:
    """The body and headers Cloudinary POSTs for ``payload``, signed with the account's secret."""
    return sign_notification(payload, state.api_secret, state.signature_algorithm)


def send_async(state: StandinState, url: str, payload: JsonDict) -> None:
    """POST ``payload`` once, signed, from a daemon thread; the outcome goes to the log."""
    body, headers = signed(state, payload)

    def post() -> None:
        record: JsonDict = {"url": url, "notification_type": payload["notification_type"]}
        record.update(body=body, headers=headers, status=None, error=None)
        try:
            timeout = state.notification_timeout_s
            answer = requests.post(
                url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            )
            record["status"] = answer.status_code
        except requests.RequestException as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
        state.record_notification(record)

    threading.Thread(target=post, name="cloudinary-standin-webhook", daemon=True).start()


def notification_for(
    state: StandinState,
    resource: Mapping[str, Any],
    notification_type: str = "upload",
    *,
    added: Iterable[str] | None = None,
    removed: Iterable[str] = (),
) -> tuple[bytes, dict[str, str]]:
    """The exact body and headers Cloudinary would POST for ``resource``, without sending.

    ``resource`` is an upload response / ``asset()`` dict (stored state fills in gaps).
    For ``resource_tags_changed``, ``added`` defaults to the resource's tags.
    """
    kind = str(resource.get("resource_type", "image")), str(resource.get("type", "upload"))
    with state.lock:
        stored = state.stored.get((*kind, str(resource.get("public_id"))))
        fields = {**(upload_json(state, stored) if stored else {}), **resource}
    fields.setdefault("resource_type", kind[0])
    fields.setdefault("type", kind[1])
    if notification_type == "upload":
        fields.setdefault("api_key", state.api_key)
        payload = upload_payload(state, fields)
    elif notification_type == "resource_tags_changed":
        tags = list(fields.get("tags", []) if added is None else added)
        payload = tags_payload(state, [tags_entry(fields, tags, list(removed))])
    else:
        raise ValueError(f"unsupported notification_type {notification_type!r}")
    return signed(state, payload)
