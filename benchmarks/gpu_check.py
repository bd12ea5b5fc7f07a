"""The GPU path, measured in one run: what the report needs from a GPU machine, in at most 8 minutes.

    bash benchmarks/gpu_check.sh                                          # on a GPU machine, as is
    python -m benchmarks.gpu_check --device cpu --quick --out /tmp/g.json  # dry run: every step, tiny sizes

Steps, each timed with the device synchronised (the networks return numpy arrays, so each call ends
on the host), after one warm-up call, median of ``--rounds``, with the peak device memory
(``torch.cuda.max_memory_allocated`` above what was allocated before the call; None on the CPU):

* **networks** — per network class (its first registered model), one crop at 512² (or the largest the
  app feeds it, its crop limit), batch 1 and 8, in float32 (``INPAINT_HALF=0``) and in the network's own
  precision (``FACTS.gpu_dtype`` through ``precision()``, the app's path), with the largest difference
  between the two in 8-bit levels (random weights: numerical headroom, not image quality).
* **samples** — Pluralistic and MAT with 1 and 8 samples of one hole: one by one (the app's order, made
  for the memory-bound CPU) and in one batch (8 crops of 1 sample: the same work in one pass).
* **10 MP** — the page's path stage by stage for every model (``benchmarks.bench_breakdown``), on the device.
* **diffusion** — the diffusion remover's UNet and VAE at real size (``benchmarks.bench_diffusion``) at 4
  and 8 steps, 512² and 1024².
* **aoti** — ahead-of-time compilation (``spaces.aoti_capture`` / ``aoti_compile`` / ``aoti_apply``, torch
  >= 2.8, what ZeroGPU loads) of the heaviest networks at 512² batch 1 in their GPU precision: compile
  time, then the app's call with and without it. A network whose ``inpaint`` does not go through its
  ``forward`` (MAT runs its stages separately) is reported as such.

The steps run in that order under a time budget (``--budget-s``, default 330 s): a step that would start
after it is written down as skipped, never estimated, and the record is written after every step, so a
run stopped by ``gpu_check.sh``'s timeout keeps what it measured. Results: ``docs/benchmarks/gpu-check.json`` (the
report's GPU figures), the 10 MP run also in ``breakdown.json`` under the GPU's name and the diffusion
figures in ``diffusion.json`` under ``cuda``; ``--quick`` writes only ``--out`` (default: nothing kept).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from app import registry
from app.models.base import Batch, NeuralNetwork
from app.specs import ModelSpec
from benchmarks import bench_breakdown, bench_diffusion, bench_precision, common, machine, report
from benchmarks.bench_models import make_batch

OUT = common.DEFAULT_OUT / report.GPU_CHECK
MODULE = "benchmarks.gpu_check"
SIZE, BATCHES, SAMPLES = 512, (1, 8), (1, 8)
DIVERSE = ("pic-places2", "mat-places512")  # the networks drawing several samples of one hole
AOTI = ("lama", "mat-places512")  # the heaviest networks per call at 512²
QUICK = {"batches": (1, 2), "samples": (1, 2), "megapixels": 0.05, "rounds": 1}


# --------------------------------------------------------------------------- timing


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(call: Callable[[], object], rounds: int, device: str) -> dict[str, float | None]:
    """Median seconds of ``call`` after a warm-up, and the peak device memory it took (MiB; None off CUDA)."""
    cuda = device.startswith("cuda")
    with torch.inference_mode():
        call()
        _sync(device)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() if cuda else 0
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            call()
            _sync(device)
            times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() - before) / 2**20 if cuda else None
    return {"median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4),
            "peak_mib": None if peak is None else round(peak, 1)}


@contextlib.contextmanager
def precision(half: bool) -> Iterator[None]:
    """The network's own precision (the app's path) or float32 everywhere (``INPAINT_HALF``)."""
    with common.half_precision(half):
        yield


def build(spec: ModelSpec, device: str) -> NeuralNetwork:
    """The network at its real architecture with random weights, deployed as the loader deploys it."""
    return bench_breakdown.network(spec.id, device)


def size_of(spec: ModelSpec, net: NeuralNetwork, quick: bool) -> int:
    """512², or the largest crop the app feeds the network; quick: the smallest it takes."""
    if quick:
        return bench_precision.probe_size(spec, net) or spec.native_size or 64
    return min(SIZE, spec.crop_limit or SIZE)


# --------------------------------------------------------------------------- steps


def _fill(net: NeuralNetwork, batch: Batch, half: bool, outputs: dict, samples: int = 1) -> None:
    """One ``inpaint`` in float32 or the network's own precision, its samples kept in ``outputs[half]``."""
    with precision(half):
        outputs[half] = net.inpaint(batch, samples=samples, seed=0).samples


def networks_step(specs: list[ModelSpec], device: str, rounds: int, quick: bool) -> list[dict]:
    """Per network: float32 and its own precision at 512², batch 1 and 8."""
    rows = []
    for spec in specs:
        net = build(spec, device)
        size = size_of(spec, net, quick)
        for batch_size in QUICK["batches"] if quick else BATCHES:
            batch, outputs = make_batch(size, batch_size), {}
            for half in (False, True):
                took = timed(functools.partial(_fill, net, batch, half, outputs), rounds, device)
                rows.append({"model": spec.id, "size": size, "batch": batch_size,
                             "precision": _dtype(net, device, half), **took})
            rows[-1]["levels_vs_float32"] = bench_precision.levels(outputs[True].astype(np.float64),
                                                                   outputs[False].astype(np.float64))
            print(f"networks  {spec.id:<20} {size}² x{batch_size}: " + ", ".join(
                f"{r['precision']} {r['median_s']:.4f} s" for r in rows[-2:]), file=sys.stderr, flush=True)
    return rows


def _dtype(net: NeuralNetwork, device: str, half: bool) -> str:
    if not half:
        return "float32"
    if device.startswith("cuda"):
        return str(net.FACTS.gpu_dtype).removeprefix("torch.")
    return "bfloat16" if net.bf16_on_cpu else "float32"


def samples_step(specs: list[ModelSpec], device: str, rounds: int, quick: bool) -> list[dict]:
    """Diverse networks: ``k`` samples of one hole one by one (the app) against one batch of ``k`` crops."""
    rows = []
    for spec in (s for s in specs if s.id in DIVERSE):
        net = build(spec, device)
        size = size_of(spec, net, quick)
        for k in QUICK["samples"] if quick else SAMPLES:
            one = make_batch(size, 1)
            stacked = Batch(np.repeat(one.images, k, axis=0), np.repeat(one.holes, k, axis=0))
            for order, call in (("one by one", functools.partial(_fill, net, one, True, {}, k)),
                                ("one batch", functools.partial(_fill, net, stacked, True, {}))):
                rows.append({"model": spec.id, "size": size, "samples": k, "order": order,
                             "precision": _dtype(net, device, True), **timed(call, rounds, device)})
            print(f"samples   {spec.id:<20} {k}: " + ", ".join(
                f"{r['order']} {r['median_s']:.4f} s" for r in rows[-2:]), file=sys.stderr, flush=True)
    return rows


def breakdown_step(models: list[str], device: str, rounds: int, megapixels: float, argv: list[str] | None,
                   info: dict) -> dict:
    """The 10 MP page path for every model on ``device`` (bench_breakdown's record)."""
    started = time.perf_counter()
    times, used = bench_breakdown.measure(models, rounds, megapixels, device)
    args = argparse.Namespace(megapixels=megapixels, rounds=rounds)
    run = bench_breakdown.run_record(argv, info, started, args, times, used)
    run["command"] = common.command(argv, MODULE)
    return run


def diffusion_step(device: str, rounds: int, quick: bool) -> dict:
    """The diffusion remover per fill at 4 and 8 steps (tiny networks on a quick run)."""
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    unet, vae = bench_diffusion.build(quick, torch.device(device), dtype)
    rows = []
    for size in ((64,) if quick else (512, 1024)):
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        parts = bench_diffusion.measure(bench_diffusion.calls(unet, vae, size, torch.device(device), dtype), rounds,
                                        torch.device(device))
        peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
        rows += [{"size": size, "steps": steps, "seconds_per_fill": round(bench_diffusion.per_fill(parts, steps), 3),
                  "peak_mib": None if peak is None else round(peak, 1),
                  **{name.replace(" ", "_"): round(value, 3) for name, value in parts.items()}} for steps in (4, 8)]
    return {"tiny": quick, "dtype": str(dtype).removeprefix("torch."), "rows": rows}


def aoti_step(specs: list[ModelSpec], device: str, rounds: int) -> list[dict]:
    """Ahead-of-time compiled against eager, the app's call (``inpaint``) at 512² batch 1, the GPU precision."""
    import spaces

    rows = []
    for spec in (s for s in specs if s.id in AOTI):
        net = build(spec, device)
        batch = make_batch(min(SIZE, spec.crop_limit or SIZE), 1)
        eager = timed(functools.partial(_fill, net, batch, True, {}), rounds, device)
        row = {"model": spec.id, "size": batch.images.shape[1], "precision": _dtype(net, device, True), "eager": eager}
        try:
            with precision(True):
                row |= _compile_and_time(spaces, net, batch, rounds, device)
        except Exception as exc:  # recorded, never guessed: the other networks still run
            row["aoti"] = f"failed: {type(exc).__name__}: {str(exc)[:300]}"
        rows.append(row)
        print(f"aoti      {spec.id:<20} {row}", file=sys.stderr, flush=True)
    return rows


class _Autocast(torch.nn.Module):
    """The network's forward under its own precision, so the exported graph keeps the autocast the app runs."""

    def __init__(self, net: NeuralNetwork) -> None:
        super().__init__()
        self.net = net

    def forward(self, *args, **kwargs):
        with self.net.precision():
            return self.net.forward(*args, **kwargs)


def _compile_and_time(spaces, net: NeuralNetwork, batch: Batch, rounds: int, device: str) -> dict:
    """Capture ``forward``'s arguments from one ``inpaint``, export, compile, apply; then time ``inpaint`` again."""
    with spaces.aoti_capture(net) as call, torch.inference_mode():
        net.inpaint(batch)
    if not call.args and not call.kwargs:
        return {"aoti": "not applicable: inpaint does not call forward (its stages run separately)"}
    args = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in call.args)
    started = time.perf_counter()
    exported = torch.export.export(_Autocast(net), args, call.kwargs)
    compiled = spaces.aoti_compile(exported)
    compile_s = round(time.perf_counter() - started, 1)
    spaces.aoti_apply(compiled, net)
    return {"compile_s": compile_s, "aoti": timed(functools.partial(_fill, net, batch, True, {}), rounds, device)}


# --------------------------------------------------------------------------- the run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu (a dry run)")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes, 1 round, no AOTI: checks the script, measures nothing")
    p.add_argument("--models", nargs="+", default=None, choices=registry.ids(), help="default: every network class")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--megapixels", type=float, default=10.0)
    p.add_argument("--budget-s", type=float, default=330.0, help="no step starts after this many seconds")
    p.add_argument("--out", type=Path, default=None, help=f"default: {OUT} (a --quick run keeps nothing by default)")
    return p


def plan(args: argparse.Namespace) -> tuple[list[ModelSpec], list[str]]:
    """The networks (first model of each class) and the 10 MP models (those and the classical methods)."""
    chosen = set(args.models or registry.ids())
    specs = [s for s in bench_precision.networks() if s.id in chosen]
    tenmp = [m for m in bench_breakdown.MODELS if m in chosen]
    return specs, tenmp


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("No CUDA device here: nothing measured (the report keeps the GPU figures 'not measured'). "
                 "A dry run: --device cpu --quick.")
    started, info = time.perf_counter(), machine.describe(args.device)
    rounds = QUICK["rounds"] if args.quick else args.rounds
    specs, tenmp = plan(args)
    megapixels = QUICK["megapixels"] if args.quick else args.megapixels
    steps: dict[str, Callable[[], object]] = {
        "networks": lambda: networks_step(specs, args.device, rounds, args.quick),
        "samples": lambda: samples_step(specs, args.device, rounds, args.quick),
        "breakdown": lambda: breakdown_step(tenmp, args.device, min(rounds, 2), megapixels, argv, info),
        "diffusion": lambda: diffusion_step(args.device, rounds, args.quick) if "rorem" in (args.models or ["rorem"])
        else "not requested",
        "aoti": lambda: "skipped: --quick (compiling takes minutes)" if args.quick else aoti_step(specs, args.device,
                                                                                                 rounds),
    }
    record = {"command": common.command(argv, MODULE), "machine": info, "quick": args.quick, "steps": {}}
    for name, step in steps.items():
        elapsed = time.perf_counter() - started
        if elapsed > args.budget_s:
            record["steps"][name] = f"skipped: the time budget ({args.budget_s:.0f} s) was spent"
            continue
        record["steps"][name] = step()
        record["duration_s"] = round(time.perf_counter() - started, 1)
        write(args, record)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    save(args, record)
    return 0


def _out(args: argparse.Namespace) -> Path | None:
    return args.out or (None if args.quick else OUT)


def write(args: argparse.Namespace, record: dict) -> None:
    """The record so far in ``--out`` (after every step: a run cut short keeps what it measured)."""
    if (out := _out(args)) is not None:
        out.write_text(json.dumps(record, indent=1, default=str) + "\n")


def save(args: argparse.Namespace, record: dict) -> None:
    """The finished run: printed when kept nowhere; a real GPU run also beside the other benchmarks' files,
    and the report re-rendered."""
    out = _out(args)
    if out is None:
        print(json.dumps(record, indent=1, default=str))
        return
    print(f"wrote {out}", file=sys.stderr)
    if args.quick or not args.device.startswith("cuda"):
        return
    folder = out.parent
    run = record["steps"].get("breakdown")
    if isinstance(run, dict):
        bench_breakdown.save(folder / bench_breakdown.JSON, f"GPU {record['machine']['gpu']}", run)
    diffusion = record["steps"].get("diffusion")
    if isinstance(diffusion, dict):
        bench_diffusion._merge(folder / bench_diffusion.JSON, "cuda", {
            "command": record["command"], "machine": record["machine"], **diffusion})
    print(report.write(folder), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
