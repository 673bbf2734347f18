"""What a run used and where it ran: CPU time against the whole machine's (a shared machine
says so), the peak memory of a process tree, and the machine's description."""

from __future__ import annotations

import multiprocessing
import os
import platform
import time
from pathlib import Path
from typing import Any

import psutil

CORES = psutil.cpu_count() or 1


class CpuAccount:
    """CPU time this benchmark used (itself and every child it waited for) against the whole
    machine's, so a run disturbed by other work on the machine says so."""

    def __init__(self) -> None:
        self._machine = self._busy()
        self._ours = self._own()
        self._wall = time.perf_counter()

    @staticmethod
    def _busy() -> float:
        times = psutil.cpu_times()
        return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))

    @staticmethod
    def _own() -> float:
        t = psutil.Process().cpu_times()
        return float(t.user + t.system + t.children_user + t.children_system)

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self._wall
        machine = self._busy() - self._machine
        ours = self._own() - self._ours
        capacity = wall * (psutil.cpu_count() or 1)
        return {
            "wall_s": wall,
            "capacity_core_s": capacity,
            "ours_core_s": ours,
            "others_core_s": max(0.0, machine - ours),
            "others_share": max(0.0, machine - ours) / capacity,
            "loadavg_end": os.getloadavg()[0],
        }


def _sample_peak_rss(pid: int, interval_s: float, relist_s: float, peak_mb: Any, stop: Any) -> None:
    """The sampler's loop (in its own process): the peak RSS of `pid`'s tree into `peak_mb`."""
    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    tree: list[psutil.Process] = []
    listed = -float("inf")
    while not stop.is_set():
        try:
            if time.monotonic() - listed >= relist_s:  # listing scans all of /proc: 0.6 ms
                tree, listed = [root, *root.children(recursive=True)], time.monotonic()
            rss = 0
            for process in tree:
                try:
                    rss += process.memory_info().rss
                except psutil.NoSuchProcess:
                    if process is root:
                        raise
        except psutil.Error:
            return
        peak_mb.value = max(peak_mb.value, rss / 2**20)
        stop.wait(interval_s)


class MemorySampler:
    """Peak RSS (sum over the process and its children) of a process tree, sampled 40 times a
    second by a forked process of its own (cheap to start, so a cold start is not disturbed).
    A thread here measured ~10 ms slower warm requests (7%): this process also runs the client
    and the Cloudinary stand-in, whose threads it woke for the GIL."""

    def __init__(self, pid: int, interval_s: float = 0.025, relist_s: float = 0.25) -> None:
        self.pid = pid
        self.peak_pss_mb = 0.0
        context = multiprocessing.get_context("fork")
        self._peak = context.Value("d", 0.0, lock=False)
        self._stop = context.Event()
        self._process = context.Process(
            target=_sample_peak_rss,
            args=(pid, interval_s, relist_s, self._peak, self._stop),
            daemon=True,
        )
        self._process.start()

    @property
    def peak_mb(self) -> float:
        return float(self._peak.value)

    def pss_now(self) -> float:
        try:
            root = psutil.Process(self.pid)
            tree = [root, *root.children(recursive=True)]
            pss = sum(p.memory_full_info().pss for p in tree) / 2**20
        except psutil.Error:
            return 0.0
        self.peak_pss_mb = max(self.peak_pss_mb, pss)
        return pss

    def stop(self) -> float:
        self._stop.set()
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
        return self.peak_mb


def machine() -> str:
    """The CPU model (with its family/model numbers and the vector extensions that decide which
    engine wins: the name alone is often a generic "Intel Xeon Processor"), memory, Python."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
            if not line.strip():
                break
    except OSError:
        pass
    flags = set(fields.get("flags", "").split())
    extensions = [
        name
        for name, flag in (
            ("AVX2", "avx2"),
            ("AVX-512", "avx512f"),
            ("VNNI", "avx512_vnni"),
            ("BF16", "avx512_bf16"),
            ("AMX", "amx_tile"),
        )
        if flag in flags
    ]
    model_name = fields.get("model name", "unknown CPU")
    if "cpu family" in fields:
        model_name += f" (family {fields['cpu family']}, model {fields.get('model', '?')}"
        model_name += f"; {', '.join(extensions)})" if extensions else ")"
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{psutil.cpu_count()} vCPU {model_name}, {memory:.0f} GiB, no GPU, "
        f"Python {platform.python_version()}"
    )
