"""The model list stays short (issue 25): only what can run is a tick, the rest folded behind one line.

On a phone the 18 greyed-out boxes were three screens long and pushed Erase 2.6 screen heights
below the top of the editor; the list must leave Erase within two screen heights of it, and the
desktop layout must not get worse.
"""

from __future__ import annotations

import pytest

from app import registry
from tests.browser.studio import StudioPage

READY = ["OpenCV Telea", "OpenCV Navier-Stokes", "PatchMatch", "EdgeConnect (Places2)", "Pluralistic (Places2)"]


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1440, 900)], ids=["phone", "desktop"])
def test_erase_stays_within_two_screens_of_the_editor(studio, browser, shots, width, height):
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        studio_page = StudioPage(context.new_page(), studio.url, shots).open()
        assert studio_page.model_labels() == READY  # the conftest's synthetic weights; nothing greyed out
        heading = studio_page.unavailable_heading()
        assert heading.startswith(f"{len(registry.MODELS) - len(READY)} more models unavailable")
        studio_page.shot(f"{width}x{height}-opened")
        editor, erase = studio_page.top_of("#editor"), studio_page.top_of("#run")
        print(f"{width}x{height}: Erase {erase - editor:.0f} px below the top of the editor "
              f"({(erase - editor) / height:.2f} screen heights)")
        assert 0 < erase - editor <= 2 * height
        if width > 1000:  # side by side: the list and Erase sit beside the editor, within one screen of it
            assert erase - editor <= height
        reasons = studio_page.unavailable_reasons()
        assert set(reasons) == {spec.name for spec in registry.MODELS if spec.name not in READY}
        assert all("this server is offline" in line for line in reasons.values())
        studio_page.shot(f"{width}x{height}-fold-open")
    finally:
        context.close()
