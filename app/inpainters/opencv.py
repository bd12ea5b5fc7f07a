"""OpenCV's two classical inpainters: no weights, any size, instant on small holes."""

from __future__ import annotations

import cv2
import numpy as np

from app.models.base import Batch, Prediction

_FLAGS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


class OpenCVInpainter:
    """``cv2.inpaint`` with Telea's fast marching or the Navier-Stokes method."""

    def __init__(self, method: str = "telea", radius: int = 5) -> None:
        self.flag = _FLAGS[method]
        self.radius = radius

    def inpaint(self, batch: Batch, *, samples: int = 1, seed: int = 0) -> Prediction:
        fills = [cv2.inpaint(image, hole.astype(np.uint8), self.radius, self.flag)
                 for image, hole in zip(batch.images, batch.holes)]
        return Prediction(samples=np.stack(fills)[:, None].astype(np.float32) / 255.0)
