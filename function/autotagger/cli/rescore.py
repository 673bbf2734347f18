"""`backfill --vocabulary-changed`: re-score the stored embeddings against the current learned
vocabulary and add or remove only learned tags (inline, or through Pub/Sub with --enqueue)."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from autotagger.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, CliError
from autotagger.cli.listing import (
    ADMIN_PAGE_SIZE,
    DEFAULT_CURSOR_FILE,
    DEFAULT_RESCORE_CURSOR_FILE,
    list_tagged,
    listing_state,
)
from autotagger.cli.progress import StopRequest, bar
from autotagger.clients import cloudinary_client
from autotagger.config import Settings
from autotagger.errors import BadRequest
from autotagger.web import webhook


def resume_command(args: argparse.Namespace) -> str:
    words = ["python", "function/cli.py", "backfill", "--vocabulary-changed"]
    if args.enqueue:
        words.append("--enqueue")
    if args.dry_run:
        words.append("--dry-run")
    if args.page_size != ADMIN_PAGE_SIZE:
        words += ["--page-size", str(args.page_size)]
    if args.cursor_file != DEFAULT_CURSOR_FILE:
        words += ["--cursor-file", args.cursor_file]
    return shlex.join(words)


def _rescore_all(
    args: argparse.Namespace,
    settings: Settings,
    current: Any,
    present: dict[str, list[str]],
    stop: StopRequest,
) -> tuple[Counter[str], list[Any]]:
    """Plan (and, inline, write) every stored document's change; (outcomes with tag counts,
    the `vocabulary` messages to publish with --enqueue)."""
    from autotagger import vocabulary_rescore
    from autotagger.queue import messages

    names = {settings.tag_prefix + tag for tag in current.tags}
    outcomes: Counter[str] = Counter()
    queued: list[messages.AssetMessage] = []
    with bar(None, "doc") as progress:
        for snapshot in vocabulary_rescore.stream(settings):
            if stop.requested:
                break
            progress.update(1)
            document = snapshot.to_dict() or {}
            held = present.get(snapshot.id, [])
            planned = vocabulary_rescore.plan(document, current, settings.tag_prefix, held)
            if isinstance(planned, str):
                outcomes[planned] += 1
                continue
            outcomes["changed" if planned.changes_tags else "version recorded"] += 1
            outcomes["+tags"] += len(planned.add)
            outcomes["-tags"] += len(planned.remove)
            if args.dry_run:
                continue
            if args.enqueue:
                try:
                    described = webhook.upload_from_resource(document)
                except BadRequest as exc:
                    outcomes[f"not queued: {exc.message}"] += 1
                    continue
                upload = dataclasses.replace(described, tags=tuple(t for t in held if t in names))
                queued.append(
                    messages.AssetMessage(upload, "vocabulary", vocabulary_version=current.version)
                )
            elif not vocabulary_rescore.write(settings, planned, snapshot):
                outcomes["changed meanwhile (re-classified: left as is)"] += 1
    return outcomes, queued


def cmd_rescore(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Re-score every stored embedding against the current vocabulary; add or remove only the
    learned tags (inline, or one `vocabulary` message per document to change with --enqueue).
    No model, no download; the Admin API only to list people's tags (pages of 500, resumable
    like `learn` when the budget runs out)."""
    from autotagger import vocabulary_store

    account = cloudinary_client.require_account(settings)
    if args.model_changed or args.videos or args.prefix:
        raise CliError(
            "--vocabulary-changed re-scores every stored document: no --model-changed, "
            "--videos or --prefix",
            EXIT_USAGE,
        )
    current = vocabulary_store.read_current(settings)
    if current is None:
        raise CliError("no vocabulary published: run `cli.py learn` first")
    # People's tags, so that a learned tag a person already put on an asset stays theirs.
    path = Path(
        DEFAULT_RESCORE_CURSOR_FILE if args.cursor_file == DEFAULT_CURSOR_FILE else args.cursor_file
    )
    selection = {"cloud": account.cloud_name, "resource_type": "image", "for": "vocabulary"}
    state = listing_state(path, selection)
    code = list_tagged(args, state, path, out.write, resume_command(args))
    if code is not None:
        return code
    present = {asset_id: tags for asset_id, (_, tags) in state["assets"].items()}
    stop = StopRequest()
    with stop.installed():
        outcomes, queued = _rescore_all(args, settings, current, present, stop)
    if queued:
        from autotagger.clients import pubsub

        pubsub.publish_all(settings, queued)
    if not stop.requested:
        path.unlink(missing_ok=True)
    verb = "would change" if args.dry_run else "queued" if args.enqueue else "changed"
    changed, added, removed = (outcomes.pop(k, 0) for k in ("changed", "+tags", "-tags"))
    out.write(
        f"vocabulary version {current.version} ({len(current.tags)} tags): "
        f"{verb} {changed} assets' learned tags (+{added} / -{removed} tags)"
        + (f", {len(queued)} messages published" if queued else "")
        + "\n"
    )
    for why, count in sorted(outcomes.items()):
        out.write(f"  {count} {why}\n")
    if args.dry_run:
        out.write("dry run: nothing written\n")
    if stop.requested:
        out.write("interrupted: run the same command again to finish (it is idempotent)\n")
        return EXIT_INTERRUPTED
    return EXIT_OK
