"""Masks: from whatever the user painted or uploaded to a clean boolean hole map."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from app.errors import BadImageError, BadMaskError
from app.images import max_pixels, open_image

DEFAULT_GROW = 8  # px: covers the soft edge of a brush stroke and JPEG halos around objects
#: A mask darker than this everywhere is a label map (0/1, 0/1/2...) if it holds few values.
_DIM = 32
_LABELS = 8


def to_hole(mask: Any, size: tuple[int, int], what: str = "mask") -> np.ndarray:
    """Any mask (array, PIL image, path, bytes) -> (H, W) bool at ``size`` = (width, height).

    A pixel is a hole where a person looking at the file would see paint: transparent-background
    masks by their alpha, others by their brightest channel (red on black counts), with the
    threshold found from the values themselves (see :func:`painted`). A mask drawn on a smaller
    preview is scaled up to the photo; one of another shape is refused, never stretched.
    """
    if isinstance(mask, (str, Path, bytes)):
        mask = _open(mask, what)
    if isinstance(mask, Image.Image):
        mask = _pixels(mask)
    return fit(painted(np.asarray(mask)), size, what)


def save(hole: np.ndarray, path: str | Path) -> str:
    """``hole`` as an 8-bit PNG at its own size, 255 = hole: what :func:`to_hole` (and so the CLI and API) reads."""
    Image.fromarray(hole.astype(np.uint8) * 255, "L").save(path, optimize=False, compress_level=1)
    return str(path)


def _open(source: str | Path | bytes, what: str) -> Image.Image:
    try:
        return open_image(source, max_pixels(), what)
    except BadImageError as exc:
        raise BadMaskError(str(exc)) from exc


def _pixels(image: Image.Image) -> np.ndarray:
    """Mask pixels with their alpha when the file has transparency, in their own depth otherwise."""
    if image.mode in {"P", "PA", "LA", "RGBA", "La", "RGBa"} or "transparency" in image.info:
        return np.asarray(image.convert("RGBA"))
    if image.mode in {"I", "I;16", "I;16B", "I;16L", "I;16N", "F", "L", "RGB"}:
        return np.asarray(image)
    return np.asarray(image.convert("RGB"))


def painted(array: np.ndarray) -> np.ndarray:
    """(H, W) bool: which pixels of a mask image are painted.

    Alpha decides when the mask has transparency; otherwise the brightest colour channel.
    Values are brought to 0..255 by their type's range, then split by Otsu's threshold (at
    most 127), so JPEG halos, grey or coloured brushes and 0/1 label maps with stray values
    all read as a person sees them. A dim map with many values is noise, not paint.
    """
    if array.dtype == bool:
        return array if array.ndim == 2 else array.any(axis=2)
    if array.ndim == 3:
        alpha = array[..., -1] if array.shape[2] in (2, 4) else None
        if alpha is not None and alpha.min() < _full(alpha):
            array = alpha
        else:
            array = array[..., : max(array.shape[2] - (alpha is not None), 1)].max(axis=2)
    values = _as_uint8(array)
    top = int(values.max(initial=0))
    if top < _DIM:
        return values > 0 if len(np.unique(values)) <= _LABELS else np.zeros(values.shape, bool)
    otsu, _ = cv2.threshold(values, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return values > min(otsu, 127)


def _full(values: np.ndarray) -> float:
    return 1.0 if np.issubdtype(values.dtype, np.floating) else 255 if values.dtype == np.uint8 else 65535


def _as_uint8(array: np.ndarray) -> np.ndarray:
    """Mask values on 0..255: floats by [0, 1], 16-bit by 65535 unless they are small labels."""
    if array.dtype == np.uint8:
        return array
    values = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(values.max(initial=0.0))
    if np.issubdtype(array.dtype, np.floating) and top <= 1.0:
        values = values * 255
    elif top > 255:
        values = values * (255 / (65535 if top <= 65535 else top))
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


def fit(hole: np.ndarray, size: tuple[int, int], what: str = "mask") -> np.ndarray:
    """``hole`` at ``size`` (w, h): scaled when it has the photo's shape, refused when it does not."""
    w, h = size
    mh, mw = hole.shape
    # One pixel of rounding, as a downscaled preview has, is the same shape; more is another picture.
    if abs(mw * h - mh * w) > max(w, h):
        raise BadMaskError(f"The {what} is {mw}x{mh} but the photo is {w}x{h}: it must have the photo's shape "
                           "(the same aspect ratio), and it was not stretched to fit. Draw it on this photo.")
    return resize_hole(hole, size)


def resize_hole(hole: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale a bool mask to ``size`` (w, h); smooth upscaling so strokes keep round edges."""
    w, h = size
    if hole.shape == (h, w):
        return hole
    up = cv2.resize(hole.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return up > 0.5


def grow(hole: np.ndarray, pixels: int) -> np.ndarray:
    """Dilate the hole by ``pixels`` with a round kernel.

    Large radii use a distance transform: the same disc, in time independent of the radius
    (a 64 px kernel took 3.5 s on 12 MP, the transform 0.4 s).
    """
    if pixels <= 0:
        return hole
    rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
    if not rows.size:
        return hole.copy()
    # Only the hole's box plus the radius can change: work there alone (a 10 MP photo, one object: 44 -> 5 ms).
    y0, x0 = max(rows[0] - pixels - 1, 0), max(cols[0] - pixels - 1, 0)
    y1, x1 = min(rows[-1] + pixels + 2, hole.shape[0]), min(cols[-1] + pixels + 2, hole.shape[1])
    grown = np.zeros_like(hole)
    grown[y0:y1, x0:x1] = _grow(hole[y0:y1, x0:x1], pixels)
    return grown


def _grow(hole: np.ndarray, pixels: int) -> np.ndarray:
    if pixels > 16:
        distance = cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        return distance <= pixels
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(hole.astype(np.uint8), kernel).astype(bool)


def absorb_guides(hole: np.ndarray, guides: list[np.ndarray]) -> np.ndarray:
    """The hole with every guide stroke drawn *inside* it counted as hole too.

    The editor keeps one colour per pixel, so a guide (e.g. an edge for EdgeConnect) drawn across
    the red hole replaces a strip of it: left alone, that strip of the object would stay in every
    fill. Guide pixels the hole closes over (a closing as wide as the guide strokes) join the hole;
    guide strokes outside the hole stay guides only.
    """
    strokes = np.zeros_like(hole)
    for guide in guides:
        strokes |= guide
    if not strokes.any() or not hole.any():
        return hole
    width = float(cv2.distanceTransform(strokes.astype(np.uint8), cv2.DIST_L2, 3).max())
    side = 2 * int(np.ceil(width)) + 3  # bridges a strip as wide as the widest stroke
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    closed = cv2.morphologyEx(hole.astype(np.uint8), cv2.MORPH_CLOSE, kernel).astype(bool)
    return hole | (strokes & closed)


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


def strokes_by_colour(layers: list[Any], colours: dict[str, tuple[int, int, int]],
                      limit: int | None = None) -> dict[str, np.ndarray]:
    """Split painted pixels of editor layers by nearest brush colour (anti-aliased edges included).

    Every name in ``colours`` gets a map, empty where that brush was not used. Layer files are
    size-checked against ``limit`` pixels before they are decoded.
    """
    names = list(colours)
    palette = np.array([colours[n] for n in names], np.float32)
    out: dict[str, np.ndarray] = {}
    for layer in layers:
        if isinstance(layer, (str, Path, bytes)):
            layer = _open(layer, "painted layer").convert("RGBA")
        array = np.asarray(layer)
        if array.ndim != 3 or array.shape[2] != 4:
            raise BadMaskError("The painted layer has no transparency; paint with the brush instead.")
        if limit and array.shape[0] * array.shape[1] > limit:
            raise BadMaskError(f"The painted layer is {array.shape[1]}x{array.shape[0]}, larger than the canvas.")
        painted_pixels = array[..., 3] > 0
        distance = ((array[..., None, :3].astype(np.float32) - palette) ** 2).sum(axis=-1)
        nearest = distance.argmin(axis=-1)
        for i, name in enumerate(names):
            hit = painted_pixels & (nearest == i)
            out[name] = out[name] | hit if name in out else hit
    return out
