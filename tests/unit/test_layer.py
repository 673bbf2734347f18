"""The unit layer's own rule: it starts nothing."""

from __future__ import annotations

import subprocess

import pytest


def test_a_unit_test_cannot_start_a_process() -> None:
    with pytest.raises(pytest.fail.Exception, match="subprocess"):
        subprocess.run(["true"], check=False)


def test_a_unit_test_cannot_ask_for_the_emulator(request: pytest.FixtureRequest) -> None:
    with pytest.raises(pytest.fail.Exception, match="Firestore emulator"):
        request.getfixturevalue("emulator_host")
