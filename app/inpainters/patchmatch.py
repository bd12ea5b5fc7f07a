"""PatchMatch (PyPatchMatch): copies real texture from elsewhere in the photo."""

from __future__ import annotations

import numpy as np
from patchmatch import patch_match

from app.errors import ModelUnavailableError
from app.models.base import Batch, Prediction


class PatchMatchInpainter:
    """PyPatchMatch's ``inpaint``; deterministic, so one sample per crop."""

    def __init__(self, patch_size: int = 5) -> None:
        if not patch_match.patchmatch_available:
            raise ModelUnavailableError("PatchMatch is unavailable: its compiled library failed to load.")
        self.patch_size = patch_size

    def inpaint(self, batch: Batch, *, samples: int = 1, seed: int = 0) -> Prediction:
        fills = [patch_match.inpaint(image, hole.astype(np.uint8) * 255, patch_size=self.patch_size)
                 for image, hole in zip(batch.images, batch.holes)]
        return Prediction(samples=np.stack(fills)[:, None].astype(np.float32) / 255.0)
