"""The command line's grammar: sub-commands, options, help texts, and argparse's errors on one
line."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn

from autotagger import parsing
from autotagger.cli.backfill import cmd_backfill
from autotagger.cli.classify import cmd_classify
from autotagger.cli.common import EXIT_USAGE
from autotagger.cli.learn import cmd_learn
from autotagger.cli.listing import ADMIN_PAGE_SIZE, DEFAULT_CURSOR_FILE, DEFAULT_LEARN_CURSOR_FILE
from autotagger.cli.results import cmd_results
from autotagger.cli.similar import cmd_similar
from autotagger.web import similar

PROG = "cli.py"
MAX_LIMIT = 100

DESCRIPTION = """\
autotagger on the command line: classify files or URLs, read the results, backfill an account.

    python function/cli.py classify photo.jpg https://example.com/cat.png [--json]
    python function/cli.py results [--asset-id A | --public-id P | --label L | --tag T] [--limit N]
        [--json]
    python function/cli.py backfill [--prefix P] [--limit N] [--dry-run] [--videos]
    python function/cli.py backfill --enqueue [--model-changed] [--prefix P] [--dry-run] [--videos]
    python function/cli.py backfill --vocabulary-changed [--enqueue] [--dry-run]
    python function/cli.py learn [--prefix P] [--dry-run] [--json] [--plot PATH]
    python function/cli.py similar ASSET_ID|PUBLIC_ID [--limit N] [--resource-type T] [--json]

Settings come from the environment, exactly as for the function (README, "Configuration");
`classify` needs only MODEL_WEIGHTS, `results` and `similar` Firestore, `backfill` and `learn`
also CLOUDINARY_URL.
Errors are one line on stderr; exit codes: 0 ok, 1 failed, 2 usage or configuration,
75 Admin API budget spent (resume later), 130 interrupted.
"""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (usage stays available through --help)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        if not parsing.is_ascii_int(raw) or not low <= int(raw) <= high:
            raise argparse.ArgumentTypeError(f"must be an integer from {low} to {high}")
        return int(raw)

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also show the library's info logs"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_classify(commands)
    _add_results(commands)
    _add_similar(commands)
    _add_backfill(commands)
    _add_learn(commands)
    return parser


def _add_classify(commands: argparse._SubParsersAction[_Parser]) -> None:
    classify = commands.add_parser(
        "classify",
        help="classify local files or URLs (no Cloudinary, no Firestore)",
        description=(
            "Run the function's pipeline (decode, preprocess, VGG16, top-k, tag choice) on local "
            "files or http(s) URLs and print the predictions. URLs are fetched with a plain GET, "
            "capped at MAX_IMAGE_BYTES and DOWNLOAD_TIMEOUT_S; unlike the webhook, any host is "
            "allowed (CLOUDINARY_DELIVERY_HOSTS does not apply): this is your own CLI fetching "
            "what you ask for. The model is MODEL_WEIGHTS."
        ),
    )
    classify.add_argument("inputs", nargs="+", metavar="PATH_OR_URL")
    classify.add_argument("--top-k", type=_int_between(1, 20), help="predictions [TOP_K]")
    classify.add_argument("--json", action="store_true", help="machine-readable output")
    classify.set_defaults(func=cmd_classify)


def _add_results(commands: argparse._SubParsersAction[_Parser]) -> None:
    results = commands.add_parser(
        "results",
        help="read stored classifications from Firestore",
        description=(
            "Documents from FIRESTORE_COLLECTION: one asset, the versions of a public ID, the "
            "images whose top label is LABEL, those with TAG among the tags autotagger wrote "
            "(a label or a concept such as dog, with TAG_PREFIX as written; newest first), or "
            "the most recent ones."
        ),
    )
    which = results.add_mutually_exclusive_group()
    which.add_argument("--asset-id", help="one asset's document")
    which.add_argument("--public-id", help="documents of this public ID")
    which.add_argument("--label", help="documents whose top-1 label is LABEL")
    which.add_argument(
        "--tag", help="documents with TAG among the tags written (a label or a concept)"
    )
    results.add_argument(
        "--limit", type=_int_between(1, MAX_LIMIT), default=20, help="at most N [20]"
    )
    results.add_argument("--json", action="store_true", help="machine-readable output")
    results.set_defaults(func=cmd_results)


def _add_similar(commands: argparse._SubParsersAction[_Parser]) -> None:
    similar_cmd = commands.add_parser(
        "similar",
        help="the stored assets most similar to one (Firestore vector search)",
        description=(
            "The assets whose VGG16 embedding is nearest ASSET's (cosine distance, nearest "
            "first, ASSET itself left out), as GET /api/similar answers; near_dup marks a "
            "distance at most NEAR_DUPLICATE_DISTANCE. ASSET is an asset_id or a public_id."
        ),
    )
    similar_cmd.add_argument("asset", metavar="ASSET_ID|PUBLIC_ID")
    similar_cmd.add_argument(
        "--limit",
        type=_int_between(1, similar.MAX_LIMIT),
        default=similar.DEFAULT_LIMIT,
        help=f"at most N [{similar.DEFAULT_LIMIT}]",
    )
    similar_cmd.add_argument(
        "--resource-type", choices=similar.RESOURCE_TYPES, help="only images or only videos"
    )
    similar_cmd.add_argument("--json", action="store_true", help="machine-readable output")
    similar_cmd.set_defaults(func=cmd_similar)


def _add_backfill(commands: argparse._SubParsersAction[_Parser]) -> None:
    backfill = commands.add_parser(
        "backfill",
        help="classify the account's existing images",
        description=(
            "List the account's images (type upload) through the Admin API and classify those "
            "without a final document for their current version, through the same pipeline as "
            "the webhook (tags, document, idempotency). Ctrl-C stops after the current image; "
            "running the command again continues where it stopped, and a run with nothing left "
            "does nothing. Per-image errors are reported and the run goes on."
        ),
    )
    backfill.add_argument("--prefix", help="only public IDs starting with P")
    backfill.add_argument(
        "--limit", type=_int_between(1, 10**9), help="classify at most N images this run"
    )
    backfill.add_argument("--dry-run", action="store_true", help="list, classify nothing")
    backfill.add_argument(
        "--videos", action="store_true", help="the account's videos instead of its images"
    )
    backfill.add_argument(
        "--enqueue",
        action="store_true",
        help="publish one Pub/Sub message per asset to PUBSUB_TOPIC instead of classifying here "
        "(on_message instances classify them); resumable through --cursor-file",
    )
    backfill.add_argument(
        "--model-changed",
        action="store_true",
        help="(implies --enqueue) also re-classify assets whose stored model is not the "
        "configured one (MODEL_WEIGHTS; the name includes the weights' hash)",
    )
    backfill.add_argument(
        "--vocabulary-changed",
        action="store_true",
        help="re-score the stored embeddings against the current learned vocabulary and add or "
        "remove only learned tags (no model, no download; the Admin API lists people's tags, "
        "resumable through --cursor-file); with --enqueue, on_message instances do it",
    )
    _add_listing_arguments(backfill, DEFAULT_CURSOR_FILE, "--enqueue: ")
    backfill.set_defaults(func=cmd_backfill)


def _add_learn(commands: argparse._SubParsersAction[_Parser]) -> None:
    learn = commands.add_parser(
        "learn",
        help="learn the account's own vocabulary from the tags people use",
        description=(
            "List the account's images with their tags (Admin API, pages of --page-size), join "
            "them with the stored embeddings (run backfill first), and train a logistic "
            "regression per tag people put on at least VOCABULARY_MIN_EXAMPLES images (never "
            "on tags this project wrote). A tag is learned when held-out folds reach "
            "VOCABULARY_PRECISION with at least half its images found; others are reported "
            "as refused. The vocabulary is published to Firestore (versioned); instances "
            "pick it up within VOCABULARY_REFRESH_S. When the Admin API's hourly budget runs "
            "out, the listing stops with exit 75 and the place saved in --cursor-file: the "
            "same command resumes it."
        ),
    )
    learn.add_argument("--prefix", help="only public IDs starting with P")
    learn.add_argument("--dry-run", action="store_true", help="train and report, publish nothing")
    learn.add_argument("--json", action="store_true", help="the report as JSON on stdout")
    learn.add_argument("--plot", metavar="PATH", help="precision and recall per tag as an image")
    learn.add_argument(
        "--model",
        help="the embedding space to learn on (a stored `model` name) [the most common one]",
    )
    learn.add_argument(
        "--jobs", type=_int_between(1, 64), help="tags trained in parallel [CPUs, at most 4]"
    )
    _add_listing_arguments(learn, DEFAULT_LEARN_CURSOR_FILE)
    learn.set_defaults(func=cmd_learn)


def _add_listing_arguments(
    command: argparse.ArgumentParser, cursor_file: str, scope: str = ""
) -> None:
    """The Admin API listing's options (page size, resumable cursor, budget reserve), shared by
    the commands that list the account; `scope` says which mode of the command uses them."""
    command.add_argument(
        "--page-size",
        type=_int_between(1, ADMIN_PAGE_SIZE),
        default=ADMIN_PAGE_SIZE,
        help=f"{scope}Admin API page size [{ADMIN_PAGE_SIZE}]",
    )
    command.add_argument(
        "--cursor-file",
        default=cursor_file,
        help=f"{scope}where an unfinished listing keeps its place [{cursor_file}]",
    )
    command.add_argument(
        "--reserve",
        type=_int_between(0, 10**6),
        default=0,
        help=f"{scope}stop when this many Admin API requests are left this hour [0]",
    )
