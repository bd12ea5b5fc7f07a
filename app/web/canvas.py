"""The painting canvas: the preview painted on, its brush colours, the examples, and the strokes read back at the
photo's size.

The original photo stays on the server; the browser paints on a preview of at most ``PREVIEW_SIDE`` px and only
the (small) strokes travel back, scaled up to the photo. Re-encoding a 12 MP canvas on every submit took ~40 s.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from app import masks, options
from app.errors import BadImageError, InpaintError
from app.images import Photo, check_size, decoding, load_photo, preview
from app.web.messages import expired_photo, user_error

log = logging.getLogger(__name__)


PREVIEW_SIDE = 1024


#: Largest image the editor may send back (its canvas is the preview; a hostile client may send more).
EDITOR_MAX_PIXELS = 4 * PREVIEW_SIDE * PREVIEW_SIDE


ASSETS = Path(__file__).resolve().parents[2] / "assets"


HOLE_COLOUR = "#ff0050"


GUIDE_COLOURS = {"cyan": "#00e5ff", "yellow": "#ffe600", "green": "#7cff00"}  # one per guide kind


EXAMPLES = [("bridge.jpg", "bridge_mask.png"), ("astronaut.png", "astronaut_mask.png"),
            ("chelsea.png", "chelsea_mask.png")]


def guide_kinds() -> list[str]:
    """Every guide any registered model accepts, as far as there are brush colours to draw them."""
    return options.guide_kinds()[: len(GUIDE_COLOURS)]


def brush_colours() -> dict[str, str]:
    """Brush colour per stroke kind: the hole, then every guide."""
    return {"hole": HOLE_COLOUR} | dict(zip(guide_kinds(), GUIDE_COLOURS.values()))


def guide_help() -> str:
    """E.g. 'cyan brush = edges (EdgeConnect (Places2), ...)' for the editor label."""
    parts = []
    for (colour, _), kind in zip(GUIDE_COLOURS.items(), guide_kinds()):
        parts.append(f"{colour} brush = {kind} for {', '.join(options.guide_users(kind))}")
    return "; ".join(parts)


def guard_editor(editor: gr.ImageEditor) -> gr.ImageEditor:
    """Size-check, from its header, every image the editor receives before Gradio decodes it.

    Gradio decodes the background, the layers and the composite itself; a 48 kB layer declaring
    60000x60000 pixels took the server to 17 GB before this check. (Wrapped on the instance: a
    subclass would make Gradio write a ``.pyi`` stub next to this file on every import.)
    """
    convert = editor.convert_and_format_image

    def checked(file, flatten_on_white: bool = False):
        if file is not None:
            data = bytes(file) if isinstance(file, (bytes, bytearray, memoryview)) else None
            if data is None and not Path(file.path).is_file():  # the age limit took it: no path, no "layer"
                raise expired_photo()
            try:
                with decoding("painted layer"), Image.open(io.BytesIO(data) if data else file.path) as header:
                    check_size(header.size, EDITOR_MAX_PIXELS, "painted layer")
            except BadImageError as exc:
                raise user_error(exc) from exc
        return convert(file, flatten_on_white)

    editor.convert_and_format_image = checked
    return editor


def editor_value(photo: Photo, hole: np.ndarray | None = None) -> dict:
    """The preview to paint on; a preset hole is shown tinted into the background.

    (Gradio's editor draws layers handed to it from Python offset on its canvas, so a
    preset mask travels in a state instead and is only shown here.)
    """
    small = preview(photo, PREVIEW_SIDE)
    if hole is not None:
        small = small.convert("RGBA")
        small.alpha_composite(masks.hole_preview(hole, small.size, colour=rgba(HOLE_COLOUR, 160)))
        small = small.convert("RGB")
    return {"background": small, "layers": [], "composite": None}


def rgba(colour: str, alpha: int = 255) -> tuple[int, int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16), alpha


def describe(photo: Photo) -> str:
    w, h = photo.size
    return f"{photo.source} — {w * h / 1e6:.1f} MP. Paint over what should disappear."


def load_example(photo_path: str, mask_path: str):
    """An example photo with its pre-drawn mask (kept as the preset), ready to run."""
    photo = load_photo(photo_path)
    hole = masks.to_hole(mask_path, photo.size)
    return editor_value(photo, hole), photo_path, mask_path, describe(photo) + " (the example's mask is preset)"


def strokes(editor: dict | None, size: tuple[int, int], preset: str | None = None,
            selected: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Painted strokes per brush colour (``hole`` and guides) at the photo's size, plus a preset hole
    and what was selected by clicking (:mod:`app.web.select_panel`)."""
    layers = [layer for layer in (editor or {}).get("layers") or [] if layer is not None]
    colours = brush_colours()
    maps = masks.strokes_by_colour(layers, {name: rgba(c)[:3] for name, c in colours.items()}, EDITOR_MAX_PIXELS)
    maps = {name: masks.fit(m, size, "painted layer") for name, m in maps.items()}
    for extra in (masks.to_hole(preset, size) if preset else None, selected):
        if extra is not None:
            maps["hole"] = maps["hole"] | extra if "hole" in maps else extra
    if "hole" in maps:  # a guide drawn across the hole must not punch a strip of the object back into it
        maps["hole"] = masks.absorb_guides(maps["hole"], [m for name, m in maps.items() if name != "hole"])
    if "hole" not in maps or not maps["hole"].any():
        raise InpaintError("Paint over what should disappear first, or click on it under \"Select by clicking\" "
                          "(the mask is empty).")
    return maps
