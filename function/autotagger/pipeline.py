"""The classification pipeline: claim (download + decode alongside) -> predict -> tag -> store.

Videos take the same path (same claim, one document) with `video.py`'s frame fetch and
classification in place of the image's.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from autotagger import concepts, domain, embeddings, logs, model, tagging, vocabulary
from autotagger.clients import cloudinary_client, store
from autotagger.clients.store import ClaimState, Saved
from autotagger.config import Settings
from autotagger.domain import Status, Upload
from autotagger.errors import AutotaggerError, ImageError, InProgress, UpstreamError
from autotagger.logs import Timings
from autotagger.media import imaging, video

# The document's fields (the stored format: `autotagger.domain.record`), re-exported.
PUBLIC_FIELDS = domain.PUBLIC_FIELDS
STORED_FIELDS = domain.STORED_FIELDS


# Download + decode run here while the request thread makes the claim (both mostly wait on the
# network): the claim's round trip is off the critical path. Sized for gunicorn's threads.
_prefetch = ThreadPoolExecutor(max_workers=32, thread_name_prefix="prefetch")


to_public = domain.to_public


def _fetch(upload: Upload, settings: Settings, timings: Timings) -> np.ndarray:
    """The model's input: download (the 224-px rendition when possible) and decode."""
    with timings.stage("download"):
        data = cloudinary_client.download_for_model(upload.secure_url, settings)
    with timings.stage("decode"):
        pixels = imaging.load_rgb(data, settings.max_image_pixels)
        return imaging.preprocess(pixels[None])


def _classify(
    upload: Upload, settings: Settings, timings: Timings, fetched: Future[np.ndarray]
) -> dict[str, Any]:
    """Everything after the claim up to (not including) the tag write; raises ImageError."""
    batch = fetched.result()
    classifier = model.for_settings(settings, timings)
    with timings.stage("predict"):
        out = model.infer(classifier, batch)  # labels and embedding: one forward
    probabilities = out.probabilities[0]
    predictions = model.top_k(probabilities, settings.top_k)
    result = tagging.with_concepts(
        tagging.result(predictions, settings, classifier.name),
        concepts.fields(probabilities, settings.concept_threshold),
        settings.tag_prefix,
    )
    return {**result, "embedding": embeddings.of_image(out.embeddings)}


def process_upload(
    upload: Upload,
    settings: Settings,
    *,
    reclassify: bool = False,
    delivery_id: str | None = None,
    refresh_embedding: bool = False,
) -> dict[str, Any]:
    """Classify one image or video upload exactly once; return the public record (plus
    `duplicate`). `reclassify`: a `done` document made by another model than the configured one
    is redone. `delivery_id`: the same for every delivery of one message (its claim id), so a
    redelivery after a crash continues that claim instead of waiting for it to expire.
    `refresh_embedding` (backfill): a `done` document without an embedding is redone when the
    configured model has one."""
    upload = video.complete(upload)
    if (reason := video.ignore_reason(upload)) is not None:
        logs.info("upload ignored", asset_id=upload.asset_id, reason=reason)
        return {"status": "ignored", "reason": reason}
    timings = Timings()
    current_model, refresh_embedding = _takeover(settings, timings, reclassify, refresh_embedding)
    fetch: Any = video.fetch_frames if video.is_video(upload) else _fetch
    fetched = _prefetch.submit(fetch, upload, settings, timings)  # used only if claimed
    with timings.stage("claim"):
        claim = store.claim(
            settings,
            upload,
            model=current_model,
            claim_id=delivery_id,
            missing_embedding=refresh_embedding,
        )
    if claim.state is ClaimState.DUPLICATE:
        logs.info("duplicate delivery: already classified", asset_id=upload.asset_id)
        return {**to_public(claim.existing or {}), "duplicate": True}
    if claim.state is ClaimState.SUPERSEDED:
        current = (claim.existing or {}).get("version")
        logs.info("older version ignored", asset_id=upload.asset_id, version=upload.version)
        return {"status": "ignored", "reason": f"version {upload.version} superseded by {current}"}
    if claim.state is ClaimState.IN_PROGRESS:
        raise InProgress(f"asset {upload.asset_id} version {upload.version} is being classified")

    base = {
        "asset_id": upload.asset_id,
        "public_id": upload.public_id,
        "version": upload.version,
        "secure_url": upload.secure_url,
        "created_at": claim.created_at,
        "resource_type": upload.resource_type,
        "type": upload.type,
        "duration": upload.duration if video.is_video(upload) else None,
    }
    try:
        record = _tag(upload, settings, timings, fetched, claim, base)
    except _ClaimLost as lost:
        return _claim_lost(upload, str(lost))
    except Exception as exc:
        _release(settings, upload.asset_id, exc, claim.claim_id)
        if isinstance(exc, AutotaggerError):
            raise
        raise UpstreamError(f"classification failed: {type(exc).__name__}: {exc}") from exc

    record["timings"] = timings.total()
    record["updated_at"] = store.now()
    with timings.stage("store"):
        try:
            saved = store.save(settings, record, STORED_FIELDS, claim.claim_id)
        except Exception as exc:
            _release(settings, upload.asset_id, exc, claim.claim_id)
            raise
    if saved is Saved.CLAIM_LOST:
        if record["status"] is Status.DONE:
            _withdraw_tags(settings, upload, record["tags"])
        return _claim_lost(upload, "before the final write")
    logs.log(
        "INFO" if record["status"] is Status.DONE else "WARNING",
        f"classified: {record['status']}",
        asset_id=upload.asset_id,
        public_id=upload.public_id,
        label=record.get("label"),
        error=record.get("error"),
        timings=timings.total(),
    )
    return to_public(record)


class _ClaimLost(Exception):
    """Another delivery took the asset over (the message says when): drop this one's result."""


def _tag(
    upload: Upload,
    settings: Settings,
    timings: Timings,
    fetched: Future[Any],
    claim: store.Claim,
    base: dict[str, Any],
) -> dict[str, Any]:
    """Classify, then put our tags on the asset (or, when the file cannot be classified, take
    our earlier version's off): the record to store."""
    try:
        if video.is_video(upload):
            result = video.classify(settings, timings, fetched)
        else:
            result = _classify(upload, settings, timings, fetched)
    except ImageError as exc:
        _remove_our_tags(settings, upload, claim)
        return {**base, "status": Status.FAILED, "error": exc.reason, "tags": []}
    result = vocabulary.with_learned_tags(settings, result, upload.tags)
    tags = list(result["tags"])
    if not store.record_tags(settings, upload.asset_id, claim.claim_id, tags):
        raise _ClaimLost("before the tag write")
    try:
        with timings.stage("tags"):
            cloudinary_client.write_tags(
                upload.public_id,
                add=tags,
                remove=list(claim.previous_tags),
                resource_type=upload.resource_type,
                delivery_type=upload.type,
            )
    except ImageError as exc:  # the asset vanished before the tag write
        return {**base, "status": Status.FAILED, "error": exc.reason, "tags": []}
    return {**base, "status": Status.DONE, **result}


def _remove_our_tags(settings: Settings, upload: Upload, claim: store.Claim) -> None:
    """The current version failed: remove the tags an earlier version got from us (people's
    tags stay). Raises _ClaimLost (nothing removed) when another delivery took over."""
    if not claim.previous_tags:
        return
    if not store.holds_claim(settings, upload.asset_id, claim.claim_id):
        raise _ClaimLost("before removing the previous tags")
    with contextlib.suppress(ImageError):  # the asset is gone, and our tags with it
        cloudinary_client.write_tags(
            upload.public_id,
            add=[],
            remove=list(claim.previous_tags),
            resource_type=upload.resource_type,
            delivery_type=upload.type,
        )


def _withdraw_tags(settings: Settings, upload: Upload, written: list[str]) -> None:
    """Our tag write landed after another delivery took the asset over: take back the tags the
    asset's document does not list as ours (that delivery adds its own after recording them).
    Best effort: a failure is logged."""
    try:
        ours = set((store.get(settings, upload.asset_id) or {}).get("tags") or ())
        stale = [tag for tag in written if tag not in ours]
        if stale:
            cloudinary_client.write_tags(
                upload.public_id,
                add=[],
                remove=stale,
                resource_type=upload.resource_type,
                delivery_type=upload.type,
            )
    except Exception as exc:
        logs.warning("could not withdraw tags", asset_id=upload.asset_id, error=str(exc)[:300])


def _takeover(
    settings: Settings, timings: Timings, reclassify: bool, refresh_embedding: bool
) -> tuple[str | None, bool]:
    """What a final document must lack to be redone: (the current model's name when
    re-classifying, whether a missing embedding counts: only if the model gives one)."""
    if not reclassify and not refresh_embedding:
        return None, False
    classifier = model.for_settings(settings, timings)
    current = classifier.name if reclassify else None
    return current, refresh_embedding and model.embedding_dim(classifier) is not None


def _claim_lost(upload: Upload, when: str) -> dict[str, Any]:
    """This delivery stalled past CLAIM_TTL_S and another one took the asset over: its result is
    dropped (no tags, no write), and the delivery is acknowledged like a superseded one."""
    logs.warning(
        f"claim lost {when}: result discarded, another delivery took over",
        asset_id=upload.asset_id,
        version=upload.version,
    )
    return {"status": "ignored", "reason": f"claim lost {when}: another delivery took over"}


def _release(settings: Settings, asset_id: str, exc: BaseException, claim_id: str) -> None:
    try:
        store.release(settings, asset_id, f"transient: {exc}", claim_id)
    except Exception as release_exc:  # the claim then expires after CLAIM_TTL_S
        logs.warning("could not release claim", asset_id=asset_id, error=str(release_exc)[:300])
