"""Forward time and peak memory of the neural models, through their Inpainter interface.

    python benchmarks/bench_models.py --models rfr-psv --sizes 256 512 --batches 1 4
    python benchmarks/bench_models.py --models lama --sizes 512 1024
    python benchmarks/bench_models.py --models edgeconnect-places2 --sizes 256 512 --batches 1 4
    python benchmarks/bench_models.py --models pic-places2 --samples 1 4 8 16 --separate

Weights: each network's own random initialisation (speed and memory do not depend on the
values). ``--separate`` also times N samples as N one-sample calls, against one batched call.
Memory: CPU = peak RSS above the RSS before the call; CUDA = peak allocation above the
weights. Prints a Markdown table with medians and spreads, and the command that made it.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import registry  # noqa: E402
from app.models.base import Batch  # noqa: E402
from benchmarks.memory import MiB, cpu_peak_extra, cuda_peak_extra  # noqa: E402


def make_batch(size: int, batch: int) -> Batch:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
    holes = np.zeros((batch, size, size), bool)
    holes[:, size // 4: size // 2, size // 4: 3 * size // 4] = True
    return Batch(images=images, holes=holes)


def timed(run, repeats: int, device: str) -> tuple[list[float], int | None]:
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def call() -> None:
        run()
        sync()

    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    peak = cuda_peak_extra(call) if device.startswith("cuda") else cpu_peak_extra(call)
    return times, peak


def row(model: str, device: str, what: str, times: list[float], peak: int | None) -> str:
    mem = "n/a" if peak is None else f"{peak / MiB:,.0f}"
    return (f"| {model} | {device} | {what} | {statistics.median(times):.3f} | "
            f"{min(times):.3f}–{max(times):.3f} | {mem} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True, choices=[s.id for s in registry.NEURAL])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256])
    parser.add_argument("--batches", type=int, nargs="+", default=[1])
    parser.add_argument("--samples", type=int, nargs="+", default=[1])
    parser.add_argument("--separate", action="store_true", help="also time N samples as N calls")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    args = parser.parse_args()
    devices = [d for d in args.devices if d == "cpu" or torch.cuda.is_available()]
    print(f"Command: `{shlex.join(['python', *sys.argv])}`  \n"
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", GPU {torch.cuda.get_device_name()}" if len(devices) > 1 else "") + ", float32\n")
    print("| model | device | input | median s | min–max s | peak extra MiB |\n|---|---|---|---|---|---|")
    for model_id in args.models:
        spec = registry.get(model_id)
        for device in devices:
            net = spec.entry_class()(**spec.kwargs).to(device).eval()
            for size in args.sizes:
                for b in args.batches:
                    batch = make_batch(size, b)
                    for n in args.samples if spec.diverse else [1]:
                        what = f"{b}x{size}²" + (f", {n} samples" if spec.diverse else "")
                        times, peak = timed(lambda: net.inpaint(batch, samples=n, seed=0), args.repeats, device)
                        print(row(model_id, device, what + (" batched" if args.separate else ""), times, peak),
                              flush=True)
                        if args.separate and n > 1:
                            times, peak = timed(lambda: [net.inpaint(batch, samples=1, seed=k) for k in range(n)],
                                                args.repeats, device)
                            print(row(model_id, device, what + " as separate calls", times, peak), flush=True)
            del net


if __name__ == "__main__":
    main()
