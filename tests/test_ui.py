"""The studio's handlers, called the way Gradio calls them (no browser needed)."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from app import workers
from app.masks import grow
from app.web import canvas, endpoints, handlers, model_list, page
from tests.helpers import box_hole, textured


@pytest.fixture
def big_photo(tmp_path):
    path = tmp_path / "big.jpg"
    Image.fromarray(textured(1500, 2000)).save(path, quality=95)
    return path


def _painted_editor(preview: Image.Image, hole_box, edge_box=None) -> dict:
    layer = np.zeros((preview.height, preview.width, 4), np.uint8)
    y0, y1, x0, x1 = hole_box
    layer[y0:y1, x0:x1] = (*canvas.rgba(canvas.HOLE_COLOUR)[:3], 255)
    if edge_box:
        y0, y1, x0, x1 = edge_box
        layer[y0:y1, x0:x1] = (*canvas.rgba(canvas.brush_colours()["edges"])[:3], 255)
    return {"background": np.asarray(preview), "layers": [layer], "composite": None}


def test_upload_shows_a_small_preview_and_keeps_the_original(big_photo):
    value, path, preset, info, _ = handlers.on_upload(str(big_photo))
    assert preset is None and max(value["background"].size) == canvas.PREVIEW_SIDE
    assert path == str(big_photo) and "2000x1500" in info


def test_upload_over_the_limit_is_refused_at_once_and_cleared_from_the_field(big_photo, monkeypatch):
    monkeypatch.setenv("INPAINT_MAX_PIXELS", "1000000")
    warnings = []
    monkeypatch.setattr(gr, "Warning", lambda message, **kw: warnings.append(message))
    editor, path, preset, info, field = handlers.on_upload(str(big_photo))
    assert editor is path is preset is field is None  # nothing of it stays, nothing can run on it
    assert "over this app's limit" in warnings[0] and "refused" in info


def test_a_1x1_photo_is_refused_at_upload_as_too_small(tmp_path, monkeypatch):
    """Not later, as an "empty mask" nobody could have painted on one pixel."""
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "dot.png")
    warnings = []
    monkeypatch.setattr(gr, "Warning", lambda message, **kw: warnings.append(message))
    editor, path, preset, info, field = handlers.on_upload(str(tmp_path / "dot.png"))
    assert editor is path is preset is field is None
    assert warnings[0].startswith("The photo is 1x1 px, too small to inpaint: the smallest photo this app takes is "
                                  "2x2 px") and "refused" in info


@pytest.mark.slow  # over 1 s here: the full run only (README, fast lane)
def test_run_maps_preview_strokes_to_full_resolution(big_photo):
    value, path, *_ = handlers.on_upload(str(big_photo))
    editor = _painted_editor(value["background"], (300, 400, 300, 420), edge_box=(350, 352, 300, 420))
    shown = handlers.on_run(path, None, editor, ["telea"], 1, 0, "crop", 64, 4, 4)
    files = shown.files
    result = np.asarray(Image.open(files[0]))
    original = np.asarray(Image.open(big_photo))
    assert result.shape == original.shape == (1500, 2000, 3)
    scale = 2000 / canvas.PREVIEW_SIDE
    changed = (result != original).any(axis=2)
    ys, xs = np.nonzero(changed)
    assert abs(ys.min() - 300 * scale) < 20 and abs(xs.max() - 420 * scale) < 20  # where the stroke was
    before, after = (Image.open(p) for p in shown.before_after)
    assert before.size == after.size == (canvas.PREVIEW_SIDE, 768) and before.format == "WEBP"  # previews only
    tiles = [item["caption"] for item in shown.gallery.value]
    assert tiles == ["original", shown.run["labels"][0]] and shown.run["labels"][0].startswith("OpenCV Telea · ")
    assert shown.chosen == files[0] and "1 result(s) at 2000x1500" in shown.status


def test_run_without_strokes_or_photo_says_what_to_do(big_photo):
    value, path, *_ = handlers.on_upload(str(big_photo))
    with pytest.raises(gr.Error, match="mask is empty"):
        handlers.on_run(path, None, {"background": value["background"], "layers": [], "composite": None}, ["telea"],
                  1, 0, "crop", 64, 4, 4)
    with pytest.raises(gr.Error, match="Upload a photo first"):
        handlers.on_run(None, None, None, ["telea"], 1, 0, "crop", 64, 4, 4)


def test_examples_come_with_their_mask_and_run_without_painting():
    photo, mask = canvas.EXAMPLES[1]
    value, path, preset, _ = canvas.load_example(str(canvas.ASSETS / photo), str(canvas.ASSETS / mask))
    shown = np.asarray(value["background"]).astype(int)
    plain = np.asarray(Image.open(canvas.ASSETS / photo).convert("RGB")).astype(int)
    hole = np.asarray(Image.open(canvas.ASSETS / mask)) > 0
    assert (shown[hole] != plain[hole]).any(axis=1).all() and (shown[~hole] == plain[~hole]).all()  # tinted
    files = handlers.on_run(path, preset, value, ["telea"], 1, 0, "crop", 64, 4, 4).files
    changed = (np.asarray(Image.open(files[0])).astype(int) != plain).any(axis=2)
    assert changed[hole].mean() > 0.9 and not changed[~grow(hole, 4 + 5)].any()


def test_api_endpoint_is_named_and_models_come_from_the_registry():
    demo = page.build()
    names = [d.api_name for d in demo.fns.values()]
    assert "inpaint" in names
    shown = model_list.model_choices()
    assert ("OpenCV Telea", "telea") in shown.choices
    from app import registry

    assert all(spec.name in shown.table for spec in registry.MODELS)


def test_api_inpaint(tmp_path):
    Image.fromarray(textured(64, 64)).save(tmp_path / "p.png")
    Image.fromarray(box_hole(64, 64, 10, 20, 10, 20).astype(np.uint8) * 255).save(tmp_path / "m.png")
    files, info = endpoints.api_inpaint(str(tmp_path / "p.png"), str(tmp_path / "m.png"), ["telea", "patchmatch"])
    assert [row["model"] for row in info] == ["telea", "patchmatch"] and len(files) == 2


def test_downloads_queue_apart_from_inference():
    """A visitor waiting for weights must not hold the worker that runs everybody's models."""
    demo = page.build()
    groups = {dep["fn"].__name__: dep["concurrency_id"] for dep in _dependencies(demo)}
    assert groups["on_fetch"] == "downloads" and groups["on_run"] == "inpaint"
    limits = {dep["fn"].__name__: dep["concurrency_limit"] for dep in _dependencies(demo)}
    assert limits["on_fetch"] == workers.DOWNLOAD_CONCURRENCY
    # /inpaint fetches before it takes the inference slot (app.workers): its own group, several callers at once
    assert groups["api_inpaint"] == "api" and limits["api_inpaint"] == workers.API_CONCURRENCY > 1


def _dependencies(demo: gr.Blocks) -> list[dict]:
    return [{"fn": fn.fn, "concurrency_id": fn.concurrency_id, "concurrency_limit": fn.concurrency_limit}
            for fn in demo.fns.values() if fn.fn is not None]


@pytest.mark.slow  # over 1.5 s here: the full run only (README, fast lane)
def test_run_skips_models_still_waiting_for_weights_and_says_so(big_photo, monkeypatch):
    value, path, *_ = handlers.on_upload(str(big_photo))
    editor = _painted_editor(value["background"], (300, 400, 300, 420))
    monkeypatch.setattr(handlers, "needs_download", lambda spec: spec.id == "navier-stokes")
    warnings = []
    monkeypatch.setattr(gr, "Warning", lambda message, **kw: warnings.append(message))
    shown = handlers.on_run(path, None, editor, ["telea", "navier-stokes"], 1, 0, "crop", 64, 4, 4)
    assert len(shown.files) == 1 and "No result from OpenCV Navier-Stokes" in shown.status
    assert tuple(shown) == (shown.gallery, shown.before_after, shown.files, shown.run, shown.status, shown.chosen)
    assert "download did not finish" in warnings[0]
