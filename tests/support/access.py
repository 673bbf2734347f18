"""Private mode's shared values: the results token, the signed preset and folder, the
listings that need the token, and three documents to list."""

from __future__ import annotations

import datetime as dt
import uuid

TOKEN = "t0k3n-" + "A1b2C3d4" * 5  # 46 visible characters
PRESET = "autotagger_signed"
FOLDER = "team/uploads"
PRIVATE = {"RESULTS_ACCESS": "private", "RESULTS_TOKEN": TOKEN}
SIGNED = {**PRIVATE, "CLOUDINARY_UPLOAD_PRESET": PRESET, "UPLOAD_FOLDER": FOLDER}
LISTINGS = ["/api/results", "/api/results?label=tabby", "/api/results?public_id=folder/p0"]


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def seed_documents(base_env: dict[str, str]) -> list[str]:
    """Three documents straight in the emulator; returns their asset_ids, newest first."""
    from google.cloud import firestore

    client = firestore.Client(project=base_env["GOOGLE_CLOUD_PROJECT"])
    collection = client.collection(base_env["FIRESTORE_COLLECTION"])
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    ids = []
    for i, label in enumerate(["tabby", "goldfish", "tabby"]):
        asset_id = uuid.uuid4().hex
        collection.document(asset_id).set(
            {
                "asset_id": asset_id,
                "public_id": f"folder/p{i}",
                "version": 100 + i,
                "status": "done",
                "label": label,
                "score": 0.5,
                "predictions": [{"label": label, "wnid": "n0", "score": 0.5}],
                "tags": [label],
                "created_at": start + dt.timedelta(minutes=i),
                "updated_at": start + dt.timedelta(minutes=i),
            }
        )
        ids.append(asset_id)
    return ids[::-1]
