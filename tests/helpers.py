"""Small builders shared by the tests (photos with structure, masks)."""

from __future__ import annotations

import numpy as np


def textured(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """An RGB uint8 image with gradients and noise, so fills are never trivially equal."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], axis=2)
    return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


def box_hole(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    hole = np.zeros((h, w), bool)
    hole[y0:y1, x0:x1] = True
    return hole
