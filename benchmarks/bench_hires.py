"""The high-resolution strategies compared on full-resolution photos: quality in the hole, seam, time.

    python -m benchmarks.bench_hires                   # 6 photos x families object and thick
    python -m benchmarks.bench_hires --limit 1 --models telea --strategies crop --feathers 0 8

Each photo of ``$INPAINT_EVALSET/hires`` (2560-4352 px) is filled by every model that can run
here with each strategy (``original``: the whole photo; ``resize``: the whole photo at the
model's size; ``crop``: ``--margin`` px of context around each hole region) and with the
feathered paste-back off (0 px) and on (8 px, the app's default), through ``app.pipeline.run``
with the hole exactly the mask (grow 0). Scores: PSNR, SSIM, L1 and GMSD inside the hole, seam
visibility along its border (benchmarks/metrics.py), the wall time of the pipeline, and the
windows and model-side pixels each strategy produced (they explain the times). Writes
hires.csv, hires.json, hires_strategies.png and sheets/hires_seams.jpg to ``--out`` and re-renders
the report.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from app import hires, model_cache, pipeline
from app.errors import InpaintError
from app.images import Photo, load_photo
from app.masks import to_hole
from app.specs import ModelSpec
from benchmarks import common, metrics, report, results, sheets

MODULE = "benchmarks.bench_hires"
CLOSE_UP = sheets.CELL // 2  # px of the photo per close-up, shown at 2x
METRICS = ("psnr", "ssim", "l1", "gmsd", "seam", "seconds", "windows", "model_mpx")


def build_parser():
    p = common.parser(__doc__, families_default=["object", "thick"])
    p.add_argument("--strategies", nargs="+", default=["original", "resize", "crop"],
                   choices=["original", "resize", "crop"])
    p.add_argument("--feathers", type=int, nargs="+", default=[0, 8], help="feather widths in px (0 = off)")
    p.add_argument("--margin", type=int, default=128)
    return p


def windows_of(spec: ModelSpec, hole: np.ndarray, strategy: str, margin: int) -> list[hires.Window]:
    """The windows the pipeline gives this model (the same call as app.pipeline)."""
    return hires.plan(hole, hires.Strategy(strategy), spec.crop_limit, spec.size_multiple, margin,
                      square=spec.native_size is not None)


def fill(photo: Photo, hole: np.ndarray, spec: ModelSpec, strategy: str, feather: int, margin: int):
    """(result pixels, wall seconds) of one pipeline run."""
    options = pipeline.Options(strategy=strategy, margin=margin, grow=0, feather=feather)
    start = time.perf_counter()
    (result,) = pipeline.run(photo, hole, [spec.id], options)
    return result.photo.rgb8, time.perf_counter() - start


def config(strategy: str, feather: int) -> str:
    return f"{strategy}, feather {feather}" if feather else f"{strategy}, no feather"


def border_point(original: np.ndarray, hole: np.ndarray, side: int) -> tuple[int, int]:
    """(y, x) of the hole-border pixel with the most texture around it: seams show where there is structure."""
    edge = hole & ~cv2.erode(hole.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    texture = cv2.boxFilter(metrics.sobel_magnitude(original), -1, (side, side))
    ys, xs = np.nonzero(edge)
    best = int(np.argmax(texture[ys, xs]))
    return int(ys[best]), int(xs[best])


def close_up(rgb: np.ndarray, centre: tuple[int, int], side: int = CLOSE_UP) -> np.ndarray:
    """A ``side`` px square around ``centre`` (shown 2x on the sheet)."""
    y = min(max(0, centre[0] - side // 2), rgb.shape[0] - side)
    x = min(max(0, centre[1] - side // 2), rgb.shape[1] - side)
    return rgb[y:y + side, x:x + side]


def plan_facts(windows: list[hires.Window]) -> dict:
    """What a strategy feeds the model: windows, model-side megapixels, and a fingerprint of the plan."""
    return {"windows": len(windows), "model_mpx": sum(w.target[0] * w.target[1] for w in windows) / 1e6,
            "plan": plan_id(windows)}


def start_sheet(cells: dict, title: str, original: np.ndarray, hole: np.ndarray) -> tuple[int, int]:
    """Put the original and input close-ups in ``cells``; returns the close-ups' centre."""
    centre = border_point(original, hole, CLOSE_UP)
    cells["title"] = f"{title}: the most textured stretch of the hole's border, 2x"
    cells[("original", "")] = close_up(original, centre)
    cells[("input", "")] = close_up(sheets.masked_input(original, hole), centre)
    return centre


def measure_photo(photo_path: Path, family: str, specs: list[ModelSpec], args, root: Path, cells: dict) -> list[dict]:
    """Every model x strategy x feather on one photo and mask; the first photo also fills the close-up sheet."""
    photo = load_photo(photo_path)
    hole = to_hole(common.mask_path(root, family, photo_path), photo.size)
    original, rows, keep = photo.rgb8, [], not cells
    centre = start_sheet(cells, f"{photo_path.stem} ({family} mask)", original, hole) if keep else (0, 0)
    base = {"photo": photo_path.stem, "size": f"{photo.size[0]}x{photo.size[1]}", "family": family,
            "hole_ratio": round(float(hole.mean()), 5)}
    for spec in specs:
        for strategy in args.strategies:
            try:
                facts = plan_facts(windows_of(spec, hole, strategy, args.margin))
            except InpaintError:  # ORIGINAL on a photo larger than the model takes: refused, nothing to measure
                continue
            for feather in args.feathers:
                result, seconds = fill(photo, hole, spec, strategy, feather, args.margin)
                rows.append({**base, "model": spec.id, "strategy": strategy, "feather": feather,
                             "config": config(strategy, feather), **metrics.hole_scores(original, result, hole),
                             "seam": metrics.seam(original, result, hole), "seconds": seconds, **facts})
                if keep:
                    cells[(spec.id, config(strategy, feather))] = close_up(result, centre)
    return rows


def plan_id(windows: list[hires.Window]) -> str:
    """A short fingerprint of the windows (regions and model-side sizes), to spot identical plans."""
    return hashlib.sha256(repr(windows).encode()).hexdigest()[:10]


def identical_plans(rows: list[dict]) -> dict[str, int]:
    """How often ORIGINAL and RESIZE gave the model exactly the same windows (then they are the same run)."""
    by_case = results.group(rows, ["photo", "family", "model"])
    pairs = [{r["strategy"]: r["plan"] for r in members} for members in by_case.values()]
    pairs = [p for p in pairs if "original" in p and "resize" in p]
    return {"cases": len(pairs), "identical": sum(p["original"] == p["resize"] for p in pairs)}


def write_sheet(cells: dict, specs: list[ModelSpec], args) -> str | None:
    if not cells:
        return None
    configs = [config(s, f) for s in args.strategies for f in args.feathers]
    rows = [(spec.id, [cells[("original", "")], cells[("input", "")], *[cells[(spec.id, c)] for c in configs]])
            for spec in specs]
    image = sheets.contact_sheet(cells["title"], ["original", "input", *configs], rows)
    return sheets.save_jpeg(image, args.out / "sheets" / "hires_seams.jpg").relative_to(args.out).as_posix()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run = common.setup(args)
    root, selection = run.root, run.selection
    for spec in selection.models:  # load weights before any timing
        model_cache.get_inpainter(spec)
    cells: dict = {}
    rows = []
    for photo in common.photos(root, "hires", args.limit):
        for family in common.families(root, args.families):
            rows += measure_photo(photo, family, selection.models, args, root, cells)
            print(f"  {photo.stem} {family}", file=sys.stderr, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    results.write_csv(args.out / "hires.csv", rows)
    summary = results.summarise(rows, ["model", "strategy", "feather", "config"], METRICS)
    results.write_json(args.out / "hires.json", {
        "kind": "hires", "command": common.command(argv, MODULE), "machine": run.machine,
        "duration_s": run.elapsed(), "margin": args.margin, "families": args.families,
        "photos": sorted({(r["photo"], r["size"]) for r in rows}), "models": [s.id for s in selection.models],
        "skipped": selection.skipped, "weights": selection.weights, "summary": summary,
        "plans": identical_plans(rows),
        "sheet": write_sheet(cells, selection.models, args),
    })
    print(report.write(args.out), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
