"""The classification pipeline: claim (download + decode alongside) -> predict -> tag -> store."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from autotagger import cloudinary_client, imaging, logs, model, store
from autotagger.config import Settings
from autotagger.errors import AutotaggerError, ImageError, InProgress, UpstreamError
from autotagger.logs import Timings
from autotagger.webhook import Upload

PUBLIC_FIELDS = (
    "asset_id",
    "public_id",
    "version",
    "secure_url",
    "status",
    "label",
    "score",
    "predictions",
    "tags",
    "model",
    "timings",
    "error",
    "created_at",
    "updated_at",
)


# Download + decode run here while the request thread makes the claim (both mostly wait on the
# network): the claim's round trip is off the critical path. Sized for gunicorn's threads.
_prefetch = ThreadPoolExecutor(max_workers=32, thread_name_prefix="prefetch")


def choose_tags(predictions: list[model.Prediction], threshold: float, prefix: str) -> list[str]:
    """Tags for every top-k label scoring at least `threshold`; the top-1 label always."""
    chosen = [p for i, p in enumerate(predictions) if i == 0 or p.score >= threshold]
    return [prefix + p.label for p in chosen]


def to_public(record: dict[str, Any]) -> dict[str, Any]:
    """The JSON view of a stored document: known, non-null fields; timestamps as ISO 8601."""
    out: dict[str, Any] = {}
    for key in PUBLIC_FIELDS:
        value = record.get(key)
        if value is None:
            continue
        if isinstance(value, dt.datetime):
            value = value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        out[key] = value
    return out


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
    spec = (settings.model_weights, settings.model_precision, settings.model_max_batch)
    if not model.is_loaded(*spec):
        with timings.stage("model_load"):
            classifier = model.get_model(*spec)
    else:
        classifier = model.get_model(*spec)
    with timings.stage("predict"):
        probabilities = classifier.predict(batch)[0]
    predictions = model.top_k(probabilities, settings.top_k)
    return {
        "label": predictions[0].label,
        "score": round(predictions[0].score, 6),
        "predictions": [
            {"label": p.label, "wnid": p.wnid, "score": round(p.score, 6)} for p in predictions
        ],
        "tags": choose_tags(predictions, settings.tag_threshold, settings.tag_prefix),
        "model": classifier.name,
    }


def process_upload(
    upload: Upload, settings: Settings, *, reclassify: bool = False
) -> dict[str, Any]:
    """Classify one image upload exactly once; return the public record (plus `duplicate`).
    `reclassify`: a `done` document made by another model than the configured one is redone."""
    timings = Timings()
    current_model = None
    if reclassify:
        spec = (settings.model_weights, settings.model_precision, settings.model_max_batch)
        current_model = model.get_model(*spec).name
    fetched = _prefetch.submit(_fetch, upload, settings, timings)  # used only if claimed
    with timings.stage("claim"):
        claim = store.claim(settings, upload, model=current_model)
    if claim.state == "duplicate":
        logs.info("duplicate delivery: already classified", asset_id=upload.asset_id)
        return {**to_public(claim.existing or {}), "duplicate": True}
    if claim.state == "superseded":
        current = (claim.existing or {}).get("version")
        logs.info("older version ignored", asset_id=upload.asset_id, version=upload.version)
        return {"status": "ignored", "reason": f"version {upload.version} superseded by {current}"}
    if claim.state == "in_progress":
        raise InProgress(f"asset {upload.asset_id} version {upload.version} is being classified")

    base = {
        "asset_id": upload.asset_id,
        "public_id": upload.public_id,
        "version": upload.version,
        "secure_url": upload.secure_url,
        "created_at": claim.created_at,
    }
    try:
        result = _classify(upload, settings, timings, fetched)
        with timings.stage("tags"):
            cloudinary_client.write_tags(
                upload.public_id,
                add=result["tags"],
                remove=list(claim.previous_tags),
                resource_type=upload.resource_type,
                delivery_type=upload.type,
            )
        record = {**base, "status": "done", **result}
    except ImageError as exc:  # not classifiable, or the asset vanished before the tag write
        record = {**base, "status": "failed", "error": exc.reason, "tags": []}
    except Exception as exc:
        _release(settings, upload.asset_id, exc)
        if isinstance(exc, AutotaggerError):
            raise
        raise UpstreamError(f"classification failed: {type(exc).__name__}: {exc}") from exc

    record["timings"] = timings.total()
    record["updated_at"] = store.now()
    with timings.stage("store"):
        try:
            store.save(settings, record, PUBLIC_FIELDS)
        except Exception as exc:
            _release(settings, upload.asset_id, exc)
            raise
    logs.log(
        "INFO" if record["status"] == "done" else "WARNING",
        f"classified: {record['status']}",
        asset_id=upload.asset_id,
        public_id=upload.public_id,
        label=record.get("label"),
        error=record.get("error"),
        timings=timings.total(),
    )
    return to_public(record)


def _release(settings: Settings, asset_id: str, exc: BaseException) -> None:
    try:
        store.release(settings, asset_id, f"transient: {exc}")
    except Exception as release_exc:  # the claim then expires after CLAIM_TTL_S
        logs.warning("could not release claim", asset_id=asset_id, error=str(release_exc)[:300])
