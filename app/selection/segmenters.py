"""SAM-family segmenters (SAM, SlimSAM, SAM 2.1): encode a photo once, then decode each click.

The expensive half (the image encoder, ~1 s on a CPU) runs once per photo; its embedding is
kept by :mod:`app.selection.clicks` and every click only runs the prompt encoder and mask decoder
(milliseconds). Pre- and post-processing follow the ``transformers`` processors of each family
(written out here so only ``config.json`` and the weights are fetched):

* SAM / SlimSAM: the long side resized to the model's input side (1024), ImageNet
  normalisation, padded to a square at the bottom and right; points scaled by the same factor;
  masks upscaled to the square, the padding cropped, then scaled to the photo.
* SAM 2.x: the photo stretched to the square, ImageNet normalisation; x and y scaled apart;
  masks scaled straight to the photo.

Prompts are in the photo's pixel coordinates (as displayed: EXIF rotation applied).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from app import model_cache, registry
from app.errors import InpaintError, ModelUnavailableError
from app.registry import SEGMENTERS
from app.specs import PretrainedSpec
from app.weights import pretrained
from app.weights.hub import Progress

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)

Point = tuple[float, float, int]  # x, y in photo pixels; label 1 = add, 0 = remove
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in photo pixels


@dataclass(frozen=True)
class Embedding:
    """One photo encoded by one segmenter: what every later click on that photo reuses."""

    features: Any  # a tensor (SAM) or a list of tensors (SAM 2)
    size: tuple[int, int]  # the photo's (width, height)
    scale: tuple[float, float]  # photo pixel -> model input pixel, (x, y)
    valid: tuple[int, int]  # (width, height) of the photo inside the model's square (SAM pads the rest)


class Segmenter(torch.nn.Module):
    """A loaded SAM-family network with its own pre- and post-processing.

    A ``Module`` so the model cache counts its weights against the memory budget;
    ``encodes`` counts image encodings (the tests check that clicks reuse them).
    """

    def __init__(self, spec: PretrainedSpec, net: torch.nn.Module) -> None:
        super().__init__()
        self.spec, self.net = spec, net
        self.stretch = spec.model_type != "sam"  # SAM 2 stretches to the square, SAM pads
        self.side = int(_side(net.config.prompt_encoder_config.image_size))
        self.encodes = 0

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def encode(self, rgb: np.ndarray, size: tuple[int, int] | None = None) -> Embedding:
        """The image embedding of ``rgb`` (H, W, 3 uint8): the one expensive step per photo.

        ``rgb`` may be a shrunk copy of the photo; ``size`` is then the photo's own (width, height),
        the frame prompts come in and masks go out at.
        """
        w, h = size or (rgb.shape[1], rgb.shape[0])
        if self.stretch:
            scale, valid = (self.side / w, self.side / h), (self.side, self.side)
        else:
            f = self.side / max(h, w)
            scale, valid = (f, f), (max(1, round(w * f)), max(1, round(h * f)))
        pixels = self._pixels(rgb, valid)
        with torch.inference_mode():
            features = self.net.get_image_embeddings(pixels)
        self.encodes += 1
        return Embedding(features, (w, h), scale, valid)

    def _pixels(self, rgb: np.ndarray, valid: tuple[int, int]) -> torch.Tensor:
        small = cv2.resize(rgb, valid, interpolation=cv2.INTER_AREA if valid[0] < rgb.shape[1] else cv2.INTER_LINEAR)
        square = np.zeros((self.side, self.side, 3), np.float32)
        square[: valid[1], : valid[0]] = (small.astype(np.float32) / 255 - MEAN) / STD
        return torch.from_numpy(square).permute(2, 0, 1)[None].to(self.device)

    def decode(self, embedding: Embedding, points: Sequence[Point] = (), box: Box | None = None) -> tuple[np.ndarray,
                                                                                                       float]:
        """(H, W) bool mask at the photo's size and the model's own quality score, for one prompt."""
        single = len(points) == 1 and box is None  # one click is ambiguous: take the best of three masks
        kwargs: dict[str, Any] = {}
        if points:
            xy = [[x * embedding.scale[0], y * embedding.scale[1]] for x, y, _ in points]
            kwargs["input_points"] = torch.tensor([[xy]], dtype=torch.float32, device=self.device)
            kwargs["input_labels"] = torch.tensor([[[int(label) for *_, label in points]]], device=self.device)
        if box is not None:
            kwargs["input_boxes"] = self._boxes(embedding, [box])
        logits, scores = self._run(embedding, kwargs, multimask=single)
        best = int(scores[0, 0].argmax())
        return self._to_photo(embedding, logits[0, 0, best]), float(scores[0, 0, best])

    def decode_boxes(self, embedding: Embedding, boxes: Sequence[Box]) -> list[tuple[np.ndarray, float]]:
        """One mask per box, in a single decoder call (the people of a photo)."""
        if not boxes:
            return []
        logits, scores = self._run(embedding, {"input_boxes": self._boxes(embedding, boxes)}, multimask=False)
        return [(self._to_photo(embedding, logits[0, i, 0]), float(scores[0, i, 0])) for i in range(len(boxes))]

    def _boxes(self, embedding: Embedding, boxes: Sequence[Box]) -> torch.Tensor:
        sx, sy = embedding.scale
        scaled = [[x0 * sx, y0 * sy, x1 * sx, y1 * sy] for x0, y0, x1, y1 in boxes]
        return torch.tensor([scaled], dtype=torch.float32, device=self.device)

    def _run(self, embedding: Embedding, prompts: dict[str, Any], multimask: bool) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.inference_mode():
            out = self.net(image_embeddings=embedding.features, multimask_output=multimask, **prompts)
        return out.pred_masks.float().cpu(), out.iou_scores.float().cpu()

    def _to_photo(self, embedding: Embedding, logits: torch.Tensor) -> np.ndarray:
        """Low-resolution mask logits -> (H, W) bool at the photo's size."""
        low = logits.numpy()
        if not self.stretch:  # SAM: the square holds the photo in its top-left corner
            square = cv2.resize(low, (self.side, self.side), interpolation=cv2.INTER_LINEAR)
            low = square[: embedding.valid[1], : embedding.valid[0]]
        return cv2.resize(low, embedding.size, interpolation=cv2.INTER_LINEAR) > 0


def _side(size: int | Sequence[int]) -> int:
    return size if isinstance(size, int) else int(size[0])


def segmenter_spec(model_id: str | None = None) -> PretrainedSpec:
    """The segmenter ``model_id``; by default the first of :data:`~app.registry.SEGMENTER_PREFERENCE`
    that can be had, else the last of them (the one messages name when none can)."""
    if model_id is None:
        preferred = [_by_id(m) for m in registry.SEGMENTER_PREFERENCE]
        return next((s for s in preferred[:-1] if can_be_had(s)), preferred[-1])
    return _by_id(model_id)


def can_be_had(spec: PretrainedSpec) -> bool:
    """Its weights are here, or they are to be downloaded and the Hub answered for them.

    The Hub is asked (a HEAD per file, remembered a few minutes: :mod:`app.weights.probe`) only for
    weights not here yet, so EdgeTAM is preferred wherever its repo answers, even before its first
    use pins a commit, and a repo that does not answer leaves the clicks to the next segmenter.
    """
    try:
        location = pretrained.locate(spec)
    except InpaintError:
        return False
    if location.status == "remote":
        return pretrained.silence(spec) is None
    return location.status != "missing"


def _by_id(model_id: str) -> PretrainedSpec:
    for candidate in SEGMENTERS:
        if candidate.id == model_id:
            return candidate
    raise ModelUnavailableError(f"Unknown segmenter '{model_id}'. Choose from: "
                                f"{', '.join(c.id for c in SEGMENTERS)}, or grabcut.")


def unavailable_reason(chosen: PretrainedSpec) -> str:
    """Why ``chosen`` cannot run now ("" = it can, maybe after a download), decided without network."""
    try:
        location = pretrained.locate(chosen)
    except InpaintError as exc:
        return str(exc)
    return location.reason if location.status == "missing" else ""


def must_download(spec: PretrainedSpec) -> bool:
    """True when ``spec``'s weights are neither local nor cached, but could be downloaded (no network asked)."""
    try:
        return pretrained.locate(spec).status == "remote"
    except InpaintError:
        return False  # misconfigured: unavailable_reason says why


def get_segmenter(chosen: PretrainedSpec, progress: Progress | None = None) -> Segmenter:
    """The loaded segmenter of ``chosen`` (downloaded and loaded on first use; kept by the model cache)."""
    def build() -> Segmenter:
        folder = pretrained.obtain(chosen, progress)
        return Segmenter(chosen, pretrained.load(chosen, folder, model_cache.select_device()))

    return model_cache.get_or_build(chosen, build)
