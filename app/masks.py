"""Masks: from whatever the user painted or uploaded to a clean boolean hole map."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from app.errors import BadMaskError

DEFAULT_GROW = 8  # px: covers the soft edge of a brush stroke and JPEG halos around objects


def to_hole(mask: Any, size: tuple[int, int]) -> np.ndarray:
    """Any mask (array, PIL image, path) -> (H, W) bool at ``size`` = (width, height).

    Transparent-background masks use their alpha, others their brightness
    (white = hole). A mask drawn on a smaller preview is scaled up to the photo.
    """
    if isinstance(mask, (str, Path)):
        try:
            mask = Image.open(mask)
        except OSError as exc:
            raise BadMaskError(f"The mask file cannot be read ({exc}).") from exc
    if isinstance(mask, Image.Image):
        mask = np.asarray(mask.convert("RGBA") if mask.mode in {"P", "LA", "RGBA", "PA"} else mask.convert("L"))
    array = np.asarray(mask)
    if array.ndim == 3:
        has_alpha = array.shape[2] == 4 and array[..., 3].min() < 255
        array = array[..., 3] if has_alpha else array[..., :3].max(axis=2)
    hole = array > (0 if array.dtype == bool else 127 if array.max() > 1 else 0)
    return resize_hole(hole, size)


def resize_hole(hole: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale a bool mask to ``size`` (w, h); smooth upscaling so strokes keep round edges."""
    w, h = size
    if hole.shape == (h, w):
        return hole
    up = cv2.resize(hole.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return up > 0.5


def grow(hole: np.ndarray, pixels: int) -> np.ndarray:
    """Dilate the hole by ``pixels`` with a round kernel."""
    if pixels <= 0:
        return hole
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(hole.astype(np.uint8), kernel).astype(bool)


def validate(hole: np.ndarray) -> None:
    """Refuse masks nothing can be done with."""
    if not hole.any():
        raise BadMaskError("The mask is empty: paint over what should disappear, then run again.")
    if hole.all():
        raise BadMaskError("The mask covers the whole image: leave some of the photo unpainted to fill from.")


def hole_preview(hole: np.ndarray, size: tuple[int, int], colour=(255, 0, 80, 160)) -> Image.Image:
    """A translucent RGBA layer showing ``hole`` at ``size``, for the editor."""
    small = cv2.resize(hole.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    layer = np.zeros((*small.shape, 4), np.uint8)
    layer[small] = colour
    return Image.fromarray(layer, "RGBA")


def strokes_by_colour(layers: list[Any], colours: dict[str, tuple[int, int, int]]) -> dict[str, np.ndarray]:
    """Split painted pixels of editor layers by nearest brush colour (anti-aliased edges included).

    Every name in ``colours`` gets a map, empty where that brush was not used.
    """
    names = list(colours)
    palette = np.array([colours[n] for n in names], np.float32)
    out: dict[str, np.ndarray] = {}
    for layer in layers:
        array = np.asarray(Image.open(layer).convert("RGBA") if isinstance(layer, (str, Path)) else layer)
        if array.ndim != 3 or array.shape[2] != 4:
            raise BadMaskError("The painted layer has no transparency; paint with the brush instead.")
        painted = array[..., 3] > 0
        distance = ((array[..., None, :3].astype(np.float32) - palette) ** 2).sum(axis=-1)
        nearest = distance.argmin(axis=-1)
        for i, name in enumerate(names):
            hit = painted & (nearest == i)
            out[name] = out[name] | hit if name in out else hit
    return out
