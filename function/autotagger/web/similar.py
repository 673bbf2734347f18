"""More like this: an asset's nearest stored embeddings (Firestore vector search, cosine).

`GET /api/similar?asset_id=X[&limit=N][&resource_type=image|video]` and `cli.py similar` read
X's document, then ask Firestore for the documents whose `embedding` is nearest X's
(`find_nearest`, COSINE, the distance written into each result), nearest first, X itself left
out. Each result is the public view of a document plus `distance` (cosine distance, 0 to 2) and
`near_duplicate` (distance at most NEAR_DUPLICATE_DISTANCE: the same picture resized,
recompressed or slightly cropped). Results made by another model than X's are dropped: the
embeddings of two models live in different spaces.

Private by default like every listing (it reveals other assets): the access key is required
unless RESULTS_ACCESS=public. Cost: Firestore bills one read per 100 index entries scanned, so a
query over N embeddings is about N/100 reads (a `resource_type` pre-filter scans only those).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autotagger.clients import store
from autotagger.config import Settings
from autotagger.domain import Status, embedding_space, is_final, status_of, to_public
from autotagger.errors import BadRequest, BearerRequired, Conflict, NotFound
from autotagger.web import access

PATH = "/api/similar"
DEFAULT_LIMIT = 12
MAX_LIMIT = 50
RESOURCE_TYPES = ("image", "video")
PARAMETERS = ("asset_id", "limit", "resource_type")
ASSET_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


@dataclass(frozen=True)
class SimilarQuery:
    asset_id: str
    limit: int = DEFAULT_LIMIT
    resource_type: str | None = None


def check_access(args: Mapping[str, Any], authorization: str | None, settings: Settings) -> None:
    """Raise unless the caller may see other assets (the access key, when private)."""
    if settings.results_access == "public":
        return
    if any(name.lower() in access._CREDENTIAL_PARAMS for name in args):
        raise BearerRequired(
            "send the access key in the Authorization header, never in a URL",
            error="invalid_request",
        )
    access.require_token(authorization, settings, "similar assets")


def parse_query(args: Mapping[str, Any]) -> SimilarQuery:
    """Validate `?asset_id=&limit=&resource_type=`; BadRequest names what is wrong."""
    unknown = sorted(set(args) - set(PARAMETERS))
    if unknown:
        raise BadRequest(f"unknown parameter(s): {', '.join(unknown)}")
    asset_id = args.get("asset_id", "")
    if not asset_id:
        raise BadRequest("asset_id is required")
    if not ASSET_ID_RE.match(asset_id):
        raise BadRequest("asset_id must be 1 to 128 letters, digits, _ or -")
    raw_limit = args.get("limit", str(DEFAULT_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise BadRequest(f"limit must be an integer from 1 to {MAX_LIMIT}")
    resource_type = args.get("resource_type") or None
    if resource_type is not None and resource_type not in RESOURCE_TYPES:
        raise BadRequest(f"resource_type must be one of {', '.join(RESOURCE_TYPES)}")
    return SimilarQuery(asset_id, int(raw_limit), resource_type)


def find(settings: Settings, query: SimilarQuery) -> dict[str, Any]:
    """The answer to `query`: `{"asset_id", "model", "near_duplicate_distance", "results",
    "count"}`; NotFound for an unknown asset, Conflict when it has no embedding (yet)."""
    document = store.get(settings, query.asset_id)
    if document is None:
        raise NotFound(f"no classification stored for asset {query.asset_id!r}")
    vector = document.get(store.EMBEDDING_FIELD)
    if vector is None:
        why = (
            "it is not classified yet"
            if not is_final(document)
            else "its classification failed"
            if status_of(document) is Status.FAILED
            else "it was classified before embeddings existed (run `cli.py backfill`)"
        )
        raise Conflict(f"asset {query.asset_id!r} has no embedding: {why}")
    where = {"resource_type": query.resource_type} if query.resource_type else None
    # one more than asked: the asset itself is (almost always) its own nearest neighbour
    neighbours = store.nearest(settings, vector, query.limit + 1, where)
    threshold = settings.near_duplicate_distance
    results = []
    for neighbour in neighbours:
        if neighbour.get("asset_id") == query.asset_id:
            continue
        if embedding_space(neighbour.get("model")) != embedding_space(document.get("model")):
            continue  # another model's embedding: not comparable
        distance = max(0.0, float(neighbour.get(store.DISTANCE_FIELD) or 0.0))
        results.append(
            {
                **to_public(neighbour),
                "distance": round(distance, 6),
                "near_duplicate": distance <= threshold,
            }
        )
    results = results[: query.limit]
    return {
        "asset_id": query.asset_id,
        "model": document.get("model"),
        "near_duplicate_distance": threshold,
        "results": results,
        "count": len(results),
    }
