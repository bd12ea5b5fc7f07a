"""Hole regions for the comparison view: where the fills differ, their tiles, and merging picks per region.

A region is one connected part of the area the fills change (the grown hole and its feather band,
where the paste-back alpha is above 0): two photobombers far apart are two regions, strokes whose
bands touch are one. A tile crops an image to a region plus context and is a small preview; only
downloads carry full resolution. Because every result is ``original * (1 - alpha) + fill * alpha``,
copying a result's pixels over one region's support gives exactly that result there, the original
everywhere else, and the same feathered seam.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from app.errors import InpaintError
from app.images import Photo

TILE_SIDE = 512  # px of a tile's longer side: large enough to judge texture, small to send
PREVIEW_SIDE = 1024  # px of the slider's images
CONTEXT = 0.5  # context around a region, as a share of its longer side (each way) ...
MIN_CONTEXT = 32  # ... and at least this many pixels
PREVIEW_QUALITY = 90  # WebP: about a tenth of a PNG's bytes, no visible loss at this size
#: libwebp's effort: 2 encodes a 1024 px preview in half the time of 4 (31 against 67 ms here) for ~8 % more bytes.
PREVIEW_METHOD = 2


@dataclass(frozen=True)
class Region:
    """One region of change: its label in :func:`regions`' map and the box its tiles show."""

    label: int  # 0 = every region together
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in photo pixels: the region plus context

    def crop(self, pixels: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = self.box
        return pixels[y0:y1, x0:x1]


def regions(alpha: np.ndarray) -> tuple[np.ndarray, list[Region]]:
    """The label map of the changed area (0 = untouched) and one :class:`Region` per connected part.

    Labels follow reading order (top to bottom, then left to right), so "hole 1" is the upper one.
    The components are found inside the changed area's bounding box only (a tenth of the time at 10 MP).
    """
    changed = alpha > 0
    rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    labels = np.zeros(alpha.shape, np.int32)
    if not rows.size:
        return labels, []
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    count, crop, stats, _ = cv2.connectedComponentsWithStats(changed[y0:y1, x0:x1].astype(np.uint8), connectivity=8)
    stats[:, 0] += x0
    stats[:, 1] += y0
    order = sorted(range(1, count), key=lambda k: (stats[k, 1], stats[k, 0]))
    relabel = np.zeros(count, np.int32)
    relabel[order] = np.arange(1, count)
    labels[y0:y1, x0:x1] = relabel[crop]
    found = [Region(new, _with_context(tuple(stats[k, :4]), alpha.shape)) for new, k in enumerate(order, 1)]
    return labels, found


def together(found: Sequence[Region], shape: tuple[int, ...]) -> Region:
    """One region whose box covers every region (the view of all holes at once)."""
    if not found:
        return Region(0, (0, 0, shape[1], shape[0]))
    boxes = np.array([r.box for r in found])
    return Region(0, (int(boxes[:, 0].min()), int(boxes[:, 1].min()), int(boxes[:, 2].max()), int(boxes[:, 3].max())))


def _with_context(stat: tuple[int, int, int, int], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    x, y, w, h = (int(v) for v in stat)
    pad = max(MIN_CONTEXT, int(CONTEXT * max(w, h)))
    return max(0, x - pad), max(0, y - pad), min(shape[1], x + w + pad), min(shape[0], y + h + pad)


def shrink(image: Image.Image, side: int) -> Image.Image:
    """A copy no larger than ``side`` px on its longer side (area-averaged, so texture stays honest)."""
    image = image.copy()
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    return image


def tile(photo: Photo, region: Region, side: int = TILE_SIDE) -> Image.Image:
    """``photo`` cropped to ``region`` as an 8-bit RGB preview of at most ``side`` px.

    Cropped before the 8-bit conversion: converting a whole 16-bit 10 MP photo per tile cost more than the tile.
    """
    return shrink(Image.fromarray(Photo(region.crop(photo.pixels)).rgb8), side)


def preview(photo: Photo, side: int = PREVIEW_SIDE) -> Image.Image:
    """The whole ``photo`` as an 8-bit RGB image of at most ``side`` px, area-averaged.

    OpenCV's area average: a tenth of the time of Pillow's Lanczos at 10 MP, and just as honest
    about texture at this reduction (each preview pixel averages the photo pixels it covers).
    """
    h, w = photo.pixels.shape[:2]
    scale = side / max(w, h)
    if scale >= 1:
        return Image.fromarray(photo.rgb8)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(np.ascontiguousarray(photo.pixels[..., :3]), size, interpolation=cv2.INTER_AREA)
    return Image.fromarray(Photo(small).rgb8)


def save_preview(image: Image.Image, path: Path) -> Path:
    """A preview for the browser: WebP at :data:`PREVIEW_QUALITY` (a full-resolution PNG is for downloads only)."""
    path = path.with_suffix(".webp")
    image.save(path, format="WEBP", quality=PREVIEW_QUALITY, method=PREVIEW_METHOD)
    return path


def merge(original: Photo, results: Sequence[Photo], labels: np.ndarray, picks: Mapping[int, int]) -> Photo:
    """One full-resolution photo: for each region label in ``picks``, the pixels of ``results[pick]``.

    Outside every picked region the original's pixels stay bit for bit; a region with no pick
    keeps the original too.
    """
    if labels.shape != original.pixels.shape[:2]:
        raise InpaintError("The regions do not belong to this photo; run again.")
    pixels = original.pixels.copy()
    for label, pick in picks.items():
        if not 0 <= pick < len(results):
            raise InpaintError(f"There is no result {pick + 1} to take region {label} from.")
        where = labels == label
        pixels[where] = results[pick].pixels[where]
    return original.with_pixels(pixels)
