"""MAT's cost per request against the official generator, interleaved.

    python -m benchmarks.bench_mat --rounds 3 --official /tmp/official/MAT

The official code (fenglinglwb/MAT: ``networks/mat.py``, ``networks/basic_module.py`` and the
``torch_utils`` they import) is not a package: give its checkout with ``--official`` (it is never
part of this repository). Its StyleGAN2 ops run their pure-PyTorch reference paths (``impl='ref'``,
the CUDA plugin loaders switched off), as in the reference harness; ``timm`` is stubbed when
missing (only ``to_2tuple`` is used). Without ``--official`` the official column reads "not
measured" and MODELS.md's own timing (median 6.1 s at 512², 2 threads, load ~2.3) is the reference.

One 512² crop with a large hole, batch 1, 2 threads by default, the same random weights in both
networks (speed does not depend on the values). Variants: the official ``G(img, mask, z, c,
noise_mode='const')``; our generator pass with the same inputs (``MAT.run``); the app's ``inpaint``
with 1 and 4 samples (stage-1 encoding shared, then one pass per sample). Every variant runs once
per round in a rotating order; ratios are medians of the per-round ratios, so a busy machine slows
numerator and denominator alike.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import torch

from app.models import mat
from benchmarks import machine
from benchmarks.bench_models import make_batch
from benchmarks.common import command

JSON = "mat-speed.json"
OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / JSON
NOT_MEASURED = "not measured"
OFFICIAL = "official G, 1 sample"
OURS = "ours, generator pass"
ONE = "app inpaint, 1 sample"
FOUR = "app inpaint, 4 samples"


def random_state(net: mat.MAT, seed: int = 0) -> dict[str, torch.Tensor]:
    """N(0, 1) for every parameter (StyleGAN2 stores unscaled weights), the constant buffers kept."""
    gen = torch.Generator().manual_seed(seed)
    state = net.state_dict()
    for name, param in net.named_parameters():
        state[name] = torch.randn(param.shape, generator=gen)
    return state


def official_generator(folder: Path, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """The official Generator from a checkout of fenglinglwb/MAT, reference ops only, ``state`` loaded strictly."""
    if importlib.util.find_spec("timm") is None:  # networks/mat.py imports timm for to_2tuple only
        layers = types.ModuleType("timm.models.layers")
        layers.to_2tuple = lambda x: tuple(x) if isinstance(x, (tuple, list)) else (x, x)
        layers.DropPath = torch.nn.Identity
        layers.trunc_normal_ = torch.nn.init.trunc_normal_
        timm = types.ModuleType("timm")
        timm.models = types.ModuleType("timm.models")
        timm.models.layers = layers
        sys.modules.update({"timm": timm, "timm.models": timm.models, "timm.models.layers": layers})
    sys.path.insert(0, str(folder))
    from torch_utils.ops import bias_act, upfirdn2d  # noqa: PLC0415 (the official checkout, on the path now)
    for op in (bias_act, upfirdn2d):  # never compile the CUDA plugins: the reference paths only
        op._init = lambda: False
    official = importlib.import_module("networks.mat")
    net = official.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=512, img_channels=3)
    net.load_state_dict(state, strict=True)
    return net.eval().requires_grad_(False)


def variants(ours: mat.MAT, official: torch.nn.Module | None) -> dict[str, Callable[[], object]]:
    """name -> one call, all on the same 512² crop with a large hole."""
    batch = make_batch(mat.RESOLUTION, 1)
    image = torch.from_numpy(batch.images).permute(0, 3, 1, 2).float() / 127.5 - 1
    mask = torch.from_numpy(~batch.holes).unsqueeze(1).float()  # 1 = known
    z, keep1, keep2 = mat.latents(0, 0)
    calls: dict[str, Callable[[], object]] = {}
    if official is not None:
        label = torch.zeros([1, 0])
        calls[OFFICIAL] = lambda: official(image, mask, z, label, truncation_psi=1, noise_mode="const")
    calls[OURS] = lambda: ours.run(image, mask, z, keep1, keep2)
    calls[ONE] = lambda: ours.inpaint(batch, samples=1)
    calls[FOUR] = lambda: ours.inpaint(batch, samples=4)
    return calls


Times = dict[str, list[float]]


def measure(calls: dict[str, Callable[[], object]], rounds: int) -> tuple[Times, Times]:
    """Wall and CPU seconds per variant and round (after one warm-up each), the order rotating every round.

    CPU seconds (this process, all threads) move much less than wall seconds when other jobs share the
    machine: they are the steadier comparison on a busy CPU.
    """
    names = list(calls)
    with torch.inference_mode():
        for name in names:
            calls[name]()
        wall: Times = {name: [] for name in names}
        cpu: Times = {name: [] for name in names}
        for r in range(rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                start, start_cpu = time.perf_counter(), time.process_time()
                calls[name]()
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
    return wall, cpu


def ratio(times: dict[str, list[float]], a: str, b: str) -> float | str:
    """Median over rounds of a / b ("not measured" when b was not run)."""
    if b not in times:
        return NOT_MEASURED
    return round(statistics.median(x / y for x, y in zip(times[a], times[b], strict=True)), 3)


def section(data: dict, heading: str = "##") -> str:
    """The report's part: provenance, wall and CPU medians per variant, ours / official (goal <= 1), 4 samples vs 1."""
    official = data["median_s"].get("official G, 1 sample")
    rows = [f"| {name} | {wall:.2f} | {data['median_cpu_s'][name]:.2f} |" for name, wall in data["median_s"].items()]
    ratio = (f"Ours / official: **{data['ours_vs_official']:.2f}** wall, {data['cpu_ours_vs_official']:.2f} CPU time "
             "(medians of the per-round ratios; goal ≤ 1)." if official is not None else
             f"Official code: not measured here (MODELS.md: {data['official_in_models_md']}).")
    return "\n\n".join([
        f"{heading} MAT: our generator against the official one",
        f"Command: `{data['command']}` ({data['duration_s'] / 60:.1f} min)  \n"
        f"Machine: {machine.summary_line(data['machine'])}",
        f"{data['size']}², batch {data['batch']}, {data['threads']} threads, random weights, {data['rounds']} "
        f"interleaved rounds. {ratio} Four samples take {data['four_samples_vs_one']:.2f}x one (run one by one on "
        "the CPU).",
        "| variant | wall median s | CPU median s |\n|---|---|---|\n" + "\n".join(rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--official", type=Path, default=None,
                        help="checkout of fenglinglwb/MAT (networks/, torch_utils/); omitted: not measured")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    ours = mat.MAT()
    state = random_state(ours)
    ours.load_state_dict(state)
    ours.deploy("cpu")
    official = official_generator(args.official, state) if args.official else None
    started, info = time.perf_counter(), machine.describe("cpu")
    times, cpu = measure(variants(ours, official), args.rounds)
    medians = {k: round(statistics.median(v), 3) for k, v in times.items()}
    cpu_medians = {k: round(statistics.median(v), 3) for k, v in cpu.items()}
    report = {
        "command": command(argv, "benchmarks.bench_mat"), "machine": info,
        "duration_s": round(time.perf_counter() - started, 1), "size": mat.RESOLUTION, "batch": 1,
        "rounds": args.rounds, "threads": torch.get_num_threads(),
        "official_code": "fenglinglwb/MAT networks/mat.py + basic_module.py, torch_utils ops impl='ref'"
        if official is not None else NOT_MEASURED,
        "median_s": medians | ({} if official is not None else {OFFICIAL: NOT_MEASURED}),
        "ours_vs_official": ratio(times, OURS, OFFICIAL),
        "one_sample_vs_official": ratio(times, ONE, OFFICIAL),
        "four_samples_vs_one": ratio(times, FOUR, ONE),
        "median_cpu_s": cpu_medians | ({} if official is not None else {OFFICIAL: NOT_MEASURED}),
        "cpu_ours_vs_official": ratio(cpu, OURS, OFFICIAL),
        "cpu_one_sample_vs_official": ratio(cpu, ONE, OFFICIAL),
        "cpu_four_samples_vs_one": ratio(cpu, FOUR, ONE),
        "official_in_models_md": "median 6.18 s / 6.10 s at load ~2.3 (10.68 s at load ~4), 2 threads, batch 1",
        "seconds": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "cpu_seconds": {k: [round(x, 3) for x in v] for k, v in cpu.items()},
    }
    print(json.dumps({k: v for k, v in report.items() if k not in ("seconds", "cpu_seconds", "machine")}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
