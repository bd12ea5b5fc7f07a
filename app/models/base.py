"""The one interface every inpainter implements, classical or neural.

The pipeline hands a model a batch of equally sized crops that already respect the
model's size multiple; the model returns its raw fill for the whole crop and the
pipeline alone decides which pixels of it reach the user (only the hole, with a
feathered seam). Keeping compositing out of the models is what lets the pipeline
promise that nothing outside the painted area changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass
class Batch:
    """Crops to fill: all the same size, a multiple of the model's ``size_multiple``."""

    images: np.ndarray  # (B, H, W, 3) uint8 RGB
    holes: np.ndarray  # (B, H, W) bool, True = pixel to fill
    # Optional user guidance keyed by name, e.g. {"edges": (B, H, W) bool strokes}.
    guides: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        b, h, w, c = self.images.shape
        if c != 3 or self.images.dtype != np.uint8:
            raise ValueError("Batch.images must be (B, H, W, 3) uint8")
        if self.holes.shape != (b, h, w):
            raise ValueError(f"Batch.holes must be {(b, h, w)}, got {self.holes.shape}")


@dataclass
class Prediction:
    """What a model produced for a :class:`Batch`."""

    samples: np.ndarray  # (B, S, H, W, 3) float32 in [0, 1]; S = number of samples
    # Side outputs worth showing next to the result, (B, H, W) float32 in [0, 1],
    # e.g. {"edges": predicted edge map}.
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    scores: np.ndarray | None = None  # (B, S) per-sample quality score, higher = better


class Inpainter(Protocol):
    """A ready-to-run model (weights loaded, on its device)."""

    def inpaint(self, batch: Batch, *, samples: int = 1, seed: int = 0) -> Prediction:
        """Fill the holes of every crop; diverse models return ``samples`` fills each.

        Sample k of a given seed must not depend on how many samples were asked for
        nor on earlier calls, so users can reproduce a fill they liked.
        """
        ...
