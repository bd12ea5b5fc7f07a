"""The page's "click to select" panel: clicks, a box, "Find people" and "Find text" add to the hole that Erase fills.

A click on the photo preview adds the object under it (or, in "remove" mode, takes a part out);
two clicks in "box" mode select what lies between them; "Find people" detects everyone and ticks all
but the subject; "Find text" proposes the lettering as one more tick, grown by its own slider. The
selection is drawn over the preview at once (tinted red, the prompts as dots) and kept on the server,
small: the panel's state (:class:`Picked`) holds the prompts and keys into
:data:`app.web.kept_masks.STORE`, which keeps each mask as its bounding box's packed bits, per session,
capped, freed when the page closes and after a time to live. Erase fills the painted strokes and
the selection together. Modes are a radio, not mouse buttons, so a phone can remove and box too.

Everything here is a thin layer over :func:`app.selection.clicks.select`,
:func:`app.selection.people.find_people` and :func:`app.selection.text.find_text` (the same calls as
the API and the CLI); the photo is decoded once per upload and encoded by the segmenter once (the
embedding is kept by :mod:`app.selection.clicks`). The segmenter's, detector's and text finder's
weights are fetched before the select slot is taken (:mod:`app.selection.lane`), so one visitor's
download never holds another's click.
"""

from __future__ import annotations

import functools
import logging
import math
import numbers
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import gradio as gr
import numpy as np
from gradio.context import Context

from app import masks, options
from app.errors import InpaintError, ModelUnavailableError, WeightsError
from app.images import Photo, load_photo, preview
from app.selection import clicks, lane, people, text
from app.web.context import client_left
from app.web.kept_masks import STORE, Packed
from app.web.messages import visitor_message
from app.weights import availability

log = logging.getLogger(__name__)
MODES = ("add", "remove", "box")
VIEW_SIDE = 1024  # px of the clickable preview
TINT = np.array([255, 0, 80], np.float32)  # the hole brush's red: what is selected will be erased


@dataclass(frozen=True)
class Found:
    """A proposal the panel keeps: a person "Find people" found, or the text "Find text" found (masks by store key)."""

    mask: str
    box: tuple[int, int, int, int]
    score: float  # a person: the detector's score; the text: its share of the photo
    is_subject: bool
    kind: str = "person"  # or "text"
    raw: str = ""  # the text's mask before growing: its grow slider grows it again without running the network


@dataclass
class Picked:
    """One visitor's selection on one photo: the prompts, the people found, and keys to what they select.

    The masks themselves are in :data:`~app.web.kept_masks.STORE` under ``session``: this state stays
    a few hundred bytes whatever the photo's size, and the store frees them when the visitor leaves.
    """

    photo: str = ""
    session: str = ""  # the visitor's session: the owner of the masks in the store
    points: list[list[float]] = field(default_factory=list)  # [x, y, label] in photo pixels
    corner: list[float] | None = None  # the first click of a box
    box: list[float] | None = None
    clicked: str | None = None  # what the current prompts (clicks, box) select
    kept: str | None = None  # objects selected before the current one (a new box starts a new object)
    found: list[Found] = field(default_factory=list)
    note: str = ""

    def keys(self) -> list[str]:
        """Every mask this selection points to (the store frees the session's others)."""
        return [k for k in (self.kept, self.clicked) if k] + [p.mask for p in self.found] + [
            p.raw for p in self.found if p.raw]

    def full(self, key: str) -> np.ndarray:
        """One of this selection's masks at the photo's size."""
        return STORE.get(self.session, key).full()

    def parts(self, erase: list[str] | None = None) -> list[Packed]:
        """The clicks' masks and those of the people ticked in ``erase`` (their labels)."""
        ticked = set(_labels(erase))
        chosen = [p.mask for p, label in zip(self.found, person_labels(self.found)) if label in ticked]
        return [STORE.get(self.session, key) for key in [k for k in (self.kept, self.clicked) if k] + chosen]

    def mask(self, erase: list[str] | None = None) -> np.ndarray | None:
        """The clicks' selection plus the people ticked in ``erase`` at full size; None = nothing selected."""
        parts = self.parts(erase)
        if not parts:
            return None
        canvas = np.zeros(parts[0].shape, bool)
        for part in parts:
            part.add_to(canvas)
        return canvas

    def preview(self, erase: list[str] | None, size: tuple[int, int]) -> np.ndarray | None:
        """The same at ``size`` (width, height), made from the bounding boxes only: what the preview tints."""
        parts = self.parts(erase)
        return np.logical_or.reduce([p.scaled(size) for p in parts]) if parts else None


@functools.lru_cache(maxsize=2)
def _photo(path: str, mtime: float) -> Photo:
    """The photo, decoded once for all the clicks on it (two kept: a visitor going back and forth)."""
    return load_photo(path)


def photo_of(path: str) -> Photo:
    return _photo(path, os.stat(path).st_mtime)


@functools.lru_cache(maxsize=2)
def _view(path: str, mtime: float) -> np.ndarray:
    """The clickable preview of the photo, made once per photo like the decode (0.15 s at 12 MP)."""
    view = np.asarray(preview(_photo(path, mtime), VIEW_SIDE))
    view.flags.writeable = False
    return view


def view_of(path: str) -> np.ndarray:
    return _view(path, os.stat(path).st_mtime)


def person_labels(found: list[Found] | list[people.Person]) -> list[str]:
    """The ticks' labels: "person 2 (the subject) · 97%" per person, "the text found · 4.2% of the photo"."""
    labels, n = [], 0
    for p in found:
        if getattr(p, "kind", "person") == "text":
            labels.append(f"the text found · {p.score:.1%} of the photo")
            continue
        n += 1
        labels.append(f"person {n}" + (" (the subject)" if p.is_subject else "") + f" · {p.score:.0%}")
    return labels


def shown(photo_path: str, picked: Picked, erase: list[str] | None) -> np.ndarray:
    """The preview with the selection tinted and outlined, the clicks as dots and the box drawn."""
    view = view_of(photo_path).astype(np.float32)
    h, w = view.shape[:2]
    scale = w / photo_of(photo_path).size[0]
    small = picked.preview(erase, (w, h))
    if small is not None:
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
             evt: gr.SelectData, request: gr.Request = None, progress=gr.Progress()) -> tuple[np.ndarray, Picked, str]:
    """A click on the preview: a point to add or remove, or a corner of the box."""
    if not photo_path:
        raise gr.Error("Upload a photo first.", title="No photo", print_exception=False)
    where = _clicked_at(evt)
    if mode not in MODES:
        raise gr.Error(f"Choose what a click does: {', '.join(MODES)}.", title="Cannot select", print_exception=False)
    photo = photo_of(photo_path)
    picked = _current(picked, photo_path, request)
    scale = photo.size[0] / view_of(photo_path).shape[1]
    x, y = (min(max(v * scale, 0), limit - 1) for v, limit in zip(where, photo.size))
    if mode == "box" and picked.corner is None:
        picked = replace(picked, corner=[x, y])
        return _shown_or_message(photo_path, picked, erase), picked, "Box: now click the opposite corner."
    if mode == "box":  # a new object: what was selected so far is kept, the box alone prompts the next
        (x0, y0), box = picked.corner, None
        box = [min(x0, x), min(y0, y), max(x0, x), max(y0, y)]
        try:
            kept = _merged(picked)
        except InpaintError as exc:  # over the visitor's cap
            raise gr.Error(str(exc), title="Cannot select", print_exception=False) from exc
        picked = replace(picked, corner=None, box=box, points=[], clicked=None, kept=kept)
    else:
        picked = replace(picked, points=picked.points + [[x, y, int(mode != "remove")]])
    return _select(photo_path, picked, grow, erase, progress)


def _clicked_at(evt: Any) -> tuple[float, float]:
    """The preview pixel a click event names; a malformed one (a hostile or broken client) gets a message."""
    index = getattr(evt, "index", None)
    if isinstance(index, (list, tuple)) and len(index) == 2 and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in index):
        return float(index[0]), float(index[1])
    raise gr.Error("That click did not say where on the photo it was; click on the photo again.",
                   title="Cannot select", print_exception=False)


def _merged(picked: Picked) -> str | None:
    """The objects selected so far as one kept mask (a box starts the next object)."""
    keys = [k for k in (picked.kept, picked.clicked) if k]
    if len(keys) < 2:
        return keys[0] if keys else None
    parts = [STORE.get(picked.session, k) for k in keys]
    return STORE.put(picked.session, parts[1].add_to(parts[0].full()))


def _select(photo_path: str, picked: Picked, grow: int, erase: list[str],
            progress: Callable | None = None) -> tuple[np.ndarray, Picked, str]:
    """Run the prompts (the weights fetched first, then the select slot) and keep the result small."""
    if not picked.points and not picked.box:
        picked = _settled(replace(picked, clicked=None))
        return _shown_or_message(photo_path, picked, erase), picked, ""
    try:
        lane.fetch([clicks.segmenter_spec()], _reporter(progress))
        with lane.select_slot(_left()):
            chosen = clicks.select(photo_of(photo_path), picked.points, picked.box, grow=grow, fetch=False)
        picked = _settled(replace(picked, clicked=STORE.put(picked.session, chosen.mask), note=chosen.note))
        view = shown(photo_path, picked, erase)
    except InpaintError as exc:
        raise gr.Error(visitor_message(exc, "The segmenter", "Clicks select with OpenCV GrabCut."),
                       title="Cannot select", print_exception=False) from exc
    how = "GrabCut (no segmentation model here)" if chosen.method == clicks.GRABCUT else \
        clicks.segmenter_spec(chosen.method).name
    return view, picked, f"Selected {chosen.mask.mean():.1%} of the photo with {how} " \
        f"in {chosen.seconds:.2f} s. Erase fills it together with what you paint."


def on_grow(photo_path: str | None, picked: Picked, grow: int, erase: list[str], progress=gr.Progress()):
    """The grow slider moved: the same prompts, a wider or narrower selection."""
    if not photo_path or picked.photo != photo_path:
        return gr.skip(), picked, gr.skip()
    return _select(photo_path, _alive(picked), grow, erase, progress)


def on_people(photo_path: str | None, picked: Picked, grow: int, erase: list[str] | None = None,
              request: gr.Request = None, progress=gr.Progress()):
    """Everyone in the photo as toggles: all ticked but the subject."""
    if not photo_path:
        raise gr.Error("Upload a photo first.", title="No photo", print_exception=False)
    photo = photo_of(photo_path)
    picked = _current(picked, photo_path, request)
    detector = people.detector_spec()
    try:
        failed = lane.fetch([detector, clicks.segmenter_spec()], _reporter(progress))
        if detector.id in failed:
            raise failed[detector.id]
        with lane.select_slot(_left()):
            found = people.find_people(photo, grow=grow, progress=_reporter(progress), fetch=False)
        listed = [Found(STORE.put(picked.session, p.mask), p.box, p.score, p.is_subject) for p in found]
    except InpaintError as exc:
        raise gr.Error(visitor_message(exc, "Finding people needs the person detector, which",
                                                  "Click on each person to select them instead.", detector),
                       title="Cannot find people", print_exception=False) from exc
    texts = [p for p in picked.found if p.kind == "text"]  # a text proposal stays, as ticked as it was
    ticked_text = [label for label, p in zip(person_labels(picked.found), picked.found) if p.kind == "text"
                   and label in _labels(erase)]
    picked = _settled(replace(picked, found=listed + texts))
    labels = person_labels(picked.found)
    erase = [label for label, p in zip(labels, picked.found) if p.kind == "person" and not p.is_subject] + ticked_text
    note = f"Found {len(listed)} people; the subject is kept, the others are ticked to be erased." if listed else \
        "Nobody was found in the photo."
    if len(listed) >= people.MAX_PEOPLE:
        note += f" The panel lists at most {people.MAX_PEOPLE}: click on anyone else to select them."
    return _shown_or_message(photo_path, picked, erase), picked, gr.update(choices=labels, value=erase,
                                                                      visible=bool(labels)), note


def on_text(photo_path: str | None, picked: Picked, grow: int, erase: list[str] | None = None,
            request: gr.Request = None, progress=gr.Progress()):
    """The lettering as one proposal, ticked to be erased, grown by the text's own slider (the people stay)."""
    if not photo_path:
        raise gr.Error("Upload a photo first.", title="No photo", print_exception=False)
    photo = photo_of(photo_path)
    picked = _current(picked, photo_path, request)
    radius = _grow_of(grow)
    try:
        failed = text.fetch_finder(text.finder_spec(), _reporter(progress))
        if failed is not None:
            raise failed
        with lane.select_slot(_left()):
            found = text.find_text(photo, grow=0, progress=_reporter(progress), fetch=False)
        raw = STORE.put(picked.session, found.mask)
    except InpaintError as exc:
        raise _text_error(exc) from exc
    return _with_text(photo_path, picked, raw, found.mask, radius, erase, found.seconds)


def on_text_grow(photo_path: str | None, picked: Picked, grow: int, erase: list[str] | None = None):
    """The text's grow slider moved: the same text found, grown again (the network does not run again)."""
    texts = [p for p in picked.found if p.kind == "text"] if isinstance(picked, Picked) else []
    if not photo_path or picked.photo != photo_path or not texts:
        return gr.skip(), picked, gr.skip(), gr.skip()
    picked = _alive(picked)
    if not picked.found:
        return _shown_or_message(photo_path, picked, []), picked, gr.update(choices=[], value=[], visible=False), ""
    return _with_text(photo_path, picked, texts[-1].raw, picked.full(texts[-1].raw), _grow_of(grow), erase)


def _with_text(photo_path: str, picked: Picked, raw: str, found: np.ndarray, radius: int,
               erase: list[str] | None, seconds: float | None = None):
    """``picked`` with its text proposal replaced by ``found`` grown by ``radius``, ticked as before (new: ticked)."""
    before = person_labels(picked.found)
    ticked = set(_labels(erase))
    was_text = [label for label, p in zip(before, picked.found) if p.kind == "text"]
    keep_ticked = not was_text or any(label in ticked for label in was_text)
    grown = masks.grow(found, radius)
    try:
        key = STORE.put(picked.session, grown)
    except InpaintError as exc:  # over the visitor's cap
        raise gr.Error(str(exc), title="Cannot find text", print_exception=False) from exc
    entry = Found(key, _box_of(grown), float(grown.mean()), False, "text", raw)
    picked = _settled(replace(picked, found=[p for p in picked.found if p.kind != "text"] + [entry]))
    labels = person_labels(picked.found)
    value = [label for label, old in zip(labels, picked.found) if old.kind != "text" and label in ticked]
    value += [labels[-1]] if keep_ticked else []
    note = f"Text found on {entry.score:.1%} of the photo (grown {radius} px)" if grown.any() else \
        "No text was found in the photo."
    if seconds is not None:
        note += f" in {seconds:.1f} s"
    note += ". Untick it to keep the text; paint or click to add what it missed." if grown.any() else ""
    return _shown_or_message(photo_path, picked, value), picked, gr.update(choices=labels, value=value,
                                                                          visible=True), note


def _box_of(mask: np.ndarray) -> tuple[int, int, int, int]:
    """The bounding box of ``mask`` (x0, y0, x1, y1), or all zeros when it is empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return 0, 0, 0, 0
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _grow_of(grow: Any) -> int:
    """The text's grow in px (the grow knob's range); a bad value from a client gets the knob's message."""
    try:
        return int(options.knob("grow").check(grow))
    except InpaintError as exc:
        raise gr.Error(str(exc), title="Cannot find text", print_exception=False) from exc


def _text_error(exc: InpaintError) -> gr.Error:
    """The visitor's message when finding text failed (the operator's detail goes to the log)."""
    if isinstance(exc, (ModelUnavailableError, WeightsError)):
        log.warning("%s", exc)
        why = availability(text.finder_spec()).public or "its weights could not be loaded"
        return gr.Error(f"Finding text needs the text segmenter, which is not available on this server right now "
                        f"({why}); the server log says what the operator should do. {text.INSTEAD}",
                        title="Cannot find text", print_exception=False)
    return gr.Error(str(exc), title="Cannot find text", print_exception=False)


def on_toggle(photo_path: str | None, picked: Picked, erase: list[str]):
    """A person ticked or unticked: redraw what will be erased."""
    if not photo_path or picked.photo != photo_path:
        return gr.skip()
    return _shown_or_message(photo_path, picked, erase)


def on_photo(photo_path: str | None, request: gr.Request = None):
    """A new photo (upload, example, continue, undo, clear): an empty selection and its preview."""
    view = view_of(photo_path).copy() if photo_path else None
    picked = _settled(Picked(photo=photo_path or "", session=_session(request)))
    return view, picked, gr.update(choices=[], value=[], visible=False), ""


def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or ""


def _current(picked: Picked | None, photo_path: str, request: gr.Request | None) -> Picked:
    """The visitor's selection on ``photo_path``, or a new one (another photo, or the state was freed)."""
    session = _session(request) or getattr(picked, "session", "")
    if isinstance(picked, Picked) and picked.photo == photo_path and picked.session == session:
        return _alive(picked)
    return Picked(photo=photo_path, session=session)


def _alive(picked: Picked) -> Picked:
    """``picked``, or a fresh selection on its photo once the store freed its masks (the visitor is told,
    and the next click starts over instead of failing on the missing masks again and again)."""
    if STORE.holds(picked.session, picked.keys()):
        return picked
    gr.Warning("Your earlier selection was cleared (unused too long, or the server needed the memory); "
               "this starts a new one.", title="Selection cleared")
    return Picked(photo=picked.photo, session=picked.session)


def _settled(picked: Picked) -> Picked:
    """``picked`` is the visitor's selection now: the store frees the masks no longer used."""
    STORE.settle(picked.session, picked.keys())
    return picked


def _shown_or_message(photo_path: str, picked: Picked, erase: list[str] | None) -> np.ndarray:
    """:func:`shown`, or the message of a selection whose masks were freed (unused too long)."""
    try:
        return shown(photo_path, picked, erase)
    except InpaintError as exc:
        raise gr.Error(str(exc), title="Cannot select", print_exception=False) from exc


def _labels(erase: Any) -> list[str]:
    """The ticked people's labels (anything else a client sends ticks nobody)."""
    return [label for label in erase if isinstance(label, str)] if isinstance(erase, (list, tuple)) else []


def _reporter(progress: Callable | None) -> Callable[[float, str], None] | None:
    return (lambda fraction, message: progress(fraction, desc=message)) if progress is not None else None


def _left() -> Callable[[], bool]:
    return client_left()


def forget_visitor(request: gr.Request) -> None:
    """The page was closed: the visitor's masks go now (Gradio keeps a closed tab's state an hour)."""
    STORE.forget(_session(request))


def _state_deleted(picked: Any) -> None:
    """Gradio deleted the panel's state (its time to live passed): the masks it pointed to go too."""
    if isinstance(picked, Picked) and picked.session:
        STORE.forget(picked.session)


def encode_ahead(photo_path: str | None, opened: bool) -> None:
    """The panel is open on a photo: encode it for clicks now, while the visitor aims the first one.

    Only while the panel is open: a visitor who only paints does not share the CPU with an encode.
    """
    if photo_path and opened:
        clicks.prepare(photo_of(photo_path))


def hole_of(picked: Picked | None, photo_path: str | None, erase: list[str] | None) -> np.ndarray | None:
    """What the selection adds to the hole of ``photo_path`` (None: nothing, or a selection of another photo).

    :class:`~app.web.kept_masks.SelectionExpired` (a message) when its masks were freed.
    """
    if not isinstance(picked, Picked) or picked.photo != photo_path:
        return None
    return picked.mask(erase)


def panel(photo_path: gr.State) -> tuple[gr.State, gr.CheckboxGroup]:
    """The panel's components and events; returns the selection and the people ticked (Erase's inputs)."""
    picked = gr.State(Picked(), time_to_live=STORE.ttl_s, delete_callback=_state_deleted)
    opened = gr.State(False)
    if Context.root_block is not None:  # built inside the page's Blocks
        Context.root_block.unload(forget_visitor)
    with gr.Accordion("Select by clicking (or find the people, or the text)", open=False,
                      elem_id="select-panel") as accordion:
        mode = gr.Radio(list(MODES), value="add", label="A click on the photo…", elem_id="select-mode",
                        info="add: selects the object under it · remove: takes a part out · box: two corners, "
                        "a new object")
        view = gr.Image(label="Click on what should go", type="numpy", interactive=False, buttons=["fullscreen"],
                        format="jpeg", elem_id="select-view")
        grow = gr.Slider(0, 64, value=8, step=1, label="Grow the selection (px)", elem_id="select-grow",
                         info="covers the soft edge and shadow an eraser must not leave behind")
        with gr.Row():
            find = gr.Button("Find people", elem_id="find-people")
            find_text = gr.Button("Find text", elem_id="find-text")
            clear = gr.Button("Clear selection", elem_id="clear-selection")
        text_grow = gr.Slider(0, 64, value=text.DEFAULT_GROW, step=1, label="Grow the text found (px)",
                              elem_id="text-grow", info="lettering has a soft edge and often an outline: take them too")
        erase = gr.CheckboxGroup([], label="Found: tick what to erase", visible=False, elem_id="people")
        note = gr.Markdown(elem_id="select-note")
    photo_path.change(on_photo, photo_path, [view, picked, erase, note], api_name=False, queue=False).then(
        encode_ahead, [photo_path, opened], None, api_name=False, queue=False)
    accordion.expand(lambda: True, None, opened, api_name=False, queue=False).then(
        encode_ahead, [photo_path, opened], None, api_name=False, queue=False)
    accordion.collapse(lambda: False, None, opened, api_name=False, queue=False)
    clear.click(on_photo, photo_path, [view, picked, erase, note], api_name=False, queue=False)
    # No Gradio concurrency limit: each event fetches weights holding nothing, then takes the select slot.
    view.select(on_click, [photo_path, picked, mode, grow, erase], [view, picked, note], api_name=False,
                show_progress="minimal", concurrency_limit=None)
    grow.release(on_grow, [photo_path, picked, grow, erase], [view, picked, note], api_name=False,
                 concurrency_limit=None)
    find.click(on_people, [photo_path, picked, grow, erase], [view, picked, erase, note], api_name=False,
               show_progress_on=note, concurrency_limit=None)
    find_text.click(on_text, [photo_path, picked, text_grow, erase], [view, picked, erase, note], api_name=False,
                    show_progress_on=note, concurrency_limit=None)
    text_grow.release(on_text_grow, [photo_path, picked, text_grow, erase], [view, picked, erase, note],
                      api_name=False, concurrency_limit=None)
    erase.change(on_toggle, [photo_path, picked, erase], view, api_name=False, queue=False)
    return picked, erase
