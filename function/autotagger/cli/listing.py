"""Listing the account through the Admin API, resumably: pages, a cursor file saved after each,
and a clean stop when the hourly budget runs out."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autotagger.cli.common import EXIT_BUDGET, EXIT_INTERRUPTED, CliError
from autotagger.cli.output import say
from autotagger.cli.progress import StopRequest, bar
from autotagger.clients import cloudinary_client
from autotagger.errors import RateLimitExceeded

ADMIN_PAGE_SIZE = 500  # the Admin API's largest page
DEFAULT_CURSOR_FILE = ".autotagger-backfill.json"
DEFAULT_RESCORE_CURSOR_FILE = ".autotagger-rescore.json"
DEFAULT_LEARN_CURSOR_FILE = ".autotagger-learn.json"
LISTING_MAX_AGE_S = 3600  # a complete listing older than this is listed again


def read_cursor(path: Path, selection: dict[str, Any]) -> dict[str, Any] | None:
    """The saved state of an interrupted run with the same selection, if any."""
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"{path}: unreadable cursor file ({exc}); delete it to start over") from None
    if not isinstance(state, dict) or state.get("selection") != selection:
        say(f"{path} belongs to another selection: starting over (it will be replaced)")
        return None
    return state


def write_cursor(path: Path, state: dict[str, Any]) -> None:
    """Save the run's state atomically (write a temporary file, then rename it)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    os.replace(tmp, path)


def budget_detail(page: cloudinary_client.ResourcePage) -> str:
    """What the Admin API says is left of its hourly budget, for the stop message."""
    return (
        f"{page.rate_remaining} of {page.rate_limit} requests left this hour, "
        f"resets {page.rate_reset_at or 'on the hour'}"
    )


def listing_state(path: Path, selection: dict[str, Any]) -> dict[str, Any]:
    """The saved listing of an interrupted run with this selection, else a new one."""
    state = read_cursor(path, selection)
    if (
        state is not None
        and state.get("complete")
        and time.time() - state["saved_at"] > LISTING_MAX_AGE_S
    ):
        say(f"{path} holds a listing over an hour old: listing again")
        state = None
    if state is not None:
        say(f"resuming from {path}: {state['listed']} images listed")
        return state
    return {
        "saved_at": time.time(),
        "selection": selection,
        "next_cursor": None,
        "complete": False,
        "listed": 0,
        "admin_requests": 0,
        "assets": {},
    }


def list_tagged(
    args: argparse.Namespace,
    state: dict[str, Any],
    path: Path,
    tell: Callable[[str], object],
    resume: str,
) -> int | None:
    """List the account's images with their tags, page by page from the saved cursor, keeping
    the tagged ones in `state`; None when the listing is complete, else the exit code (the
    budget ran out or Ctrl-C: the place is saved in `path`)."""
    stop = StopRequest()
    with stop.installed(), bar(None, "img", initial=state["listed"]) as progress:
        while not state["complete"]:
            try:
                page = cloudinary_client.list_page(
                    args.prefix, state["next_cursor"], args.page_size, "image", tags=True
                )
            except RateLimitExceeded as exc:
                return _listing_stop(state, path, tell, exc.message, resume)
            state["admin_requests"] += 1
            for resource in page.resources:
                tags = [str(t) for t in resource.get("tags") or ()]
                if tags and resource.get("asset_id"):
                    version = int(resource.get("version") or 0)
                    state["assets"][str(resource["asset_id"])] = [version, tags]
            state["listed"] += len(page.resources)
            state["next_cursor"] = page.next_cursor
            state["complete"] = page.next_cursor is None
            state["saved_at"] = time.time()
            progress.update(len(page.resources))
            write_cursor(path, state)
            if state["complete"]:
                break
            if stop.requested:
                tell(f"interrupted; progress saved in {path}\n")
                tell(f"continue with: {resume}\n")
                return EXIT_INTERRUPTED
            if page.rate_remaining is not None and page.rate_remaining <= args.reserve:
                return _listing_stop(state, path, tell, budget_detail(page), resume)
    return None


def _listing_stop(
    state: dict[str, Any], path: Path, tell: Callable[[str], object], detail: str, resume: str
) -> int:
    write_cursor(path, state)
    tell(
        f"stopped: Admin API budget exhausted ({detail}) after {state['listed']} images; "
        f"progress saved in {path}\n"
    )
    tell(f"resume after the reset with: {resume}\n")
    return EXIT_BUDGET
