"""Queue mode: the webhook publishes one message per upload; `on_message` runs the pipeline.

Outcome mapping for a delivered message (Pub/Sub acknowledges when the function returns and
redelivers with backoff when it raises):

- `done`, `failed`, duplicate, superseded version: return (acknowledged); a `backfill` or
  `reclassify` message also redoes a `done` document that has no embedding yet;
- a redelivery of a message whose earlier delivery crashed (its instance died): the claim id is
  the message's, so the redelivery continues that claim at once (Pub/Sub redelivers a message
  only after the earlier delivery failed or outlived the ack deadline, which is longer than
  the function's timeout: that delivery is over);
- origin `vocabulary`: the stored embedding is re-scored (no model, no download), return;
- malformed message: logged with its messageId, return (acknowledged: it can never succeed);
- Firestore/Cloudinary down (`UpstreamError`), a live claim held by another delivery
  (`InProgress`), missing configuration, anything unexpected: raise (redelivered, and after the
  subscription's max delivery attempts moved to the dead-letter topic).
"""

from __future__ import annotations

from typing import Any

from autotagger import logs, pipeline, vocabulary_rescore
from autotagger.clients import cloudinary_client, pubsub, store
from autotagger.config import Settings
from autotagger.domain import Upload, is_final, to_public
from autotagger.errors import AutotaggerError, MalformedMessage
from autotagger.queue import messages


def submit(upload: Upload, settings: Settings, origin: str = "webhook") -> dict[str, Any]:
    """Publish `upload` (or answer from the store when this version is already final).

    Returns `{"status": "queued", ...}` once Pub/Sub has accepted the message; raises
    PublishError (503) when it has not, so the sender retries.
    """
    try:
        existing = store.get(settings, upload.asset_id)
    except Exception as exc:  # the check only saves a message; the worker is idempotent anyway
        logs.warning("duplicate check skipped", asset_id=upload.asset_id, error=str(exc)[:300])
        existing = None
    if existing is not None and is_final(existing, upload.version):
        logs.info("duplicate delivery: already classified", asset_id=upload.asset_id)
        return {**to_public(existing), "duplicate": True}
    message_id = pubsub.publish(settings, messages.AssetMessage(upload=upload, origin=origin))
    logs.info(
        "upload queued", asset_id=upload.asset_id, version=upload.version, message_id=message_id
    )
    return {
        "status": "queued",
        "asset_id": upload.asset_id,
        "public_id": upload.public_id,
        "version": upload.version,
    }


def delivery_id(message_id: str) -> str | None:
    """The claim id of every delivery of one Pub/Sub message (None without a message id)."""
    return f"message-{message_id}" if message_id else None


def consume(event_data: Any, settings: Settings) -> dict[str, Any]:
    """Process one delivered message (the CloudEvent's `data`); see the module doc for outcomes."""
    try:
        received = messages.from_cloud_event(event_data)
    except MalformedMessage as exc:
        logs.error(
            "malformed message acknowledged (it can never succeed)",
            message_id=messages.message_id_of(event_data),
            error=exc.message,
        )
        return {"status": "malformed", "error": exc.message}
    upload, message_id = received.message.upload, received.message_id
    context = {
        "message_id": message_id,
        "asset_id": upload.asset_id,
        "origin": received.message.origin,
    }
    try:
        cloudinary_client.require_account(settings)
        if received.message.origin == "vocabulary":
            outcome = vocabulary_rescore.rescore(
                settings, upload.asset_id, received.message.vocabulary_version, upload.tags
            )
            logs.info(f"message processed: vocabulary {outcome}", **context)
            return {"status": outcome, "asset_id": upload.asset_id}
        origin = received.message.origin
        record = pipeline.process_upload(
            upload,
            settings,
            reclassify=origin == "reclassify",
            delivery_id=delivery_id(message_id),
            refresh_embedding=origin in ("backfill", "reclassify"),  # a library gets embeddings
        )
    except Exception as exc:
        reason = exc.message if isinstance(exc, AutotaggerError) else f"{type(exc).__name__}"
        logs.warning("message not processed: Pub/Sub redelivers it", error=reason, **context)
        raise
    outcome = "duplicate" if record.get("duplicate") else str(record.get("status"))
    logs.info(f"message processed: {outcome}", **context)
    return record
