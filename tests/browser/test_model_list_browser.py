"""The model list stays short (issue 25): only what can run is a tick, the rest folded behind one line.

On a phone the 18 greyed-out boxes were three screens long and pushed Erase 2.6 screen heights
below the top of the editor; the list must leave Erase within two screen heights of it, and the
desktop layout must not get worse.
"""

from __future__ import annotations

import pytest

from app import registry
from tests.browser.studio import StudioPage
from tests.hub_server import HubServer
from tests.server import running_app

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
        needs_gpu = {spec.name for spec in registry.MODELS if spec.cpu_seconds_512}  # the diffusion remover
        assert all("needs a GPU" in line for name, line in reasons.items() if name in needs_gpu)
        assert all("this server is offline" in line for name, line in reasons.items() if name not in needs_gpu)
        studio_page.shot(f"{width}x{height}-fold-open")
    finally:
        context.close()


def test_a_model_that_downloads_on_first_use_says_how_much_and_from_where(tmp_path, browser, shots):
    """LaMa's archive answers on a loopback Hub: a tick marked ↓, its size and source under the list (phone)."""
    no_way_out = {"HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",  # authors' servers silent
                  "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    with HubServer() as hub:
        hub.add("smartywu/big-lama", {"big-lama.zip": b"answered, never fetched by a listing"})
        env = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), **no_way_out}
        with running_app(tmp_path / "studio", **env) as app:
            context = browser.new_context(viewport={"width": 390, "height": 844})
            try:
                studio_page = StudioPage(context.new_page(), app.url, shots).open()
                assert "LaMa (big-lama) ↓" in studio_page.model_labels()
                info = studio_page.page.locator("#models").inner_text()
                assert "LaMa (big-lama) from the Hugging Face Hub (381 MB)" in info
                assert studio_page.unavailable_heading().endswith("unavailable on this server — why")
                studio_page.shot("download-on-first-use")
                assert studio_page.top_of("#run") - studio_page.top_of("#editor") <= 2 * 844
            finally:
                context.close()
        assert not [path for path in hub.paths("GET") if "big-lama" in path]  # only asked (HEAD), not downloaded
