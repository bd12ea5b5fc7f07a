"""What the mmagic inpainting releases (DeepFill v1/v2, PConv, GLCIC) share: how they see a crop.

The official inference (``InpaintingInferencer`` + ``DataPreprocessor``, MODELS.md section 5)
feeds the networks **BGR** images normalised to ``(x - 127.5) / 127.5``, with the hole first set
to mid-grey 127.5 (so exactly 0 after normalising) and a mask where 1 = hole. Its output is
mapped back with ``x * 127.5 + 127.5`` and clamped to 0..255. The pipeline pastes the raw fill
itself (with its feathered seam), so only the hole's values of :func:`to_prediction` are used.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from app.errors import CropSizeError
from app.models.base import Batch, NeuralNetwork, Prediction

#: ``DataPreprocessor(mean=[127.5], std=[127.5])``.
MEAN = 127.5
STD = 127.5


def network_inputs(batch: Batch, device: torch.device, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """(masked BGR image in [-1, 1], holes exactly 0) as (B, 3, H, W) and the hole mask (B, 1, H, W), 1 = hole."""
    bgr = torch.from_numpy(batch.images[..., ::-1].copy()).to(device).permute(0, 3, 1, 2).float()
    mask = torch.from_numpy(batch.holes).to(device)[:, None].float()
    masked = bgr * (1 - mask) + MEAN * mask  # GetMaskedImage
    return ((masked - MEAN) / STD).to(dtype), mask.to(dtype)


def to_pixels(raw: Tensor) -> Tensor:
    """Normalised network output -> 0..255 as ``DataPreprocessor.destruct`` computes it (clamped)."""
    return (raw.float() * STD + MEAN).clamp(0, 255)


def to_prediction(raw: Tensor) -> Prediction:
    """The raw generator output (B, 3, H, W), normalised BGR, as one RGB sample per crop in [0, 1]."""
    rgb = to_pixels(raw).flip(1) / 255
    return Prediction(samples=rgb.permute(0, 2, 3, 1)[:, None].contiguous().cpu().numpy())


def check_size(network: str, batch: Batch, multiple: int, minimum: int = 1) -> None:
    """Refuse crops the network cannot take: the official inference neither pads nor resizes (MODELS.md 5).

    Off the multiple, skip concatenations or transposed convolutions stop matching the input size;
    below ``minimum`` the downsampled features are too small for the network's windows.
    """
    _, height, width = batch.holes.shape
    if height % multiple or width % multiple or min(height, width) < minimum:
        least = f" and at least {minimum} px" if minimum > multiple else ""
        raise CropSizeError(f"{network} needs crop sides that are multiples of {multiple}{least}, "
                            f"got {height}x{width}.")



class MmagicInpainter:
    """``inpaint`` of the mmagic releases, written once; a network supplies only :meth:`generate`.

    Mixed in before :class:`~app.models.base.NeuralNetwork` (which requires ``FACTS`` on every
    subclass, so it cannot be a common base class): sizes are checked against the rule the
    official code enforces by failing, the crop becomes the official BGR input, the network runs
    under its :meth:`~NeuralNetwork.precision`, and its raw output becomes one sample per crop.
    Deterministic: ``samples`` and ``seed`` are accepted for the common interface only. The
    pipeline composites.
    """

    NAME: ClassVar[str]  # as size errors name the network
    MIN_SIDE: ClassVar[int] = 1  # least crop side the network's windows allow

    @torch.inference_mode()
    def inpaint(self: NeuralNetwork, batch: Batch, *, samples: int = 1, seed: int = 0) -> Prediction:
        """See :meth:`app.models.base.Inpainter.inpaint`."""
        del samples, seed
        check_size(self.NAME, batch, self.FACTS.size_multiple, self.MIN_SIDE)
        masked, hole = network_inputs(batch, self.device, next(self.parameters()).dtype)
        with self.precision():
            raw = self.generate(masked, hole)
        return to_prediction(raw)

    def generate(self, masked: Tensor, hole: Tensor) -> Tensor:
        """The raw fill (B, 3, H, W), normalised BGR, of ``network_inputs``' masked image and hole mask."""
        raise NotImplementedError
