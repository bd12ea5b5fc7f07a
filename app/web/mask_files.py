"""Masks in and out of the page: load a mask file onto the photo, download the mask as the CLI and API take it.

A loaded mask is read exactly as the API's ``mask`` input (:func:`app.masks.to_hole`: any size the
pipeline accepts is scaled to the photo, another shape refused, alpha or brightness as paint),
joined to what is painted already, and kept at the photo's full resolution as the canvas's preset
(shown tinted, like an example's mask; more strokes add to it). The download is the hole Erase
would fill, at full resolution, as ``<photo>_mask.png`` (white = hole; the CLI's folder mode pairs
it with ``<photo>.*``), plus one ``<photo>_<guide>.png`` per guide kind painted (``--edges`` etc.).
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np

from app import masks
from app.errors import InpaintError
from app.images import load_photo
from app.web import results, select_panel
from app.web.canvas import describe, editor_value, strokes
from app.web.context import session_of
from app.web.handlers import in_use
from app.web.messages import user_error


def on_mask_upload(mask_path: str | None, photo_path: str | None, preset: str | None, editor: dict | None,
                   request: gr.Request = None):
    """The loaded mask (with what was painted) on the canvas and as the preset: editor, preset, info."""
    if not mask_path:
        return gr.skip(), gr.skip(), gr.skip()
    if not photo_path:
        raise gr.Error("Upload the photo first, then its mask.", title="No photo", print_exception=False)
    try:
        in_use(photo_path, request)
        photo = load_photo(photo_path)
        loaded = masks.to_hole(mask_path, photo.size, "mask file")
        if not loaded.any():
            raise InpaintError("The mask file marks no hole (white or painted pixels = hole).")
        hole = loaded | _painted_hole(editor, photo.size, preset)
        folder = results.session_folder(session_of(request), "mask-")
        path = masks.save(hole, folder / f"{Path(photo_path).stem}_mask.png")
    except InpaintError as exc:
        raise user_error(exc) from exc
    note = (f"{describe(photo)} Mask loaded ({hole.mean():.1%} of the photo); paint to add to it (uploading the "
            "photo again starts over).")
    return editor_value(photo, hole), path, note


def on_mask_download(photo_path: str | None, preset: str | None, editor: dict | None,
                     picked: select_panel.Picked | None = None, people_erased: list[str] | None = None,
                     request: gr.Request = None):
    """The full-resolution mask (and guide) PNGs of what Erase would fill now, for the downloads list."""
    if not photo_path:
        raise gr.Error("Upload a photo and paint a mask first.", title="No photo", print_exception=False)
    try:
        in_use(photo_path, request)
        size = load_photo(photo_path).size
        painted = strokes(editor, size, preset, select_panel.hole_of(picked, photo_path, people_erased))
        folder = results.session_folder(session_of(request), "mask-")
        stem = Path(photo_path).stem
        files = [masks.save(painted.pop("hole"), folder / f"{stem}_mask.png")]
        files += [masks.save(guide, folder / f"{stem}_{kind}.png") for kind, guide in painted.items() if guide.any()]
    except InpaintError as exc:
        raise user_error(exc) from exc
    return gr.update(value=files, visible=True)


def _painted_hole(editor: dict | None, size: tuple[int, int], preset: str | None) -> np.ndarray:
    """What is painted (and preset) as the hole now; nothing painted is an empty hole, not an error."""
    try:
        return strokes(editor, size, preset)["hole"]
    except InpaintError:
        return np.zeros((size[1], size[0]), bool)
