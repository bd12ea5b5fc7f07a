"""Choosing between fills in the browser: hole tiles, pick per hole and merge, continue and undo,
Erase locked while running and Cancel, clearing the photo, and the phone-sized page."""

from __future__ import annotations

import numpy as np
import pytest

from app.images import load_photo, preview
from app.web import canvas
from tests.browser.studio import StudioPage
from tests.upload_cases import hires_photo, read_result, small_photo

TELEA, NS, PIC = "OpenCV Telea", "OpenCV Navier-Stokes", "Pluralistic (Places2)"
EDGECONNECT, CYAN = "EdgeConnect (Places2)", (0, 229, 255)  # the edge guide's brush (canvas.GUIDE_COLOURS)
LEFT, RIGHT = [(0.12, 0.3), (0.22, 0.35)], [(0.75, 0.7), (0.85, 0.75)]  # two holes far apart


@pytest.fixture
def studio_page(studio, page, shots) -> StudioPage:
    return StudioPage(page, studio.url, shots).open()


def paint(ui_page: StudioPage, path, *strokes) -> None:
    rect = ui_page.preview_rect(preview(load_photo(path), canvas.PREVIEW_SIDE).size)
    for points in strokes:
        ui_page.stroke(rect, points)


def captions_on_screen(ui_page: StudioPage) -> list[str]:
    """The tiles' captions, each checked to be visible inside the gallery and not cut.

    Every box is read in one go: the page scrolls to the results as they arrive, and boxes read one
    by one could straddle a frame of that scroll.
    """
    gallery, boxes, texts = ui_page.page.locator("#gallery").evaluate(_BOXES)
    for i, box in enumerate(boxes):
        assert box["y"] + box["height"] <= gallery["y"] + gallery["height"] + 1, f"caption {i} is cut"
        assert box["x"] >= gallery["x"] - 1 and box["x"] + box["width"] <= gallery["x"] + gallery["width"] + 1
    return [text.strip() for text in texts]


_BOXES = """g => {
  const box = e => {
    const r = e.getBoundingClientRect();
    return {x: r.left, y: r.top, width: r.width, height: r.height};
  };
  const labels = [...g.querySelectorAll('.caption-label')];
  return [box(g), labels.map(box), labels.map(e => e.innerText)];
}"""


def test_each_hole_merge_continue_and_undo(studio_page: StudioPage, tmp_path):
    ui_page, path = studio_page, small_photo()
    original = load_photo(path).pixels
    ui_page.upload_photo(path)
    paint(ui_page, path, LEFT, RIGHT)
    ui_page.choose_models(TELEA, NS)
    ui_page.run()
    assert captions_on_screen(ui_page)[0] == "original"
    ui_page.page.locator("#view").get_by_text("each hole").click()
    ui_page.page.wait_for_function("() => document.querySelectorAll('#gallery .caption-label').length === 6")
    texts = captions_on_screen(ui_page)
    assert [t.split(" · ")[0] for t in texts] == ["hole 1"] * 3 + ["hole 2"] * 3
    ui_page.shot("each-hole")

    ui_page.page.locator("#pick-2 input").click()
    ui_page.page.get_by_role("option").filter(has_text=NS).click()
    ui_page.page.locator("#merge").click()
    link = ui_page.page.locator("#merged a[download]")
    link.wait_for(timeout=60_000)
    ui_page.shot("merged")
    with ui_page.page.expect_download() as info:
        link.click()
    merged = read_result(info.value.path())
    results = {f.stem: read_result(f) for f in (ui_page.download(i, tmp_path) for i in range(2))}
    h, w = original.shape[:2]
    left, right = np.zeros((h, w), bool), np.zeros((h, w), bool)
    left[:, : w // 2], right[:, w // 2:] = True, True
    np.testing.assert_array_equal(merged[left], results["telea"][left])  # hole 1: Telea, the first choice
    np.testing.assert_array_equal(merged[right], results["navier-stokes"][right])  # hole 2: the pick
    assert (merged != original).any(axis=2)[left].any() and (merged != original).any(axis=2)[right].any()

    ui_page.page.locator("#continue").click()
    ui_page.page.locator("#info").get_by_text("Continuing from the chosen result").wait_for(timeout=60_000)
    ui_page.wait_for_photo_on_canvas()
    assert ui_page.gallery_sources() == [] and ui_page.page.locator("#downloads a[download]").count() == 0
    ui_page.shot("continued")
    ui_page.page.locator("#undo").click()
    ui_page.page.locator("#info").get_by_text("Back to the previous photo").wait_for(timeout=60_000)
    ui_page.shot("undone")


def test_an_edge_guide_drawn_across_the_hole_leaves_no_strip_in_any_fill(studio_page: StudioPage, tmp_path):
    """A cyan edge stroke through the red hole stays hole for every model (a guide only for EdgeConnect)."""
    ui_page, path = studio_page, small_photo()
    original = load_photo(path).pixels
    ui_page.upload_photo(path)
    rect = ui_page.preview_rect(preview(load_photo(path), canvas.PREVIEW_SIDE).size)
    ui_page.stroke(rect, [(0.25, 0.5), (0.7, 0.5)])  # the hole: a horizontal band
    ui_page.choose_colour(CYAN)
    ui_page.guide_stroke(rect, [(0.45, 0.15), (0.45, 0.85)])  # an edge across it, longer than the hole
    ui_page.shot("guide-across-hole")
    ui_page.choose_models(TELEA, EDGECONNECT)
    ui_page.run()
    h, w = original.shape[:2]
    crossing = np.s_[int(0.5 * h) - 4: int(0.5 * h) + 5, int(0.45 * w) - 4: int(0.45 * w) + 5]
    beyond = np.s_[int(0.2 * h) - 4: int(0.2 * h) + 5, int(0.45 * w) - 4: int(0.45 * w) + 5]
    for index in range(2):
        result = read_result(ui_page.download(index, tmp_path))
        changed = (result != original).any(axis=2)
        assert changed[crossing].mean() > 0.9, f"result {index}: a strip of the original stayed in the hole"
        assert not changed[beyond].any(), f"result {index}: the guide outside the hole was erased"
    ui_page.shot("guide-filled")


def test_erase_is_locked_while_running_and_cancel_stops_it(studio_page: StudioPage):
    ui_page, path = studio_page, hires_photo()
    ui_page.upload_photo(path)
    paint(ui_page, path, [(0.2, 0.3), (0.8, 0.35)])
    ui_page.choose_models(PIC)
    ui_page.page.locator("#samples input[type=number]").fill("16")
    ui_page.page.locator("#samples input[type=number]").press("Tab")
    ui_page.run(expect_results=False)
    run, cancel = ui_page.page.locator("#run"), ui_page.page.locator("#cancel")
    cancel.wait_for(state="visible", timeout=10_000)
    assert run.is_disabled()  # no second job can be queued by a second click
    ui_page.shot("running")
    cancel.click()
    ui_page.page.wait_for_function("() => !document.querySelector('#run').disabled", timeout=30_000)
    assert not cancel.is_visible() and ui_page.gallery_sources() == []
    ui_page.shot("cancelled")


def test_clearing_the_photo_resets_the_page(studio_page: StudioPage):
    ui_page, path = studio_page, small_photo()
    ui_page.upload_photo(path)
    paint(ui_page, path, LEFT)
    ui_page.choose_models(TELEA)
    ui_page.run()
    ui_page.page.locator("#photo").get_by_label("Clear").first.click()
    ui_page.page.wait_for_function("() => document.querySelectorAll('#gallery img').length === 0")
    assert ui_page.slider_sources() == [] and ui_page.page.locator("#downloads a[download]").count() == 0
    ui_page.page.locator("#run").click()  # nothing left to erase from: said, not run on the old photo
    ui_page.toast("Upload a photo first")
    ui_page.shot("cleared")


@pytest.mark.parametrize("count", [1, 3, 8])
def test_phone_sized_page_shows_every_label(studio, browser, shots, count):
    """390x844: nothing clipped, the tiles two a row with their labels under them, for 1, 3 and 8 results."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, accept_downloads=True)
    try:
        ui_page = StudioPage(context.new_page(), studio.url, shots).open()
        path = small_photo()
        ui_page.upload_photo(path)
        paint(ui_page, path, [(0.1, 0.3), (0.6, 0.4)])  # long enough to show on a small canvas
        models = {1: [TELEA], 3: [TELEA, NS, PIC], 8: [TELEA, NS, PIC]}[count]
        ui_page.choose_models(*models)
        if count == 8:  # 2 classical + 6 diverse samples
            ui_page.page.locator("#samples input[type=number]").fill("6")
            ui_page.page.locator("#samples input[type=number]").press("Tab")
        ui_page.run()
        texts = captions_on_screen(ui_page)
        assert len(texts) == count + 1 and all(texts)
        page_width = ui_page.page.evaluate("() => document.documentElement.scrollWidth")
        assert page_width <= 390, "the page scrolls sideways"
        # Both read at once: the page scrolls to the results as they arrive (two reads could straddle a frame).
        first, second = ui_page.page.locator("#gallery .thumbnail-item").evaluate_all(
            "els => els.slice(0, 2).map(e => ({y: e.getBoundingClientRect().top, width: e.offsetWidth}))")
        assert abs(first["y"] - second["y"]) < 2 and first["width"] > 120  # two a row, large enough to judge
        ui_page.shot(f"phone-{count}-results")
    finally:
        context.close()
