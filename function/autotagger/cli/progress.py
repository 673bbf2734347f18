"""Long runs on a terminal: a progress bar on stderr and a graceful Ctrl-C."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

from tqdm import tqdm

from autotagger.cli.output import say


class StopRequest:
    """First Ctrl-C: finish the current image, then stop. Second Ctrl-C: stop at once."""

    def __init__(self) -> None:
        self.requested = False

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        say("\nstopping after the current image (Ctrl-C again to abort at once)")

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


def bar(total: int | None, unit: str, initial: int = 0) -> tqdm:
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
