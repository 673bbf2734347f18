"""`backfill --enqueue`: list the account page by page and publish one Pub/Sub message per asset
that still needs work (on_message instances classify them); resumable through a cursor file."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from autotagger.cli.common import EXIT_BUDGET, EXIT_INTERRUPTED, EXIT_OK, classifier
from autotagger.cli.listing import (
    ADMIN_PAGE_SIZE,
    DEFAULT_CURSOR_FILE,
    budget_detail,
    read_cursor,
    write_cursor,
)
from autotagger.cli.output import say
from autotagger.cli.progress import StopRequest, bar
from autotagger.cli.selection import final_documents, kind, wanted
from autotagger.clients import cloudinary_client
from autotagger.config import Settings
from autotagger.errors import BadRequest, RateLimitExceeded
from autotagger.web import webhook


def resume_command(args: argparse.Namespace) -> str:
    words = ["python", "function/cli.py", "backfill", "--enqueue"]
    if args.model_changed:
        words.append("--model-changed")
    if args.prefix:
        words += ["--prefix", args.prefix]
    if args.page_size != ADMIN_PAGE_SIZE:
        words += ["--page-size", str(args.page_size)]
    if args.cursor_file != DEFAULT_CURSOR_FILE:
        words += ["--cursor-file", args.cursor_file]
    return shlex.join(words)


def _summary(state: dict[str, Any], dry_run: bool) -> str:
    verb = "would publish" if dry_run else "published"
    return (
        f"{state['listed']} images listed, {state['already']} already classified, "
        f"{verb} {state['published']} ({state['reclassify']} to re-classify)"
        + (f", {state['malformed']} skipped as malformed" if state["malformed"] else "")
    )


def _new_state(args: argparse.Namespace, selection: dict[str, Any]) -> dict[str, Any]:
    return {
        "selection": selection,
        "next_cursor": None,
        "skip": 0,
        "total": None if args.prefix else cloudinary_client.total_assets(),
        "listed": 0,
        "already": 0,
        "published": 0,
        "reclassify": 0,
        "malformed": 0,
        "admin_requests": 0,
    }


def _enqueue_page(
    args: argparse.Namespace,
    settings: Settings,
    resources: list[dict[str, Any]],
    state: dict[str, Any],
    room: int | None,
    progress: tqdm,
) -> int:
    """Publish what `resources` (the page from `skip` on) still need, at most `room` messages;
    update `state`; return how many of `resources` were handled (all unless `room` ran out)."""
    from autotagger.clients import pubsub  # only --enqueue needs the Pub/Sub client
    from autotagger.queue import messages

    model_name = state["selection"]["model"]
    uploads: list[tuple[int, webhook.Upload]] = []
    malformed: list[int] = []
    for index, resource in enumerate(resources):
        try:
            uploads.append((index, webhook.upload_from_resource(resource)))
        except BadRequest as exc:
            malformed.append(index)
            progress.write(f"skipped {resource.get('public_id')!r}: {exc.message}", file=sys.stderr)
    documents = final_documents(settings, [u for _, u in uploads])
    chosen: list[tuple[int, messages.AssetMessage]] = []
    for index, upload in uploads:
        origin = wanted(documents.get(upload.asset_id), upload, model_name)
        if origin is not None:
            chosen.append((index, messages.AssetMessage(upload=upload, origin=origin)))
    handled = len(resources)
    if room is not None and len(chosen) > room:
        chosen = chosen[:room]
        handled = chosen[-1][0] + 1 if chosen else 0
    if chosen and not args.dry_run:
        pubsub.publish_all(settings, [message for _, message in chosen])
    state["listed"] += handled
    state["malformed"] += sum(1 for index in malformed if index < handled)
    state["already"] += sum(1 for index, _ in uploads if index < handled) - len(chosen)
    state["published"] += len(chosen)
    state["reclassify"] += sum(1 for _, m in chosen if m.origin == "reclassify")
    progress.update(handled)
    progress.set_postfix(published=state["published"], refresh=False)
    return handled


def cmd_enqueue(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """List the account page by page, skip what is final, publish one message per asset left.

    After each page the place is saved in --cursor-file (removed once the run completes)."""
    account = cloudinary_client.require_account(settings)
    selection = {
        "cloud": account.cloud_name,
        "prefix": args.prefix,
        "resource_type": kind(args),
        "topic": settings.pubsub_topic,
        "model": classifier(settings).name if args.model_changed else None,
    }
    path = Path(args.cursor_file)
    state = None if args.dry_run else read_cursor(path, selection)
    if state is None:
        state = _new_state(args, selection)
    else:
        say(f"resuming from {path}: {state['listed']} listed, {state['published']} published")
    stop = StopRequest()
    published_before = state["published"]
    code: int | None = None
    with stop.installed(), bar(state["total"], "asset", initial=state["listed"]) as progress:
        while code is None:
            try:
                page = cloudinary_client.list_page(
                    args.prefix, state["next_cursor"], args.page_size, kind(args)
                )
            except RateLimitExceeded as exc:
                code = _budget_stop(args, state, path, out, exc.message)
                break
            state["admin_requests"] += 1
            resources = page.resources[state["skip"] :]
            room = args.limit - (state["published"] - published_before) if args.limit else None
            handled = _enqueue_page(args, settings, resources, state, room, progress)
            if handled < len(resources):  # --limit reached inside this page
                state["skip"] += handled
            else:
                state["next_cursor"], state["skip"] = page.next_cursor, 0
            code = _after_page(args, state, path, out, page, stop.requested, published_before)
    out.write(_summary(state, args.dry_run) + "\n")
    if args.dry_run:
        out.write("dry run: nothing published\n")
    return code


def _after_page(
    args: argparse.Namespace,
    state: dict[str, Any],
    path: Path,
    out: TextIO,
    page: cloudinary_client.ResourcePage,
    stop_requested: bool,
    published_before: int,
) -> int | None:
    """Save the place; return the exit code when the run ends here, None to go on."""
    if state["next_cursor"] is None and state["skip"] == 0:
        if not args.dry_run:
            path.unlink(missing_ok=True)
        return EXIT_OK
    if not args.dry_run:
        write_cursor(path, state)
    if args.limit and state["published"] - published_before >= args.limit:
        out.write(f"--limit {args.limit} reached; progress saved in {path}\n")
        out.write(f"continue with: {resume_command(args)}\n")
        return EXIT_OK
    if stop_requested:
        out.write(f"interrupted; progress saved in {path}\n")
        out.write(f"continue with: {resume_command(args)}\n")
        return EXIT_INTERRUPTED
    if page.rate_remaining is not None and page.rate_remaining <= args.reserve:
        return _budget_stop(args, state, path, out, budget_detail(page))
    return None


def _budget_stop(
    args: argparse.Namespace, state: dict[str, Any], path: Path, out: TextIO, detail: str
) -> int:
    """Stop cleanly when the Admin API's hourly budget is spent; say how to resume."""
    if not args.dry_run:
        write_cursor(path, state)
    out.write(f"stopped: Admin API budget exhausted ({detail}); progress saved in {path}\n")
    out.write(f"resume after the reset with: {resume_command(args)}\n")
    return EXIT_BUDGET
