"""function/.gcloudignore read as gcloud reads it (gitignore syntax): what a deploy uploads."""

from __future__ import annotations

from pathlib import Path

import pathspec

FUNCTION = Path(__file__).resolve().parents[2] / "function"


def ignore_spec(source: Path = FUNCTION) -> pathspec.GitIgnoreSpec:
    return pathspec.GitIgnoreSpec.from_lines((source / ".gcloudignore").read_text().splitlines())


def uploaded(source: Path = FUNCTION) -> set[str]:
    """The files of `source` a deploy uploads, as paths relative to it."""
    spec = ignore_spec(source)
    files = {p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file()}
    return {f for f in files if not spec.match_file(f)}
