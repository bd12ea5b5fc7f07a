"""Click to select: positive and negative points and/or a box -> a mask of the photo's size.

``select(photo, points, box)`` runs the segmenter of the registry (SAM 2.1 tiny by default)
when its weights can be had, and OpenCV GrabCut (:mod:`app.selection.grabcut`) otherwise, so the feature
never disappears offline; :class:`Selection` says which method ran and why. The photo is
encoded once: its embedding is kept (:data:`EMBEDDINGS_KEPT` photos, keyed by segmenter and a
hash of the encoder's input), so a second click on the same photo runs only the prompt decoder.
The page starts that encode as soon as a photo is there to click on (:func:`prepare`, in the
background, only when the weights are already here): the encode takes seconds on a CPU, the
time a person needs to aim the first click, which then waits only for what is left of it.

Points are ``(x, y, label)`` in the photo's pixel coordinates as displayed (EXIF rotation
applied, what :func:`app.images.load_photo` gives), label 1 adds, 0 removes; a box is
``(x0, y0, x1, y1)`` in the same coordinates. Every caller's prompts go through
:func:`check_prompts` (finite numbers, inside the photo, at most :data:`MAX_POINTS`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import numbers
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np

from app import masks, options
from app.errors import InpaintError, ModelUnavailableError, OutOfMemoryError, WeightsError
from app.images import Photo, load_photo
from app.selection.grabcut import grabcut_select
from app.selection.segmenters import (
    Box,
    Embedding,
    Point,
    Segmenter,
    get_segmenter,
    must_download,
    segmenter_spec,
    unavailable_reason,
)
from app.weights import pretrained
from app.weights.hub import Progress

log = logging.getLogger(__name__)

MAX_POINTS = 64
ENCODE_SIDE = 1024  # px: the photo is shrunk to this before encoding (the models' own input side)
EMBEDDINGS_KEPT = 4  # photos whose embedding stays in memory (a few MB each)
GRABCUT = "grabcut"
Method = Literal["auto", "grabcut"] | str  # or a segmenter id

_embeddings: OrderedDict[tuple[str, str], Embedding] = OrderedDict()
_encoding: dict[tuple[str, str], Future] = {}  # encodes in flight: a click waits for it instead of encoding again
_embeddings_lock = threading.Lock()


@dataclass(frozen=True)
class Selection:
    """What a click selected, at the photo's full size, and how."""

    mask: np.ndarray  # (H, W) bool, True = selected
    method: str  # the segmenter's id, or "grabcut"
    score: float | None  # the segmenter's own quality estimate (None for GrabCut)
    seconds: float
    reused_embedding: bool = False  # True when the photo was already encoded (only the decoder ran)
    note: str = ""  # why GrabCut ran instead of the segmenter ("" when it was asked for or the model ran)

    def info(self) -> dict[str, Any]:
        """The JSON the API returns next to the mask."""
        return {"method": self.method, "score": self.score, "seconds": round(self.seconds, 3),
                "reused_embedding": self.reused_embedding, "selected_pixels": int(self.mask.sum()), "note": self.note}


def select(photo: Any, points: Sequence[Sequence[float]] = (), box: Sequence[float] | None = None, grow: int = 0,
           method: Method = "auto", progress: Progress | None = None, fetch: bool = True) -> Selection:
    """The object under ``points`` (``[x, y, label]``, label 1 = add, 0 = remove) and/or inside ``box``.

    ``photo`` is a path, bytes, PIL image, array or :class:`~app.images.Photo`; ``grow`` dilates the
    selection by that many pixels (0-64, like the inpainting knob) to cover the object's soft edge.
    ``method``: ``"auto"`` (the default segmenter if its weights can be had, else GrabCut),
    ``"grabcut"``, or a segmenter id of :data:`app.registry.SEGMENTERS` (an error if it cannot run).
    ``fetch=False``: weights not here yet are not downloaded now (the web app fetched them before
    taking its select slot, :mod:`app.selection.lane`); ``"auto"`` then selects with GrabCut.
    """
    photo = photo if isinstance(photo, Photo) else load_photo(photo)
    prompts, frame = check_prompts(points, box, photo.size)
    radius = int(options.knob("grow").check(grow))
    started = time.perf_counter()
    selection = _segment(photo, prompts, frame, method, progress, fetch)
    mask = masks.grow(selection.mask, radius)
    return Selection(mask, selection.method, selection.score, time.perf_counter() - started,
                     selection.reused_embedding, selection.note)


def _segment(photo: Photo, points: list[Point], box: Box | None, method: Method,
             progress: Progress | None, fetch: bool = True) -> Selection:
    if method == GRABCUT:
        return _grabcut(photo, points, box, "")
    chosen = segmenter_spec(None if method == "auto" else method)
    why = unavailable_reason(chosen) or ("" if fetch or not must_download(chosen) else
                                         f"{chosen.name} is not available: its weights have not been downloaded yet")
    if why and method == "auto":
        return _grabcut(photo, points, box, why)
    if why:
        raise ModelUnavailableError(why)
    try:
        segmenter = get_segmenter(chosen, progress)
        embedding, reused = embedding_of(segmenter, photo)
        mask, score = segmenter.decode(embedding, points, box)
    except (ModelUnavailableError, WeightsError, OutOfMemoryError) as exc:
        if method != "auto":
            raise
        log.warning("%s", exc)
        return _grabcut(photo, points, box, f"{chosen.name} could not run ({exc}); GrabCut selected instead.")
    return Selection(mask, chosen.id, score, 0.0, reused)


def _grabcut(photo: Photo, points: list[Point], box: Box | None, note: str) -> Selection:
    return Selection(grabcut_select(photo.rgb8, points, box), GRABCUT, None, 0.0, note=note)


def segmenter_status(model_id: str | None = None) -> dict[str, Any]:
    """What clicks will use now: ``{"segmenter": id, "ready": bool, "reason": str}`` (nothing downloaded; the
    default is chosen by whether the Hub answered for it, asked at most every few minutes: :mod:`app.weights.probe`)."""
    chosen = segmenter_spec(model_id)
    why = unavailable_reason(chosen)
    return {"segmenter": chosen.id, "name": chosen.name, "licence": str(chosen.licence), "ready": not why,
            "method": GRABCUT if why else chosen.id, "reason": why or pretrained.locate(chosen).reason}


# ----------------------------------------------------------------------- embeddings


def embedding_of(segmenter: Segmenter, photo: Photo) -> tuple[Embedding, bool]:
    """The photo's embedding by ``segmenter`` and whether it was already there (or being made).

    Kept from an earlier click, or awaited from an encode in flight (:func:`prepare`, another
    click), else encoded now and kept: one encode per photo whatever the timing.
    """
    small = encoder_input(photo)
    key = (segmenter.spec.id, photo_key(small, photo.size))
    with _embeddings_lock:
        found = _embeddings.get(key)
        if found is not None:
            _embeddings.move_to_end(key)
            return found, True
        pending = _encoding.get(key)
        if pending is None:
            _encoding[key] = mine = Future()
    if pending is not None:
        return pending.result(), True
    try:
        embedding = segmenter.encode(small, photo.size)
    except BaseException as exc:
        mine.set_exception(exc)
        raise
    finally:
        with _embeddings_lock:
            _encoding.pop(key, None)
    with _embeddings_lock:
        _embeddings[key] = embedding
        while len(_embeddings) > EMBEDDINGS_KEPT:
            _embeddings.popitem(last=False)
    mine.set_result(embedding)
    return embedding, False


def prepare(photo: Photo) -> threading.Thread | None:
    """Encode ``photo`` for clicks in the background, if the default segmenter's weights are here.

    Never downloads (a visitor who only paints must not start a download) and never on a ZeroGPU
    Space (the GPU is attached only inside a GPU call; there the encode is short anyway). Returns
    the worker thread, or None when nothing was started; a failure is only logged: the first
    click runs the same steps again and reports it.
    """
    chosen = segmenter_spec(None)
    if os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "true"):
        return None
    try:
        if pretrained.locate(chosen).status not in ("local", "cached"):
            return None
    except InpaintError:  # misconfigured: the click says so
        return None

    def encode() -> None:
        try:
            embedding_of(get_segmenter(chosen), photo)
        except Exception as exc:  # noqa: BLE001 - the click that needs it says what went wrong
            log.info("encoding the photo ahead of clicks failed: %s", exc)

    worker = threading.Thread(target=encode, name="encode-for-clicks", daemon=True)
    worker.start()
    return worker


def encoder_input(photo: Photo) -> np.ndarray:
    """The photo's RGB at most :data:`ENCODE_SIDE` px on its long side: all the encoder ever sees."""
    rgb = photo.rgb8
    w, h = photo.size
    f = ENCODE_SIDE / max(w, h)
    if f >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def photo_key(small: np.ndarray, size: tuple[int, int]) -> str:
    """A hash of what the encoder sees and of the photo's size: the same photo uploaded twice hits."""
    digest = hashlib.blake2b(small.tobytes(), digest_size=16)
    digest.update(repr((small.shape, size)).encode())
    return digest.hexdigest()


def forget_embeddings() -> None:
    """Drop every kept embedding (tests; a "free memory" action)."""
    with _embeddings_lock:
        _embeddings.clear()


# -------------------------------------------------------------------------- prompts


def check_prompts(points: Any, box: Any, size: tuple[int, int]) -> tuple[list[Point], Box | None]:
    """Prompts as numbers inside the photo, or :class:`InpaintError` saying what is wrong.

    A box may be given as ``[]``/``None`` (none). Coordinates may reach the photo's edge
    (``x == width``) but not beyond; at least one positive point or a box is needed.
    """
    w, h = size
    if points is None:
        points = []
    if not isinstance(points, (list, tuple)):
        raise InpaintError("Points must be a list of [x, y, label] (label 1 = add, 0 = remove).")
    if len(points) > MAX_POINTS:
        raise InpaintError(f"{len(points)} points is too many: at most {MAX_POINTS} per selection.")
    checked = [_point(p, w, h) for p in points]
    frame = _box(box, w, h)
    if frame is None and not any(label for *_, label in checked):
        raise InpaintError("Click on the object (a point with label 1) or drag a box around it: "
                           "points that only remove select nothing.")
    return checked, frame


def _point(value: Any, w: int, h: int) -> Point:
    if not isinstance(value, (list, tuple)) or len(value) not in (2, 3):
        raise InpaintError(f"A point must be [x, y, label], not {str(value)[:60]}.")
    x, y = _coordinate(value[0], w, "x"), _coordinate(value[1], h, "y")
    label = value[2] if len(value) == 3 else 1
    if label not in (0, 1) or isinstance(label, str):
        raise InpaintError(f"A point's label must be 1 (add) or 0 (remove), not {repr(label)[:40]}.")
    return x, y, int(label)


def _box(value: Any, w: int, h: int) -> Box | None:
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0):
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise InpaintError(f"A box must be [x0, y0, x1, y1], not {str(value)[:60]}.")
    x0, x1 = sorted((_coordinate(value[0], w, "x"), _coordinate(value[2], w, "x")))
    y0, y1 = sorted((_coordinate(value[1], h, "y"), _coordinate(value[3], h, "y")))
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise InpaintError("The box is too small: drag it around the object.")
    return x0, y0, x1, y1


def _coordinate(value: Any, limit: int, axis: str) -> float:
    try:  # an integer too large for a float (10**400, valid JSON) is refused like infinity
        number = float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else math.nan
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise InpaintError(f"A point's {axis} must be a number of pixels, not {str(value)[:40]}.")
    if not 0 <= number <= limit:
        raise InpaintError(f"{axis} = {number:g} is outside the photo (0 to {limit} px): coordinates are the "
                           "photo's own pixels, not the preview's.")
    return number


# ---------------------------------------------------------------------- with the hole


def combine(hole: np.ndarray | None, selected: np.ndarray, subtract: bool = False) -> np.ndarray:
    """The painted hole with a selection added (or taken out); painting stays possible on top."""
    if hole is None:
        return selected.copy() if not subtract else np.zeros_like(selected)
    return hole & ~selected if subtract else hole | selected
