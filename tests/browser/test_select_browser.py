"""Click to select in Chromium: a click tints the object, a box by two corners, and Erase fills the selection
with nothing painted; the panel on a 390 px phone. No segmentation weights here: GrabCut selects,
as the page does offline."""

from __future__ import annotations

import numpy as np
import pytest

from app.images import load_photo
from tests import tiny_pretrained
from tests.browser.studio import StudioPage
from tests.upload_cases import read_result, small_photo


@pytest.fixture
def studio_page(studio, page, shots) -> StudioPage:
    return StudioPage(page, studio.url, shots).open()


def open_panel(ui_page: StudioPage) -> None:
    ui_page.page.locator("#select-panel").get_by_text("Select by clicking").click()
    ui_page.page.locator("#select-view img").wait_for(timeout=30_000)


def click_view(ui_page: StudioPage, fx: float, fy: float) -> str:
    """Click at (fx, fy) of the preview; returns the note once the selection is drawn."""
    image = ui_page.page.locator("#select-view img")
    before = image.get_attribute("src")
    image.scroll_into_view_if_needed()  # a click lands where the person can see, not below the window
    box = image.bounding_box()
    ui_page.page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    ui_page.page.wait_for_function(
        "before => document.querySelector('#select-view img')?.src !== before", arg=before, timeout=60_000)
    return ui_page.page.locator("#select-note").inner_text()


def shown_view(ui_page: StudioPage) -> np.ndarray:
    return np.asarray(ui_page.fetch_image(ui_page.page.locator("#select-view img").get_attribute("src"))
                      .convert("RGB")).astype(int)


def test_a_click_selects_and_erase_fills_it_without_painting(studio_page: StudioPage, tmp_path):
    ui_page, path = studio_page, small_photo()
    original = load_photo(path).pixels[..., :3]
    ui_page.upload_photo(path)
    open_panel(ui_page)
    plain = shown_view(ui_page)
    note = click_view(ui_page, 0.55, 0.8)  # the cat's nose and muzzle
    assert "Selected" in note and "GrabCut" in note
    tinted = shown_view(ui_page)
    redder = (tinted[..., 0] - plain[..., 0]) > 20
    assert 0.005 < redder.mean() < 0.6, "the selection is not shown tinted over the photo"
    ui_page.shot("clicked")

    ui_page.page.locator("#select-mode").get_by_test_id("box-radio-label").click()
    assert "opposite corner" in click_view(ui_page, 0.05, 0.05)
    click_view(ui_page, 0.25, 0.25)
    ui_page.shot("box")

    ui_page.choose_models("OpenCV Telea")
    ui_page.run()
    result = read_result(ui_page.download(0, tmp_path))
    changed = (result != original).any(axis=2)
    h, w = changed.shape
    assert changed[int(0.8 * h) - 3: int(0.8 * h) + 4, int(0.55 * w) - 3: int(0.55 * w) + 4].all()
    assert changed[int(0.15 * h), int(0.15 * w)]  # inside the box
    assert not changed[int(0.5 * h), int(0.05 * w)], "erased outside what was selected"
    ui_page.shot("erased")


def test_the_panel_fits_a_phone(studio, browser, shots):
    context = browser.new_context(viewport={"width": 390, "height": 844}, accept_downloads=True)
    try:
        ui_page = StudioPage(context.new_page(), studio.url, shots).open()
        ui_page.upload_photo(small_photo())
        open_panel(ui_page)
        assert "Selected" in click_view(ui_page, 0.5, 0.5)
        assert ui_page.page.evaluate("() => document.documentElement.scrollWidth") <= 390
        ui_page.page.locator("#select-panel").scroll_into_view_if_needed()
        ui_page.shot("phone-select")
        view = ui_page.page.locator("#select-view img").bounding_box()
        editor = ui_page.canvas_box()
        assert view["width"] >= 0.9 * editor.w, "the photo to click on is smaller than the editor's"
    finally:
        context.close()


def test_with_segmenter_weights_here_a_click_runs_it(studio, page, shots):
    """EdgeTAM's files in the checkpoints folder (a tiny one with its real backbone): the panel's clicks
    run it through the same loader, encoded once the panel is open, instead of GrabCut."""
    folder = studio.checkpoints / "edgetam"
    folder.mkdir()
    for name, data in tiny_pretrained.files_of("edgetam").items():
        (folder / name).write_bytes(data)
    ui_page = StudioPage(page, studio.url, shots).open()
    ui_page.upload_photo(small_photo())
    open_panel(ui_page)
    note = click_view(ui_page, 0.55, 0.8)
    assert "Selected" in note and "with EdgeTAM" in note and "GrabCut" not in note, note
    assert "with EdgeTAM" in click_view(ui_page, 0.3, 0.3)  # the second click reuses the encode
    ui_page.shot("edgetam-clicked")


def test_find_text_proposes_a_tick_and_erase_fills_it(studio, page, shots, tmp_path, monkeypatch):
    """The text segmenter's release in the checkpoints folder: *Find text* ticks what it found, Erase fills it."""
    from app.selection import text
    from tests.releases.textseg import write_release

    write_release(studio.checkpoints / "textseg-xception")
    monkeypatch.setenv("INPAINT_CHECKPOINTS", str(studio.checkpoints))  # the same weights in this process
    ui_page, path = StudioPage(page, studio.url, shots).open(), small_photo()
    original = load_photo(path).pixels[..., :3]
    ui_page.upload_photo(path)
    open_panel(ui_page)
    ui_page.page.locator("#find-text").click()
    ui_page.page.locator("#people").get_by_text("the text found").wait_for(timeout=120_000)
    assert "Text found on" in ui_page.page.locator("#select-note").inner_text()
    ui_page.shot("text-found")
    ui_page.choose_models("OpenCV Telea")
    ui_page.run()
    changed = (read_result(ui_page.download(0, tmp_path)) != original).any(axis=2)
    found = text.find_text(original.astype(np.uint8), grow=text.DEFAULT_GROW).mask  # what the page proposed
    assert found.any() and changed[found].mean() > 0.9, "the text found was not erased"
    ui_page.shot("text-erased")
