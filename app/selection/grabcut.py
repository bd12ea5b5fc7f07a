"""Click-to-select without any weights: OpenCV GrabCut seeded by the clicks or the box.

The fallback of :mod:`app.selection.clicks`, so selecting never disappears when the segmentation
model cannot be had (offline, before its download). GrabCut models the colours of object and
background; the prompts decide which pixels seed which model:

* a box: outside is background for sure, inside is "probably object" (GrabCut's own rectangle mode);
* points only: a disc around each positive click is object for sure, the region around the
  clicks probably object, the rest of the photo probably background, the photo's border
  background for sure, negative clicks background for sure.

It runs on a copy of at most :data:`WORK_SIDE` px (GrabCut is iterative and slow on 12 MP), and
only the connected parts that hold a positive click (or lie in the box) are kept, so a
similar colour elsewhere in the photo is not selected.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

WORK_SIDE = 512  # px: long side GrabCut runs at; ~0.2 s on 2 cores
ITERATIONS = 5
#: Region around positive clicks that is "probably object", as a share of the photo's long side.
REACH = 0.22
#: A box in which GrabCut finds less than this share of object selects the box itself: the person
#: drew it around something (a sign on a plain wall, a patch of texture) and expects it to go.
EMPTY_BOX = 0.05


def grabcut_select(rgb: np.ndarray, points: Sequence[tuple[float, float, int]] = (),
                   box: Sequence[float] | None = None) -> np.ndarray:
    """(H, W) bool selection of ``rgb`` (uint8) seeded by ``points`` ``(x, y, label)`` and/or ``box``."""
    h, w = rgb.shape[:2]
    scale = min(1.0, WORK_SIDE / max(h, w))
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    pts = [(x * scale, y * scale, int(label)) for x, y, label in points]
    small_box = [v * scale for v in box] if box is not None else None
    seeds = _seed(small.shape[:2], pts, small_box)
    mask = _run(small, seeds)
    mask = _keep_prompted(mask, pts, small_box)
    if small_box is not None:
        mask = _box_if_empty(mask, small_box, pts)
    up = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return up > 0.5


def _seed(shape: tuple[int, int], points: list[tuple[float, float, int]], box: list[float] | None) -> np.ndarray:
    """GrabCut's initial labels from the prompts."""
    h, w = shape
    seeds = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    long_side = max(h, w)
    if box is not None:
        x0, y0, x1, y1 = _clip_box(box, w, h)
        seeds[:] = cv2.GC_BGD
        seeds[y0:y1, x0:x1] = cv2.GC_PR_FGD
    else:
        border = max(1, long_side // 100)
        seeds[:border], seeds[-border:], seeds[:, :border], seeds[:, -border:] = (cv2.GC_BGD,) * 4
        for x, y, label in points:
            if label:
                cv2.circle(seeds, (round(x), round(y)), max(2, int(REACH * long_side)), cv2.GC_PR_FGD, -1)
    dot = max(2, long_side // 100)
    for x, y, label in points:
        cv2.circle(seeds, (round(x), round(y)), dot, cv2.GC_FGD if label else cv2.GC_BGD, -1)
    return seeds


def _clip_box(box: Sequence[float], w: int, h: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (round(v) for v in box)
    x0, x1 = sorted((min(max(x0, 0), w), min(max(x1, 0), w)))
    y0, y1 = sorted((min(max(y0, 0), h), min(max(y1, 0), h)))
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


def _run(rgb: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """GrabCut from ``seeds``; a seed map with no background (or no object) at all is returned as seeded."""
    fg = np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD))
    if fg.all() or not fg.any():
        return fg
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    labels = seeds.copy()
    cv2.grabCut(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), labels, None, bgd, fgd, ITERATIONS, cv2.GC_INIT_WITH_MASK)
    return np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD))


def _box_if_empty(mask: np.ndarray, box: list[float], points: list[tuple[float, float, int]]) -> np.ndarray:
    """``mask``, or the box itself (less the negative clicks) when GrabCut found next to nothing in it."""
    h, w = mask.shape
    x0, y0, x1, y1 = _clip_box(box, w, h)
    if mask[y0:y1, x0:x1].mean() >= EMPTY_BOX:
        return mask
    boxed = np.zeros_like(mask)
    boxed[y0:y1, x0:x1] = True
    for x, y, label in points:
        if not label:
            cv2.circle(boxed.view(np.uint8), (round(x), round(y)), max(2, max(h, w) // 100), 0, -1)
    return boxed


def _keep_prompted(mask: np.ndarray, points: list[tuple[float, float, int]], box: list[float] | None) -> np.ndarray:
    """Only the connected parts holding a positive click, or (for a box) the parts inside it."""
    count, parts = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return mask
    h, w = mask.shape
    keep = {int(parts[min(max(round(y), 0), h - 1), min(max(round(x), 0), w - 1)])
            for x, y, label in points if label}
    if box is not None:
        x0, y0, x1, y1 = _clip_box(box, w, h)
        sizes = np.bincount(parts[y0:y1, x0:x1].ravel(), minlength=count)
        keep |= {int(i) for i in np.flatnonzero(sizes > 0.02 * max(sizes[1:].max(initial=0), 1))}
    keep.discard(0)
    return np.isin(parts, sorted(keep)) if keep else mask
