"""Forward time and peak memory of the neural networks alone, through their Inpainter interface.

    python -m benchmarks.bench_models --models rfr-psv --sizes 256 512 --batches 1 4
    python -m benchmarks.bench_models --models lama --sizes 512 1024 --half
    python -m benchmarks.bench_models --models pic-places2 --samples 1 4 8 16 --separate

Weights: each network's own random initialisation. Speed and memory do not depend on the
values, which is why this script may use them; it reports no image quality (that is
benchmarks/bench_quality.py, with real weights only). ``--separate`` also times N samples as N
one-sample calls against one batched call; ``--half`` also runs each network in its own half
dtype on CUDA (``FACTS.gpu_dtype``, float16 so far; float32 rows set ``INPAINT_HALF=0``) and
prints the largest output difference from float32, in 8-bit levels (random weights: an
indication of numerical headroom, not of the released models). Memory: CPU = peak RSS above
the RSS before the call; CUDA = peak allocation above the weights. Prints a Markdown table with
medians and spreads, and the command that made it.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time

import numpy as np
import torch

from app import registry
from app.models.base import Batch
from benchmarks import common
from benchmarks.common import command
from benchmarks.memory import MiB, cpu_peak_extra, cuda_peak_extra


def make_batch(size: int, batch: int) -> Batch:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
    holes = np.zeros((batch, size, size), bool)
    holes[:, size // 4: size // 2, size // 4: 3 * size // 4] = True
    return Batch(images=images, holes=holes)


def timed(run, repeats: int, device: str) -> tuple[list[float], int | None]:
    """Seconds of ``repeats`` calls after a warm-up, and the peak memory of one more."""
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


def infer(net, batch: Batch, samples: int, seeds: list[int], half: bool, device: str) -> np.ndarray:
    """The samples of ``net`` (one call per seed); on CUDA in its own half dtype when ``half``, else float32."""
    with torch.inference_mode(), common.half_precision(half):
        return np.concatenate([net.inpaint(batch, samples=samples, seed=s).samples for s in seeds], axis=1)


def row(model: str, device: str, what: str, times: list[float], peak: int | None, diff: str = "–") -> str:
    mem = "n/a" if peak is None else f"{peak / MiB:,.0f}"
    return (f"| {model} | {device} | {what} | {statistics.median(times):.3f} | "
            f"{min(times):.3f}–{max(times):.3f} | {mem} | {diff} |")


def cases(spec, args):
    """(label, samples per call, seeds) for every input size, batch and sample count asked for."""
    for size in args.sizes:
        for b in args.batches:
            for n in args.samples if spec.diverse else [1]:
                what = f"{b}x{size}²" + (f", {n} samples" if spec.diverse else "")
                yield make_batch(size, b), what + (" batched" if args.separate else ""), n, [0]
                if args.separate and n > 1:
                    yield make_batch(size, b), what + " as separate calls", 1, list(range(n))


def bench(model_id: str, device: str, args) -> None:
    spec = registry.get(model_id)
    net = spec.entry_class()(**spec.kwargs).to(device).eval()
    for batch, what, samples, seeds in cases(spec, args):
        for half in [False, True] if args.half and device.startswith("cuda") else [False]:
            run = functools.partial(infer, net, batch, samples, seeds, half, device)
            times, peak = timed(run, args.repeats, device)
            diff = "–"
            if half:
                levels = np.abs(run() - infer(net, batch, samples, seeds, False, device)).max() * 255
                diff = f"{levels:.1f}"
            print(row(model_id, device, what + (", float16" if half else ""), times, peak, diff), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True, choices=[s.id for s in registry.NEURAL])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256])
    parser.add_argument("--batches", type=int, nargs="+", default=[1])
    parser.add_argument("--samples", type=int, nargs="+", default=[1])
    parser.add_argument("--separate", action="store_true", help="also time N samples as N calls")
    parser.add_argument("--half", action="store_true",
                        help="also each network's half dtype on CUDA, with the difference")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    args = parser.parse_args(argv)
    devices = [d for d in args.devices if d == "cpu" or torch.cuda.is_available()]
    print(f"Command: `{command(argv, 'benchmarks.bench_models')}`  \n"
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", GPU {torch.cuda.get_device_name()}" if any(d != "cpu" for d in devices) else "")
          + ", random weights (speed only)\n")
    print("| model | device | input | median s | min–max s | peak extra MiB | max diff vs float32 (levels) |\n"
          "|---|---|---|---|---|---|---|")
    for model_id in args.models:
        for device in devices:
            bench(model_id, device, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
