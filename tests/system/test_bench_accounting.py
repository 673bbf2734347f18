"""The bench's memory sampler: a forked process of its own that follows a process tree."""

from __future__ import annotations

import subprocess
import sys
import time

from infra.bench.accounting import MemorySampler

# A parent holding ~64 MB that starts a child holding ~160 MB, both kept until stdin closes.
TREE = """
import subprocess, sys
held = bytearray(64 * 2**20)
child = subprocess.Popen(
    [sys.executable, "-c", "import sys; held = bytearray(160 * 2**20); print(1, flush=True); "
     "sys.stdin.read()"],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
)
child.stdout.readline()
print(1, flush=True)
sys.stdin.read()
child.stdin.close()
child.wait()
"""


def test_the_sampler_sees_the_whole_tree_and_stops() -> None:
    tree = subprocess.Popen(
        [sys.executable, "-c", TREE], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert tree.stdout is not None and tree.stdout.readline()  # both hold their memory
        sampler = MemorySampler(tree.pid, relist_s=0.05)
        deadline = time.monotonic() + 60
        while sampler.peak_mb < 224 and time.monotonic() < deadline:
            time.sleep(0.05)
        peak = sampler.stop()
        assert 224 <= peak < 1024  # parent and child counted, once each
        assert not sampler._process.is_alive()
    finally:
        assert tree.stdin is not None
        tree.stdin.close()
        tree.wait(timeout=30)
