"""The page's "click to select" panel: clicks, a box and "Find people" add to the hole that Erase fills.

A click on the photo preview adds the object under it (or, in "remove" mode, takes a part out);
two clicks in "box" mode select what lies between them; "Find people" detects everyone and ticks all
but the subject. The selection is drawn over the preview at once (tinted red, the prompts as dots)
and kept on the server at the photo's full size (:class:`Picked`); Erase fills the painted strokes
and the selection together. Modes are a radio, not mouse buttons, so a phone can remove and box too.

Everything here is a thin layer over :func:`app.selection.select` and :func:`app.people.find_people`
(the same calls as the API and the CLI); the photo is decoded once per upload and encoded by the
segmenter once (the embedding is kept by :mod:`app.selection`).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field, replace

import cv2
import gradio as gr
import numpy as np

from app import people, selection
from app.errors import InpaintError
from app.images import Photo, load_photo, preview

MODES = ("add", "remove", "box")
VIEW_SIDE = 1024  # px of the clickable preview
TINT = np.array([255, 0, 80], np.float32)  # the hole brush's red: what is selected will be erased


@dataclass
class Picked:
    """One visitor's selection on one photo: the prompts, the people found, and what they select."""

    photo: str = ""
    points: list[list[float]] = field(default_factory=list)  # [x, y, label] in photo pixels
    corner: list[float] | None = None  # the first click of a box
    box: list[float] | None = None
    clicked: np.ndarray | None = None  # what the current prompts (clicks, box) select, (H, W) bool
    kept: np.ndarray | None = None  # objects selected before the current one (a new box starts a new object)
    found: list[people.Person] = field(default_factory=list)
    note: str = ""

    def mask(self, erase: list[str] | None = None) -> np.ndarray | None:
        """The clicks' selection plus the people ticked in ``erase`` (their labels); None = nothing selected."""
        chosen = [p.mask for p, label in zip(self.found, person_labels(self.found)) if label in (erase or [])]
        parts = [m for m in (self.kept, self.clicked) if m is not None] + chosen
        if not parts:
            return None
        return np.logical_or.reduce(parts) if len(parts) > 1 else parts[0]


@functools.lru_cache(maxsize=2)
def _photo(path: str, mtime: float) -> Photo:
    """The photo, decoded once for all the clicks on it (two kept: a visitor going back and forth)."""
    return load_photo(path)


def photo_of(path: str) -> Photo:
    return _photo(path, os.stat(path).st_mtime)


def person_labels(found: list[people.Person]) -> list[str]:
    return [f"person {i + 1}" + (" (the subject)" if p.is_subject else "") + f" · {p.score:.0%}"
            for i, p in enumerate(found)]


def shown(photo: Photo, picked: Picked, erase: list[str] | None) -> np.ndarray:
    """The preview with the selection tinted and outlined, the clicks as dots and the box drawn."""
    view = np.asarray(preview(photo, VIEW_SIDE)).astype(np.float32)
    h, w = view.shape[:2]
    scale = w / photo.size[0]
    selected = picked.mask(erase)
    if selected is not None:
        small = cv2.resize(selected.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
        view[small] = 0.5 * view[small] + 0.5 * TINT
        view = view.astype(np.uint8)
        contours, _ = cv2.findContours(small.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(view, contours, -1, (255, 255, 255), max(1, w // 400))
    view = np.ascontiguousarray(view.astype(np.uint8))
    radius = max(4, w // 120)
    for x, y, label in picked.points:
        centre = (round(x * scale), round(y * scale))
        cv2.circle(view, centre, radius, (0, 200, 0) if label else (220, 0, 0), -1)
        cv2.circle(view, centre, radius, (255, 255, 255), max(1, radius // 3))
    for corners in ([picked.box] if picked.box else []) + ([picked.corner * 2] if picked.corner else []):
        x0, y0, x1, y1 = (round(v * scale) for v in corners)
        cv2.rectangle(view, (x0, y0), (x1, y1), (255, 230, 0), max(2, w // 300))
    return view


def on_click(photo_path: str | None, picked: Picked, mode: str, grow: int, erase: list[str],
             evt: gr.SelectData) -> tuple[np.ndarray, Picked, str]:
    """A click on the preview: a point to add or remove, or a corner of the box."""
    if not photo_path:
        raise gr.Error("Upload a photo first.", title="No photo", print_exception=False)
    photo = photo_of(photo_path)
    picked = picked if picked.photo == photo_path else Picked(photo=photo_path)
    scale = photo.size[0] / preview(photo, VIEW_SIDE).size[0]
    x, y = (min(max(v * scale, 0), limit - 1) for v, limit in zip(evt.index, photo.size))
    if mode == "box" and picked.corner is None:
        return shown(photo, replace(picked, corner=[x, y]), erase), replace(picked, corner=[x, y]), \
            "Box: now click the opposite corner."
    if mode == "box":  # a new object: what was selected so far is kept, the box alone prompts the next
        (x0, y0), box = picked.corner, None
        box = [min(x0, x), min(y0, y), max(x0, x), max(y0, y)]
        kept = [m for m in (picked.kept, picked.clicked) if m is not None]
        picked = replace(picked, corner=None, box=box, points=[], clicked=None,
                         kept=np.logical_or.reduce(kept) if kept else None)
    else:
        picked = replace(picked, points=picked.points + [[x, y, int(mode != "remove")]])
    return _select(photo, picked, grow, erase)


def _select(photo: Photo, picked: Picked, grow: int, erase: list[str]) -> tuple[np.ndarray, Picked, str]:
    if not picked.points and not picked.box:
        picked = replace(picked, clicked=None)
        return shown(photo, picked, erase), picked, ""
    try:
        chosen = selection.select(photo, picked.points, picked.box, grow=grow)
    except InpaintError as exc:
        raise gr.Error(str(exc), title="Cannot select", print_exception=False) from exc
    picked = replace(picked, clicked=chosen.mask, note=chosen.note)
    how = "GrabCut (no segmentation model here)" if chosen.method == selection.GRABCUT else \
        selection.segmenter_spec(chosen.method).name
    return shown(photo, picked, erase), picked, f"Selected {chosen.mask.mean():.1%} of the photo with {how} " \
        f"in {chosen.seconds:.2f} s. Erase fills it together with what you paint."


def on_grow(photo_path: str | None, picked: Picked, grow: int, erase: list[str]):
    """The grow slider moved: the same prompts, a wider or narrower selection."""
    if not photo_path or picked.photo != photo_path:
        return gr.skip(), picked, gr.skip()
    return _select(photo_of(photo_path), picked, grow, erase)


def on_people(photo_path: str | None, picked: Picked, grow: int, progress=gr.Progress()):
    """Everyone in the photo as toggles: all ticked but the subject."""
    if not photo_path:
        raise gr.Error("Upload a photo first.", title="No photo", print_exception=False)
    photo = photo_of(photo_path)
    picked = picked if picked.photo == photo_path else Picked(photo=photo_path)
    try:
        found = people.find_people(photo, grow=grow, progress=lambda f, m: progress(f, desc=m))
    except InpaintError as exc:
        raise gr.Error(str(exc), title="Cannot find people", print_exception=False) from exc
    picked = replace(picked, found=found)
    labels = person_labels(found)
    erase = [label for label, p in zip(labels, found) if not p.is_subject]
    note = f"Found {len(found)} people; the subject is kept, the others are ticked to be erased." if found else \
        "Nobody was found in the photo."
    return shown(photo, picked, erase), picked, gr.update(choices=labels, value=erase, visible=bool(found)), note


def on_toggle(photo_path: str | None, picked: Picked, erase: list[str]):
    """A person ticked or unticked: redraw what will be erased."""
    if not photo_path or picked.photo != photo_path:
        return gr.skip()
    return shown(photo_of(photo_path), picked, erase)


def on_photo(photo_path: str | None):
    """A new photo (upload, example, continue, undo, clear): an empty selection and its preview."""
    view = np.asarray(preview(photo_of(photo_path), VIEW_SIDE)) if photo_path else None
    return view, Picked(photo=photo_path or ""), gr.update(choices=[], value=[], visible=False), ""


def encode_ahead(photo_path: str | None, opened: bool) -> None:
    """The panel is open on a photo: encode it for clicks now, while the visitor aims the first one.

    Only while the panel is open: a visitor who only paints does not share the CPU with an encode.
    """
    if photo_path and opened:
        selection.prepare(photo_of(photo_path))


def hole_of(picked: Picked | None, photo_path: str | None, erase: list[str] | None) -> np.ndarray | None:
    """What the selection adds to the hole of ``photo_path`` (None: nothing, or a selection of another photo)."""
    if picked is None or picked.photo != photo_path:
        return None
    return picked.mask(erase)


def panel(photo_path: gr.State) -> tuple[gr.State, gr.CheckboxGroup]:
    """The panel's components and events; returns the selection and the people ticked (Erase's inputs)."""
    picked, opened = gr.State(Picked()), gr.State(False)
    with gr.Accordion("Select by clicking (or find the people)", open=False, elem_id="select-panel") as accordion:
        mode = gr.Radio(list(MODES), value="add", label="A click on the photo…", elem_id="select-mode",
                        info="add: selects the object under it · remove: takes a part out · box: two corners, "
                        "a new object")
        view = gr.Image(label="Click on what should go", type="numpy", interactive=False, buttons=["fullscreen"],
                        format="jpeg", elem_id="select-view")
        grow = gr.Slider(0, 64, value=8, step=1, label="Grow the selection (px)", elem_id="select-grow",
                         info="covers the soft edge and shadow an eraser must not leave behind")
        with gr.Row():
            find = gr.Button("Find people", elem_id="find-people")
            clear = gr.Button("Clear selection", elem_id="clear-selection")
        erase = gr.CheckboxGroup([], label="People to erase", visible=False, elem_id="people")
        note = gr.Markdown(elem_id="select-note")
    photo_path.change(on_photo, photo_path, [view, picked, erase, note], api_name=False, queue=False).then(
        encode_ahead, [photo_path, opened], None, api_name=False, queue=False)
    accordion.expand(lambda: True, None, opened, api_name=False, queue=False).then(
        encode_ahead, [photo_path, opened], None, api_name=False, queue=False)
    accordion.collapse(lambda: False, None, opened, api_name=False, queue=False)
    clear.click(on_photo, photo_path, [view, picked, erase, note], api_name=False, queue=False)
    view.select(on_click, [photo_path, picked, mode, grow, erase], [view, picked, note], api_name=False,
                show_progress="minimal")
    grow.release(on_grow, [photo_path, picked, grow, erase], [view, picked, note], api_name=False)
    find.click(on_people, [photo_path, picked, grow], [view, picked, erase, note], api_name=False,
               show_progress_on=note)
    erase.change(on_toggle, [photo_path, picked, erase], view, api_name=False, queue=False)
    return picked, erase
