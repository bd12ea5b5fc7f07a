"""Judging a fill at 1:1: a hole region at the photo's own resolution, the original or any fill, outline optional.

The comparison's tiles shrink a region to 512 px, so on a 12 MP photo a seam or a smear that the
download shows cannot be seen there. A click on a tile opens its region pixel for pixel; only that
region travels to the browser, at most :data:`ZOOM_SIDE` px a side (centred on the region), and
the view switches between the original and every fill of the run, lossless. Each view is written once per
run (a WebP in the run's folder) and served from there when the visitor switches back.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from app.images import Photo, load_photo
from app.web import results

#: Largest side of a 1:1 view, px: about a desktop window; 1 MP of lossless WebP is 0.3-1 MB for the evaluation
#: set's photos and 2.3 MB for pure noise, so a run and one 1:1 view stay under the page's 3 MB.
ZOOM_SIDE = 1024
ORIGINAL = "original"
OUTLINE_RGB = (0, 229, 255)  # the guide brush's cyan: stands out on skin, sky and foliage alike

Box = tuple[int, int, int, int]


def zoom_box(box: Box, size: tuple[int, int]) -> Box:
    """``box`` (x0, y0, x1, y1) cut to at most :data:`ZOOM_SIDE` px a side around its centre, inside the photo."""
    x0, y0, x1, y1 = box
    width, height = size
    w, h = min(x1 - x0, ZOOM_SIDE, width), min(y1 - y0, ZOOM_SIDE, height)
    left = min(max((x0 + x1) // 2 - w // 2, 0), width - w)
    top = min(max((y0 + y1) // 2 - h // 2, 0), height - h)
    return left, top, left + w, top + h


def tile_box(run: results.Run | None, view: str, index: int | None) -> Box | None:
    """The box the 1:1 view of tile ``index`` shows: the tile's own, or hole 1's where the tile shows holes
    too far apart for one view (its centre could lie between them); *each hole* has a tile per hole."""
    box = results.box_at(run, view, index)
    if box and view == results.VIEWS[0] and run.get("regions", 0) > 1 \
            and max(box[2] - box[0], box[3] - box[1]) > ZOOM_SIDE:
        return results.box_at(run, results.VIEWS[1], 0)
    return box


def choices(run: results.Run) -> list[str]:
    """What the 1:1 view can show: the original and each of the run's results, by their captions."""
    return [ORIGINAL, *run["labels"]]


def view_file(run: results.Run, photo_path: str, box: Box, choice: str, outline: bool) -> str:
    """The 1:1 view of ``choice`` (:data:`ORIGINAL` or a result's label) over ``box``, written once per run.

    ``box`` is a tile's box; it is cut to :func:`zoom_box` here, so every caller shows the same pixels.
    """
    which = None if choice == ORIGINAL else run["labels"].index(choice)
    x0, y0, x1, y1 = zoom_box(box, tuple(run["size"]))
    name = f"zoom-{x0}-{y0}-{x1}-{y1}-{'o' if which is None else which}{'-outline' if outline else ''}.webp"
    path = Path(run["folder"]) / name
    if path.is_file():
        return str(path)
    source = photo_path if which is None else results.wait_for(run["files"][which])
    pixels = load_photo(source).pixels[y0:y1, x0:x1]
    crop = Photo(pixels).rgb8.copy()
    if outline:
        results.wait(run)  # the region map is written with the PNGs
        draw_outline(crop, _changed(run, (x0, y0, x1, y1)))
    # Lossless: this is where a seam is judged, and lossy WebP's halved colour resolution blurs exactly that.
    Image.fromarray(crop).save(path, format="WEBP", lossless=True, method=2)
    return str(path)


def _changed(run: results.Run, box: Box) -> np.ndarray:
    """Where the run's fills are pasted (the region map's non-zero labels) inside ``box``."""
    x0, y0, x1, y1 = box
    with Image.open(Path(run["folder"]) / "regions.png") as image:
        return np.asarray(image.crop((x0, y0, x1, y1))) > 0


def draw_outline(rgb: np.ndarray, area: np.ndarray) -> None:
    """A 1 px line around ``area`` drawn into ``rgb`` in place (the pixels under it are the only ones hidden)."""
    contours, _ = cv2.findContours(area.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(rgb, contours, -1, OUTLINE_RGB, 1)
