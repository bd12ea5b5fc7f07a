"""Find the people: detect every person, mask each with the segmenter, tell the subject from the photobombers.

``find_people(photo)`` runs the person detector of the registry (RT-DETRv2, COCO's ``person``
class), prompts the segmenter with each box (one decoder call for all of them, on the same
kept embedding clicks use; GrabCut per box when the segmenter cannot run), grows each mask to
cover the edge halo an eraser must not leave behind, and marks the subject: the person with the
largest share of the photo weighted by how central they are (:func:`subject_index`). Everyone
else is a photobomber: :func:`photobombers_mask` is the hole that erases them.

Without the detector's weights there is no classical stand-in worth offering: a clear
:class:`~app.errors.ModelUnavailableError` says so, and clicking on each person still works.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from app import masks, model_cache, options, registry
from app.errors import InpaintError, ModelUnavailableError, OutOfMemoryError, WeightsError
from app.images import Photo, load_photo
from app.selection.clicks import GRABCUT, embedding_of
from app.selection.grabcut import grabcut_select
from app.selection.segmenters import Box, get_segmenter, must_download, segmenter_spec, unavailable_reason
from app.specs import PretrainedSpec
from app.weights import pretrained
from app.weights.hub import Progress

DETECT_SIDE = 640  # RT-DETR's input: the photo stretched to 640 x 640, values 0..1 (its image processor's defaults)
THRESHOLD = 0.5  # least detector score that counts as a person
DEFAULT_GROW = 8  # px: the halo of hair and motion blur around a person
MAX_PEOPLE = 32
NMS_IOU = 0.7  # overlapping boxes of one person (RT-DETR is NMS-free, but not always)


@dataclass(frozen=True)
class Person:
    """One detected person: their mask at the photo's size, box, detector score, and whether they are the subject."""

    mask: np.ndarray  # (H, W) bool, grown by ``grow``
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in photo pixels
    score: float
    is_subject: bool
    method: str  # the segmenter that drew the mask, or "grabcut"

    def info(self) -> dict[str, Any]:
        return {"box": list(self.box), "score": round(self.score, 4), "subject": self.is_subject,
                "method": self.method, "pixels": int(self.mask.sum())}


class Detector(torch.nn.Module):
    """A loaded RT-DETR-family detector with its own pre- and post-processing (a Module for the model cache)."""

    def __init__(self, spec: PretrainedSpec, net: torch.nn.Module) -> None:
        super().__init__()
        self.spec, self.net = spec, net
        labels = {int(k): str(v).lower() for k, v in net.config.id2label.items()}
        self.person = [k for k, v in labels.items() if v == "person"]
        if not self.person:
            raise WeightsError(f"{spec.name}: its config has no 'person' class, so it cannot find people.")

    def detect(self, rgb: np.ndarray, threshold: float = THRESHOLD) -> list[tuple[Box, float]]:
        """Person boxes (photo pixels) with their scores, best first."""
        h, w = rgb.shape[:2]
        small = cv2.resize(rgb, (DETECT_SIDE, DETECT_SIDE), interpolation=cv2.INTER_AREA if max(w, h) > DETECT_SIDE
                           else cv2.INTER_LINEAR)
        device = next(self.net.parameters()).device
        pixels = torch.from_numpy(small).permute(2, 0, 1)[None].float().div(255).to(device)
        with torch.inference_mode():
            out = self.net(pixel_values=pixels)
        scores = out.logits[0, :, self.person].float().sigmoid().max(dim=-1).values.cpu()
        cx, cy, bw, bh = out.pred_boxes[0].float().cpu().unbind(-1)
        boxes = torch.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h], -1)
        return _keep(boxes, scores, threshold, (w, h))


def _keep(boxes: torch.Tensor, scores: torch.Tensor, threshold: float,
          size: tuple[int, int]) -> list[tuple[Box, float]]:
    from torchvision.ops import nms

    w, h = size
    boxes = torch.stack([boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h), boxes[:, 2].clamp(0, w),
                         boxes[:, 3].clamp(0, h)], -1)
    ok = (scores >= threshold) & (boxes[:, 2] - boxes[:, 0] >= 2) & (boxes[:, 3] - boxes[:, 1] >= 2)
    boxes, scores = boxes[ok], scores[ok]
    order = nms(boxes, scores, NMS_IOU)[:MAX_PEOPLE]
    return [(tuple(float(v) for v in boxes[i]), float(scores[i])) for i in order]


def detector_spec() -> PretrainedSpec:
    return registry.pretrained(registry.DEFAULT_DETECTOR)


def get_detector(spec: PretrainedSpec, progress: Progress | None = None) -> Detector:
    """The loaded detector (downloaded and loaded on first use; kept by the model cache)."""
    def build() -> Detector:
        folder = pretrained.obtain(spec, progress)
        return Detector(spec, pretrained.load(spec, folder, model_cache.select_device()))

    return model_cache.get_or_build(spec, build)


def detector_status() -> dict[str, Any]:
    """Whether "Find people" can run now: ``{"detector": id, "ready": bool, "reason": str}`` (no network)."""
    spec = detector_spec()
    why = unavailable_reason(spec)
    return {"detector": spec.id, "name": spec.name, "licence": str(spec.licence), "ready": not why,
            "reason": why or pretrained.locate(spec).reason}


def find_people(photo: Any, grow: int = DEFAULT_GROW, threshold: float = THRESHOLD, segmenter: str = "auto",
                progress: Progress | None = None, fetch: bool = True) -> list[Person]:
    """Every person in ``photo``, masked and grown by ``grow`` px, the subject marked, largest first.

    ``segmenter``: ``"auto"`` (the default segmenter if it can run, else GrabCut per box),
    ``"grabcut"`` or a segmenter id. Raises :class:`ModelUnavailableError` when the detector
    cannot run (with what to do instead). ``fetch=False``: weights not here yet are not downloaded
    now (the web app fetched them before taking its select slot, :mod:`app.selection.lane`).
    """
    photo = photo if isinstance(photo, Photo) else load_photo(photo)
    radius = int(options.knob("grow").check(grow))
    threshold = check_threshold(threshold)
    try:
        if not fetch and must_download(detector_spec()):
            raise ModelUnavailableError(f"{detector_spec().name}'s weights have not been downloaded yet.")
        detector = get_detector(detector_spec(), progress)
    except (ModelUnavailableError, WeightsError) as exc:  # not here, not pinned, not on the Hub, or refused
        raise ModelUnavailableError(f"Finding people needs the person detector: {exc} "
                                    "Click on each person to select them instead.") from exc
    found = detector.detect(photo.rgb8, threshold)
    drawn, method = _masks(photo, [box for box, _ in found], segmenter, progress, fetch)
    subject = subject_index([box for box, _ in found], photo.size)
    people = [Person(masks.grow(mask, radius), _int_box(box), score, i == subject, method)
              for i, ((box, score), mask) in enumerate(zip(found, drawn))]
    return sorted(people, key=lambda p: -int(p.mask.sum()))


def _masks(photo: Photo, boxes: list[Box], segmenter: str, progress: Progress | None,
           fetch: bool = True) -> tuple[list[np.ndarray], str]:
    """One mask per box: the segmenter prompted by the box, else GrabCut seeded by it."""
    if not boxes:
        return [], GRABCUT
    if segmenter != GRABCUT:
        chosen = segmenter_spec(None if segmenter == "auto" else segmenter)
        why = unavailable_reason(chosen) or ("" if fetch or not must_download(chosen) else
                                             f"{chosen.name}'s weights have not been downloaded yet")
        if why and segmenter != "auto":
            raise ModelUnavailableError(why)
        if not why:
            try:
                model = get_segmenter(chosen, progress)
                embedding, _ = embedding_of(model, photo)
                return [mask for mask, _ in model.decode_boxes(embedding, boxes)], chosen.id
            except (ModelUnavailableError, WeightsError, OutOfMemoryError):
                if segmenter != "auto":
                    raise
    return [grabcut_select(photo.rgb8, (), box) for box in boxes], GRABCUT


def check_threshold(value: Any) -> float:
    """The detection threshold as a number from 0 to 1, or :class:`InpaintError` (NaN, text, 1e400 and 10**400 too)."""
    try:
        number = float(value) if not isinstance(value, (bool, str)) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    except OverflowError:
        number = math.inf
    if not (math.isfinite(number) and 0 <= number <= 1):
        raise InpaintError(f"The detection threshold must be a number from 0 to 1, not {repr(value)[:40]}.")
    return number


def subject_index(boxes: Sequence[Box], size: tuple[int, int]) -> int | None:
    """The subject among ``boxes``: largest share of the photo times closeness to its centre (None if nobody).

    Closeness is 1 at the centre and falls to 0.25 at a corner, so a large person at the edge can
    still be the subject, but two people of a size are told apart by who is in the middle.
    """
    if not boxes:
        return None
    w, h = size
    half_diagonal = math.hypot(w, h) / 2

    def weight(box: Box) -> float:
        x0, y0, x1, y1 = box
        off = math.hypot((x0 + x1) / 2 - w / 2, (y0 + y1) / 2 - h / 2) / half_diagonal
        return (x1 - x0) * (y1 - y0) / (w * h) * (1 - 0.75 * min(off, 1.0))

    return max(range(len(boxes)), key=lambda i: weight(boxes[i]))


def photobombers_mask(people: Sequence[Person], size: tuple[int, int] | None = None,
                      erase: Sequence[bool] | None = None) -> np.ndarray:
    """The hole that erases the chosen people: by default everyone but the subject (``erase`` per person overrides)."""
    if not people and size is None:
        raise InpaintError("Nobody was found in the photo, so there is nobody to erase.")
    shape = people[0].mask.shape if people else (size[1], size[0])
    hole = np.zeros(shape, bool)
    for i, person in enumerate(people):
        if (erase[i] if erase is not None else not person.is_subject):
            hole |= person.mask
    return hole


def _int_box(box: Box) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1)


def timed_find_people(photo: Any, **kwargs: Any) -> tuple[list[Person], float]:
    """:func:`find_people` and its seconds (the API and the benchmark report both)."""
    started = time.perf_counter()
    return find_people(photo, **kwargs), time.perf_counter() - started
