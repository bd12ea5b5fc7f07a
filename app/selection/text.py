"""Find the text: the lettering of a page (or a photo) as one mask, ready for any inpainter to erase.

``find_text(photo)`` runs the registry's text finder (the comic text segmenter the studio grew from,
:mod:`app.models.textseg`) exactly as the official demo does (``EvaluateSet(resize=600)`` and
``process``, MODELS.md section 12):

1. the photo (RGB, as displayed) resized so its long side is 600 px, each side ``int(side * 600 / long) // 8 * 8``,
   PIL bicubic; ``/255``, normalised with the authors' mean and std; zero-padded to 600 on the right
   (when narrower than 600) or else at the bottom;
2. the logits, ``sigmoid > 0.5``, a 3x3 max-pool (a one-pixel dilation at 600 px);
3. the padding cut off, the 0/1 mask resized bilinearly (``align_corners=False``) to the photo's own
   size and kept wherever it is above 0;

then grown by ``grow`` px at the photo's size (:func:`app.masks.grow`), as lettering needs: the
anti-aliased edge and the outline around letters must go with them.

Large pages need nothing else: the official code always works at 600 px on the long side, whatever
the page's size, so the network's time and memory are the same for a 600 px scan and a 6000 px one
(only the resize and the full-size mask grow with it). Tiles would give what the official code does
not (a network trained on pages seen at 600 px, fed 600 px pieces of a page magnified several times);
without the released weights here nothing could show them better, so there are none.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from app import masks, model_cache, options, registry
from app.errors import InpaintError, ModelUnavailableError, WeightsError
from app.images import Photo, load_photo
from app.models.textseg import MEAN, STD, STRIDE, WORK_SIDE
from app.specs import ModelSpec
from app.weights.hub import Progress
from app.workers import DOWNLOADS

DEFAULT_GROW = 4  # px at the photo's size: the anti-aliased edge and outline of the letters
INSTEAD = "Paint over the lettering instead."


@dataclass(frozen=True)
class FoundText:
    """The lettering found in a photo: its mask at the photo's size (grown), and how it was found."""

    mask: np.ndarray  # (H, W) bool
    method: str  # the text finder's id
    seconds: float
    grow: int

    def info(self) -> dict[str, Any]:
        return {"method": self.method, "seconds": round(self.seconds, 3), "grow": self.grow,
                "pixels": int(self.mask.sum()), "share": round(float(self.mask.mean()), 5)}


@dataclass(frozen=True)
class Prepared:
    """The network's input for one photo and how to take its output back to the photo's size."""

    x: torch.Tensor  # (1, 3, S', S'') normalised, padded
    valid: tuple[int, int]  # (width, height) of the resized photo inside ``x``
    size: tuple[int, int]  # the photo's (width, height)


def finder_spec(model_id: str | None = None) -> ModelSpec:
    return registry.text_finder(model_id or registry.DEFAULT_TEXT_FINDER)


def working_size(size: tuple[int, int], side: int = WORK_SIDE) -> tuple[int, int]:
    """The photo's size at the network: long side ``side``, each side ``int(side * ratio) // 8 * 8`` (official)."""
    ratio = side / max(size)
    return tuple(int(v * ratio) // STRIDE * STRIDE for v in size)  # type: ignore[return-value]


def prepare(rgb: np.ndarray, side: int = WORK_SIDE) -> Prepared:
    """The official ``EvaluateSet.resize_pad_tensor``: bicubic resize, normalise, zero-pad right or bottom."""
    h, w = rgb.shape[:2]
    small = working_size((w, h), side)
    if min(small) < STRIDE:
        raise InpaintError(f"The photo is too narrow to look for text in: {w}x{h} px becomes {small[0]}x{small[1]} "
                           f"at {side} px on its long side (each side must keep at least {STRIDE} px).")
    resized = np.asarray(Image.fromarray(rgb).resize(small, Image.BICUBIC), np.float32) / 255
    x = torch.from_numpy(resized).permute(2, 0, 1)
    x = (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
    pad = (0, side - small[0], 0, 0) if small[0] < side else (0, 0, 0, side - small[1])
    return Prepared(F.pad(x[None], pad, value=0.0), small, (w, h))


def network_mask(logits: torch.Tensor) -> torch.Tensor:
    """``MaxPool2d(3, 1, 1)(sigmoid(logits) > 0.5)``: the 0/1 mask at the network's size (fixtures' ``mask_net``)."""
    hit = (torch.sigmoid(logits) > 0.5).float()
    return F.max_pool2d(hit, 3, stride=1, padding=1)


def full_mask(net_mask: torch.Tensor, prepared: Prepared) -> np.ndarray:
    """The padding cut off, bilinear (``align_corners=False``) to the photo's size, ``> 0``: (H, W) bool."""
    w, h = prepared.valid
    crop = net_mask[..., :h, :w]
    width, height = prepared.size
    full = F.interpolate(crop.reshape(1, 1, h, w), size=(height, width), mode="bilinear", align_corners=False)
    return (full[0, 0] > 0).numpy()


def segment(net: torch.nn.Module, rgb: np.ndarray) -> np.ndarray:
    """The official demo's mask of ``rgb`` (H, W, 3 uint8) at its own size, before any growing."""
    prepared = prepare(rgb)
    return full_mask(network_mask(net.logits(prepared.x)), prepared)


def find_text(photo: Any, grow: int = DEFAULT_GROW, finder: str | None = None, progress: Progress | None = None,
              fetch: bool = True) -> FoundText:
    """The lettering of ``photo`` as a mask of its size, grown by ``grow`` px (0 to 64).

    Raises :class:`ModelUnavailableError` when the text finder cannot run, saying what to do instead.
    ``fetch=False``: weights not here yet are not downloaded now (the web app fetched them before
    taking its select slot).
    """
    photo = photo if isinstance(photo, Photo) else load_photo(photo)
    radius = int(options.knob("grow").check(grow))
    spec = finder_spec(finder)
    started = time.perf_counter()
    prepared = prepare(photo.rgb8)  # a photo the network cannot read is refused before anything is loaded
    net = get_finder(spec, progress, fetch)
    found = full_mask(network_mask(net.logits(prepared.x)), prepared)
    return FoundText(masks.grow(found, radius), spec.id, time.perf_counter() - started, radius)


def get_finder(spec: ModelSpec, progress: Progress | None = None, fetch: bool = True) -> torch.nn.Module:
    """The loaded text finder (downloaded on first use unless ``fetch`` is False; kept by the model cache)."""
    try:
        if not fetch and model_cache.needs_download(spec):
            raise ModelUnavailableError(f"{spec.name}'s weights have not been downloaded yet.")
        return model_cache.get_inpainter(spec, progress)
    except (ModelUnavailableError, WeightsError) as exc:
        raise ModelUnavailableError(f"Finding text needs the text segmenter: {exc} {INSTEAD}") from exc


def fetch_finder(spec: ModelSpec, progress: Progress | None = None) -> InpaintError | None:
    """Download the text finder's weights when they must come from elsewhere, holding no select slot.

    Returns why the download failed (the call then fails with it), or None.
    """
    if not model_cache.needs_download(spec):
        return None
    with DOWNLOADS:
        try:
            model_cache.download(spec, progress)
        except InpaintError as exc:
            return exc
    return None


def finder_status(model_id: str | None = None) -> dict[str, Any]:
    """Whether "Find text" can run now: ``{"finder": id, "ready": bool, "reason": str}`` (no network)."""
    spec = finder_spec(model_id)
    state = model_cache.availability(spec)
    return {"finder": spec.id, "name": spec.name, "licence": str(spec.licence), "ready": state.ok,
            "reason": state.reason}
