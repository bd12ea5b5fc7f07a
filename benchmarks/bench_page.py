"""Bytes a visitor's browser receives for one run, before any download is clicked.

    python -m benchmarks.bench_page [--megapixels 12] [--models telea navier-stokes patchmatch]

Runs the studio's own handler (``app.ui.on_run``) on a textured photo with one object-sized hole and
adds up the files the page then shows: the tiles of the default view and the two slider previews
(the other view's tiles and the full-resolution PNGs are only fetched when asked for), then one
1:1 view of the hole (a tile clicked: the first result's region at the photo's own pixels). The
full-resolution PNGs, which the page used to send, are reported beside them. Goal: under 3 MB for
a 12 MP photo with 3 results, the 1:1 view included. Writes ``docs/benchmarks/page-bytes.json``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from app.web import canvas, handlers, results, zoom
from benchmarks import machine
from benchmarks.common import DEFAULT_OUT
from benchmarks.results import write_json
from tests.helpers import textured

GOAL_BYTES = 3_000_000


def photo_and_strokes(megapixels: float, folder: Path) -> tuple[Path, dict]:
    """A textured 4:3 photo of ``megapixels`` and an editor value with one object-sized stroke."""
    h = int((megapixels * 1e6 * 3 / 4) ** 0.5)
    w = int(h * 4 / 3)
    path = folder / "photo.jpg"
    tile = textured(512, 512)
    Image.fromarray(np.tile(tile, (h // 512 + 1, w // 512 + 1, 1))[:h, :w]).save(path, quality=92)
    scale = canvas.PREVIEW_SIDE / max(w, h)
    layer = np.zeros((round(h * scale), round(w * scale), 4), np.uint8)
    lh, lw = layer.shape[:2]
    layer[int(lh * 0.4):int(lh * 0.7), int(lw * 0.45):int(lw * 0.6)] = (*canvas.rgba(canvas.HOLE_COLOUR)[:3], 255)
    return path, {"background": None, "layers": [layer], "composite": None}


def measure(megapixels: float, models: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path, editor = photo_and_strokes(megapixels, Path(tmp))
        start = time.perf_counter()
        shown = handlers.on_run(str(path), None, editor, models, 1, 0, "crop", 128, 8, 8)
        seconds = time.perf_counter() - start
        tiles, _ = results.gallery(shown.run, results.VIEWS[0])
        page = [Path(p) for p, _ in tiles] + [Path(p) for p in shown.before_after]
        run_bytes = sum(p.stat().st_size for p in page)
        start = time.perf_counter()
        box = results.box_at(shown.run, results.VIEWS[0], 1)
        one_to_one = Path(zoom.view_file(shown.run, str(path), box, shown.run["labels"][0], outline=False))
        zoom_seconds = time.perf_counter() - start
        sent = run_bytes + one_to_one.stat().st_size
        full = sum(Path(p).stat().st_size for p in shown.files)
        return {"megapixels": megapixels, "models": models, "results": len(shown.files), "files_shown": len(page) + 1,
                "run_bytes": run_bytes, "one_to_one_view_bytes": one_to_one.stat().st_size,
                "one_to_one_view_size": list(Image.open(one_to_one).size),
                "one_to_one_view_seconds": round(zoom_seconds, 2),
                "bytes_to_browser": sent, "full_resolution_png_bytes": full, "goal_bytes": GOAL_BYTES,
                "meets_goal": sent < GOAL_BYTES, "request_seconds": round(seconds, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--models", nargs="+", default=["telea", "navier-stokes", "patchmatch"])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    row = measure(args.megapixels, args.models)
    row |= {"command": "python -m benchmarks.bench_page " + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": machine.describe()}
    write_json(args.out / "page-bytes.json", row)
    print(f"{row['megapixels']:.0f} MP, {row['results']} results: {row['bytes_to_browser'] / 1e6:.2f} MB to the "
          f"browser in {row['files_shown']} files, of which {row['one_to_one_view_bytes'] / 1e6:.2f} MB one 1:1 view "
          f"(goal < {GOAL_BYTES / 1e6:.0f} MB: "
          f"{'met' if row['meets_goal'] else 'NOT met'}); the full-resolution PNGs are "
          f"{row['full_resolution_png_bytes'] / 1e6:.1f} MB, sent only when downloaded.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
