"""Our mmagic networks (DeepFill v1/v2, PConv, GLCIC) against the official code on this CPU: generator forward time.

    python -m benchmarks.bench_mmagic [--size 256] [--batches 1 4] [--rounds 7]
    /tmp/mmagic-venv/bin/python -m benchmarks.bench_mmagic --official   # the official code too, same run
    python -m benchmarks.bench_mmagic --render-only   # mmagic-speed.md and the report again, from the JSON

What the official timings in ../shared/reference/MODELS.md (section 5) measure: the generator's
forward alone, batch 1, 256x256, with the synthetic weights the reference fixtures were made with.
So do we: ``init_weights.py`` with each fixture's ``weight_seed`` (speed does not depend on the
values; no image quality is claimed), the same BGR input for both, batch 1 and 4. The machine is
shared: every round calls each network (and with ``--official`` the official one) once in turn, so
load drifts hit all alike; the report gives the median and the minimum over rounds. The MODELS.md
medians come from another day (torch 2.13+cpu, best of 3-4 runs); with ``--official`` (see
:mod:`benchmarks.mmagic_official`) the official generators run in this process on this torch.
Writes ``mmagic-speed.json``, ``mmagic-speed.md`` and the report's section.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from app import registry
from app.models.base import NeuralNetwork
from app.models.mmagic import network_inputs
from benchmarks import machine, report, results
from benchmarks.bench_models import make_batch
from benchmarks.common import DEFAULT_OUT, REPO, command

JSON, MARKDOWN = "mmagic-speed.json", "mmagic-speed.md"


@dataclass(frozen=True)
class Network:
    label: str
    manifest: str  # ../shared/reference/manifests/<manifest>.json
    fixture: str  # fixtures/<fixture>_case0.npz holds the weight seed
    official_s: float  # MODELS.md section 5: official median, 256x256, batch 1


NETWORKS = {
    "deepfillv1-places2": Network("DeepFill v1", "deepfillv1_generator", "deepfillv1", 0.653),
    "deepfillv2-places2": Network("DeepFill v2", "deepfillv2_generator", "deepfillv2", 0.742),
    "pconv-places2": Network("PConv", "pconv_generator", "pconv", 0.391),
    "glcic-places2": Network("GLCIC", "glcic_generator", "glcic", 0.384),
}


def reference_dir() -> Path:
    """``$INPAINT_REFERENCE``, else ../shared/reference beside the checkout (as the tests read it)."""
    return Path(os.environ.get("INPAINT_REFERENCE") or REPO.parent / "shared" / "reference")


def synthetic_state(ref: Path, network: Network) -> dict[str, Tensor]:
    """The weights the fixture was made with: init_weights.py, its manifest, the fixture's seed."""
    spec = importlib.util.spec_from_file_location("reference_init_weights", ref / "init_weights.py")
    init_weights = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(init_weights)
    entries = json.loads((ref / "manifests" / f"{network.manifest}.json").read_text())["entries"]
    with np.load(ref / "fixtures" / f"{network.fixture}_case0.npz") as case:
        seed = int(case["weight_seed"])
    return init_weights.make_state_dict(entries, seed)


def ours(model_id: str, state: dict[str, Tensor]) -> NeuralNetwork:
    spec = registry.get(model_id)
    net = spec.entry_class()(**spec.kwargs)
    net.load_state_dict(state, strict=True)
    return net.deploy("cpu")


def callables(args: argparse.Namespace, ref: Path) -> dict[tuple[str, int, str], Callable[[], object]]:
    """(model, batch, "ours" | "official") -> one generator forward on a fixed input."""
    official = None
    if args.official:
        from benchmarks import mmagic_official as official

        if reason := official.unavailable():
            raise SystemExit(f"--official: {reason}")
    calls = {}
    for model_id, network in NETWORKS.items():
        state = synthetic_state(ref, network)
        net = ours(model_id, state)
        reference = official.build(model_id, state) if official else None
        for batch in args.batches:
            masked, hole = network_inputs(make_batch(args.size, batch), torch.device("cpu"))
            calls[model_id, batch, "ours"] = lambda net=net, m=masked, h=hole: net.generate(m, h)
            if reference is not None:
                calls[model_id, batch, "official"] = official.forward(model_id, reference, masked, hole)
    return calls


def interleaved(calls: dict, rounds: int) -> dict[tuple, list[float]]:
    """Seconds of each call per round, after one warm-up each; every round runs every call once, in turn."""
    times: dict[tuple, list[float]] = {key: [] for key in calls}
    with torch.inference_mode():
        for call in calls.values():
            call()
        for _ in range(rounds):
            for key, call in calls.items():
                start = time.perf_counter()
                call()
                times[key].append(time.perf_counter() - start)
    return times


def differences(calls: dict) -> dict[tuple[str, int], float]:
    """Largest |ours - official| of the raw fill per (model, batch): the two compute the same thing."""
    from benchmarks import mmagic_official

    with torch.inference_mode():
        return {(m, b): float((calls[m, b, "ours"]() - mmagic_official.fill(m, call())).abs().max())
                for (m, b, who), call in calls.items() if who == "official"}


def summary(times: dict[tuple, list[float]], size: int, diffs: dict[tuple[str, int], float]) -> list[dict]:
    rows = []
    for (model_id, batch, who), seconds in times.items():
        if who == "official":
            continue
        network, official = NETWORKS[model_id], times.get((model_id, batch, "official"))
        documented = network.official_s if (batch, size) == (1, 256) else None
        rows.append({"model": model_id, "label": network.label, "batch": batch,
                     "median_s": statistics.median(seconds), "min_s": min(seconds),
                     "official_run_median_s": statistics.median(official) if official else None,
                     "official_run_min_s": min(official) if official else None, "official_doc_s": documented,
                     "max_diff": diffs.get((model_id, batch))})
    return rows


def measure(args: argparse.Namespace, argv: list[str] | None) -> dict:
    start, info = time.perf_counter(), machine.describe("cpu")  # the load average when timing starts
    reason = None
    if not args.official:
        from benchmarks import mmagic_official

        reason = mmagic_official.unavailable() or "not asked for (--official)"
    calls = callables(args, reference_dir())
    times = interleaved(calls, args.rounds)
    return {"command": command(argv, "benchmarks.bench_mmagic"), "duration_s": time.perf_counter() - start,
            "machine": info,
            "size": args.size, "rounds": args.rounds, "official": "mmagic 1.2.0 generators" if args.official else None,
            "official_reason": reason, "rows": summary(times, args.size, differences(calls)),
            "raw": [{"model": m, "batch": b, "who": w, "seconds": s} for (m, b, w), s in times.items()]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256, help="crop side (a multiple of 128, at least 128)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--official", action="store_true", help="also the official generators (mmagic importable)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--render-only", action="store_true", help=f"rewrite {MARKDOWN} and the report from {JSON}")
    args = parser.parse_args(argv)
    if args.render_only:
        data = results.read_json(args.out / JSON)
    else:
        data = measure(args, argv)
        results.write_json(args.out / JSON, data)
    text = report.mmagic_section(data, "#")
    (args.out / MARKDOWN).write_text(text + "\n")
    report.write(args.out)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
