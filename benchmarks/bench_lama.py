"""Forward time and peak memory of the big-lama generator at 512 and 1024 px.

Usage (from the repository root)::

    python benchmarks/bench_lama.py [--sizes 512 1024] [--repeats 5] [--devices cpu cuda] [--threads N]

Weights: synthetic official-layout weights from the shared reference material
(``$INPAINT_REFERENCE``, default ``../shared/reference``; realistic activation ranges)
or, without it, PyTorch's random init. Speed and memory do not depend on the values.

Memory: CUDA = ``torch.cuda.max_memory_allocated`` during the forward minus the
allocation before it (i.e. activations + workspace, weights excluded). CPU = peak
resident set size during the forward minus the RSS before it, read from the kernel's
high-water mark (reset through ``/proc/self/clear_refs``) or, where that is refused,
by polling ``/proc/self/statm``. Before that run glibc is asked to hand its free heap
back to the OS (``malloc_trim``): otherwise blocks freed by the timing runs would be
reused unseen and the peak underestimated. Timing runs use the allocator untouched.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import importlib.util
import json
import os
import shlex
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
REFERENCE = Path(os.environ.get("INPAINT_REFERENCE", REPO.parent / "shared" / "reference"))
MiB = 2**20


def build_net(device: str) -> tuple[torch.nn.Module, str]:
    """The generator with synthetic official weights when available, else random init."""
    if str(REPO) not in sys.path:  # run as a script: make ``app`` importable
        sys.path.insert(0, str(REPO))
    from app.models.lama import BigLaMa

    net = BigLaMa()
    source = "random init (no reference material found)"
    init, manifest = REFERENCE / "init_weights.py", REFERENCE / "manifests" / "lama_generator.json"
    if init.is_file() and manifest.is_file():
        spec = importlib.util.spec_from_file_location("reference_init_weights", init)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        net.load_state_dict(module.make_state_dict(json.loads(manifest.read_text())["entries"], 1))
        source = f"synthetic (make_state_dict seed 1, {REFERENCE})"
    return net.to(device).eval().requires_grad_(False), source


def release_free_heap() -> bool:
    """Return glibc's free heap pages to the OS so the next RSS peak counts real use; False if not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
        return True
    except (OSError, AttributeError):
        return False


def _statm_rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise OSError(f"{field} not in /proc/self/status")


def cpu_peak_extra(run: Callable[[], None]) -> int | None:
    """Peak RSS above the starting RSS while ``run`` executes; None where /proc is missing."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets the VmHWM high-water mark
        base = _status_kib("VmRSS")
        run()
        return _status_kib("VmHWM") - base
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
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    run()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def bench(net: torch.nn.Module, device: str, size: int, repeats: int, warmup: int) -> dict:
    """Median/min/max seconds of one forward (batch 1) and its peak extra memory."""
    x = torch.rand(1, 4, size, size, device=device)
    x[:, 3] = (x[:, 3] > 0.7).float()  # hole mask channel
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def forward() -> None:
        with torch.inference_mode():
            net(x)
        sync()

    for _ in range(warmup):
        forward()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward()
        times.append(time.perf_counter() - start)
    if device == "cuda":
        peak = cuda_peak_extra(forward)
    else:
        release_free_heap()
        peak = cpu_peak_extra(forward)
    return {"device": device, "size": size, "n": repeats, "median": statistics.median(times),
            "min": min(times), "max": max(times), "peak": peak}


def table(rows: list[dict]) -> str:
    """Markdown table of the measurements."""
    lines = ["| device | input | repeats | median forward (s) | min - max (s) | peak extra memory (MiB) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        peak = "n/a" if r["peak"] is None else f"{r['peak'] / MiB:,.0f}"
        lines.append(f"| {r['device']} | 1x{r['size']}x{r['size']} | {r['n']} | {r['median']:.3f} "
                     f"| {r['min']:.3f} - {r['max']:.3f} | {peak} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Measure every (device, size) pair and print the table with the command that made it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"], choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [d for d in args.devices if d == "cpu" or torch.cuda.is_available()]
    rows, sources = [], set()
    for device in devices:
        net, source = build_net(device)
        sources.add(source)
        rows += [bench(net, device, size, args.repeats, args.warmup) for size in args.sizes]
        del net
    gpu = f", GPU {torch.cuda.get_device_name()}" if "cuda" in devices else ""
    print(f"Command: `{shlex.join([Path(sys.executable).name, *sys.argv])}`")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads{gpu}, float32, batch 1, "
          f"weights: {'; '.join(sorted(sources))}"
          + ("" if release_free_heap() else "; CPU memory may be underestimated (allocator not glibc)") + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
