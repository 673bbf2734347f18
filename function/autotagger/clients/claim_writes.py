"""What this process last wrote to each document it holds the claim of (in memory, per
instance): the update time a claim-guarded write can be conditioned on instead of a
transaction (`store._write_if_unchanged`). A miss only means taking the transaction."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OurWrite:
    """This process's last write to a claimed document: while the document still has this
    update time, nobody else has written it, and its tags are `tags`."""

    update_time: Any
    tags: tuple[str, ...]


KEPT = 4096  # claims in flight per instance are far fewer; abandoned ones age out
_writes: OrderedDict[tuple[str, str], OurWrite] = OrderedDict()
_lock = threading.Lock()


def remember(asset_id: str, claim_id: str, update_time: Any, tags: tuple[str, ...]) -> None:
    with _lock:
        _writes[(asset_id, claim_id)] = OurWrite(update_time, tags)
        _writes.move_to_end((asset_id, claim_id))
        while len(_writes) > KEPT:
            _writes.popitem(last=False)


def recall(asset_id: str, claim_id: str) -> OurWrite | None:
    with _lock:
        return _writes.get((asset_id, claim_id))


def forget(asset_id: str, claim_id: str) -> None:
    with _lock:
        _writes.pop((asset_id, claim_id), None)
