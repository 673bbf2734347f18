"""`similar`: the stored assets nearest one (Firestore vector search), as /api/similar answers."""

from __future__ import annotations

import argparse
from typing import TextIO

from autotagger.cli.common import EXIT_OK, CliError
from autotagger.cli.output import say, write_json, write_table
from autotagger.clients import store
from autotagger.config import Settings
from autotagger.web import similar

HEADER = ("distance", "near_dup", "label", "public_id", "asset_id")


def asset_id_of(settings: Settings, asset: str) -> str:
    """The asset_id of ASSET_ID (a stored document) or PUBLIC_ID (its newest document)."""
    if similar.ASSET_ID_RE.match(asset) and store.get(settings, asset) is not None:
        return asset
    found = store.query(settings, "public_id", asset, 1)
    if not found:
        raise CliError(f"no classification stored for asset {asset!r} (asset_id or public_id)")
    return str(found[0]["asset_id"])


def cmd_similar(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    query = similar.SimilarQuery(asset_id_of(settings, args.asset), args.limit, args.resource_type)
    answer = similar.find(settings, query)
    if args.json:
        write_json(answer, out, stringify=True)
        return EXIT_OK
    if not answer["results"]:
        say("no similar assets stored")
        return EXIT_OK
    rows = [
        (
            f"{item['distance']:.6f}",
            "yes" if item["near_duplicate"] else "",
            str(item.get("label") or ""),
            str(item.get("public_id", "")),
            str(item.get("asset_id", "")),
        )
        for item in answer["results"]
    ]
    write_table(out, HEADER, rows)
    return EXIT_OK
