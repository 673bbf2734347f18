"""A bad setting stops a fresh function process at start, with one line naming it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bad_setting_stops_the_function_with_one_line() -> None:
    """functions-framework exits non-zero at start, printing one JSON line naming the setting."""
    env = {"PATH": "/usr/bin:/bin", "TOP_K": "many", "HOME": "/tmp"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import functions_framework as f; f.create_app('results', 'function/main.py')",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1
    assert '"severity":"CRITICAL"' in lines[0]
    assert "TOP_K" in lines[0]
    assert "Traceback" not in done.stderr
