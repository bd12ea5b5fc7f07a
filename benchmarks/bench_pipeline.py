"""Latency and peak memory per request of every model that can run here, at 512 px and full resolution.

    python -m benchmarks.bench_pipeline                        # CPU, and CUDA too when there is one
    python -m benchmarks.bench_pipeline --device cuda --half   # GPU machine: float32 and float16
    python -m benchmarks.bench_pipeline --limit 3 --repeats 2 --models telea

A request is what a click costs a user: ``app.inpaint(photo file, mask file, [model])`` with the
app's default options (crop strategy, margin 128, grow 8, feather 8): decoding, mask, windows,
model, paste-back. Photos: ``$INPAINT_EVALSET/images`` (512x512) and ``hires/`` (2560-4352 px,
through the high-resolution pipeline), each with its mask of one family (``--family``, default
``object``: a photobomber). Each model is warmed up (imports, weights), then each photo is
requested ``--repeats`` times. Memory per request: peak resident set above the one before the
request (kernel high-water mark), and on CUDA the peak GPU allocation above the loaded weights.
``--half`` also runs neural models in their own half dtype on CUDA (``FACTS.gpu_dtype``, float16
so far; the float32 rows set ``INPAINT_HALF=0``) and reports the largest pixel difference from them.
Classical models run on the CPU whatever the device, so they are measured there only. Writes
latency-<device>.csv/.json to ``--out`` (docs/benchmarks)
and re-renders the report.
"""

from __future__ import annotations

import functools
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from app import inpaint, model_cache
from app.specs import ModelSpec
from benchmarks import common, machine, report, results
from benchmarks.memory import MiB, cpu_peak_extra, cuda_peak_extra

MODULE = "benchmarks.bench_pipeline"
SETS = {"images": "512x512", "hires": "full resolution"}


def build_parser():
    p = common.parser(__doc__)
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    p.add_argument("--family", default="object", help="mask family used for every request")
    p.add_argument("--repeats", type=int, default=3, help="timed requests per photo")
    p.add_argument("--half", action="store_true", help="also each neural model's half dtype on CUDA")
    return p


@dataclass
class Probe:
    seconds: float
    rss: int | None  # bytes above the resident set before the request
    gpu: int | None  # bytes of CUDA allocations above those before the request
    pixels: np.ndarray


def request(photo: Path, mask: Path, model_id: str, half: bool) -> np.ndarray:
    """One user request; on CUDA in the network's own half dtype when ``half``, else float32 (``INPAINT_HALF``)."""
    with common.half_precision(half):
        (result,) = inpaint(photo, mask, [model_id])
    return result.photo.pixels


def probe(call, cuda: bool) -> Probe:
    """Time ``call`` and record its peak memory (the probes themselves sit outside the timing)."""
    box: dict = {}

    def timed() -> None:
        start = time.perf_counter()
        box["pixels"] = call()
        if cuda:
            torch.cuda.synchronize()
        box["seconds"] = time.perf_counter() - start

    def run() -> None:
        if cuda:
            box["gpu"] = cuda_peak_extra(timed)
        else:
            timed()

    rss = cpu_peak_extra(run)
    return Probe(box["seconds"], rss, box.get("gpu"), box["pixels"])


def devices(wanted: str) -> list[str]:
    """``auto``: the CPU, plus CUDA when available; otherwise just the one asked for."""
    if wanted != "auto":
        return [wanted]
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def precisions(spec: ModelSpec, device: str, half: bool) -> list[str]:
    return ["float32", "float16"] if half and spec.kind == "neural" and device.startswith("cuda") else ["float32"]


def measure_photo(spec: ModelSpec, device: str, which: str, photo: Path, mask: Path, args) -> list[dict]:
    """Rows for one photo: float32, then float16 compared with it."""
    rows, reference = [], None
    for precision in precisions(spec, device, args.half):
        half = precision == "float16"
        call = functools.partial(request, photo, mask, spec.id, half)
        probes = [probe(call, device.startswith("cuda")) for _ in range(args.repeats)]
        pixels = probes[-1].pixels
        reference = pixels if reference is None else reference
        diff = int(np.abs(pixels.astype(np.int32) - reference).max()) if half else None
        rows.append(_row(spec, device, precision, which, photo, pixels, probes, diff))
    return rows


def _row(spec, device, precision, which, photo, pixels, probes: list[Probe], diff) -> dict:
    seconds = [p.seconds for p in probes]
    rss = [p.rss for p in probes if p.rss is not None]
    gpu = [p.gpu for p in probes if p.gpu is not None]
    return {"device": device, "precision": precision, "model": spec.id, "set": which, "photo": photo.stem,
            "size": f"{pixels.shape[1]}x{pixels.shape[0]}", "median_s": statistics.median(seconds),
            "min_s": min(seconds), "max_s": max(seconds), "rss_mib": max(rss) / MiB if rss else None,
            "gpu_mib": max(gpu) / MiB if gpu else None, "max_diff": diff}


def measure_model(spec: ModelSpec, device: str, root: Path, args) -> list[dict]:
    rows = []
    for which in args.sets:
        images = common.photos(root, which, args.limit)
        for precision in precisions(spec, device, args.half):  # warm-up: imports, weights, kernels
            request(images[0], common.mask_path(root, args.family, images[0]), spec.id, precision == "float16")
        for photo in images:
            rows += measure_photo(spec, device, which, photo, common.mask_path(root, args.family, photo), args)
        print(f"  {device} {spec.id} {which}: {len(images)} photos", file=sys.stderr, flush=True)
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Per device, precision, model and photo set: the spread over photos and over repeated runs."""
    out = []
    for (device, precision, model, which), members in results.group(rows, ["device", "precision", "model",
                                                                           "set"]).items():
        medians = [r["median_s"] for r in members]
        p10, p90 = np.percentile(medians, [10, 90])
        spread = [(r["max_s"] - r["min_s"]) / r["median_s"] * 100 for r in members if r["median_s"] > 0]
        rss = [r["rss_mib"] for r in members if r["rss_mib"] is not None]
        gpu = [r["gpu_mib"] for r in members if r["gpu_mib"] is not None]
        diffs = [r["max_diff"] for r in members if r["max_diff"] is not None]
        out.append({"device": device, "precision": precision, "model": model, "set": which, "photos": len(members),
                    "median_s": statistics.median(medians), "p10_s": float(p10), "p90_s": float(p90),
                    "run_spread_pct": statistics.median(spread) if spread else None,
                    "rss_median_mib": statistics.median(rss) if rss else None, "rss_max_mib": max(rss, default=None),
                    "gpu_max_mib": max(gpu, default=None), "max_diff": max(diffs, default=None)})
    return out


def run_device(wanted: str, selection: common.Selection, root: Path, args, argv) -> Path:
    started = time.perf_counter()
    device = common.use_device(wanted)
    info = machine.describe(device)
    model_cache.clear()
    specs = [s for s in selection.models if s.kind == "neural" or device == "cpu"]
    rows = [row for spec in specs for row in measure_model(spec, device, root, args)]
    kind = device.split(":")[0]
    results.write_csv(args.out / f"latency-{kind}.csv", rows)
    summary = summarise(rows)
    skipped = dict(selection.skipped)
    skipped.update({s.id: "classical: runs on the CPU whatever the device (see latency-cpu)"
                    for s in selection.models if s not in specs})
    return results.write_json(args.out / f"latency-{kind}.json", {
        "kind": "latency", "command": common.command(argv, MODULE), "machine": info,
        "duration_s": round(time.perf_counter() - started, 1), "family": args.family, "repeats": args.repeats,
        "half": args.half, "models": [s.id for s in specs], "skipped": skipped, "weights": selection.weights,
        "summary": summary, "hires_photos": [r for r in rows if r["set"] == "hires"],
    })


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = common.require_evalset(common.evalset_dir(args.evalset))
    selection = common.require_models(common.select_models(args.models))
    args.out.mkdir(parents=True, exist_ok=True)
    for wanted in devices(args.device):
        print(f"wrote {run_device(wanted, selection, root, args, argv)}", file=sys.stderr)
    print(report.write(args.out), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
