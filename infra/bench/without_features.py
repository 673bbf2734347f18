"""`on_upload` with features taken out of the pipeline: the "off" server of the bench's feature
pairs (`infra/bench/features.py`), served by functions-framework as its `--source`.

`BENCH_WITHOUT` lists what is taken out (`infra/bench/feature_switch.py`). Everything else is
`main.py`'s, preload included. The model's forward is the same either way: the embedding is one
of its outputs (a global average pool of block5_pool, microseconds beside the 30 GFLOP), so what
is measured is everything a feature adds around the forward. Bench only: never deployed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "function"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from infra.bench import feature_switch

feature_switch.take_out(feature_switch.without(os.environ.get(feature_switch.VARIABLE, "")))

from main import on_upload  # noqa: E402  (after the features are taken out)

__all__ = ["on_upload"]
