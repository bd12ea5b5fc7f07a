"""What a person does in the studio, as Playwright steps: upload, paint, choose, run, read, download.

Every step waits for what the page shows (never a fixed sleep for results), and
``shot()`` keeps a screenshot per step as a test artefact.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeout

RUN_TIMEOUT_MS = 180_000  # a 10 MP photo through two models on a slow CI machine
TOAST_TIMEOUT_MS = 30_000
_BUSY = r"/\d+\.\ds|processing|queue/i"  # what Gradio's status tracker shows while an output waits
MIN_STROKE_PIXELS = 1500  # a stroke paints thousands of red pixels; the brush's cursor ring a few hundred
STROKE_TIMEOUT_S = 45
SETTLE_MS = 1500  # a late reset of the editor shows within this


@dataclass(frozen=True)
class Rect:
    """The photo preview as drawn on the editor's canvas, in page (CSS) pixels."""

    x: float
    y: float
    w: float
    h: float

    def at(self, fx: float, fy: float) -> tuple[float, float]:
        """Page position of the point at fractions (fx, fy) of the preview."""
        return self.x + fx * self.w, self.y + fy * self.h


class StudioPage:
    def __init__(self, page, url: str, shots: Path) -> None:
        self.page, self.url, self.shots, self.step = page, url, shots, 0

    # ----------------------------------------------------------------- navigation

    def open(self) -> StudioPage:
        """The page, once its visit's model list has come back.

        That list is the visit's only unqueued request (``/run/predict``); the queued one a visit also
        makes (the people panel's render) answers earlier, and a test that removes weights right
        after it raced the list's refresh.
        """
        with self.page.expect_response(lambda r: r.request.method == "POST" and "/gradio_api/run/predict" in r.url,
                                       timeout=60_000):
            self.page.goto(self.url)
        self.page.locator("#run").wait_for()
        self.page.locator("#photo input[type=file]").wait_for(state="attached")
        return self

    def shot(self, name: str) -> Path:
        """Screenshot of the whole page, numbered in the order of the steps."""
        self.step += 1
        self.page.wait_for_timeout(400)  # let toasts and images finish fading in
        path = self.shots / f"{self.step:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    # --------------------------------------------------------------------- upload

    def upload(self, path: Path) -> None:
        """Put ``path`` in the photo field (clearing a file shown there first: its input is gone until then)."""
        clear = self.page.locator("#photo").get_by_label("Clear")
        if clear.count() and self.page.locator("#photo .file-preview, #photo table").count():  # a file is shown
            clear.first.click()
        self.page.locator("#photo input[type=file]").set_input_files(str(path))

    def upload_photo(self, path: Path) -> str:
        """Upload a photo the app accepts; returns the description it shows once the upload event is done.

        The description of the previous photo stays on the page, under a timer, while the
        event runs: wait for the timer to come and go, not just for the text.
        """
        self.upload(path)
        try:
            self.page.wait_for_function(f"() => {_BUSY}.test(document.querySelector('#info').innerText)",
                                        timeout=15_000)
        except PlaywrightTimeout:
            pass  # the event was done before we looked
        self.page.wait_for_function(
            f"() => {{ const t = document.querySelector('#info').innerText;"
            f" return !{_BUSY}.test(t) && t.includes('Paint over what should disappear'); }}", timeout=60_000)
        self.page.locator("#editor canvas").first.wait_for()
        self.wait_for_photo_on_canvas()
        return self.page.locator("#info").inner_text()

    def wait_for_photo_on_canvas(self, timeout_s: float = 60) -> None:
        """Until the editor has drawn the new preview (software WebGL can take seconds) and is idle."""
        deadline = time.monotonic() + timeout_s
        while True:
            if not self._editor_busy() and self.canvas_pixels().std() > 5:  # an empty canvas is one flat colour
                return
            assert time.monotonic() < deadline, f"the editor did not show the photo within {timeout_s:.0f} s"
            self.page.wait_for_timeout(250)

    def _editor_busy(self) -> bool:
        return self.page.locator("#editor").evaluate(f"e => {_BUSY}.test(e.innerText)")

    def canvas_pixels(self) -> np.ndarray:
        """The editor's canvas as drawn now, (H, W, 3) int."""
        box = self.canvas_box()
        shot = self.page.screenshot(clip={"x": box.x, "y": box.y, "width": box.w, "height": box.h})
        return np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(int)

    # ---------------------------------------------------------------------- paint

    def canvas_box(self) -> Rect:
        canvas = self.page.locator("#editor canvas").first
        canvas.scroll_into_view_if_needed()  # a clip must lie in the viewport (after a click further down)
        box = canvas.bounding_box()
        return Rect(box["x"], box["y"], box["width"], box["height"])

    def preview_rect(self, preview_size: tuple[int, int]) -> Rect:
        """Where the preview is drawn on the canvas, found in a screenshot of it.

        The editor centres the preview at a zoom of its choosing; finding the drawn photo
        makes the mapping from page to photo pixels exact whatever that zoom is. The
        editor's overlays (label, tool bars) are hidden for the screenshot.
        """
        self.page.wait_for_timeout(300)
        canvas = self.canvas_box()
        clip = {"x": canvas.x, "y": canvas.y, "width": canvas.w, "height": canvas.h}
        self.page.evaluate(_HIDE_OVERLAYS)
        try:
            shot = self.page.screenshot(clip=clip)
        finally:
            self.page.evaluate(_SHOW_OVERLAYS)
        pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(int)
        scale = pixels.shape[1] / canvas.w  # device pixels per CSS pixel
        drawn = np.abs(pixels - pixels[1, 1]).max(axis=2) > 24  # differs from the empty canvas
        h, w = drawn.shape
        x0, x1 = _extent(drawn[h // 2])
        y0, y1 = _extent(drawn[:, w // 2])
        rect = Rect(canvas.x + x0 / scale, canvas.y + y0 / scale, (x1 - x0) / scale, (y1 - y0) / scale)
        aspect = preview_size[0] / preview_size[1]
        assert abs(rect.w / rect.h - aspect) < 0.02 * aspect, f"the preview was not found on the canvas: {rect}"
        return rect

    def stroke(self, rect: Rect, points: list[tuple[float, float]], steps: int = 4) -> None:
        """Paint through ``points`` and check that the paint shows and stays; else paint again.

        Right after a new photo the editor may still be setting up (or be reset once more by
        a late update from the server), and a stroke made then is dropped: a person sees
        that and paints again.
        """
        deadline = time.monotonic() + STROKE_TIMEOUT_S
        while True:
            self.wait_for_photo_on_canvas()
            before = self.painted_pixels()
            self._drag(rect, points, steps)
            self.page.wait_for_timeout(SETTLE_MS)
            if not self._editor_busy() and self.painted_pixels() > before + MIN_STROKE_PIXELS:
                return
            assert time.monotonic() < deadline, f"no stroke stayed on the canvas within {STROKE_TIMEOUT_S} s"

    def painted_pixels(self) -> int:
        """Pixels of the canvas in the hole brush's red (#ff0050)."""
        rgb = self.canvas_pixels()
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        return int(((r > 200) & (g < 60) & (b > 40) & (b < 130)).sum())

    def _drag(self, rect: Rect, points: list[tuple[float, float]], steps: int) -> None:
        """Drag the mouse (left button: the brush) through ``points`` (fractions of the preview).

        Few intermediate moves: the editor draws straight segments between them, and each
        move costs a software-rendered WebGL frame (~0.2 s) in headless Chromium.
        """
        self.page.mouse.move(*rect.at(*points[0]))
        self.page.mouse.down()
        for point in points[1:]:
            self.page.mouse.move(*rect.at(*point), steps=steps)
        self.page.mouse.up()

    def set_brush_size(self, size: int) -> None:
        """The editor's brush size slider (1-100)."""
        self.page.locator("#editor").get_by_label("Brush Size").click()
        self.page.locator("#editor input[type=range]").fill(str(size))
        self.page.keyboard.press("Escape")  # close the pop-up (a click elsewhere would paint)

    def brush_size(self) -> int:
        """The editor's brush size now (its slider, read through the pop-up and closed again)."""
        self.page.locator("#editor").get_by_label("Brush Size").click()
        value = int(self.page.locator("#editor input[type=range]").input_value())
        self.close_popup()
        return value

    def close_popup(self) -> None:
        """Close the editor's pop-up (it closes on a mouse press outside it; Escape does not close it)."""
        self.page.evaluate("() => document.body.dispatchEvent(new MouseEvent('mousedown', {bubbles: true}))")
        self.page.locator("#editor input[type=range], #editor button.color").first.wait_for(state="detached")

    def brush_colour(self) -> str:
        """The brush colour now, as the editor's colour button shows it (CSS ``rgb(...)``)."""
        return self.page.locator("#editor").get_by_label("Color").evaluate(
            "b => getComputedStyle(b.querySelector('svg') || b).color")

    def press(self, key: str) -> None:
        """A key pressed on the page, not in a field (whatever had the focus loses it first; nothing scrolls)."""
        self.page.evaluate("() => document.activeElement?.blur()")
        self.page.keyboard.press(key)
        self.page.wait_for_timeout(700)  # the brush keys open and close the editor's pop-ups

    def choose_colour(self, rgb: tuple[int, int, int]) -> None:
        """Pick the brush colour ``rgb`` from the editor's palette (the brushes the app offers)."""
        self.page.locator("#editor").get_by_label("Color").click()
        self.page.locator(f'#editor button.color[style*="rgb({rgb[0]}, {rgb[1]}, {rgb[2]})"]').click()
        self.page.keyboard.press("Escape")

    def guide_stroke(self, rect: Rect, points: list[tuple[float, float]]) -> None:
        """A stroke in the current (guide) colour: not red, so :meth:`stroke`'s check does not apply."""
        self._drag(rect, points, steps=4)
        self.page.wait_for_timeout(SETTLE_MS)

    def paint_all(self, rect: Rect) -> None:
        """Cover the whole preview with a few strokes of the widest brush.

        Strokes start inside the photo (the editor ignores a drag that begins off it); the
        brush radius (100 px of the preview) reaches the edges.
        """
        self.set_brush_size(100)
        for y in np.arange(0.02, 1.0, 0.12):
            self._drag(rect, [(0.01, y), (0.99, y)], steps=1)

    # ------------------------------------------------------------------ settings

    def choose_models(self, *names: str) -> None:
        """Tick exactly ``names`` (the labels shown) in the model list."""
        boxes = self.page.locator("#models input[type=checkbox]")
        for i in range(boxes.count()):
            box = boxes.nth(i)
            label = box.evaluate("e => e.closest('label').innerText").strip()
            box.set_checked(label in names)

    def model_labels(self) -> list[str]:
        """The labels of the model list's ticks, in order (ready models and those that download on first use)."""
        return [text.strip() for text in self.page.locator("#models label").all_inner_texts()]

    def unavailable_heading(self) -> str:
        """The one line the unavailable models are folded behind ("21 more models unavailable on this server — why")."""
        return self.page.locator("#unavailable-models .label-wrap > span:not(.icon)").first.inner_text().strip()

    def unavailable_reasons(self) -> dict[str, str]:
        """Opens the fold; model name -> its line there (name and the visitor's reason)."""
        if not self.page.locator("#unavailable-list").is_visible():
            self.page.locator("#unavailable-models button").first.click()
        self.page.locator("#unavailable-list li").first.wait_for()
        items = self.page.locator("#unavailable-list li").all_inner_texts()
        return {text.split(":", 1)[0].strip(): text.strip() for text in items}

    def top_of(self, selector: str) -> float:
        """Where the top of ``selector`` lies on the page, in CSS px from the page's top (scroll-independent)."""
        return self.page.locator(selector).first.evaluate("e => e.getBoundingClientRect().top + window.scrollY")

    def set_seed(self, seed: int) -> None:
        field = self.page.locator("#seed input")
        field.fill(str(seed))
        field.press("Tab")

    # ------------------------------------------------------------------------ run

    def run(self, expect_results: bool = True) -> None:
        """Click Erase; wait for a new gallery (or, if not expected, just click)."""
        before = self.gallery_sources()
        self.page.locator("#run").click()
        if not expect_results:
            return
        deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
        while time.monotonic() < deadline:
            shown = self.gallery_sources()
            if shown and shown != before and "result(s) at" in self.page.locator("#status").inner_text():
                return
            self.page.wait_for_timeout(250)
        raise AssertionError(f"no results within {RUN_TIMEOUT_MS / 1000:.0f} s")

    def toast(self, contains: str, timeout_ms: int = TOAST_TIMEOUT_MS) -> str:
        """Wait for a toast message containing ``contains``; return its text."""
        message = self.page.get_by_test_id("toast-text").filter(has_text=contains)
        try:
            message.first.wait_for(timeout=timeout_ms)
        except Exception as exc:  # noqa: BLE001 - say what the page showed instead: a flaky run can be told apart
            shown = self.page.get_by_test_id("toast-text").all_inner_texts()
            status = self.page.locator("#status").inner_text()
            raise AssertionError(f"no toast with {contains!r} within {timeout_ms / 1000:.0f} s; "
                                 f"toasts shown: {shown}; status: {status!r}") from exc
        return message.first.inner_text()

    def close_toasts(self) -> None:
        """Dismiss every toast (one may vanish by itself meanwhile: that is fine too)."""
        close = self.page.get_by_test_id("toast-close")
        for _ in range(10):
            if not close.count():
                return
            try:
                close.first.click(timeout=2_000)
            except Exception:  # noqa: BLE001 - it timed out by itself between count() and click()
                pass
            self.page.wait_for_timeout(200)

    def busy_outputs(self) -> list[str]:
        """Outputs still showing Gradio's progress timer (the user would still be waiting)."""
        return self.page.locator("[data-testid=status-tracker]").evaluate_all(
            f"els => els.filter(e => e.offsetParent && {_BUSY}.test(e.innerText))"
            ".map(e => e.closest('[id]')?.id || '?')")

    # ---------------------------------------------------------------------- read

    def gallery_sources(self) -> list[str]:
        return self.page.locator("#gallery img").evaluate_all("els => els.map(e => e.src)")

    def gallery_captions(self) -> list[str]:
        return self.page.locator("#gallery img").evaluate_all("els => els.map(e => e.alt)")

    def slider_sources(self) -> list[str]:
        return self.page.locator("#before-after img").evaluate_all("els => els.map(e => e.src)")

    def fetch_image(self, url: str) -> Image.Image:
        """An image the page shows, fetched as the browser would (same origin, same cookies)."""
        response = self.page.request.get(url)
        assert response.ok, f"{url}: HTTP {response.status}"
        image = Image.open(io.BytesIO(response.body()))
        image.load()
        return image

    def download(self, index: int, folder: Path) -> Path:
        """Click the ``index``-th link of the downloads list; returns the saved file."""
        link = self.page.locator("#downloads a[download]").nth(index)
        with self.page.expect_download() as info:
            link.click()
        target = folder / info.value.suggested_filename
        info.value.save_as(str(target))
        return target


def _extent(line: np.ndarray) -> tuple[int, int]:
    """[first, last + 1) of the True values in ``line``."""
    found = np.nonzero(line)[0]
    assert found.size, "nothing drawn on the canvas"
    return int(found[0]), int(found[-1]) + 1


# Everything in the editor that is not a canvas (or holding one) is an overlay.
_HIDE_OVERLAYS = """() => document.querySelectorAll('#editor *').forEach(e => {
    if (e.tagName !== 'CANVAS' && !e.querySelector('canvas')) {
        e.dataset.hiddenForShot = '1'; e.style.visibility = 'hidden';
    }
})"""
_SHOW_OVERLAYS = """() => document.querySelectorAll('#editor [data-hidden-for-shot]').forEach(e => {
    e.style.visibility = ''; delete e.dataset.hiddenForShot;
})"""
