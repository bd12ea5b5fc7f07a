"""Peak-memory probes for the benchmarks (CPU resident set and CUDA allocations)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

MiB = 2**20


def release_free_heap() -> bool:
    """Hand glibc's free heap back to the OS so the next RSS peak counts real use; False if not glibc."""
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
        return True
    except (OSError, AttributeError):
        return False


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise OSError(f"{field} not in /proc/self/status")


def _statm_rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cpu_peak_extra(run: Callable[[], None]) -> int | None:
    """Peak RSS above the starting RSS while ``run`` executes (kernel high-water mark, else polling)."""
    release_free_heap()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM
        base = _status_bytes("VmRSS")
        run()
        return _status_bytes("VmHWM") - base
    except OSError:
        pass
    try:
        base = _statm_rss()
    except OSError:
        run()
        return None
    peak, done = [base], threading.Event()

    def poll() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _statm_rss())
            time.sleep(0.001)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        run()
    finally:
        done.set()
        thread.join()
    return peak[0] - base


def cuda_peak_extra(run: Callable[[], None]) -> int:
    """Peak CUDA allocation above the allocation before ``run`` (weights excluded)."""
    import torch

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    run()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base
