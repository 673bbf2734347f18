"""Coalescing concurrent requests into one forward (the engines that gain from batches)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from autotagger.model.engines import Inference
from autotagger.model.spec import Classifier, embedding_dim, infer


@dataclass
class _Pending:
    batch: np.ndarray
    done: bool = False
    result: Inference | None = None
    error: BaseException | None = None
    images: int = field(init=False)

    def __post_init__(self) -> None:
        self.images = len(self.batch)


class MicroBatcher:
    """Coalesce concurrent `predict` calls into one forward of at most `max_batch` images.

    No timer: a call that finds the model idle runs at once (a lone request waits for nothing);
    calls arriving while a forward runs queue up, and the next forward takes them together, in
    arrival order. Only the forward is serialised; everything else of a request runs in parallel.
    """

    def __init__(self, inner: Classifier, max_batch: int) -> None:
        self.inner = inner
        self.name = inner.name
        self.embedding_dim = embedding_dim(inner)
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._busy = False
        self.batches: list[int] = []  # sizes of the recent forwards (for tests and logs)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.infer(batch).probabilities

    def infer(self, batch: np.ndarray) -> Inference:
        pending = _Pending(batch)
        with self._cond:
            self._queue.append(pending)
            while not pending.done and (self._busy or self._queue[0] is not pending):
                self._cond.wait()
            if pending.done:
                return self._result(pending)
            self._busy = True
            group = [self._queue.pop(0)]
            images = group[0].images
            while self._queue and images + self._queue[0].images <= self.max_batch:
                images += self._queue[0].images
                group.append(self._queue.pop(0))
        try:
            stacked = (
                group[0].batch if len(group) == 1 else np.concatenate([p.batch for p in group])
            )
            out = infer(self.inner, stacked)
            start = 0
            for item in group:
                item.result = out.rows(start, start + item.images)
                start += item.images
        except BaseException as exc:
            for item in group:
                item.error = exc
        finally:
            with self._cond:
                for item in group:
                    item.done = True
                self._busy = False
                self.batches = [*self.batches[-99:], images]
                self._cond.notify_all()
        return self._result(pending)

    @staticmethod
    def _result(pending: _Pending) -> Inference:
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result
