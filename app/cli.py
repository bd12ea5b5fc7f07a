"""``python -m app``: inpaint one image or a folder from the command line.

Thin layer over :mod:`app.pipeline`; every model id comes from the registry.
Exit codes: 0 success, 1 some images failed, 2 bad arguments or input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from app import masks, pipeline, registry
from app.errors import InpaintError
from app.hires import Strategy
from app.images import load_photo, save_png
from app.model_cache import availability

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description="Inpainting studio (serve with: python app.py)")
    commands = parser.add_subparsers(dest="command", required=True)
    add_inpaint_parser(commands)
    try:
        from app.weights.cli import add_parser as add_weights_parser
    except ImportError:  # weights tooling not installed in this build
        pass
    else:
        add_weights_parser(commands)
    return parser


def add_inpaint_parser(commands) -> None:
    p = commands.add_parser("inpaint", help="inpaint an image, or every image of a folder")
    p.add_argument("image", type=Path, help="image file or folder of images")
    p.add_argument("--mask", type=Path, required=True,
                   help="mask file (white = hole), or folder of masks matched to the images by file name")
    p.add_argument("--model", "-m", action="append", choices=registry.ids(), dest="models",
                   help=f"model id, repeatable (default: {' '.join(registry.DEFAULT_MODELS)})")
    p.add_argument("--out", "-o", type=Path, default=Path("outputs"), help="output folder (default: outputs)")
    p.add_argument("--samples", type=int, default=1, help="samples per diverse model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--strategy", choices=[s.value for s in Strategy], default=Strategy.CROP.value)
    p.add_argument("--margin", type=int, default=pipeline.Options.margin, help="context around each hole, px")
    p.add_argument("--grow", type=int, default=pipeline.Options.grow, help="dilate the mask by this many px")
    p.add_argument("--feather", type=int, default=pipeline.Options.feather, help="soft seam width, px")
    p.add_argument("--edges", type=Path, help="EdgeConnect: image of extra edge strokes (white) to steer the fill")


def pairs(image: Path, mask: Path) -> list[tuple[Path, Path]]:
    """(image, mask) pairs; in folder mode masks are matched by file stem."""
    if not image.is_dir():
        return [(image, mask)]
    if not mask.is_dir():
        raise InpaintError(f"{image} is a folder, so --mask must be a folder of masks too.")
    by_stem = {p.stem: p for p in mask.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    images = sorted(p for p in image.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise InpaintError(f"No images in {image}.")
    missing = [p.name for p in images if p.stem not in by_stem and f"{p.stem}_mask" not in by_stem]
    if missing:
        raise InpaintError(f"No mask in {mask} for: {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
    return [(p, by_stem.get(p.stem) or by_stem[f"{p.stem}_mask"]) for p in images]


def check_models(model_ids: Sequence[str]) -> None:
    """Fail before any work if a chosen model cannot run here."""
    for model_id in model_ids:
        state = availability(registry.get(model_id))
        if not state.ok:
            raise InpaintError(f"{registry.get(model_id).name} cannot run: {state.reason}")


def output_name(image: Path, result: pipeline.Result) -> str:
    sample = f"_s{result.sample}" if result.model.diverse else ""
    return f"{image.stem}__{result.model.id}{sample}.png"


def run_inpaint(args: argparse.Namespace) -> int:
    model_ids = args.models or list(registry.DEFAULT_MODELS)
    options = pipeline.Options(strategy=args.strategy, margin=args.margin, grow=args.grow, feather=args.feather,
                               samples=args.samples, seed=args.seed)
    check_models(model_ids)
    jobs = pairs(args.image, args.mask)
    args.out.mkdir(parents=True, exist_ok=True)
    failures = 0
    bar = tqdm(total=len(jobs) * len(model_ids), unit="run", file=sys.stderr)
    for image, mask in jobs:
        try:
            written = inpaint_file(image, mask, model_ids, options, args, bar)
            bar.write(f"{image.name}: " + ", ".join(str(p) for p in written))
        except InpaintError as exc:
            failures += 1
            bar.write(f"{image.name}: error: {exc}", file=sys.stderr)
    bar.close()
    return 1 if failures else 0


def inpaint_file(image: Path, mask: Path, model_ids: Sequence[str], options: pipeline.Options,
                 args: argparse.Namespace, bar: tqdm) -> list[Path]:
    photo = load_photo(image)
    hole = masks.to_hole(mask, photo.size)
    guides = {"edges": masks.to_hole(args.edges, photo.size)} if args.edges else {}
    written = []
    for model_id in model_ids:
        bar.set_description(f"{image.name} · {model_id}")
        for result in pipeline.run(photo, hole, [model_id], options, guides):
            written.append(save_png(result.photo, args.out / output_name(image, result)))
        bar.update(1)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "inpaint":
            return run_inpaint(args)
        return args.handler(args)
    except InpaintError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
