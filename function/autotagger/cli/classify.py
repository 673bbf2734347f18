"""`classify`: the function's pipeline on local files or URLs (no Cloudinary, no Firestore)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, TextIO

import requests

from autotagger import concepts, model, parsing, tagging
from autotagger.cli.common import EXIT_FAILED, EXIT_OK, CliError, classifier
from autotagger.cli.output import say, write_json
from autotagger.config import Settings
from autotagger.errors import ImageError
from autotagger.media import imaging


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


def read_source(source: str, settings: Settings) -> bytes:
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


def cmd_classify(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    top_k = args.top_k or settings.top_k
    items: list[dict[str, Any]] = []
    batches: list[tuple[dict[str, Any], Any]] = []
    for source in args.inputs:
        item: dict[str, Any] = {"input": source}
        items.append(item)
        try:
            pixels = imaging.load_rgb(read_source(source, settings), settings.max_image_pixels)
        except CliError as exc:
            item["error"] = exc.message.removeprefix(f"{source}: ")
        except ImageError as exc:
            item["error"] = exc.reason
        else:
            batches.append((item, imaging.preprocess(pixels[None])))
    if batches:  # the model (seconds to load) only when something decoded
        _predict(classifier(settings), batches, top_k, settings)
    for item in items:
        if "error" in item:
            say(f"cli.py classify: error: {item['input']}: {item['error']}")
    if args.json:
        write_json({"results": items, "count": len(items)}, out)
    else:
        for item in items:
            if "predictions" in item:
                _print_predictions(item, out)
    return EXIT_FAILED if any("error" in item for item in items) else EXIT_OK


def _predict(
    loaded: model.Classifier,
    batches: list[tuple[dict[str, Any], Any]],
    top_k: int,
    settings: Settings,
) -> None:
    """Fill each item with its predictions, tags and concepts, as the pipeline chooses them."""
    for item, batch in batches:
        started = time.perf_counter()
        probabilities = loaded.predict(batch)[0]
        predict_ms = round((time.perf_counter() - started) * 1e3, 1)
        predictions = model.top_k(probabilities, top_k)
        labels = {
            "predictions": [
                {"label": p.label, "wnid": p.wnid, "score": round(p.score, 6)} for p in predictions
            ],
            "tags": tagging.choose_tags(predictions, settings.tag_threshold, settings.tag_prefix),
        }
        found = concepts.fields(probabilities, settings.concept_threshold)
        item.update(
            model=loaded.name,
            predict_ms=predict_ms,
            **tagging.with_concepts(labels, found, settings.tag_prefix),
        )


def _print_predictions(item: dict[str, Any], out: TextIO) -> None:
    width = max(len(p["label"]) for p in item["predictions"])
    out.write(f"{item['input']}  ({item['model']}, predict {item['predict_ms']:.0f} ms)\n")
    out.write(f"  {'#':>2}  {'score':>6}  {'label':<{width}}  wnid\n")
    for rank, p in enumerate(item["predictions"], 1):
        out.write(f"  {rank:>2}  {p['score']:6.4f}  {p['label']:<{width}}  {p['wnid']}\n")
    out.write(f"  tags: {', '.join(item['tags'])}\n")
    found = ", ".join(f"{c['name']} {c['score']:.2f}" for c in item.get("concepts", []))
    out.write(f"  concepts: {found or '(none)'}\n")
