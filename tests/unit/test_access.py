"""The forward budget's sliding window (function/autotagger/web/access.py), on a fake clock."""

from __future__ import annotations

import pytest

from autotagger.errors import TooManyRequests
from autotagger.web import access


def test_budget_window_slides() -> None:
    now = [1000.0]
    budget = access.ForwardBudget(2, clock=lambda: now[0])
    budget.spend()
    now[0] += 10
    budget.spend()
    with pytest.raises(TooManyRequests) as caught:
        budget.spend()
    assert caught.value.headers == {"Retry-After": "50"}
    now[0] += 50  # the first call leaves the window
    budget.spend()
    with pytest.raises(TooManyRequests) as caught:
        budget.spend()
    assert caught.value.retry_after_s == 10
