"""The compare view's photo and strokes as the page sends them (handler tests without a browser)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from app.images import load_photo
from app.web import canvas
from tests.helpers import textured

W, H = 1600, 1200


def write_photo(folder: Path) -> Path:
    """A W x H photo with an ICC profile and EXIF (they must survive continuing from a result)."""
    path = folder / "photo.png"
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    Image.fromarray(textured(H, W)).save(path, icc_profile=b"\0" * 64 + b"fake-icc", exif=exif)
    return path


def editor_with(holes, edges=()) -> dict:
    """Strokes as the editor sends them: on the 1024 px preview, red for holes, cyan for edges."""
    scale = canvas.PREVIEW_SIDE / W
    layer = np.zeros((round(H * scale), canvas.PREVIEW_SIDE, 4), np.uint8)
    for boxes, colour in ((holes, canvas.HOLE_COLOUR), (edges, canvas.brush_colours()["edges"])):
        for box in boxes:
            y0, y1, x0, x1 = (round(v * scale) for v in box)
            layer[y0:y1, x0:x1] = (*canvas.rgba(colour)[:3], 255)
    return {"background": None, "layers": [layer], "composite": None}


def pixels(path) -> np.ndarray:
    return load_photo(path).pixels
