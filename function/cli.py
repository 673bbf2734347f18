"""autotagger on the command line: classify files or URLs, read the results, backfill an account.

    python function/cli.py classify photo.jpg https://example.com/cat.png [--json]
    python function/cli.py results [--asset-id A | --public-id P | --label L] [--limit N] [--json]
    python function/cli.py backfill [--prefix P] [--limit N] [--dry-run] [--videos]

Settings come from the environment, exactly as for the function (README, "Configuration");
`classify` needs only MODEL_WEIGHTS, `results` Firestore, `backfill` also CLOUDINARY_URL.
Errors are one line on stderr; exit codes: 0 ok, 1 failed, 2 usage or configuration,
130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

import requests

from autotagger import cloudinary_client, config, imaging, model, pipeline, store, webhook
from autotagger.config import Settings
from autotagger.errors import AutotaggerError, BadRequest, ConfigError, ImageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
MAX_LIMIT = 100
_LOG_LEVELS = {"DEBUG": 10, "INFO": 20, "NOTICE": 25, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


class CliError(Exception):
    """Reported as one line on stderr; `code` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _say(message: str) -> None:
    """One line on stderr (never stdout, which may carry JSON)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _one_line(text: object, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


class _LogSink(io.TextIOBase):
    """Where the library's JSON log lines go while a command runs: stderr, as readable text.

    INFO and DEBUG entries are dropped unless --verbose; anything that is not a log line is
    passed through unchanged.
    """

    def __init__(self, stream: TextIO, verbose: bool) -> None:
        super().__init__()
        self._stream = stream
        self._verbose = verbose

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        for line in text.splitlines(keepends=True):
            self._stream.write(self._render(line))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def _render(self, line: str) -> str:
        try:
            entry = json.loads(line)
        except ValueError:
            return line
        if not isinstance(entry, dict) or "severity" not in entry:
            return line
        severity = str(entry.pop("severity"))
        if not self._verbose and _LOG_LEVELS.get(severity, 0) < _LOG_LEVELS["WARNING"]:
            return ""
        message = entry.pop("message", "")
        extra = ", ".join(f"{k}={_one_line(v, 120)}" for k, v in entry.items() if v is not None)
        return f"{severity.lower()}: {message}" + (f" ({extra})" if extra else "") + "\n"


# -- classify ------------------------------------------------------------------------------------


def _download(url: str, limit: int, timeout_s: float) -> bytes:
    try:
        with requests.get(
            url,
            stream=True,
            timeout=(5.0, timeout_s),
            headers={"User-Agent": "autotagger-cli/1.0"},
        ) as response:
            if response.status_code != 200:
                raise CliError(f"{url}: download answered HTTP {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise CliError(f"{url}: {declared} bytes, over MAX_IMAGE_BYTES={limit}")
            chunks, size = [], 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > limit:
                    raise CliError(f"{url}: over MAX_IMAGE_BYTES={limit} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    except requests.RequestException as exc:
        raise CliError(f"{url}: download failed: {type(exc).__name__}") from None


def _read_source(source: str, settings: Settings) -> bytes:
    """The bytes of a local file or an http(s) URL, at most MAX_IMAGE_BYTES."""
    limit = settings.max_image_bytes
    if source.startswith(("http://", "https://")):
        return _download(source, limit, settings.download_timeout_s)
    path = Path(source).expanduser()
    if not path.exists():
        raise CliError(f"{source}: no such file")
    if not path.is_file():
        raise CliError(f"{source}: not a file")
    size = path.stat().st_size
    if size > limit:
        raise CliError(f"{source}: {size} bytes, over MAX_IMAGE_BYTES={limit}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"{source}: cannot read: {exc.strerror or exc}") from None


def _classifier(settings: Settings) -> model.Classifier:
    """The model the function would use: MODEL_WEIGHTS, plus the other MODEL_* settings that
    this version of the settings has (precision, batch size), passed the way the pipeline does."""
    options = {
        name: getattr(settings, f"model_{name}")
        for name in ("precision", "max_batch", "engine", "openvino_hint")
        if hasattr(settings, f"model_{name}")
    }
    return model.get_model(settings.model_weights, **options)


def cmd_classify(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    top_k = args.top_k or settings.top_k
    items: list[dict[str, Any]] = []
    batches: list[tuple[dict[str, Any], Any]] = []
    for source in args.inputs:
        item: dict[str, Any] = {"input": source}
        items.append(item)
        try:
            pixels = imaging.load_rgb(_read_source(source, settings), settings.max_image_pixels)
        except CliError as exc:
            item["error"] = exc.message.removeprefix(f"{source}: ")
        except ImageError as exc:
            item["error"] = exc.reason
        else:
            batches.append((item, imaging.preprocess(pixels[None])))
    if batches:  # the model (seconds to load) only when something decoded
        classifier = _classifier(settings)
        for item, batch in batches:
            started = time.perf_counter()
            probabilities = classifier.predict(batch)[0]
            predict_ms = round((time.perf_counter() - started) * 1e3, 1)
            predictions = model.top_k(probabilities, top_k)
            item.update(
                model=classifier.name,
                predict_ms=predict_ms,
                predictions=[
                    {"label": p.label, "wnid": p.wnid, "score": round(p.score, 6)}
                    for p in predictions
                ],
                tags=pipeline.choose_tags(predictions, settings.tag_threshold, settings.tag_prefix),
            )
    for item in items:
        if "error" in item:
            _say(f"cli.py classify: error: {item['input']}: {item['error']}")
    if args.json:
        json.dump({"results": items, "count": len(items)}, out, ensure_ascii=False)
        out.write("\n")
    else:
        for item in items:
            if "predictions" in item:
                _print_predictions(item, out)
    return EXIT_FAILED if any("error" in item for item in items) else EXIT_OK


def _print_predictions(item: dict[str, Any], out: TextIO) -> None:
    width = max(len(p["label"]) for p in item["predictions"])
    out.write(f"{item['input']}  ({item['model']}, predict {item['predict_ms']:.0f} ms)\n")
    out.write(f"  {'#':>2}  {'score':>6}  {'label':<{width}}  wnid\n")
    for rank, p in enumerate(item["predictions"], 1):
        out.write(f"  {rank:>2}  {p['score']:6.4f}  {p['label']:<{width}}  {p['wnid']}\n")
    out.write(f"  tags: {', '.join(item['tags'])}\n")


# -- results -------------------------------------------------------------------------------------


def cmd_results(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if args.asset_id:
        found = store.get(settings, args.asset_id)
        documents = [found] if found else []
    else:
        field, value = next(
            ((f, v) for f, v in (("public_id", args.public_id), ("label", args.label)) if v),
            (None, None),
        )
        documents = store.query(settings, field, value, args.limit)
    items = [pipeline.to_public(doc) for doc in documents]
    if args.json:
        json.dump({"results": items, "count": len(items)}, out, ensure_ascii=False, default=str)
        out.write("\n")
        return EXIT_OK
    if not items:
        _say("no matching documents")
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
    header = ("created_at", "status", "score", "label / error", "public_id", "asset_id")
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    for row in [header, *rows]:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")
    return EXIT_OK


# -- backfill ------------------------------------------------------------------------------------


def _classified(existing: dict[str, Any] | None, version: int) -> bool:
    """True when the stored document is final for `version` (or for a newer version)."""
    if existing is None:
        return False
    stored = int(existing.get("version") or 0)
    return stored > version or (
        stored == version and existing.get("status") in store.FINAL_STATUSES
    )


class _StopRequest:
    """First Ctrl-C: finish the current image, then stop. Second Ctrl-C: stop at once."""

    def __init__(self) -> None:
        self.requested = False

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        _say("\nstopping after the current image (Ctrl-C again to abort at once)")

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGINT, self._handle)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


class _Progress:
    """A text progress bar on a terminal; one line per image otherwise (logs, CI)."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.stream = stream
        self.tty = stream.isatty()

    def update(self, done: int, note: str) -> None:
        filled = self.WIDTH * done // self.total
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        line = f"[{bar}] {done}/{self.total} {note}"
        if self.tty:
            self.stream.write("\r" + line[:120].ljust(120))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def report(self, line: str) -> None:
        """A line that must stay visible (a failure): on a terminal, above the bar; elsewhere
        the per-image line already says it."""
        if self.tty:
            self.stream.write("\r" + line.ljust(120) + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _pending(
    prefix: str | None, settings: Settings, resource_type: str = "image"
) -> tuple[int, int, list[webhook.Upload]]:
    """(images or videos listed, already classified, the uploads still to classify)."""
    resources = list(cloudinary_client.list_images(prefix, resource_type=resource_type))
    _say(f"checking {len(resources)} {resource_type}s against Firestore ...")
    pending: list[webhook.Upload] = []
    already = 0
    for resource in resources:
        try:
            upload = webhook.upload_from_resource(resource)
        except BadRequest as exc:
            _say(f"skipped {resource.get('public_id')!r}: {exc.message}")
            continue
        if _classified(store.get(settings, upload.asset_id), upload.version):
            already += 1
        else:
            pending.append(upload)
    return len(resources), already, pending


def _classify_one(upload: webhook.Upload, settings: Settings) -> tuple[str, str]:
    """(outcome, note): the webhook's pipeline on one image; an exception is an `error`."""
    try:
        record = pipeline.process_upload(upload, settings)
    except Exception as exc:  # reported by the caller; the next image still runs
        message = exc.message if isinstance(exc, AutotaggerError) else repr(exc)
        return "error", f"error: {_one_line(message, 200)}"
    status = "duplicate" if record.get("duplicate") else str(record.get("status"))
    detail = record.get("label") or record.get("error") or record.get("reason")
    return status, status + (f": {_one_line(detail, 80)}" if detail else "")


def cmd_backfill(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    cloudinary_client.require_account(settings)
    where = f" under {args.prefix!r}" if args.prefix else ""
    kind = "video" if args.videos else "image"
    _say(f"listing {kind}s{where} ...")
    listed, already, pending = _pending(args.prefix, settings, kind)
    todo = pending[: args.limit] if args.limit else pending
    limited = f" (--limit {args.limit} of {len(pending)})" if len(todo) < len(pending) else ""
    out.write(
        f"{listed} {kind}s{where}, {already} already classified, {len(todo)} to classify{limited}\n"
    )
    if args.dry_run:
        for upload in todo:
            out.write(f"  {upload.public_id}  (version {upload.version}, {upload.asset_id})\n")
        out.write("dry run: nothing classified\n")
        return EXIT_OK
    if not todo:
        return EXIT_OK

    outcomes: Counter[str] = Counter()
    stop = _StopRequest()
    progress = _Progress(len(todo), sys.stderr)
    attempted = 0
    with stop.installed():
        for upload in todo:
            if stop.requested:
                break
            attempted += 1
            outcome, note = _classify_one(upload, settings)
            outcomes[outcome] += 1
            if outcome != "done":
                progress.report(f"{upload.public_id}: {note}")
            progress.update(attempted, f"{upload.public_id} {note}")
    progress.close()
    summary = ", ".join(f"{count} {name}" for name, count in sorted(outcomes.items()))
    out.write(f"classified {attempted} of {len(todo)}: {summary}\n")
    if stop.requested and attempted < len(todo):
        out.write(f"interrupted: {len(todo) - attempted} left; run the same command to continue\n")
        return EXIT_INTERRUPTED
    return EXIT_FAILED if outcomes["error"] else EXIT_OK


# -- parser and main -----------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (usage stays available through --help)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise argparse.ArgumentTypeError(f"must be an integer from {low} to {high}")
        return int(raw)

    return parse


def build_parser() -> _Parser:
    parser = _Parser(
        prog="cli.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also show the library's info logs"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    results = commands.add_parser(
        "results",
        help="read stored classifications from Firestore",
        description=(
            "Documents from FIRESTORE_COLLECTION: one asset, the versions of a public ID or the "
            "images whose top label is LABEL (newest first), or the most recent ones."
        ),
    )
    which = results.add_mutually_exclusive_group()
    which.add_argument("--asset-id", help="one asset's document")
    which.add_argument("--public-id", help="documents of this public ID")
    which.add_argument("--label", help="documents whose top-1 label is LABEL")
    results.add_argument(
        "--limit", type=_int_between(1, MAX_LIMIT), default=20, help="at most N [20]"
    )
    results.add_argument("--json", action="store_true", help="machine-readable output")
    results.set_defaults(func=cmd_results)

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
    backfill.set_defaults(func=cmd_backfill)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = config.load_settings()
    except ConfigError as exc:
        _say(f"cli.py: configuration error: {exc.message}")
        return EXIT_USAGE
    if not args.verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cloudinary_client.configure(settings.cloudinary)
    out = sys.stdout
    sink = _LogSink(sys.stderr, args.verbose)
    try:
        with contextlib.redirect_stdout(sink):  # library logs -> stderr; results -> `out`
            code: int = args.func(args, settings, out)
    except KeyboardInterrupt:
        _say(f"cli.py {args.command}: interrupted")
        code = EXIT_INTERRUPTED
    except Exception as exc:
        message, code = _describe_failure(exc)
        _say(f"cli.py {args.command}: error: {message}")
    return code


def _describe_failure(exc: Exception) -> tuple[str, int]:
    """(one-line message, exit code) for an error that ends a command."""
    if isinstance(exc, CliError):
        return exc.message, exc.code
    if isinstance(exc, ConfigError):
        return exc.message, EXIT_USAGE
    if isinstance(exc, AutotaggerError):
        return _one_line(exc.message), EXIT_FAILED
    return f"{type(exc).__name__}: {_one_line(exc)}", EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
