"""``python -m app``: inpaint one image or a folder from the command line.

Thin layer over :mod:`app.pipeline`; every model id comes from the registry.
Exit codes: 0 success, 1 some images failed (each is reported, the others still run),
2 bad arguments or input (one ``error: ...`` line, nothing written).

Results are named ``{stem}__{model}.png`` (``_sample-{k}``, from 1, added for models that give several
samples). When several inputs of a folder share a stem (``photo.png``, ``photo.jpg``) their
results keep the extension instead (``photo.png__telea.png``, ``photo.jpg__telea.png``), so
every input gets its own files. A run never writes one path twice, nor over one of its
inputs; a file left by an earlier run under the same name is the same input's result and is
replaced. In folder mode, files named like results (``...__<model id>[_sample-<k>].png``) are never
read as images or masks, so the output folder may be the input folder, and ``<stem>_mask``
files next to ``<stem>`` images are masks, not images.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from app import masks, options, pipeline, registry
from app.errors import InpaintError
from app.images import Photo, load_photo, save_png
from app.model_cache import availability
from app.options import Knob, Options
from app.selection import cli as select_cli
from app.weights_cli import add_parser as add_weights_parser

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}
MASK_SUFFIX = "_mask"  # photo_mask.png is the mask of photo.png


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description="Inpainting studio (serve with: python app.py)")
    commands = parser.add_subparsers(dest="command", required=True)
    add_inpaint_parser(commands)
    add_weights_parser(commands)
    return parser


def add_inpaint_parser(commands) -> None:
    p = commands.add_parser("inpaint", help="inpaint an image, or every image of a folder")
    p.add_argument("image", type=Path, help="image file or folder of images")
    p.add_argument("--mask", type=Path, default=None,
                   help="mask file (white = hole), or folder of masks matched to the images by file name "
                        "(NAME, STEM.* or STEM_mask.*; may be the image folder, then STEM_mask.*); optional with "
                        "--select or --erase-people, which add to it")
    p.add_argument("--model", "-m", action="append", choices=registry.ids(), dest="models",
                   help=f"model id, repeatable (default: {' '.join(registry.DEFAULT_MODELS)})")
    p.add_argument("--out", "-o", type=Path, default=Path("outputs"),
                   help="output folder, created if needed (default: outputs); writes STEM__MODEL.png "
                        "(NAME__MODEL.png when inputs share a stem), replacing such files of earlier runs; "
                        "may be the input folder: results are never read back as inputs")
    for knob in options.KNOBS:
        add_knob_flag(p, knob)
    for kind in options.guide_kinds():
        p.add_argument(f"--{kind}", type=Path, metavar="IMAGE", dest=guide_dest(kind),
                       help=f"{', '.join(options.guide_users(kind))}: image of extra {kind} strokes (white) "
                            "to steer the fill")
    select_cli.add_flags(p)


def add_knob_flag(parser: argparse.ArgumentParser, knob: Knob) -> None:
    """``--<knob>`` with its default and help; the range is stated here and enforced by Options (exit 2)."""
    if knob.choices:
        parser.add_argument(f"--{knob.name}", choices=knob.choices, default=knob.default,
                            help=f"{knob.help} (default: %(default)s)")
    else:
        parser.add_argument(f"--{knob.name}", type=int, default=knob.default,
                            help=f"{knob.help} ({knob.low} to {knob.high}; default: %(default)s)")


def guide_dest(kind: str) -> str:
    return "guide_" + kind.replace("-", "_")


def guide_paths(args: argparse.Namespace) -> dict[str, Path]:
    """The guide images given, by kind (``--edges strokes.png`` -> ``{"edges": Path("strokes.png")}``)."""
    paths = {kind: getattr(args, guide_dest(kind)) for kind in options.guide_kinds()}
    return {kind: path for kind, path in paths.items() if path is not None}


def describe(exc: OSError) -> str:
    """``No such file or directory`` reads better than ``[Errno 2] ...: 'path'``."""
    return exc.strerror or str(exc)


def result_pattern() -> re.Pattern[str]:
    """Names this CLI writes; built from the registry so a new model's results are recognised too."""
    ids = "|".join(re.escape(i) for i in sorted(registry.ids(), key=len, reverse=True))
    return re.compile(rf"^.+__(?:{ids})(?:_sample-\d+)?\.png$")


def is_result(path: Path) -> bool:
    """A file an earlier run wrote: reading it as an input would inpaint results again."""
    return result_pattern().match(path.name) is not None


def image_files(folder: Path) -> list[Path]:
    """Image files of a folder, sorted (an unreadable folder is an input error, not a traceback)."""
    try:
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    except OSError as exc:
        raise InpaintError(f"Cannot list {folder}: {describe(exc)}.") from exc


def same_folder(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def is_sibling_mask(path: Path, stems: set[str]) -> bool:
    """``photo_mask.png`` next to ``photo.png`` is that photo's mask, not a photo."""
    return path.stem.endswith(MASK_SUFFIX) and path.stem[: -len(MASK_SUFFIX)] in stems


def find_mask(image: Path, candidates: Iterable[Path], shared: bool) -> Path | None:
    """The mask of ``image``: same file name, else same stem, else ``<stem>_mask``.

    In a folder shared with the images only ``<stem>_mask`` counts: the image is not its own mask.
    """
    def rank(p: Path) -> int | None:
        if not shared and p.name == image.name:
            return 0
        if not shared and p.stem == image.stem:
            return 1
        return 2 if p.stem == image.stem + MASK_SUFFIX else None

    ranked = sorted((r, p) for p in candidates if (r := rank(p)) is not None)
    return ranked[0][1] if ranked else None


def pairs(image: Path, mask: Path | None) -> list[tuple[Path, Path | None]]:
    """(image, mask) pairs; in folder mode masks are matched by name, and results or masks are never images."""
    if not image.is_dir():
        return [(image, mask)]
    if mask is None:  # --erase-people on a folder: every image, nothing to match
        return [(p, None) for p in image_files(image) if not is_result(p)]
    if not mask.is_dir():
        raise InpaintError(f"{image} is a folder, so --mask must be a folder of masks too.")
    files = [p for p in image_files(image) if not is_result(p)]
    shared = same_folder(image, mask)
    candidates = files if shared else [p for p in image_files(mask) if not is_result(p)]
    stems = {p.stem for p in files}
    images = [p for p in files if not is_sibling_mask(p, stems)]
    if not images:
        raise InpaintError(f"No images in {image}.")
    found = {p: find_mask(p, candidates, shared) for p in images}
    missing = [p.name for p in images if found[p] is None]
    if missing:
        raise InpaintError(f"No mask in {mask} for: {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
    return [(p, found[p]) for p in images]


def result_stems(images: Sequence[Path]) -> dict[Path, str]:
    """What each input's result names start with: its stem, or its file name when the stem is shared.

    Keeping the extension only where needed leaves the usual names unchanged; a stem is also
    not used when it equals another input's name (``photo.jpg.png`` next to ``photo.jpg``).
    Compared case-blind, as the output folder may be on a case-insensitive disk.
    """
    stems = Counter(p.stem.casefold() for p in images)
    names = {p.name.casefold() for p in images}
    return {p: p.stem if stems[p.stem.casefold()] == 1 and p.stem.casefold() not in names else p.name
            for p in images}


def output_name(stem: str, result: pipeline.Result) -> str:
    return f"{stem}__{pipeline.result_name(result.model, result.sample)}.png"


class OutputFolder:
    """Where results go; a run never writes one path twice, nor over one of its inputs."""

    def __init__(self, folder: Path, inputs: Iterable[Path]) -> None:
        self.folder = folder
        self.claimed = {p.resolve(): f"the input {p}" for p in inputs}

    def save(self, photo: Photo, name: str, owner: Path) -> Path:
        path = self.folder / name
        key = path.resolve()
        if key in self.claimed:
            raise InpaintError(f"{name} was not written: it would overwrite {self.claimed[key]}.")
        self.claimed[key] = f"the result of {owner.name}"
        return save_png(photo, path)


def prepare_out(folder: Path) -> None:
    """Create the output folder and try writing in it before any work, so a bad ``-o`` costs nothing."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InpaintError(f"Cannot create the output folder {folder}: {describe(exc)}.") from exc
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise InpaintError(f"Cannot write in the output folder {folder}: {describe(exc)}.") from exc


def check_inputs(args: argparse.Namespace) -> None:
    """Missing paths and a file/folder mix are argument errors (exit 2), not per-image failures."""
    guides = guide_paths(args)
    select_cli.check(args)
    named = [(args.image, "The image")] + ([(args.mask, "The --mask")] if args.mask is not None else [])
    for path, what in named + [(path, f"The --{kind} image") for kind, path in guides.items()]:
        if not path.exists():
            raise InpaintError(f"{what} {path} does not exist.")
        if not (path.is_dir() or path.is_file()):  # /dev/zero never ends, a FIFO blocks the reader: never opened
            raise InpaintError(f"{what} {path} is not a regular file (a device, pipe or socket); give an image "
                               "file or a folder.")
    if not args.image.is_dir() and args.mask is not None and args.mask.is_dir():
        raise InpaintError(f"{args.image} is a file, so --mask must be a mask file, not the folder {args.mask}.")
    for kind, path in guides.items():
        if path.is_dir():
            raise InpaintError(f"--{kind} must be an image file, not the folder {path}.")


def check_models(model_ids: Sequence[str]) -> None:
    """Fail before any work if a chosen model cannot run here."""
    for model_id in model_ids:
        state = availability(registry.get(model_id))
        if not state.ok:
            raise InpaintError(f"{registry.get(model_id).name} cannot run: {state.reason}")


def note_skipped(folder: Path) -> None:
    """Say why files named like results were not inpainted (a user may have named a photo so)."""
    if folder.is_dir() and (skipped := [p for p in image_files(folder) if is_result(p)]):
        print(f"note: skipped {len(skipped)} file(s) in {folder} named like results (NAME__MODEL.png)",
              file=sys.stderr)


def run_inpaint(args: argparse.Namespace) -> int:
    model_ids = list(dict.fromkeys(args.models or registry.DEFAULT_MODELS))  # -m telea -m telea: one result
    check_inputs(args)
    chosen = Options.of(**{name: getattr(args, name) for name in options.NAMES})  # refused: InpaintError, exit 2
    check_models(model_ids)
    jobs = pairs(args.image, args.mask)
    stems = result_stems([image for image, _ in jobs])
    prepare_out(args.out)
    note_skipped(args.image)
    guides = guide_paths(args)
    inputs = [path for job in jobs for path in job if path is not None] + list(guides.values())
    selected = select_cli.selector(args)
    out = OutputFolder(args.out, inputs)
    failures = 0
    bar = tqdm(total=len(jobs) * len(model_ids), unit="run", file=sys.stderr)
    for image, mask in jobs:
        try:
            written = inpaint_file(image, mask, model_ids, chosen, guides, out, stems[image], bar, selected)
            bar.write(f"{image.name}: " + ", ".join(str(p) for p in written))
        except (InpaintError, OSError) as exc:  # OSError: a file that opens but fails to decode
            failures += 1
            bar.write(f"{image.name}: error: {describe(exc) if isinstance(exc, OSError) else exc}", file=sys.stderr)
    bar.close()
    return 1 if failures else 0


def inpaint_file(image: Path, mask: Path | None, model_ids: Sequence[str], chosen: Options, guides: dict[str, Path],
                 out: OutputFolder, stem: str, bar: tqdm, selected: select_cli.Selector | None = None) -> list[Path]:
    photo = load_photo(image)
    pipeline.check_photo(photo)  # before the mask is read or judged against it
    hole = masks.to_hole(mask, photo.size) if mask is not None else np.zeros((photo.size[1], photo.size[0]), bool)
    if selected is not None:  # --select / --erase-people, unioned with --mask
        hole = hole | selected(photo, image.name)
    maps = {kind: masks.to_hole(path, photo.size, f"{kind} strokes") for kind, path in guides.items()}
    written = []
    for model_id in model_ids:
        bar.set_description(f"{image.name} · {model_id}")
        for result in pipeline.run(photo, hole, [model_id], chosen, maps):
            written.append(out.save(result.photo, output_name(stem, result), image))
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
    except OSError as exc:  # a path problem no check above foresaw: still one line, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
