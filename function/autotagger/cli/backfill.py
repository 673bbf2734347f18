"""`backfill`: classify the account's assets that have no final document, here, one by one
(--enqueue and --vocabulary-changed hand over to their own modules)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import TextIO

from autotagger import model, pipeline
from autotagger.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, classifier
from autotagger.cli.enqueue import cmd_enqueue
from autotagger.cli.output import one_line, say
from autotagger.cli.progress import StopRequest, bar
from autotagger.cli.rescore import cmd_rescore
from autotagger.cli.selection import classified, final_documents, kind, lacks_embedding
from autotagger.clients import cloudinary_client
from autotagger.config import Settings
from autotagger.errors import AutotaggerError, BadRequest
from autotagger.web import webhook


def pending(
    prefix: str | None, settings: Settings, resource_type: str = "image"
) -> tuple[int, int, list[webhook.Upload]]:
    """(images or videos listed, already classified, the uploads still to classify)."""
    resources = list(cloudinary_client.list_images(prefix, resource_type=resource_type))
    say(f"checking {len(resources)} {resource_type}s against Firestore ...")
    uploads: list[webhook.Upload] = []
    for resource in resources:
        try:
            uploads.append(webhook.upload_from_resource(resource))
        except BadRequest as exc:
            say(f"skipped {resource.get('public_id')!r}: {exc.message}")
    documents = final_documents(settings, uploads)
    todo = [u for u in uploads if not classified(documents.get(u.asset_id), u.version)]
    stale = [u for u in uploads if lacks_embedding(documents.get(u.asset_id), u.version)]
    if stale and model.embedding_dim(classifier(settings)) is None:
        say(f"{len(stale)} documents have no embedding, but MODEL_WEIGHTS has none to give")
    elif stale:
        say(f"{len(stale)} classified {resource_type}s have no embedding yet: redoing them")
        todo += stale
    return len(resources), len(uploads) - len(todo), todo


def classify_one(upload: webhook.Upload, settings: Settings) -> tuple[str, str]:
    """(outcome, note): the webhook's pipeline on one image; an exception is an `error`."""
    try:
        record = pipeline.process_upload(upload, settings, refresh_embedding=True)
    except Exception as exc:  # reported by the caller; the next image still runs
        message = exc.message if isinstance(exc, AutotaggerError) else repr(exc)
        return "error", f"error: {one_line(message, 200)}"
    status = "duplicate" if record.get("duplicate") else str(record.get("status"))
    detail = record.get("label") or record.get("error") or record.get("reason")
    return status, status + (f": {one_line(detail, 80)}" if detail else "")


def cmd_backfill(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if args.vocabulary_changed:
        return cmd_rescore(args, settings, out)
    if args.enqueue or args.model_changed:
        return cmd_enqueue(args, settings, out)
    cloudinary_client.require_account(settings)
    where = f" under {args.prefix!r}" if args.prefix else ""
    resource_type = kind(args)
    say(f"listing {resource_type}s{where} ...")
    listed, already, todo_all = pending(args.prefix, settings, resource_type)
    todo = todo_all[: args.limit] if args.limit else todo_all
    limited = f" (--limit {args.limit} of {len(todo_all)})" if len(todo) < len(todo_all) else ""
    out.write(
        f"{listed} {resource_type}s{where}, {already} already classified, "
        f"{len(todo)} to classify{limited}\n"
    )
    if args.dry_run:
        for upload in todo:
            out.write(f"  {upload.public_id}  (version {upload.version}, {upload.asset_id})\n")
        out.write("dry run: nothing classified\n")
        return EXIT_OK
    if not todo:
        return EXIT_OK

    outcomes: Counter[str] = Counter()
    stop = StopRequest()
    attempted = 0
    with stop.installed(), bar(len(todo), "img") as progress:
        for upload in todo:
            if stop.requested:
                break
            attempted += 1
            outcome, note = classify_one(upload, settings)
            outcomes[outcome] += 1
            if outcome != "done":
                progress.write(f"{upload.public_id} {note}", file=sys.stderr)
            progress.set_postfix_str(one_line(f"{upload.public_id} {note}", 60), refresh=False)
            progress.update(1)
    summary = ", ".join(f"{count} {name}" for name, count in sorted(outcomes.items()))
    out.write(f"classified {attempted} of {len(todo)}: {summary}\n")
    if stop.requested and attempted < len(todo):
        out.write(f"interrupted: {len(todo) - attempted} left; run the same command to continue\n")
        return EXIT_INTERRUPTED
    return EXIT_FAILED if outcomes["error"] else EXIT_OK
