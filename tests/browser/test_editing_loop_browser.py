"""The editing loop in Chromium at desktop and phone sizes: keys, results brought into view, the 1:1 view,
masks in and out (round trip to the CLI), settings remembered across visits (issue 28)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app import cli
from app.images import load_photo, preview
from app.web import canvas
from tests.browser.studio import StudioPage
from tests.upload_cases import read_result, small_photo

TELEA, NS = "OpenCV Telea", "OpenCV Navier-Stokes"
STROKE = [(0.3, 0.4), (0.5, 0.45), (0.6, 0.4)]
SIZES = {"desktop": (1440, 900), "phone": (390, 844)}


@pytest.fixture
def contexts(browser):
    """Browser contexts at a test's own window sizes, closed after it (a page left open keeps polling the app)."""
    made = []

    def new(size: tuple[int, int]):
        made.append(browser.new_context(viewport={"width": size[0], "height": size[1]}, accept_downloads=True))
        made[-1].set_default_timeout(30_000)
        return made[-1]

    yield new
    for context in made:
        context.close()


def open_page(contexts, studio, size: tuple[int, int], shots, context=None) -> StudioPage:
    context = context or contexts(size)
    return StudioPage(context.new_page(), studio.url, shots).open()


def preview_rect(ui: StudioPage, path):
    return ui.preview_rect(preview(load_photo(path), canvas.PREVIEW_SIDE).size)


@pytest.mark.parametrize("size", SIZES)
def test_keys_bring_the_fills_into_view_and_a_tile_opens_its_hole_at_1_1(contexts, studio, size, shots):
    width, height = SIZES[size]
    ui = open_page(contexts, studio, SIZES[size], shots)
    path = small_photo()
    ui.upload_photo(path)
    rect = preview_rect(ui, path)

    start = ui.brush_size()
    ui.press("]")
    ui.press("]")
    bigger = ui.brush_size()
    ui.press("[")
    assert start < bigger and start <= ui.brush_size() < bigger  # [ and ] step through the sizes
    red = ui.brush_colour()
    ui.press("x")
    assert ui.brush_colour() != red  # the guide brush (EdgeConnect's edges)
    ui.press("x")
    assert ui.brush_colour() == red

    ui.stroke(rect, STROKE)
    painted = ui.painted_pixels()
    ui.press("Control+z")  # the editor's own undo
    assert ui.painted_pixels() < painted / 4
    ui.stroke(rect, STROKE)
    ui.choose_models(TELEA, NS)

    size_now = ui.brush_size()
    seed = ui.page.locator("#seed input")
    seed.fill("")
    seed.press_sequentially("e]")  # typing in a field: no key fires
    ui.page.wait_for_timeout(700)
    assert not ui.page.locator("#cancel").is_visible() and ui.brush_size() == size_now
    ui.set_seed(7)

    ui.shot("painted")
    ui.press("e")
    ui.page.wait_for_function("() => document.querySelector('#status').innerText.includes('result(s) at')",
                              timeout=180_000)
    ui.page.wait_for_timeout(1500)  # the smooth scroll
    top = ui.page.locator("#view").evaluate("e => e.getBoundingClientRect().top")
    assert 0 <= top < height * 0.5, f"the comparison's top is at {top} px of a {height} px window"
    ui.page.screenshot(path=str(ui.shots / f"{size}-results.png"))

    ui.page.locator("#gallery img").nth(1).click()  # Telea's tile
    zoom = ui.page.locator("#zoom img")
    zoom.wait_for()
    natural, shown = zoom.evaluate("e => [[e.naturalWidth, e.naturalHeight], "
                                   "[e.getBoundingClientRect().width, e.getBoundingClientRect().height]]")
    assert natural == [round(v) for v in shown] and natural[0] > 100  # pixel for pixel, not fitted to the box
    first = zoom.get_attribute("src")
    ui.page.locator("#zoom-choice label", has_text="original").click()
    ui.page.wait_for_function(f"() => document.querySelector('#zoom img')?.src !== {first!r}")
    original = np.asarray(ui.fetch_image(zoom.get_attribute("src")).convert("RGB"))
    photo = load_photo(path).rgb8
    match = cv2.matchTemplate(photo, original, cv2.TM_SQDIFF)
    y, x = np.unravel_index(match.argmin(), match.shape)
    h, w = original.shape[:2]
    np.testing.assert_array_equal(original, photo[y:y + h, x:x + w])  # the photo's own pixels, unscaled, lossless
    ui.page.locator("#zoom-outline input").check()
    ui.page.wait_for_function("() => document.querySelector('#zoom img')?.src.includes('outline')")
    ui.page.locator("#zoom-panel").scroll_into_view_if_needed()
    ui.page.screenshot(path=str(ui.shots / f"{size}-one-to-one.png"))


def test_esc_cancels_a_run(contexts, studio, shots):
    ui = open_page(contexts, studio, SIZES["desktop"], shots)
    path = small_photo()
    ui.upload_photo(path)
    ui.stroke(preview_rect(ui, path), STROKE)
    ui.choose_models("Pluralistic (Places2)")
    ui.page.locator("#samples input[type=number]").fill("16")
    ui.page.locator("#samples input[type=number]").press("Tab")
    ui.press("Control+Enter")
    ui.page.locator("#cancel").wait_for(state="visible")
    ui.press("Escape")
    ui.page.locator("#cancel").wait_for(state="hidden")
    assert ui.page.locator("#run").is_enabled()
    ui.page.wait_for_timeout(3000)
    assert ui.gallery_sources() == []  # the run stopped: no fills came


def test_a_downloaded_mask_gives_the_pages_fill_in_the_cli_and_loads_back(contexts, studio, shots, tmp_path):
    ui = open_page(contexts, studio, SIZES["desktop"], shots)
    path = small_photo()
    ui.upload_photo(path)
    ui.stroke(preview_rect(ui, path), STROKE)
    ui.choose_models(TELEA)
    ui.run()
    page_fill = read_result(ui.download(0, tmp_path))

    ui.page.locator("#mask-out").click()
    link = ui.page.locator("#mask-files-out a[download]").first
    link.wait_for()
    with ui.page.expect_download() as info:
        link.click()
    mask = tmp_path / info.value.suggested_filename
    info.value.save_as(str(mask))
    assert mask.name == f"{path.stem}_mask.png"
    out = tmp_path / "cli"
    assert cli.main(["inpaint", str(path), "--mask", str(mask), "-m", "telea", "-o", str(out)]) == 0
    (written,) = out.glob("*.png")
    np.testing.assert_array_equal(read_result(written), page_fill)  # the same fill, bit for bit

    ui.upload_photo(path)  # a fresh canvas, then the mask file loaded onto it
    before = ui.canvas_pixels()
    with ui.page.expect_file_chooser() as chooser:
        ui.page.locator("#mask-in").click()
    chooser.value.set_files(str(mask))
    ui.page.wait_for_function("() => document.querySelector('#info').innerText.includes('Mask loaded')")
    ui.wait_for_photo_on_canvas()
    ui.page.wait_for_timeout(1000)
    ui.shot("mask-loaded")
    after = ui.canvas_pixels()
    h, w = min(before.shape[0], after.shape[0]), min(before.shape[1], after.shape[1])  # sub-pixel layout
    assert (np.abs(after[:h, :w] - before[:h, :w]).max(axis=2) > 40).sum() > 1000  # shown on the canvas
    ui.run()
    np.testing.assert_array_equal(read_result(ui.download(0, tmp_path / "again")), page_fill)


def test_settings_are_remembered_per_browser_and_reset(contexts, studio, shots):
    context = contexts(SIZES["desktop"])
    ui = open_page(contexts, studio, SIZES["desktop"], shots, context)
    ui.choose_models(NS)
    ui.set_seed(42)
    ui.page.locator("#samples input[type=number]").fill("3")
    ui.page.locator("#samples input[type=number]").press("Tab")
    ui.page.wait_for_timeout(1000)

    again = StudioPage(context.new_page(), studio.url, ui.shots).open()  # a new visit, same browser
    again.page.wait_for_function("() => document.querySelector('#seed input').value === '42'")
    assert _ticked(again) == [NS]
    assert again.page.locator("#samples input[type=number]").input_value() == "3"

    again.page.get_by_role("button", name="Advanced").click()  # the accordion holds Reset
    again.page.locator("#reset").click()
    again.page.wait_for_function("() => document.querySelector('#seed input').value === '0'")
    defaults = _ticked(again)
    assert NS not in defaults and TELEA in defaults
    third = StudioPage(context.new_page(), studio.url, ui.shots).open()
    third.page.wait_for_timeout(1000)
    assert _ticked(third) == defaults and third.page.locator("#seed input").input_value() == "0"


def _ticked(ui: StudioPage) -> list[str]:
    boxes = ui.page.locator("#models input[type=checkbox]")
    return [boxes.nth(i).evaluate("e => e.closest('label').innerText").strip()
            for i in range(boxes.count()) if boxes.nth(i).is_checked()]
