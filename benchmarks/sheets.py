"""Contact sheets: a grid of small images so people can look at the fills instead of reading numbers."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

CELL = 176  # px per thumbnail: 6-7 columns stay under 1300 px wide
HEADER = 28
GAP = 4
JPEG_QUALITY = 85


def thumbnail(rgb: np.ndarray, side: int = CELL) -> np.ndarray:
    """Fit ``rgb`` into a ``side`` x ``side`` square (area resampling; letterboxed in white)."""
    h, w = rgb.shape[:2]
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    canvas = np.full((side, side, 3), 255, np.uint8)
    y, x = (side - size[1]) // 2, (side - size[0]) // 2
    canvas[y:y + size[1], x:x + size[0]] = small
    return canvas


def masked_input(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """What the model is asked to fill: the photo with the hole blanked (white)."""
    shown = rgb.copy()
    shown[hole] = 255
    return shown


def mask_image(hole: np.ndarray) -> np.ndarray:
    """The hole as white on black, RGB."""
    return np.repeat((hole.astype(np.uint8) * 255)[..., None], 3, axis=2)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def contact_sheet(title: str, columns: list[str], rows: list[tuple[str, list[np.ndarray]]]) -> Image.Image:
    """A titled grid: one header per column, one row per photo (label drawn on its first cell)."""
    cols = len(columns)
    width = cols * CELL + (cols + 1) * GAP
    height = 2 * HEADER + len(rows) * (CELL + GAP) + GAP
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((GAP, 4), title, fill="black", font=_font(17))
    for c, name in enumerate(columns):
        draw.text((GAP + c * (CELL + GAP), HEADER + 6), name, fill="black", font=_font(14))
    for r, (label, cells) in enumerate(rows):
        top = 2 * HEADER + r * (CELL + GAP)
        for c, cell in enumerate(cells):
            sheet.paste(Image.fromarray(thumbnail(cell)), (GAP + c * (CELL + GAP), top))
        draw.text((GAP + 3, top + CELL - 16), label, fill="white", font=_font(11), stroke_width=2,
                  stroke_fill="black")
    return sheet


def save_jpeg(image: Image.Image, path: Path) -> Path:
    """JPEG at quality 85: contact sheets are for looking, and the repository stays small."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return path
