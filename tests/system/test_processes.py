"""Stopping the local tools' child processes (infra/processes.py) with real subprocesses."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from infra.processes import stop


def _running(pid: int) -> bool:
    """Alive and not a zombie (an exited child waits to be reaped by init)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_what_outlives_a_group_leader_is_killed_with_it() -> None:
    """A group leader that exits on SIGTERM (gcloud) while its child ignores it (a JVM busy in
    its shutdown): the child goes too, by the SIGKILL that follows."""
    leader = subprocess.Popen(
        ["sh", "-c", "(trap '' TERM; exec sleep 60) & echo $!; wait"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert leader.stdout is not None
    child = int(leader.stdout.readline())
    assert _running(child)
    stop([leader])
    assert leader.returncode is not None
    deadline = time.monotonic() + 30  # a SIGKILLed process is gone within milliseconds
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _running(child)
