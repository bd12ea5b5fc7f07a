"""Quality of every model that can run here, on every mask family of the evaluation set.

    python -m benchmarks.bench_quality                  # all 58 photos x 11 families (~20 min on 2 cores)
    python -m benchmarks.bench_quality --limit 4 --families thin object --models telea patchmatch

Each 512 px photo of ``$INPAINT_EVALSET/images`` (default ../shared/evalset) is filled with every
model through ``app.pipeline.run`` for each mask family, with the hole exactly the mask (grow 0)
and no feather, so every pixel outside it is the original's; the fills are scored inside the
hole (PSNR, SSIM, L1, GMSD: see benchmarks/metrics.py). Writes to ``--out`` (docs/benchmarks):
quality.csv (every score), quality.json (means per family and overall, the machine, the command),
plots, one contact sheet per family (sheets/<family>.jpg), and re-renders the report README.md.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from benchmarks import common, report, results, sheets
from benchmarks.quality import Outcome, Task, evaluate, init_worker

METRICS = ("psnr", "ssim", "l1", "gmsd", "seconds")
MODULE = "benchmarks.bench_quality"


def build_parser():
    p = common.parser(__doc__, families_default=[])
    p.add_argument("--strategy", default="crop", choices=["crop", "resize", "original"])
    p.add_argument("--margin", type=int, default=128)
    p.add_argument("--grow", type=int, default=0, help="px the mask is dilated by (scores cover the grown hole)")
    p.add_argument("--feather", type=int, default=0)
    p.add_argument("--sheet-rows", type=int, default=5, help="photos per contact sheet")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: CPU count; 1 on a GPU)")
    return p


def sheet_photos(images: list[Path], rows: int) -> set[str]:
    """Photos spread evenly over the (name-sorted, so content-mixed) set, for the contact sheets."""
    if rows <= 0 or not images:
        return set()
    picks = np.unique(np.linspace(0, len(images) - 1, min(rows, len(images))).round().astype(int))
    return {images[i].stem for i in picks}


def run_tasks(tasks: list[Task], jobs: int) -> list[Outcome]:
    """Evaluate every task, in order; several processes when ``jobs`` > 1."""
    if jobs <= 1:
        return [_progress(i, len(tasks), evaluate(t)) for i, t in enumerate(tasks)]
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=init_worker,
                             initargs=(threads,)) as pool:
        return [_progress(i, len(tasks), o) for i, o in enumerate(pool.map(evaluate, tasks))]


def _progress(index: int, total: int, outcome: Outcome) -> Outcome:
    step = max(1, total // 20)
    if (index + 1) % step == 0 or index + 1 == total:
        print(f"  {index + 1}/{total} fills scored", file=sys.stderr, flush=True)
    return outcome


def write_sheets(out: Path, tasks: list[Task], outcomes: list[Outcome], models: list[str]) -> dict[str, str]:
    """One contact sheet per family: original, input, mask, then each model's fill."""
    columns = ["original", "input", "mask", *models]
    by_family: dict[str, list] = {}
    for task, outcome in zip(tasks, outcomes):
        if outcome.cells:
            blank = np.full((sheets.CELL, sheets.CELL, 3), 255, np.uint8)
            cells = [outcome.cells.get(c, blank) for c in columns]
            by_family.setdefault(task.family, []).append((task.photo.stem, cells))
    written = {}
    for family, rows in by_family.items():
        image = sheets.contact_sheet(f"Mask family '{family}' (white = hole)", columns, rows)
        written[family] = sheets.save_jpeg(image, out / "sheets" / f"{family}.jpg").relative_to(out).as_posix()
    return written


def make_tasks(root: Path, args, models: list[str]) -> list[Task]:
    """One task per (family, photo); the photos picked for the contact sheets also return thumbnails."""
    images = common.photos(root, "images", args.limit)
    chosen = sheet_photos(images, args.sheet_rows)
    options = {"strategy": args.strategy, "margin": args.margin, "grow": args.grow, "feather": args.feather}
    return [Task(p, common.mask_path(root, f, p), f, tuple(models), options, p.stem in chosen)
            for f in common.families(root, args.families) for p in images]


def summary(tasks: list[Task], outcomes: list[Outcome], selection: common.Selection, args, argv) -> dict:
    """Everything the report needs: means per family and overall, the settings, what was left out."""
    rows = [row for o in outcomes for row in o.rows]
    per_family = results.summarise(rows, ["model", "family"], (*METRICS, "hole_ratio"))
    return {
        "kind": "quality", "command": common.command(argv, MODULE), "options": dict(tasks[0].options),
        "photos": len({t.photo for t in tasks}), "families": list(dict.fromkeys(t.family for t in tasks)),
        "models": [s.id for s in selection.models], "skipped": selection.skipped, "weights": selection.weights,
        "errors": {m: msg for o in outcomes for m, msg in o.errors.items()},
        "per_family": per_family, "overall": results.summarise(rows, ["model"], METRICS),
        "sheets": write_sheets(args.out, tasks, outcomes, list(tasks[0].models)),
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run = common.setup(args)
    selection = run.selection
    tasks = make_tasks(run.root, args, [s.id for s in selection.models])
    jobs = args.jobs or (1 if run.device.startswith("cuda") else os.cpu_count() or 1)
    print(f"{len(tasks)} photo x family pairs, {len(selection.models)} models, {jobs} process(es)", file=sys.stderr)
    outcomes = run_tasks(tasks, jobs)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [row for o in outcomes for row in o.rows]
    if not rows:
        sys.exit("Every fill failed: " + "; ".join(f"{m}: {e}" for o in outcomes for m, e in o.errors.items()))
    results.write_csv(args.out / "quality.csv", rows)
    data = summary(tasks, outcomes, selection, args, argv)
    data.update(machine=run.machine, jobs=jobs, duration_s=run.elapsed())
    results.write_json(args.out / "quality.json", data)
    print(report.write(args.out), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
