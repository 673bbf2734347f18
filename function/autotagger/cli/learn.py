"""`learn`: the account's own vocabulary, trained on the tags people put on pictures that have
a stored embedding, reported, and published to Firestore."""

from __future__ import annotations

import argparse
import shlex
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from autotagger.cli.common import EXIT_OK
from autotagger.cli.listing import (
    ADMIN_PAGE_SIZE,
    DEFAULT_LEARN_CURSOR_FILE,
    list_tagged,
    listing_state,
)
from autotagger.cli.output import say, write_json, write_table
from autotagger.clients import cloudinary_client, store
from autotagger.config import Settings
from autotagger.domain import embedding_space

if TYPE_CHECKING:
    from autotagger.vocabulary_learn import Learned

HEADER = ("tag", "positives", "AP", "threshold", "precision", "recall", "outcome")


def resume_command(args: argparse.Namespace) -> str:
    words = ["python", "function/cli.py", "learn"]
    if args.prefix:
        words += ["--prefix", args.prefix]
    if args.page_size != ADMIN_PAGE_SIZE:
        words += ["--page-size", str(args.page_size)]
    if args.cursor_file != DEFAULT_LEARN_CURSOR_FILE:
        words += ["--cursor-file", args.cursor_file]
    if args.model:
        words += ["--model", args.model]
    for flag in ("dry_run", "json"):
        if getattr(args, flag):
            words.append("--" + flag.replace("_", "-"))
    if args.plot:
        words += ["--plot", args.plot]
    return shlex.join(words)


def training_set(
    settings: Settings, state: dict[str, Any], model_name: str | None
) -> tuple[Any, list[set[str]], str | None, Counter[str]]:
    """(embeddings, people's tags per row, the embedding space, why assets were left out):
    the listed tagged assets joined with their stored documents."""
    import numpy as np

    from autotagger import vocabulary_learn, vocabulary_store

    listed: dict[str, list[Any]] = state["assets"]
    documents = vocabulary_store.training_documents(settings, listed)
    skipped: Counter[str] = Counter()
    usable: list[tuple[str, dict[str, Any], Any]] = []
    for asset_id, (version, _) in listed.items():
        document = documents.get(asset_id)
        vector = vocabulary_store.embedding_of(document) if document else None
        if document is None:
            skipped["not classified yet (run backfill)"] += 1
        elif document.get("status") != "done":
            skipped[f"status {document.get('status')}"] += 1
        elif int(document.get("version") or 0) != version:
            skipped["classified for another version (run backfill)"] += 1
        elif vector is None:
            skipped["no embedding (run backfill)"] += 1
        else:
            usable.append((asset_id, document, vector))
    models = Counter(embedding_space(document.get("model")) for _, document, _ in usable)
    chosen = embedding_space(model_name) if model_name else None
    chosen = chosen or (models.most_common(1)[0][0] if models else None)
    rows = [(a, d, v) for a, d, v in usable if embedding_space(d.get("model")) == chosen]
    if len(rows) < len(usable):
        skipped["embedding of another model (--model, or backfill --model-changed)"] += len(
            usable
        ) - len(rows)
    dims = Counter(len(v) for _, _, v in rows)
    dim = dims.most_common(1)[0][0] if dims else 0
    skipped["embedding of an odd size"] += sum(1 for _, _, v in rows if len(v) != dim)
    rows = [row for row in rows if len(row[2]) == dim]
    tag_sets = [
        vocabulary_learn.people_tags(listed[a][1], d, settings.tag_prefix) for a, d, _ in rows
    ]
    embeddings = np.stack([v for _, _, v in rows]) if rows else np.zeros((0, 0), np.float32)
    return embeddings, tag_sets, chosen, +skipped


def _print_learned(reports: list[Any], out: TextIO) -> None:
    def cell(value: float | None, digits: int = 3) -> str:
        return "" if value is None else f"{value:.{digits}f}"

    rows = [
        (
            r.tag,
            str(r.positives),
            cell(r.ap),
            cell(r.threshold),
            cell(r.precision),
            cell(r.recall),
            r.reason,
        )
        for r in reports
    ]
    write_table(out, HEADER, rows, right_aligned=range(1, 6))


def _summary_lines(
    summary: dict[str, Any], args: argparse.Namespace, settings: Settings
) -> list[str]:
    """The run's closing lines: what was listed, trained, learned, left out, published."""
    lines = [
        f"{summary['listed']} images listed, {summary['tagged']} tagged, "
        f"{summary['trained_on']} with a person's tag and an embedding trained on "
        f"({summary['model'] or 'no model'}); {summary['learned']} tags learned, "
        f"{summary['refused']} refused (training {summary['seconds']['training']:.1f} s)"
    ]
    lines += [f"  left out: {count} {why}" for why, count in summary["skipped"].items()]
    if not summary["tags"]:
        lines.append("nothing to learn: no image has both a person's tag and a stored embedding")
    if args.dry_run:
        lines.append("dry run: nothing published")
    elif summary["published"]:
        lines.append(
            f"published vocabulary version {summary['version']}: instances use it within "
            f"{settings.vocabulary_refresh_s} s (VOCABULARY_REFRESH_S)"
        )
    else:
        lines.append("no tag learned: the published vocabulary is unchanged")
    return lines


def _publish(settings: Settings, learned: Learned, model_name: str | None, listed: int) -> int:
    """Store the learned vocabulary as the next version; its version number."""
    from autotagger import vocabulary_store

    return vocabulary_store.publish(
        settings,
        vocabulary_store.Vocabulary(
            version=0,
            model=model_name or "",
            tags=learned.tags,
            weights=learned.weights,
            bias=learned.bias,
            thresholds=learned.thresholds,
            figures=learned.figures(),
            created_at=store.now(),
            summary={
                "assets": learned.assets,
                "listed": listed,
                "tags_considered": len(learned.reports),
                "min_examples": settings.vocabulary_min_examples,
                "precision": settings.vocabulary_precision,
                "train_s": learned.seconds,
            },
        ),
    )


def cmd_learn(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """List the account's tags, join them with the stored embeddings, learn, report, publish."""
    from autotagger import vocabulary_learn  # scikit-learn: only here

    account = cloudinary_client.require_account(settings)

    def tell(text: str) -> None:  # with --json, stdout carries only the JSON
        if args.json:
            say(text.rstrip("\n"))
        else:
            out.write(text)

    selection = {"cloud": account.cloud_name, "prefix": args.prefix, "resource_type": "image"}
    path = Path(args.cursor_file)
    state = listing_state(path, selection)
    started = time.perf_counter()
    code = list_tagged(args, state, path, tell, resume_command(args))
    if code is not None:
        return code
    listed_s = time.perf_counter() - started
    started = time.perf_counter()
    embeddings, tag_sets, model_name, skipped = training_set(settings, state, args.model)
    join_s = time.perf_counter() - started
    learned = vocabulary_learn.learn(
        embeddings,
        tag_sets,
        min_examples=settings.vocabulary_min_examples,
        precision=settings.vocabulary_precision,
        jobs=args.jobs,
    )
    version: int | None = None
    if learned.tags and not args.dry_run:
        version = _publish(settings, learned, model_name, state["listed"])
    path.unlink(missing_ok=True)
    plotted = None
    if args.plot:
        plotted = vocabulary_learn.plot(
            learned.reports, Path(args.plot), settings.vocabulary_precision
        )
    summary = {
        "published": version is not None,
        "version": version,
        "model": model_name,
        "listed": state["listed"],
        "tagged": len(state["assets"]),
        "trained_on": learned.assets,
        "skipped": dict(skipped),
        "learned": len(learned.tags),
        "refused": len(learned.reports) - len(learned.tags),
        "admin_requests": state["admin_requests"],
        "seconds": {
            "listing": round(listed_s, 3),
            "join": round(join_s, 3),
            "training": learned.seconds,
        },
        "tags": [r.as_dict() for r in learned.reports],
    }
    if args.json:
        write_json(summary, out)
    elif learned.reports:
        _print_learned(learned.reports, out)
    lines = _summary_lines(summary, args, settings)
    if plotted is not None:
        lines.append(f"plot of {plotted} tags written to {args.plot}")
    for line in lines:
        tell(line + "\n")
    return EXIT_OK
