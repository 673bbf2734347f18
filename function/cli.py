"""autotagger on the command line: classify files or URLs, read the results, backfill an account.

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

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import shlex
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

import requests
from tqdm import tqdm

from autotagger import concepts, config, model, parsing, pipeline, tagging
from autotagger.clients import cloudinary_client, store
from autotagger.config import Settings
from autotagger.errors import (
    AutotaggerError,
    BadRequest,
    ConfigError,
    ImageError,
    RateLimitExceeded,
)
from autotagger.media import imaging
from autotagger.web import similar, webhook

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_BUDGET = 75  # EX_TEMPFAIL: the Admin API's hourly budget is spent; resume after the reset
MAX_LIMIT = 100
ADMIN_PAGE_SIZE = 500  # the Admin API's largest page
FIRESTORE_BATCH = 300  # documents per batched read
DEFAULT_CURSOR_FILE = ".autotagger-backfill.json"
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
            if parsing.is_ascii_int(declared) and int(declared) > limit:
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
            labels = {
                "predictions": [
                    {"label": p.label, "wnid": p.wnid, "score": round(p.score, 6)}
                    for p in predictions
                ],
                "tags": tagging.choose_tags(
                    predictions, settings.tag_threshold, settings.tag_prefix
                ),
            }
            found = concepts.fields(probabilities, settings.concept_threshold)
            item.update(
                model=classifier.name,
                predict_ms=predict_ms,
                **tagging.with_concepts(labels, found, settings.tag_prefix),
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
    found = ", ".join(f"{c['name']} {c['score']:.2f}" for c in item.get("concepts", []))
    out.write(f"  concepts: {found or '(none)'}\n")


# -- results -------------------------------------------------------------------------------------


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


# -- similar -------------------------------------------------------------------------------------


def _asset_id_of(settings: Settings, asset: str) -> str:
    """The asset_id of ASSET_ID (a stored document) or PUBLIC_ID (its newest document)."""
    if similar.ASSET_ID_RE.match(asset) and store.get(settings, asset) is not None:
        return asset
    found = store.query(settings, "public_id", asset, 1)
    if not found:
        raise CliError(f"no classification stored for asset {asset!r} (asset_id or public_id)")
    return str(found[0]["asset_id"])


def cmd_similar(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    query = similar.SimilarQuery(_asset_id_of(settings, args.asset), args.limit, args.resource_type)
    answer = similar.find(settings, query)
    if args.json:
        json.dump(answer, out, ensure_ascii=False, default=str)
        out.write("\n")
        return EXIT_OK
    if not answer["results"]:
        _say("no similar assets stored")
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
    header = ("distance", "near_dup", "label", "public_id", "asset_id")
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


def _lacks_embedding(existing: dict[str, Any] | None, version: int) -> bool:
    """True for a `done` document of `version` stored without an embedding (classified before
    embeddings existed, or by a model without one): backfill redoes it."""
    return (
        existing is not None
        and int(existing.get("version") or 0) == version
        and existing.get("status") == "done"
        and existing.get(store.EMBEDDING_FIELD) is None
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


def _bar(total: int | None, unit: str, initial: int = 0) -> tqdm:
    """A tqdm progress bar on stderr (count, rate, ETA when the total is known)."""
    return tqdm(
        total=total,
        initial=initial,
        unit=unit,
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.2,
        smoothing=0.1,
    )


def _final_documents(settings: Settings, uploads: list[webhook.Upload]) -> dict[str, Any]:
    """The stored documents of `uploads`, read in batches (`get_all`), not one read each."""
    found: dict[str, Any] = {}
    ids = [u.asset_id for u in uploads]
    for start in range(0, len(ids), FIRESTORE_BATCH):
        found.update(store.get_many(settings, ids[start : start + FIRESTORE_BATCH]))
    return found


def _pending(
    prefix: str | None, settings: Settings, resource_type: str = "image"
) -> tuple[int, int, list[webhook.Upload]]:
    """(images or videos listed, already classified, the uploads still to classify)."""
    resources = list(cloudinary_client.list_images(prefix, resource_type=resource_type))
    _say(f"checking {len(resources)} {resource_type}s against Firestore ...")
    uploads: list[webhook.Upload] = []
    for resource in resources:
        try:
            uploads.append(webhook.upload_from_resource(resource))
        except BadRequest as exc:
            _say(f"skipped {resource.get('public_id')!r}: {exc.message}")
    documents = _final_documents(settings, uploads)
    pending = [u for u in uploads if not _classified(documents.get(u.asset_id), u.version)]
    stale = [u for u in uploads if _lacks_embedding(documents.get(u.asset_id), u.version)]
    if stale and model.embedding_dim(_classifier(settings)) is None:
        _say(f"{len(stale)} documents have no embedding, but MODEL_WEIGHTS has none to give")
    elif stale:
        _say(f"{len(stale)} classified {resource_type}s have no embedding yet: redoing them")
        pending += stale
    return len(resources), len(uploads) - len(pending), pending


def _classify_one(upload: webhook.Upload, settings: Settings) -> tuple[str, str]:
    """(outcome, note): the webhook's pipeline on one image; an exception is an `error`."""
    try:
        record = pipeline.process_upload(upload, settings, refresh_embedding=True)
    except Exception as exc:  # reported by the caller; the next image still runs
        message = exc.message if isinstance(exc, AutotaggerError) else repr(exc)
        return "error", f"error: {_one_line(message, 200)}"
    status = "duplicate" if record.get("duplicate") else str(record.get("status"))
    detail = record.get("label") or record.get("error") or record.get("reason")
    return status, status + (f": {_one_line(detail, 80)}" if detail else "")


def _kind(args: argparse.Namespace) -> str:
    """The resource type backfill lists: `video` with --videos, else `image`."""
    return "video" if args.videos else "image"


def cmd_backfill(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if args.vocabulary_changed:
        return cmd_rescore(args, settings, out)
    if args.enqueue or args.model_changed:
        return cmd_enqueue(args, settings, out)
    cloudinary_client.require_account(settings)
    where = f" under {args.prefix!r}" if args.prefix else ""
    kind = _kind(args)
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
    attempted = 0
    with stop.installed(), _bar(len(todo), "img") as bar:
        for upload in todo:
            if stop.requested:
                break
            attempted += 1
            outcome, note = _classify_one(upload, settings)
            outcomes[outcome] += 1
            if outcome != "done":
                bar.write(f"{upload.public_id} {note}", file=sys.stderr)
            bar.set_postfix_str(_one_line(f"{upload.public_id} {note}", 60), refresh=False)
            bar.update(1)
    summary = ", ".join(f"{count} {name}" for name, count in sorted(outcomes.items()))
    out.write(f"classified {attempted} of {len(todo)}: {summary}\n")
    if stop.requested and attempted < len(todo):
        out.write(f"interrupted: {len(todo) - attempted} left; run the same command to continue\n")
        return EXIT_INTERRUPTED
    return EXIT_FAILED if outcomes["error"] else EXIT_OK


# -- backfill --enqueue: publish through Pub/Sub ----------------------------------------------


def _wanted(
    document: dict[str, Any] | None, upload: webhook.Upload, model_name: str | None
) -> str | None:
    """The origin to publish `upload` with, or None when it needs nothing.

    Missing or not final for its current version, or `done` without an embedding: `backfill`.
    With `model_name` (--model-changed), a `done` document of the current version made by
    another model: `reclassify`."""
    if not _classified(document, upload.version):
        return "backfill"

    assert document is not None
    if (
        model_name is not None
        and int(document.get("version") or 0) == upload.version
        and document.get("status") == "done"
        and document.get("model") != model_name
    ):
        return "reclassify"
    if _lacks_embedding(document, upload.version):
        return "backfill"
    return None


def _read_cursor(path: Path, selection: dict[str, Any]) -> dict[str, Any] | None:
    """The saved state of an interrupted run with the same selection, if any."""
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"{path}: unreadable cursor file ({exc}); delete it to start over") from None
    if not isinstance(state, dict) or state.get("selection") != selection:
        _say(f"{path} belongs to another selection: starting over (it will be replaced)")
        return None
    return state


def _write_cursor(path: Path, state: dict[str, Any]) -> None:
    """Save the run's state atomically (write a temporary file, then rename it)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    os.replace(tmp, path)


def _resume_command(args: argparse.Namespace) -> str:
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


def _enqueue_summary(state: dict[str, Any], dry_run: bool) -> str:
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
    bar: tqdm,
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
            bar.write(f"skipped {resource.get('public_id')!r}: {exc.message}", file=sys.stderr)
    documents = _final_documents(settings, [u for _, u in uploads])
    chosen: list[tuple[int, messages.AssetMessage]] = []
    for index, upload in uploads:
        origin = _wanted(documents.get(upload.asset_id), upload, model_name)
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
    bar.update(handled)
    bar.set_postfix(published=state["published"], refresh=False)
    return handled


def cmd_enqueue(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """List the account page by page, skip what is final, publish one message per asset left.

    After each page the place is saved in --cursor-file (removed once the run completes)."""
    account = cloudinary_client.require_account(settings)
    selection = {
        "cloud": account.cloud_name,
        "prefix": args.prefix,
        "resource_type": _kind(args),
        "topic": settings.pubsub_topic,
        "model": _classifier(settings).name if args.model_changed else None,
    }
    path = Path(args.cursor_file)
    state = None if args.dry_run else _read_cursor(path, selection)
    if state is None:
        state = _new_state(args, selection)
    else:
        _say(f"resuming from {path}: {state['listed']} listed, {state['published']} published")
    stop = _StopRequest()
    published_before = state["published"]
    code: int | None = None
    with stop.installed(), _bar(state["total"], "asset", initial=state["listed"]) as bar:
        while code is None:
            try:
                page = cloudinary_client.list_page(
                    args.prefix, state["next_cursor"], args.page_size, _kind(args)
                )
            except RateLimitExceeded as exc:
                code = _budget_stop(args, state, path, out, exc.message)
                break
            state["admin_requests"] += 1
            resources = page.resources[state["skip"] :]
            room = args.limit - (state["published"] - published_before) if args.limit else None
            handled = _enqueue_page(args, settings, resources, state, room, bar)
            if handled < len(resources):  # --limit reached inside this page
                state["skip"] += handled
            else:
                state["next_cursor"], state["skip"] = page.next_cursor, 0
            code = _after_page(args, state, path, out, page, stop.requested, published_before)
    out.write(_enqueue_summary(state, args.dry_run) + "\n")
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
        _write_cursor(path, state)
    if args.limit and state["published"] - published_before >= args.limit:
        out.write(f"--limit {args.limit} reached; progress saved in {path}\n")
        out.write(f"continue with: {_resume_command(args)}\n")
        return EXIT_OK
    if stop_requested:
        out.write(f"interrupted; progress saved in {path}\n")
        out.write(f"continue with: {_resume_command(args)}\n")
        return EXIT_INTERRUPTED
    if page.rate_remaining is not None and page.rate_remaining <= args.reserve:
        detail = (
            f"{page.rate_remaining} of {page.rate_limit} requests left this hour, "
            f"resets {page.rate_reset_at or 'on the hour'}"
        )
        return _budget_stop(args, state, path, out, detail)
    return None


def _budget_stop(
    args: argparse.Namespace, state: dict[str, Any], path: Path, out: TextIO, detail: str
) -> int:
    """Stop cleanly when the Admin API's hourly budget is spent; say how to resume."""
    if not args.dry_run:
        _write_cursor(path, state)
    out.write(f"stopped: Admin API budget exhausted ({detail}); progress saved in {path}\n")
    out.write(f"resume after the reset with: {_resume_command(args)}\n")
    return EXIT_BUDGET


# -- backfill --vocabulary-changed ---------------------------------------------------------------


DEFAULT_RESCORE_CURSOR_FILE = ".autotagger-rescore.json"


def _rescore_resume_command(args: argparse.Namespace) -> str:
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
    stop: _StopRequest,
) -> tuple[Counter[str], list[Any]]:
    """Plan (and, inline, write) every stored document's change; (outcomes with tag counts,
    the `vocabulary` messages to publish with --enqueue)."""
    from autotagger import vocabulary_rescore
    from autotagger.queue import messages

    names = {settings.tag_prefix + tag for tag in current.tags}
    outcomes: Counter[str] = Counter()
    queued: list[messages.AssetMessage] = []
    with _bar(None, "doc") as bar:
        for snapshot in vocabulary_rescore.stream(settings):
            if stop.requested:
                break
            bar.update(1)
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
    state = _listing_state(path, selection)
    code = _list_tagged(args, state, path, out.write, _rescore_resume_command(args))
    if code is not None:
        return code
    present = {asset_id: tags for asset_id, (_, tags) in state["assets"].items()}
    stop = _StopRequest()
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


# -- learn ---------------------------------------------------------------------------------------

DEFAULT_LEARN_CURSOR_FILE = ".autotagger-learn.json"


def _learn_resume_command(args: argparse.Namespace) -> str:
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


def _list_tagged(
    args: argparse.Namespace,
    state: dict[str, Any],
    path: Path,
    tell: Callable[[str], object],
    resume: str,
) -> int | None:
    """List the account's images with their tags, page by page from the saved cursor, keeping
    the tagged ones in `state`; None when the listing is complete, else the exit code (the
    budget ran out or Ctrl-C: the place is saved in `path`)."""
    stop = _StopRequest()
    with stop.installed(), _bar(None, "img", initial=state["listed"]) as bar:
        while not state["complete"]:
            try:
                page = cloudinary_client.list_page(
                    args.prefix, state["next_cursor"], args.page_size, "image", tags=True
                )
            except RateLimitExceeded as exc:
                return _learn_stop(state, path, tell, exc.message, resume)
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
            bar.update(len(page.resources))
            _write_cursor(path, state)
            if state["complete"]:
                break
            if stop.requested:
                tell(f"interrupted; progress saved in {path}\n")
                tell(f"continue with: {resume}\n")
                return EXIT_INTERRUPTED
            if page.rate_remaining is not None and page.rate_remaining <= args.reserve:
                detail = (
                    f"{page.rate_remaining} of {page.rate_limit} requests left this hour, "
                    f"resets {page.rate_reset_at or 'on the hour'}"
                )
                return _learn_stop(state, path, tell, detail, resume)
    return None


def _listing_state(path: Path, selection: dict[str, Any]) -> dict[str, Any]:
    """The saved listing of an interrupted run with this selection, else a new one."""
    state = _read_cursor(path, selection)
    if state is not None and state.get("complete") and time.time() - state["saved_at"] > 3600:
        _say(f"{path} holds a listing over an hour old: listing again")
        state = None
    if state is not None:
        _say(f"resuming from {path}: {state['listed']} images listed")
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


def _learn_stop(
    state: dict[str, Any], path: Path, tell: Callable[[str], object], detail: str, resume: str
) -> int:
    _write_cursor(path, state)
    tell(
        f"stopped: Admin API budget exhausted ({detail}) after {state['listed']} images; "
        f"progress saved in {path}\n"
    )
    tell(f"resume after the reset with: {resume}\n")
    return EXIT_BUDGET


def _training_set(
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
    models = Counter(str(document.get("model")) for _, document, _ in usable)
    chosen = model_name or (models.most_common(1)[0][0] if models else None)
    rows = [(a, d, v) for a, d, v in usable if str(d.get("model")) == chosen]
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

    header = ("tag", "positives", "AP", "threshold", "precision", "recall", "outcome")
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
    widths = [max(len(row[c]) for row in [header, *rows]) for c in range(len(header))]
    for row in [header, *rows]:
        cells = [
            cell.ljust(w) if c in (0, 6) else cell.rjust(w)
            for c, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.write("  ".join(cells).rstrip() + "\n")


def _learn_summary(
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


def cmd_learn(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """List the account's tags, join them with the stored embeddings, learn, report, publish."""
    from autotagger import vocabulary_learn, vocabulary_store  # scikit-learn: only here

    account = cloudinary_client.require_account(settings)

    def tell(text: str) -> None:  # with --json, stdout carries only the JSON
        if args.json:
            _say(text.rstrip("\n"))
        else:
            out.write(text)

    selection = {"cloud": account.cloud_name, "prefix": args.prefix, "resource_type": "image"}
    path = Path(args.cursor_file)
    state = _listing_state(path, selection)
    started = time.perf_counter()
    code = _list_tagged(args, state, path, tell, _learn_resume_command(args))
    if code is not None:
        return code
    listed_s = time.perf_counter() - started
    started = time.perf_counter()
    embeddings, tag_sets, model_name, skipped = _training_set(settings, state, args.model)
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
        version = vocabulary_store.publish(
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
                    "listed": state["listed"],
                    "tags_considered": len(learned.reports),
                    "min_examples": settings.vocabulary_min_examples,
                    "precision": settings.vocabulary_precision,
                    "train_s": learned.seconds,
                },
            ),
        )
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
        json.dump(summary, out, ensure_ascii=False)
        out.write("\n")
    elif learned.reports:
        _print_learned(learned.reports, out)
    lines = _learn_summary(summary, args, settings)
    if plotted is not None:
        lines.append(f"plot of {plotted} tags written to {args.plot}")
    for line in lines:
        tell(line + "\n")
    return EXIT_OK


# -- parser and main -----------------------------------------------------------------------------


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
    return parser


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
