"""Where the time of one Erase goes, from the request to the fills on screen and to the downloads ready.

    python -m benchmarks.bench_breakdown                      # 10 MP, every network class and classical method
    python -m benchmarks.bench_breakdown --megapixels 0.05 --models telea --rounds 1 --out /tmp/b.json

A synthetic 10 MP JPEG (smooth shapes plus sensor-like noise) with one object-sized hole (an
ellipse of about 2.5 % of the photo), the app's default options, the page's path stage by stage:

* decode — the uploaded file to a :class:`~app.images.Photo` (EXIF rotation, colour profile, bit depth);
* hygiene — the painted mask: read at the photo's size, checked, grown, feathered;
* windows — the crops at the model's size (:func:`app.hires.plan`, the batches);
* model — the network or classical method alone (neural models: their real architecture with
  random weights, which cost the same time as the released ones, in the precision the app picks on
  this machine — bf16 autocast for the networks that declare it on a CPU with bf16 instructions;
  loading not counted). The diffusion remover's 2.6 B-parameter pipeline cannot be built here: a
  stand-in returning the crop takes its place, so its every stage but the model is measured and its
  model time is "not measured" (its per-fill time: ``benchmarks.bench_diffusion``);
* paste-back — the fills pasted into full-resolution copies with the feathered seam;
* previews — the page's WebP tiles and slider images;
* PNG — the full-resolution PNGs the downloads offer (written after the fills are shown).

*shown* = everything up to the previews; *downloads* = shown + PNG. Each model runs once per
round, rounds interleave the models; the report gives medians per stage. Runs are kept per CPU class
(``machine.cpu_class``; a GPU run of ``benchmarks.gpu_check`` under its GPU), so a run on one machine
keeps the others' figures beside it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from app import hires, masks, pipeline, registry
from app.devices import cpu_bf16
from app.images import load_photo
from app.model_cache import get_inpainter
from app.models.base import Batch, Prediction, half_enabled
from app.options import Options
from app.web import results
from benchmarks import machine
from benchmarks.common import command

JSON = "breakdown.json"
OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / JSON
GOAL_S = 0.5  # everything but the network, at 10 MP (issue 18)
#: One model per network class and classical method (the other datasets of a network cost the same time).
MODELS = ["telea", "navier-stokes", "patchmatch", "migan-places2", "migan-places2-512", "lama", "edgeconnect-places2",
          "pic-places2", "rfr-psv", "deepfillv1-places2", "deepfillv2-places2", "pconv-places2", "glcic-places2",
          "mat-places512", "rorem"]
STAND_IN = "stand-in: the 2.6 B-parameter pipeline is not built here (see the diffusion remover's section)"
STAGES = ("decode", "hygiene", "windows", "model", "paste-back", "previews", "PNG")
SHOWN = STAGES[:-1]


def make_photo(folder: Path, megapixels: float) -> tuple[Path, Path]:
    """A 4:3 JPEG of ``megapixels`` and a mask with one object-sized ellipse in it."""
    w = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    h = int(round(w * 3 / 4))
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    pixels = np.clip(base.astype(np.int16) + rng.normal(0, 6, (h, w, 3)).astype(np.int16), 0, 255).astype(np.uint8)
    photo, mask = folder / "photo.jpg", folder / "mask.png"
    Image.fromarray(pixels).save(photo, quality=90)
    hole = np.zeros((h, w), np.uint8)
    cv2.ellipse(hole, (w // 2, h // 2), (w // 11, h // 6), 0, 0, 360, 255, -1)
    Image.fromarray(hole).save(mask)
    return photo, mask


class PassThrough:
    """The diffusion remover's stand-in: returns each crop as its fill, so every stage around the model runs."""

    def inpaint(self, batch: Batch, *, samples: int = 1, seed: int = 0) -> Prediction:
        del seed
        fills = np.repeat(batch.images[:, None].astype(np.float32) / 255, samples, axis=1)
        return Prediction(samples=fills)


def network(model_id: str, device: str = "cpu"):
    """The model's inpainter: classical as the app builds it, neural at its real architecture with random
    weights, deployed as the loader deploys it (the app's CPU precision decision); the diffusion remover's stand-in."""
    spec = registry.get(model_id)
    if spec.kind == "diffusion":
        return PassThrough()
    if spec.kind != "neural":
        return get_inpainter(spec)
    torch.manual_seed(0)
    return spec.entry_class()(**spec.kwargs).deploy(device, cpu_bf16=cpu_bf16())


def precision_of(net, device: str) -> str:
    """The precision the network ran in (what its ``precision()`` chose), for the table."""
    if isinstance(net, PassThrough):
        return "not measured"
    facts = getattr(net, "FACTS", None)
    if facts is None:
        return "–"
    if not half_enabled():
        return "float32"
    if device.startswith("cuda"):
        return str(facts.gpu_dtype).removeprefix("torch.")
    return "bfloat16" if net.bf16_on_cpu else "float32"


def request(photo_path: Path, mask_path: Path, model_id: str, net, folder: Path) -> dict[str, float]:
    """Seconds per stage of one Erase with one model, as the page runs it."""
    spec, options, took = registry.get(model_id), Options(), {}
    clock = [time.perf_counter()]

    def lap(stage: str) -> None:
        now = time.perf_counter()
        took[stage], clock[0] = now - clock[0], now

    photo = load_photo(photo_path)
    lap("decode")
    grown = pipeline.prepare_hole(photo, masks.to_hole(str(mask_path), photo.size), options.grow)
    alpha = hires.feather_alpha(grown, options.feather)
    lap("hygiene")
    windows = hires.plan(grown, options.strategy, spec.crop_limit, spec.size_multiple, options.margin,
                         square=spec.native_size is not None)
    batches = pipeline._batches(photo, grown, {}, windows, spec.max_batch)
    lap("windows")
    with torch.inference_mode():
        runs: list[tuple[list[int], Prediction]] = [(i, net.inpaint(b, samples=1, seed=0)) for i, b in batches]
    lap("model")
    outputs = pipeline._assemble(photo, alpha, windows, runs, 1)
    fills = [pipeline.Result(spec, 0, out, took["model"], changed=alpha) for out in outputs]
    lap("paste-back")
    run_folder = Path(tempfile.mkdtemp(dir=folder))
    labels, _ = results._previews(photo, fills, alpha, run_folder)
    lap("previews")
    results._write_all(fills, [str(run_folder / f"{r.name}.png") for r in fills], labels, run_folder)
    lap("PNG")
    return took


def measure(models: list[str], rounds: int, megapixels: float,
            device: str = "cpu") -> tuple[dict[str, dict[str, list[float]]], dict[str, str]]:
    """Seconds per model, stage and round (each round runs every model once, the order rotating), and the
    precision each model ran in."""
    times: dict[str, dict[str, list[float]]] = {m: {s: [] for s in STAGES} for m in models}
    nets = {m: network(m, device) for m in models}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        photo, mask = make_photo(folder, megapixels)
        for r in range(rounds):
            for model in models[r % len(models):] + models[:r % len(models)]:
                for stage, seconds in request(photo, mask, model, nets[model], folder).items():
                    times[model][stage].append(seconds)
    return times, {m: precision_of(net, device) for m, net in nets.items()}


def summary(times: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    """Medians per stage, and of the per-round totals (shown, downloads, everything but the model)."""
    out = {}
    for model, stages in times.items():
        def total(names: tuple[str, ...], stages: dict[str, list[float]] = stages) -> float:
            return statistics.median(sum(stages[s][r] for s in names) for r in range(len(stages["model"])))

        out[model] = {s: round(statistics.median(v), 3) for s, v in stages.items()} | {
            "shown": round(total(SHOWN), 3), "downloads": round(total(STAGES), 3),
            "shown_without_model": round(total(tuple(s for s in SHOWN if s != "model")), 3)}
    return out


def runs(data: dict | None) -> dict[str, dict]:
    """The runs of breakdown.json by machine class; a file of before issue 29 held one run, without a class."""
    if not data:
        return {}
    if "median_s" in data:
        return {f"{machine.class_of(data['machine'])} (run of {data['machine']['date']})": data}
    return dict(data.get("runs", {}))


def save(path: Path, label: str, run: dict) -> Path:
    """Store ``run`` under ``label`` (its CPU class, or the GPU), keeping the other machines' runs."""
    data = {"runs": runs(json.loads(path.read_text()) if path.is_file() else None)}
    data["runs"][label] = run
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


def _cell(row: dict, key: str, model_measured: bool) -> str:
    return f"{row[key]:.3f}" if model_measured or key not in ("model", "shown", "downloads") else "not measured"


def table(report: dict) -> str:
    """The Markdown table of the report's medians."""
    head = ["model", "precision", *STAGES, "shown", "downloads", "shown − model"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    precision = report.get("precision", {})
    for model, row in report["median_s"].items():
        measured = precision.get(model) != "not measured"
        cells = [_cell(row, s, measured) for s in (*STAGES, "shown", "downloads", "shown_without_model")]
        lines.append(f"| `{model}` | {precision.get(model, 'float32')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def shown(data: dict | None) -> dict[str, dict[str, float | None]]:
    """Per machine class, per model: seconds to the results on screen (None: the model itself not measured)."""
    return {label: {m: None if run.get("precision", {}).get(m) == "not measured" else row["shown"]
                    for m, row in run["median_s"].items()} for label, run in runs(data).items()}


def goal_line(data: dict | None) -> str:
    """The 10 MP goal beside the headline: per machine class whether everything but the network took ≤ GOAL_S."""
    verdicts = []
    for label, run in runs(data).items():
        worst = max(row["shown_without_model"] for row in run["median_s"].values())
        verdicts.append(f"{label}: **{'met' if worst <= GOAL_S else 'missed'}** (worst {worst:.2f} s)")
    if not any(label.startswith("GPU") for label in runs(data)):
        verdicts.append("GPU: not measured")
    return (f"Goal for the 10 MP columns: everything but the network ≤ {GOAL_S} s — " + "; ".join(verdicts)
            + ". Stage by stage: *From Erase to the fills on screen* below.")


def section(data: dict, heading: str = "##") -> str:
    """The report's part: what the stages are, then per machine class its provenance, medians and the goal."""
    parts = [f"{heading} From Erase to the fills on screen: where the time goes",
             f"A synthetic 10 MP JPEG with one object-sized hole (an ellipse of ~2.5 % of the photo), the default "
             "options (crop, margin 128, grow 8, feather 8), one result per model, rounds with the models "
             "interleaved, medians in seconds. Stages: *decode* (file → photo: EXIF rotation, colour profile, bit "
             "depth), *hygiene* (the painted mask read at the photo's size, checked, grown, feathered), *windows* "
             "(crops at the model's size), *model* (the network alone, neural ones at their real architecture with "
             "random weights — the same time as the released weights — in the precision the app picks on that "
             "machine, loading excluded; the diffusion remover: a stand-in, its model time in its own section), "
             "*paste-back*, *previews* (the WebP tiles and slider images the page receives), *PNG* (the "
             "full-resolution downloads, written after the fills are shown). *shown* = up to the previews; "
             f"*downloads* = shown + PNG. Goal: everything but the network ≤ {GOAL_S} s at 10 MP (*shown − model*)."]
    for label, run in runs(data).items():
        worst = max(row["shown_without_model"] for row in run["median_s"].values())
        verdict = "met" if worst <= GOAL_S else "missed"
        parts += [f"{heading}# {label}",
                  f"Command: `{run['command']}` ({run['duration_s'] / 60:.1f} min), {run['megapixels']:g} MP, "
                  f"{run['rounds']} rounds  \nMachine: {machine.summary_line(run['machine'])}",
                  f"Goal: everything but the network ≤ {GOAL_S} s — **{verdict}** (worst *shown − model*: "
                  f"{worst:.2f} s).",
                  table(run)]
    return "\n\n".join(parts)


def run_record(argv: list[str] | None, info: dict, started: float, args: argparse.Namespace,
               times: dict, precision: dict) -> dict:
    """One run as breakdown.json keeps it."""
    return {"command": command(argv, "benchmarks.bench_breakdown"), "machine": info,
            "duration_s": round(time.perf_counter() - started, 1), "megapixels": args.megapixels,
            "rounds": args.rounds, "threads": torch.get_num_threads(), "stages": list(STAGES),
            "precision": precision, "median_s": summary(times), "seconds": times}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=MODELS, choices=registry.ids())
    parser.add_argument("--megapixels", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    started, info = time.perf_counter(), machine.describe("cpu")
    times, precision = measure(args.models, args.rounds, args.megapixels)
    report = run_record(argv, info, started, args, times, precision)
    print(table(report))
    if args.out:
        save(args.out, machine.class_of(info), report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
