"""The page's click-to-select panel (handlers, no browser): clicks in preview pixels select in photo pixels,
box by two corners, remove, grow, a new photo starts afresh, and Erase fills the selection.

No segmentation weights are on this machine, so clicks select with GrabCut, the fallback the page
offers offline; what is selected is checked against an object known by construction.
"""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from app import results, select_ui, selection, ui
from tests.test_selection import iou, scene

W, H = 1600, 1000  # larger than the preview: clicks must be scaled up to the photo


@pytest.fixture
def photo(tmp_path, monkeypatch):
    monkeypatch.setenv("INPAINT_CHECKPOINTS", str(tmp_path / "none"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no segmenter weights: GrabCut, as offline
    selection.forget_embeddings()
    rgb, obj = scene(W, H)
    path = tmp_path / "scene.png"
    Image.fromarray(rgb).save(path)
    return str(path), obj


def click(x: float, y: float) -> gr.SelectData:
    """A click at (x, y) of the photo, given as the preview's pixel the browser reports."""
    scale = select_ui.VIEW_SIDE / W
    return gr.SelectData(None, {"index": [round(x * scale), round(y * scale)], "value": None})


def test_a_click_selects_the_object_in_photo_pixels_and_shows_it_tinted(photo):
    path, obj = photo
    view, picked, _, _ = select_ui.on_photo(path)
    assert view.shape[1] == select_ui.VIEW_SIDE and picked.clicked is None
    view, picked, note = select_ui.on_click(path, picked, "add", 0, [], click(W * 0.6, H * 0.5))
    assert picked.clicked.shape == (H, W) and iou(picked.clicked, obj) > 0.8
    assert "GrabCut" in note
    small = np.asarray(Image.fromarray(obj).resize(view.shape[1::-1]))
    plain = np.asarray(select_ui.preview(select_ui.photo_of(path), select_ui.VIEW_SIDE))
    tinted = view.astype(int)[..., 0] - plain.astype(int)[..., 0]
    assert tinted[small].mean() > 20 and abs(tinted[~small]).mean() < 5  # red over the object only (and dots)


def test_box_needs_two_corners_and_remove_takes_a_part_out(photo):
    path, obj = photo
    _, picked, _, _ = select_ui.on_photo(path)
    _, picked, note = select_ui.on_click(path, picked, "box", 0, [], click(W * 0.4, H * 0.1))
    assert picked.corner is not None and picked.clicked is None and "opposite corner" in note
    _, picked, _ = select_ui.on_click(path, picked, "box", 0, [], click(W * 0.8, H * 0.9))
    assert picked.box is not None and iou(picked.clicked, obj) > 0.7
    x0, y0, x1, y1 = picked.box
    assert x0 == pytest.approx(W * 0.4, abs=3) and y1 == pytest.approx(H * 0.9, abs=3)
    before = picked.clicked.sum()
    _, picked, _ = select_ui.on_click(path, picked, "remove", 0, [], click(W * 0.6, H * 0.5))
    assert picked.points[-1][2] == 0 and picked.clicked.sum() < before


def test_grow_widens_the_same_selection(photo):
    path, _ = photo
    _, picked, _, _ = select_ui.on_photo(path)
    _, picked, _ = select_ui.on_click(path, picked, "add", 0, [], click(W * 0.6, H * 0.5))
    tight = picked.clicked
    _, grown, _ = select_ui.on_grow(path, picked, 16, [])
    assert grown.clicked.sum() > tight.sum() and (grown.clicked | ~tight).all()


def test_a_selection_belongs_to_its_photo(photo, tmp_path):
    path, _ = photo
    _, picked, _, _ = select_ui.on_photo(path)
    _, picked, _ = select_ui.on_click(path, picked, "add", 0, [], click(W * 0.6, H * 0.5))
    other = tmp_path / "other.png"
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(other)
    assert select_ui.hole_of(picked, str(other), []) is None  # a new photo: the old selection erases nothing
    assert select_ui.on_photo(None)[1].photo == ""


def test_find_people_without_a_detector_says_to_click_instead(photo):
    path, _ = photo
    with pytest.raises(gr.Error, match="Click on each person"):
        select_ui.on_people(path, select_ui.Picked(), 8)


def test_erase_fills_the_selection_even_with_nothing_painted(photo):
    path, obj = photo
    _, picked, _, _ = select_ui.on_photo(path)
    _, picked, _ = select_ui.on_click(path, picked, "add", 4, [], click(W * 0.6, H * 0.5))
    shown = ui.on_run(path, None, None, ["telea"], 1, 0, "crop", 64, 0, 0, picked=picked, people_erased=[])
    result = np.asarray(Image.open(results.wait(shown.run)[0]).convert("RGB"))
    original = np.asarray(Image.open(path).convert("RGB"))
    changed = (result != original).any(axis=2)
    assert changed[obj].mean() > 0.9 and not changed[~picked.clicked].any()
    with pytest.raises(gr.Error, match="mask is empty"):  # a selection of another photo erases nothing
        ui.on_run(path, None, None, ["telea"], 1, 0, "crop", 64, 0, 0, picked=select_ui.Picked(photo="other"))


def test_a_box_after_a_click_selects_a_second_object_and_keeps_the_first(photo):
    path, obj = photo
    _, picked, _, _ = select_ui.on_photo(path)
    _, picked, _ = select_ui.on_click(path, picked, "add", 0, [], click(W * 0.6, H * 0.5))
    first = picked.clicked
    _, picked, _ = select_ui.on_click(path, picked, "box", 0, [], click(W * 0.02, H * 0.02))
    _, picked, _ = select_ui.on_click(path, picked, "box", 0, [], click(W * 0.2, H * 0.2))
    assert picked.points == [] and (picked.kept == first).all()
    both = picked.mask([])
    assert (both | ~first).all() and both[: int(H * 0.2), : int(W * 0.2)].mean() > 0.3


def test_the_photo_is_encoded_ahead_only_while_the_panel_is_open(photo, monkeypatch):
    path, _ = photo
    asked = []
    monkeypatch.setattr(selection, "prepare", lambda photo: asked.append(photo.size))
    select_ui.encode_ahead(path, False)  # a visitor who only paints
    select_ui.encode_ahead(None, True)  # the panel open, no photo yet
    assert asked == []
    select_ui.encode_ahead(path, True)
    assert asked == [(W, H)]
    demo = ui.build()
    accordion = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "select-panel")
    triggers = {(t[0], t[1]) for fn in demo.fns.values() for t in fn.targets}
    assert (accordion._id, "expand") in triggers and (accordion._id, "collapse") in triggers
