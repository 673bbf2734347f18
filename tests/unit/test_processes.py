"""Ports for the local servers (infra/processes.py)."""

from __future__ import annotations

import socket

import pytest

from infra import processes


def test_a_free_port_is_bindable_and_below_the_kernels_ephemeral_range() -> None:
    low = processes.ephemeral_range_start()
    ports = {processes.free_port() for _ in range(20)}
    assert all(processes.FREE_PORT_LOW <= port < low for port in ports)
    assert len(ports) > 1  # picked at random, not the same one each time
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_without_room_below_the_range_the_kernel_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    kernels = processes.ephemeral_range_start()
    monkeypatch.setattr(processes, "ephemeral_range_start", lambda: processes.FREE_PORT_LOW)
    port = processes.free_port()
    assert port >= kernels  # from the kernel's own range
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
