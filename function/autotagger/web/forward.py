"""The page's forward of a signed Upload API response (`POST {ON_UPLOAD_URL}/forward`).

For local development without a public webhook URL, the upload page POSTs the Upload widget's
`success` info to `on_upload`. Cloudinary signs only `public_id` + `version` in that response
(hex SHA of `public_id=...&version=...` + api_secret, signature version 1: what
`cloudinary.utils.verify_api_response_signature` checks, here compared in constant time), so the
signature is checked first and everything else (asset_id, secure_url, ...) comes from the Admin
API, never from the body.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cloudinary.utils

from autotagger import logs, parsing, pipeline
from autotagger.clients import cloudinary_client, store
from autotagger.config import CloudinaryAccount, Settings
from autotagger.domain import is_final, is_live_claim, to_public
from autotagger.errors import BadRequest, ImageError, InProgress, Unauthorized
from autotagger.web import access, webhook

FORWARD_PATH = "/forward"
_DELIVERY_TYPE_RE = re.compile(r"^[a-z_]{1,32}$")


@dataclass(frozen=True)
class Forward:
    """What the page forwards: the signed pair, plus unsigned hints checked against the API."""

    public_id: str
    version: int
    signature: str
    asset_id: str | None = None
    resource_type: str = "image"
    type: str = "upload"


def is_forward(path: str) -> bool:
    """True for `/forward` (also behind a path prefix such as `/on_upload/forward`)."""
    trimmed = path.rstrip("/")
    return trimmed == FORWARD_PATH or trimmed.endswith(FORWARD_PATH)


def _text(payload: dict[str, Any], name: str, default: str) -> str:
    value = payload.get(name, default)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"forward field {name!r} must be a non-empty string")
    return value


def _version(value: Any) -> int:
    if parsing.is_ascii_int(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 10**12:
        raise BadRequest("forward field 'version' must be a positive integer")
    return value


def parse_forward(payload: dict[str, Any]) -> Forward:
    """Validate the forward body's shape; an absent or malformed signature is Unauthorized."""
    signature = payload.get("signature")
    if not isinstance(signature, str) or not signature:
        raise Unauthorized("missing signature: forward the Upload API response as it came")
    public_id = payload.get("public_id")
    if not isinstance(public_id, str) or not public_id or len(public_id) > 1024:
        raise BadRequest("forward field 'public_id' must be a string of 1 to 1024 characters")
    version = _version(payload.get("version"))
    asset_id = payload.get("asset_id")
    if asset_id is not None and not isinstance(asset_id, str):
        raise BadRequest("forward field 'asset_id' must be a string")
    delivery_type = _text(payload, "type", "upload")
    if not _DELIVERY_TYPE_RE.match(delivery_type):
        raise BadRequest("forward field 'type' has unexpected characters")
    return Forward(
        public_id=public_id,
        version=version,
        signature=signature,
        asset_id=asset_id or None,
        resource_type=_text(payload, "resource_type", "image"),
        type=delivery_type,
    )


def expected_signature(public_id: str, version: int, account: CloudinaryAccount) -> str:
    """The Upload API response signature, computed by the SDK's own signing function."""
    signed: str = cloudinary.utils.api_sign_request(
        {"public_id": public_id, "version": version},
        account.api_secret,
        account.signature_algorithm,
        signature_version=1,
    )
    return signed


def verify(forward: Forward, account: CloudinaryAccount) -> None:
    """Raise Unauthorized unless `signature` matches (public_id, version), in constant time."""
    signature = forward.signature
    if not webhook.is_hex_digest(signature, account.signature_algorithm):
        raise Unauthorized("malformed signature")
    expected = expected_signature(forward.public_id, forward.version, account)
    if not hmac.compare_digest(expected, signature.lower()):
        raise Unauthorized("signature does not match")


def _from_store(forward: Forward, settings: Settings) -> dict[str, Any] | None:
    """The answer the store already has for this signed (public_id, version), if any, so the
    Admin API (a small hourly quota) is asked only about a version the store has never seen:

    - a newer version is stored: this one is superseded (an overwritten upload's replay);
    - this version is final: its record (a replay, or the webhook was first);
    - this version holds a live claim: InProgress (409; the webhook is classifying it).
    """
    at = store.now()
    for record in store.query(settings, "public_id", forward.public_id, 5):
        if (record.get("resource_type") or "image") != forward.resource_type:
            continue
        version = record.get("version")
        if not isinstance(version, int) or version < forward.version:
            continue
        if version > forward.version:
            reason = f"version {forward.version} superseded by {version}"
            return {"status": "ignored", "reason": reason, "public_id": forward.public_id}
        if is_final(record, version):
            return {**to_public(record), "duplicate": True}
        if is_live_claim(record, at):
            raise InProgress(f"asset {forward.public_id!r} version {version} is being classified")
    return None


def handle(
    payload: dict[str, Any],
    settings: Settings,
    account: CloudinaryAccount,
    budget: access.ForwardBudget | None = None,
    process: Callable[[webhook.Upload, Settings], Any] = pipeline.process_upload,
) -> Any:
    """Verify, fetch the trusted resource, then classify it exactly like a webhook delivery.

    What the store already knows answers without the Admin API (`_from_store`): replays, the
    page's forward of an upload the webhook has claimed or classified, overwritten versions.
    Only a version the store has never seen spends `budget` (429 when spent).
    """
    forward = parse_forward(payload)
    verify(forward, account)
    if forward.resource_type not in ("image", "video"):
        reason = f"resource_type {forward.resource_type!r} is not an image or a video"
        logs.info("forward ignored", reason=reason, public_id=forward.public_id)
        return {"status": "ignored", "reason": reason}
    known = _from_store(forward, settings)
    if known is not None:
        return known
    if budget is not None:
        budget.spend()
    try:
        resource = cloudinary_client.resource(
            forward.public_id, forward.resource_type, forward.type
        )
    except ImageError as exc:
        raise BadRequest(f"asset {forward.public_id!r} not found in Cloudinary") from exc
    upload = webhook.upload_from_resource(dict(resource))
    if upload.version != forward.version:
        raise BadRequest(
            f"version mismatch: the signed version is {forward.version}, "
            f"Cloudinary's current version is {upload.version}"
        )
    if forward.asset_id is not None and forward.asset_id != upload.asset_id:
        raise BadRequest("asset_id does not match the signed asset")
    logs.info("forwarded upload verified", asset_id=upload.asset_id, public_id=upload.public_id)
    return process(upload, settings)
