"""MI-GAN's generator forward against the official code on this CPU, interleaved, at 256 and 512.

    python -m benchmarks.bench_migan --official /tmp/official/MI-GAN --rounds 9

The official code is not on PyPI: ``--official`` names a checkout (or a copy) of
``Picsart-AI-Research/MI-GAN``, whose ``lib/model_zoo/migan_inference.py`` is imported from that
path (nothing of it is kept in this project). Without it the official column says "not measured"
and MODELS.md's figures (section 11: ~0.56 s at 256², ~1.5 s at 512², batch 1, 2 threads) are
the comparison. What is timed is what MODELS.md times: the generator alone on the 4-channel input,
batch 1; the app's whole ``inpaint`` (input tensors, forward, mapping to [0, 1]) is timed too. The
official generator is given our network's state dict (the keys are the release's), so both compute
the same output, and the largest difference between the two is reported. Every variant runs once
per round in a rotating order; the ratio is the median of the per-round ratios, so a busy machine
slows numerator and denominator alike. Random weights: speed does not depend on the values.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch

from app.models.migan import MIGAN, MIGAN256, MIGAN512
from benchmarks import machine
from benchmarks.bench_models import make_batch
from benchmarks.common import command, interleaved, median_ratio

JSON = "migan-speed.json"
OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / JSON
NETWORKS: dict[int, type[MIGAN]] = {256: MIGAN256, 512: MIGAN512}
#: MODELS.md section 11, official code on this CPU (2 threads, batch 1, best figures at low load).
MODELS_MD_S = {256: 0.56, 512: 1.5}
NOT_MEASURED = "not measured"
OFFICIAL_FILE = Path("lib") / "model_zoo" / "migan_inference.py"


def import_official(root: Path) -> ModuleType:
    """``migan_inference`` from a copy of the official repository at ``root``."""
    path = root / OFFICIAL_FILE
    if not path.is_file():
        raise SystemExit(f"--official: {path} not found (a copy of Picsart-AI-Research/MI-GAN is expected)")
    spec = importlib.util.spec_from_file_location("migan_inference_official", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def variants(size: int, official: ModuleType | None) -> tuple[dict[str, Callable[[], torch.Tensor]], float | None]:
    """name -> one call on the same crop (a 1/4 x 1/2 hole); and max |ours - official| of the raw output."""
    torch.manual_seed(0)
    net = NETWORKS[size]().eval()
    batch = make_batch(size, 1)
    images = torch.from_numpy(batch.images).permute(0, 3, 1, 2).float()
    known = torch.from_numpy(~batch.holes)[:, None].float()
    x = MIGAN.network_input(images, known)
    calls: dict[str, Callable[[], object]] = {"ours": lambda: net(x), "ours, whole inpaint": lambda: net.inpaint(batch)}
    difference = None
    if official is not None:
        reference = official.Generator(resolution=size).eval()
        reference.load_state_dict(net.state_dict())
        calls["official"] = lambda: reference(x)
        with torch.inference_mode():
            difference = float((net(x) - reference(x)).abs().max())
    return calls, difference


def section(data: dict, heading: str = "##") -> str:
    """The report's part: provenance, medians per size and the ratio ours / official (goal <= 1)."""
    rows = []
    for size, row in data["sizes"].items():
        official = row["median_s"].get("official")
        rows.append(f"| {size}² | {row['median_s']['ours']:.3f} | {row['median_s']['ours, whole inpaint']:.3f} | "
                    + (f"{official:.3f} | **{row['ours_vs_official']:.2f}** |" if official is not None
                       else f"{NOT_MEASURED} (MODELS.md: {MODELS_MD_S[int(size)]}) | – |"))
    return "\n\n".join([
        f"{heading} MI-GAN: our generator against the official one",
        f"Command: `{data['command']}` ({data['duration_s'] / 60:.1f} min)  \n"
        f"Machine: {machine.summary_line(data['machine'])}",
        f"Batch 1, {data['threads']} threads, random weights, {data['rounds']} interleaved rounds; the generator "
        "alone on the 4-channel input (as MODELS.md times the official code), and the app's whole `inpaint`. "
        "The ratio is the median of the per-round ratios (goal ≤ 1).",
        "| size | ours s | ours, inpaint s | official s | ours / official |\n|---|---|---|---|---|\n"
        + "\n".join(rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], choices=sorted(NETWORKS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--official", type=Path, default=None,
                        help="a copy of Picsart-AI-Research/MI-GAN (lib/model_zoo/migan_inference.py is imported)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    official = import_official(args.official) if args.official else None
    started, info = time.perf_counter(), machine.describe("cpu")
    sizes = {}
    for size in args.sizes:
        calls, difference = variants(size, official)
        times = interleaved(calls, args.rounds)
        row: dict[str, object] = {"median_s": {k: round(statistics.median(v), 4) for k, v in times.items()}}
        if official is not None:
            row |= {"ours_vs_official": round(median_ratio(times, "ours", "official"), 3),
                    "inpaint_vs_official": round(median_ratio(times, "ours, whole inpaint", "official"), 3),
                    "max_abs_difference": difference}
        else:
            row |= {"official": NOT_MEASURED, "models_md_official_s": MODELS_MD_S[size]}
        row["seconds"] = {k: [round(x, 4) for x in v] for k, v in times.items()}
        sizes[str(size)] = row
    report = {"command": command(argv, "benchmarks.bench_migan"), "machine": info,
              "duration_s": round(time.perf_counter() - started, 1), "rounds": args.rounds,
              "threads": torch.get_num_threads(), "sizes": sizes}
    print(json.dumps({**report, "sizes": {s: {k: v for k, v in r.items() if k != "seconds"}
                                          for s, r in sizes.items()}}, indent=1))
    print(section(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
