"""Photos with text drawn on them, whose clean version and true text mask are kept: the truth *Find text* is scored on.

Signs, captions and watermarks on the evaluation photos (:func:`with_text`): one to three short words
or lines per photo, 5-12 % of the photo's height, white or black against the photo where they land,
a third of them with an outline (captions and comic lettering have one). PIL's bundled font draws
them (``ImageFont.load_default(size=...)``), so the same seed gives the same pixels on every machine
with the same Pillow. The true mask is every pixel the text or its outline touched (anti-aliased
edge included): what an eraser must remove.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WORDS = ("SALE", "OPEN 24H", "EXIT", "NO PARKING", "Welcome", "STOP", "Photo: J. Doe", "SUMMER 2019",
         "Caf\u00e9 de la Gare", "\u00a9 studio", "BANG!", "Where are you going?", "Hotel", "TAXI", "30% OFF")
HEIGHTS = (0.05, 0.12)  # of the photo's height
OUTLINED = 1 / 3


def iou(found: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two masks (1.0 when both are empty)."""
    union = np.logical_or(found, truth).sum()
    return float(np.logical_and(found, truth).sum() / union) if union else 1.0


def with_text(rgb: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``rgb`` with one to three texts drawn on it, and the true text mask (H, W) bool."""
    rng = np.random.default_rng(seed)
    h, w = rgb.shape[:2]
    out = rgb.astype(np.float32)
    truth = np.zeros((h, w), bool)
    for _ in range(int(rng.integers(1, 4))):
        fill, outline = _layers(rng, (w, h))
        if fill is None:
            continue
        ink = 255.0 if out[fill > 0].mean() < 128 else 0.0  # what reads against the photo there
        if outline is not None:
            edge = outline[..., None] / 255
            out = out * (1 - edge) + (255.0 - ink) * edge
            truth |= outline > 0
        alpha = fill[..., None] / 255
        out = out * (1 - alpha) + ink * alpha
        truth |= fill > 0
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), truth


def _layers(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The anti-aliased coverage of one text (and of its outline, or None) at a random place of a ``size`` photo."""
    w, h = size
    font = ImageFont.load_default(size=max(8, int(h * rng.uniform(*HEIGHTS))))
    word = str(rng.choice(WORDS))
    stroke = max(1, font.size // 12) if rng.random() < OUTLINED else 0
    x0, y0, x1, y1 = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), word, font=font, stroke_width=stroke)
    if x1 - x0 >= w or y1 - y0 >= h:
        return None, None
    at = (int(rng.integers(0, w - (x1 - x0))) - x0, int(rng.integers(0, h - (y1 - y0))) - y0)
    fill = Image.new("L", size, 0)
    ImageDraw.Draw(fill).text(at, word, fill=255, font=font)
    if not stroke:
        return np.asarray(fill), None
    outline = Image.new("L", size, 0)
    ImageDraw.Draw(outline).text(at, word, fill=255, font=font, stroke_width=stroke, stroke_fill=255)
    return np.asarray(fill), np.asarray(outline)
