"""`results`: stored classifications from Firestore, as a table or JSON."""

from __future__ import annotations

import argparse
from typing import TextIO

from autotagger import pipeline
from autotagger.cli.common import EXIT_OK
from autotagger.cli.output import say, write_json, write_table
from autotagger.clients import store
from autotagger.config import Settings

HEADER = ("created_at", "status", "score", "label / error", "public_id", "asset_id")


def cmd_results(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if args.asset_id:
        found = store.get(settings, args.asset_id)
        documents = [found] if found else []
    elif args.tag:
        documents = store.query_tag(settings, args.tag, args.limit)
    else:
        field, value = next(
            ((f, v) for f, v in (("public_id", args.public_id), ("label", args.label)) if v),
            (None, None),
        )
        documents = store.query(settings, field, value, args.limit)
    items = [pipeline.to_public(doc) for doc in documents]
    if args.json:
        write_json({"results": items, "count": len(items)}, out, stringify=True)
        return EXIT_OK
    if not items:
        say("no matching documents")
        return EXIT_OK
    rows = [
        (
            str(i.get("created_at", "")),
            str(i.get("status", "")),
            f"{i['score']:.4f}" if isinstance(i.get("score"), float | int) else "",
            str(i.get("label") or i.get("error") or ""),
            str(i.get("public_id", "")),
            str(i.get("asset_id", "")),
        )
        for i in items
    ]
    write_table(out, HEADER, rows)
    return EXIT_OK
