"""`on_upload` without the copy ahead of the server: a `gs://` model is copied by the worker's
preload after the server's imports (`autotagger.model.preload.prefetch` does nothing). The other
side of the bench's `gs://` cold start (`infra/bench/cold.py`), served by functions-framework as
its `--source`. Bench only: never deployed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "function"))

from autotagger.model import preload


def _no_copy_ahead(*_: object) -> None:
    return None


preload.prefetch = _no_copy_ahead  # type: ignore[assignment]

from main import on_upload  # noqa: E402  (after the copy ahead is taken out)

__all__ = ["on_upload"]
