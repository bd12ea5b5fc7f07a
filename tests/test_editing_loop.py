"""The loop around one erase, without a browser: masks in and out (round trip to the CLI), the 1:1 view of a
fill, and the settings a browser remembers (issue 28). The keys and the scroll are browser-tested
(tests/browser/test_editing_loop_browser.py)."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
from PIL import Image, ImageFilter

from app import cli, masks, options, registry
from app.images import load_photo
from app.web import canvas, handlers, model_list, remembered, zoom
from app.web.mask_files import on_mask_download, on_mask_upload
from tests.editor import H, W, editor_with, write_photo

HOLE = (300, 520, 400, 700)  # y0, y1, x0, x1 at full resolution
EDGE = (380, 400, 300, 800)  # a guide across the hole


@pytest.fixture
def photo(tmp_path):
    return write_photo(tmp_path)


# ------------------------------------------------------------------ masks in and out


def test_the_downloaded_mask_is_the_hole_erase_fills_and_the_cli_gives_the_pages_fill(photo, tmp_path):
    editor = editor_with([HOLE], [EDGE])
    files = on_mask_download(str(photo), None, editor)["value"]
    assert [f.rsplit("/", 1)[-1] for f in files] == ["photo_mask.png", "photo_edges.png"]
    painted = canvas.strokes(editor, (W, H))
    with Image.open(files[0]) as mask:
        assert mask.size == (W, H) and mask.mode == "L"  # the photo's full resolution
    np.testing.assert_array_equal(masks.to_hole(files[0], (W, H)), painted["hole"])
    np.testing.assert_array_equal(masks.to_hole(files[1], (W, H)), painted["edges"])

    knobs = {"samples": 1, "seed": 3, "strategy": "crop", "margin": 64, "grow": 6, "feather": 4}
    page = handlers.on_run(str(photo), None, editor, ["telea"], *knobs.values())
    out = tmp_path / "cli"
    flags = [f"--{name}={value}" for name, value in knobs.items()]
    assert cli.main(["inpaint", str(photo), "--mask", files[0], "--edges", files[1], "-m", "telea", "-o", str(out),
                     *flags]) == 0
    (written,) = out.glob("*.png")
    np.testing.assert_array_equal(load_photo(written).pixels, load_photo(page.files[0]).pixels)


def test_a_loaded_mask_is_read_like_the_apis_and_joins_what_is_painted(photo, tmp_path):
    small = np.zeros((H // 2, W // 2), np.uint8)
    small[50:120, 500:600] = 255  # drawn on a half-size copy: scaled up like the API's mask input
    path = tmp_path / "elsewhere.png"
    Image.fromarray(small).save(path)
    editor = editor_with([HOLE])
    value, preset, note = on_mask_upload(str(path), str(photo), None, editor)
    expected = masks.to_hole(str(path), (W, H)) | canvas.strokes(editor, (W, H))["hole"]
    np.testing.assert_array_equal(masks.to_hole(preset, (W, H)), expected)
    assert "Mask loaded" in note
    tinted = np.asarray(value["background"]).astype(int)  # shown on the canvas like an example's mask
    plain = np.asarray(canvas.editor_value(load_photo(photo))["background"]).astype(int)
    changed = np.abs(tinted - plain).max(axis=2) > 30
    scale = canvas.PREVIEW_SIDE / W
    assert changed[round(120 * scale), round(1100 * scale)] and not changed[5, 5]
    # Erase with the preset and no new strokes fills exactly the loaded hole.
    shown = handlers.on_run(str(photo), preset, {"background": None, "layers": [], "composite": None}, ["telea"],
                            1, 0, "crop", 64, 0, 0)
    differs = np.abs(load_photo(shown.files[0]).pixels.astype(int) - load_photo(photo).pixels.astype(int)).max(axis=2)
    assert not differs[~expected].any()


@pytest.mark.parametrize("content, why", [
    (np.zeros((H, W), np.uint8), "no hole"),
    (np.full((H, W // 3), 255, np.uint8), "shape"),  # another aspect ratio: refused, never stretched
])
def test_a_mask_that_does_not_fit_is_refused_with_a_message(photo, tmp_path, content, why):
    path = tmp_path / "mask.png"
    Image.fromarray(content).save(path)
    with pytest.raises(gr.Error) as refused:
        on_mask_upload(str(path), str(photo), None, None)
    assert str(refused.value.message) and "Traceback" not in str(refused.value.message)


def test_a_corrupt_mask_file_or_no_photo_is_a_message(photo, tmp_path):
    path = tmp_path / "mask.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(gr.Error):
        on_mask_upload(str(path), str(photo), None, None)
    with pytest.raises(gr.Error, match="photo"):
        on_mask_upload(str(path), None, None, None)
    with pytest.raises(gr.Error, match="[Pp]aint"):
        on_mask_download(str(photo), None, {"background": None, "layers": [], "composite": None})


# ------------------------------------------------------------------ 1:1 view


@pytest.mark.parametrize("box, size, expected", [
    ((10, 20, 110, 220), (4000, 3000), (10, 20, 110, 220)),  # small: as it is
    ((0, 0, 4000, 3000), (4000, 3000), (1488, 988, 2512, 2012)),  # the whole photo: its centre, ZOOM_SIDE a side
    ((3900, 2950, 4000, 3000), (4000, 3000), (3900, 2950, 4000, 3000)),  # at the corner: inside the photo
    ((0, 0, 3000, 500), (3000, 500), (988, 0, 2012, 500)),
])
def test_the_1_1_view_is_at_most_zoom_side_around_the_regions_centre(box, size, expected):
    assert zoom.zoom_box(box, size) == expected
    x0, y0, x1, y1 = zoom.zoom_box(box, size)
    assert 0 <= x0 < x1 <= size[0] and 0 <= y0 < y1 <= size[1] and max(x1 - x0, y1 - y0) <= zoom.ZOOM_SIDE


def test_the_1_1_view_shows_the_photos_own_pixels_and_the_outline_only_on_the_border(photo):
    shown = handlers.on_run(str(photo), None, editor_with([HOLE]), ["telea", "navier-stokes"], 1, 0, "crop", 64, 4, 4)
    box = tuple(shown.run["boxes"]["each hole"][1])
    x0, y0, x1, y1 = box
    for choice, source in [("original", photo), (shown.run["labels"][1], shown.files[1])]:
        path = zoom.view_file(shown.run, str(photo), box, choice, outline=False)
        view = np.asarray(Image.open(path).convert("RGB")).astype(int)
        truth = load_photo(source).pixels[y0:y1, x0:x1, :3].astype(int)
        assert view.shape == truth.shape  # pixel for pixel: not one pixel scaled
        np.testing.assert_array_equal(view, truth)  # lossless
        assert zoom.view_file(shown.run, str(photo), box, choice, outline=False) == path  # written once
    plain = np.asarray(Image.open(zoom.view_file(shown.run, str(photo), box, "original", False))).astype(int)
    lined = np.asarray(Image.open(zoom.view_file(shown.run, str(photo), box, "original", True))).astype(int)
    moved = np.abs(lined - plain).max(axis=2) > 40
    alpha = np.asarray(Image.open(f"{shown.run['folder']}/regions.png"))[y0:y1, x0:x1] > 0
    ring = alpha & ~np.asarray(Image.fromarray(alpha).filter(ImageFilter.MinFilter(3)))
    assert moved.any() and moved[ring].mean() > 0.5  # the line lies on the changed area's border ...
    assert moved[~alpha].mean() < 0.01  # ... not outside it
    assert handlers.on_zoom(shown.run, str(photo), list(box), "no such result", False) == gr.skip()


# ------------------------------------------------------------------ settings remembered


def test_settings_come_back_as_saved_and_what_no_longer_holds_falls_back_to_the_default():
    listed = [m for _, m in model_list.model_choices().choices]
    values = [3, 42, "resize", 256, 12, 16]
    saved = remembered.remember([listed[-1], listed[0]], *values)
    models, knobs = remembered.restore(saved)
    assert models == [listed[-1], listed[0]] and knobs == values
    hostile = {"models": ["no-such-model", listed[0], 7], "knobs": {"samples": 999, "seed": "x", "strategy": "rm -rf",
                                                                   "margin": 64}}
    models, knobs = remembered.restore(hostile)
    assert models == [listed[0]]
    assert dict(zip(options.NAMES, knobs)) == options.defaults() | {"margin": 64}
    for nothing in (None, {}, [], "junk", {"models": "telea", "knobs": []}):
        assert remembered.restore(nothing) == remembered.defaults()
    assert remembered.defaults()[0] == [m for m in registry.DEFAULT_MODELS if m in listed]


def test_reset_puts_the_defaults_back_and_forgets_what_was_saved():
    models, *knobs, saved = remembered.on_reset()
    assert (models, knobs) == remembered.defaults() and saved == {}
    models, fold, folded, table, *knobs = remembered.on_visit({"models": [], "knobs": {"seed": 5}})
    assert models["value"] == [] and dict(zip(options.NAMES, knobs))["seed"] == 5


def test_a_tile_of_holes_too_far_apart_for_one_view_opens_hole_1(tmp_path):
    wide = {"folder": str(tmp_path), "labels": ["a"], "files": [], "size": [4000, 3000], "regions": 2,
            "boxes": {"all holes together": [[0, 0, 4000, 3000]], "each hole": [[10, 10, 300, 300]]}}
    assert zoom.tile_box(wide, "all holes together", 0) == (10, 10, 300, 300)
    near = wide | {"boxes": {"all holes together": [[0, 0, 900, 900]], "each hole": [[10, 10, 300, 300]]}}
    assert zoom.tile_box(near, "all holes together", 0) == (0, 0, 900, 900)  # both fit: the tile's own box
    assert zoom.tile_box(wide, "each hole", 0) == (10, 10, 300, 300) and zoom.tile_box(wide, "each hole", 9) is None
