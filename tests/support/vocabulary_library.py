"""A library on the stand-in and the Firestore emulator as backfill would have left it: assets
with people's tags and ours, documents with synthetic embeddings; and vocabularies published."""

from __future__ import annotations

from typing import Any

import numpy as np
from google.cloud import firestore
from google.cloud.firestore_v1.vector import Vector

from autotagger import vocabulary_store
from autotagger.config import Settings
from infra.local_cloudinary import CloudinaryStandin
from tests.support.helpers import image_bytes
from tests.support.vocabularies import DIM, MODEL, clusters, draw, synthetic_vocabulary


def db(base_env: dict[str, str]) -> firestore.Client:
    return firestore.Client(project=base_env["GOOGLE_CLOUD_PROJECT"])


def library(
    standin: CloudinaryStandin,
    base_env: dict[str, str],
    items: list[tuple[str, list[str], list[str], np.ndarray | None]],
) -> dict[str, dict[str, Any]]:
    """Assets on the stand-in with their Cloudinary tags, and their documents (ours: `tags`)
    with a synthetic embedding, as backfill would have left them. By public_id."""
    collection = db(base_env).collection(base_env["FIRESTORE_COLLECTION"])
    made = {}
    picture = image_bytes((16, 12))
    for public_id, cloud_tags, ours, embedding in items:
        resource = standin.add_asset(picture, public_id=public_id, tags=[*cloud_tags, *ours])
        document: dict[str, Any] = {
            "asset_id": resource["asset_id"],
            "public_id": public_id,
            "version": resource["version"],
            "secure_url": resource["secure_url"],
            "resource_type": "image",
            "status": "done",
            "model": MODEL,
            "tags": ours,
            "label": ours[0] if ours else None,
        }
        if embedding is not None:
            document["embedding"] = Vector([float(v) for v in embedding])
        collection.document(resource["asset_id"]).set(document)
        made[public_id] = resource
    return made


def palette_library(
    rng: np.random.Generator, standin: CloudinaryStandin, base_env: dict[str, str]
) -> dict[str, np.ndarray]:
    """66 images: 20 each of sunset, ocean and forest (a client's tag on 20 at random), 5
    forests nobody tagged and one without an embedding. Returns the clusters' centers."""
    centers = clusters(rng, ["sunset", "ocean", "forest"])
    items = []
    acme = set(rng.choice(60, 20, replace=False).tolist())
    for k, (name, center) in enumerate(centers.items()):
        for i, embedding in enumerate(draw(rng, center, 20)):
            tags = [name] + (["client_acme"] if k * 20 + i in acme else [])
            ours = ["seashore", "auto:landscape"] if name == "ocean" else ["volcano"]
            items.append((f"lib/{name}-{i}", tags, ours, embedding))
    for i, embedding in enumerate(draw(rng, centers["forest"], 5)):
        items.append((f"lib/untagged-{i}", [], ["volcano"], embedding))
    items.append(("lib/no-embedding", ["sunset"], [], None))
    library(standin, base_env, items)
    return centers


def publish(settings: Settings, tags: list[str], seed: int) -> int:
    """A random vocabulary that gives every embedding all its tags (bias 5, threshold 0)."""
    rng = np.random.default_rng(seed)
    voc = synthetic_vocabulary(
        tags, rng.normal(size=(DIM, len(tags))), [5.0] * len(tags), [0.0] * len(tags)
    )
    return vocabulary_store.publish(settings, voc)
