"""``/select`` and ``/people`` (in-process and through gradio_client against ``python app.py``), and the CLI flags.

The running-app test serves tiny random-weight models (:mod:`tests.tiny_pretrained`) from the
loopback Hub, so the app fetches them at their pins exactly as it would from the real Hub.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from huggingface_hub import constants
from PIL import Image

from app import cli, model_cache, registry
from app.selection import clicks as selection
from app.web import page
from app.web import select_panel as select_ui
from app.web.endpoints import api_people, api_select
from tests import tiny_pretrained
from tests.helpers import iou, scene, wait_until
from tests.hub_server import HubServer
from tests.server import running_app


@pytest.fixture
def offline(monkeypatch, checkpoints, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    model_cache.clear()
    selection.forget_embeddings()
    yield tmp_path
    model_cache.clear()
    selection.forget_embeddings()


def photo_file(folder: Path, w: int = 300, h: int = 200) -> tuple[Path, np.ndarray, np.ndarray]:
    rgb, obj = scene(w, h)
    path = folder / "photo.png"
    Image.fromarray(rgb).save(path)
    return path, rgb, obj


def test_select_endpoint_returns_a_mask_png_of_the_photos_size(offline):
    path, _, obj = photo_file(offline)
    mask_path, info = api_select(str(path), [[180, 100, 1]], None, 0)
    mask = np.asarray(Image.open(mask_path))
    assert mask.shape == obj.shape and set(np.unique(mask)) <= {0, 255}
    assert iou(mask > 0, obj) > 0.9
    assert info["method"] == "grabcut" and "GrabCut" in info["note"] and "checkpoints" not in info["note"]
    assert api_select(str(path), "[[180, 100, 1]]", "", 2)[1]["selected_pixels"] > info["selected_pixels"]


def test_select_endpoint_refuses_hostile_input_with_a_message(offline, monkeypatch):
    path, _, _ = photo_file(offline)
    with pytest.raises(gr.Error, match="outside the photo"):
        api_select(str(path), [[9999, 1, 1]])
    with pytest.raises(gr.Error, match="JSON"):
        api_select(str(path), "[[1, 2")
    not_an_image = offline / "fake.png"
    not_an_image.write_bytes(b"<?php system($_GET['c']); ?>")
    with pytest.raises(gr.Error) as refused:
        api_select(str(not_an_image), [[1, 1, 1]])
    assert "Something went wrong" not in str(refused.value)
    monkeypatch.setenv("INPAINT_MAX_PIXELS", "1000")
    with pytest.raises(gr.Error, match="limit|pixels|MP"):
        api_select(str(path), [[1, 1, 1]])


@pytest.mark.parametrize(("points", "box", "grow", "words"), [
    ([[180, 100, 1]], None, float("nan"), "Grow must be a number from 0 to 64"),
    ([[180, 100, 1]], None, 1e400, "Grow must be a number from 0 to 64"),
    ([[180, 100, 1]], None, 10**400, "Grow must be a number from 0 to 64"),
    ([[180, 100, 1]], None, "wide", "Grow must be a number from 0 to 64"),
    ([[10**400, 100, 1]], None, 0, "x must be a number of pixels"),
    ([[180, 100, 10**400]], None, 0, "label must be 1"),
    ([], [0, 0, 10**400, 50], 0, "x must be a number of pixels"),
    ([[180, float("inf"), 1]], None, 0, "y must be a number of pixels"),
])
def test_select_endpoint_checks_every_number_with_a_message(offline, points, box, grow, words):
    """NaN, infinities and integers too large for a float (valid JSON) are the caller's to fix, not a crash."""
    path, _, _ = photo_file(offline)
    with pytest.raises(gr.Error, match=words) as refused:
        api_select(str(path), points, box, grow)
    assert "Something went wrong" not in refused.value.message and len(refused.value.message) < 300


@pytest.mark.parametrize(("grow", "threshold", "words"), [
    (float("nan"), 0.5, "Grow must be"), (10**400, 0.5, "Grow must be"), (4, float("nan"), "threshold"),
    (4, 1e400, "threshold"), (4, 10**400, "threshold"), (4, -0.1, "threshold"),
])
def test_people_endpoint_checks_every_number_with_a_message(offline, grow, threshold, words):
    path, _, _ = photo_file(offline)
    with pytest.raises(gr.Error, match=words) as refused:
        api_people(str(path), grow, threshold)
    assert "Something went wrong" not in refused.value.message


def test_people_endpoint_without_the_detector_says_so(offline):
    path, _, _ = photo_file(offline)
    with pytest.raises(gr.Error, match="not available on this server") as refused:
        api_people(str(path))
    assert "checkpoints" not in str(refused.value) and "offline" in refused.value.message
    assert "Click on each person" in refused.value.message


def test_cli_select_erases_the_clicked_object(offline, capsys):
    path, rgb, obj = photo_file(offline)
    out = offline / "out"
    code = cli.main(["inpaint", str(path), "--select", "180,100", "--select-remove", "10,10", "-m", "telea",
                     "-o", str(out), "--grow", "2", "--feather", "0"])
    assert code == 0, capsys.readouterr().err
    result = np.asarray(Image.open(out / "photo__telea.png").convert("RGB"))
    assert "grabcut" in capsys.readouterr().err
    far = ~selection.masks.grow(obj, 12)
    assert (result[far] == rgb[far]).all()
    assert np.abs(result[obj].astype(int) - rgb[obj]).mean() > 30  # the red ellipse is gone


@pytest.mark.parametrize(("args", "message"), [
    ([], "Say what to erase"),
    (["--select-remove", "1,1"], "only refines"),
    (["--select", "1"], "2 numbers"),
])
def test_cli_selection_argument_errors_exit_2(offline, capsys, args, message):
    path, _, _ = photo_file(offline)
    try:
        code = cli.main(["inpaint", str(path), "-m", "telea", "-o", str(offline / "out"), *args])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    assert code == 2 and message in capsys.readouterr().err


def test_cli_select_on_a_folder_is_refused(offline, capsys):
    photo_file(offline)
    assert cli.main(["inpaint", str(offline), "--select", "1,1", "-m", "telea", "-o", str(offline / "o")]) == 2
    assert "one photo" in capsys.readouterr().err


def test_cli_erase_people_without_the_detector_fails_that_image_with_the_reason(offline, capsys):
    path, _, _ = photo_file(offline)
    assert cli.main(["inpaint", str(path), "--erase-people", "-m", "telea", "-o", str(offline / "o")]) == 1
    assert "person detector" in capsys.readouterr().err


@pytest.mark.slow
def test_select_and_people_through_gradio_client(tmp_path):
    from gradio_client import Client, handle_file

    pins = tmp_path / "pins.json"
    with HubServer() as hub:
        for spec_id in ("sam2.1-hiera-tiny", "rtdetr-v2-r18"):
            tiny_pretrained.serve(hub, registry.pretrained(spec_id), pins)
        env = {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf"),
               "INPAINT_PINS": str(pins)}
        with running_app(tmp_path / "app", **env) as app:
            path, _, _ = photo_file(tmp_path, 320, 200)
            client = Client(app.url, verbose=False)
            mask, info = client.predict(handle_file(str(path)), [[180, 100, 1], [10, 10, 0]], None, 4, "auto",
                                        api_name="/select")
            assert info["method"] == "sam2.1-hiera-tiny", info
            assert Image.open(mask).size == (320, 200)
            again = client.predict(handle_file(str(path)), [[50, 50, 1]], [20, 20, 200, 180], 0, "auto",
                                   api_name="/select")[1]
            assert again["reused_embedding"] is True
            files, found, bombers = client.predict(handle_file(str(path)), 4, 0.0, api_name="/people")
            assert len(files) == len(found) > 0 and sum(p["subject"] for p in found) == 1
            assert all(Image.open(f).size == (320, 200) for f in files)
            assert (bombers is None) == (len(found) == 1)
            print(json.dumps(found[:2]))
        assert "Traceback" not in app.log_text(), app.log_text()[-3000:]


# ------------------------------------------------------- downloads apart from the select slot (issue 24)


def test_select_events_hold_no_gradio_slot_while_they_fetch_weights():
    """Every select event fetches its weights first and then takes app.selection.lane's slot: Gradio holds none."""
    demo = page.build()
    limits = {fn.fn.__name__: fn.concurrency_limit for fn in demo.fns.values() if fn.fn is not None}
    for name in ("api_select", "api_people", "api_text", "on_click", "on_grow", "on_people", "on_text", "on_text_grow"):
        assert limits[name] is None, name


@pytest.mark.slow  # ~6 s: a tiny detector built, served dripping, then fetched and run
def test_a_dripping_detector_download_holds_no_one_elses_selection(hub_env, pins_file, tmp_path, monkeypatch):
    """A caller's "find people" waits for a detector dripping from the Hub; clicks and /select are served meanwhile."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    tiny_pretrained.serve(hub_env, registry.pretrained("rtdetr-v2-r18"), pins_file)
    dripping = ("test/rtdetr-v2-r18", "model.safetensors")
    hub_env.drip[dripping] = (16, 0.2)  # 80 bytes/s: hours for the tiny detector
    path, _, obj = photo_file(tmp_path)
    outcome: list[BaseException | None] = []

    def find() -> None:
        try:
            api_people(str(path), 4, 1.0)  # nobody scores 1: no masks to draw once the detector is here
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            outcome.append(exc)

    finder = threading.Thread(target=find, daemon=True)
    finder.start()
    assert wait_until(lambda: f"/{dripping[0]}/resolve/" in " ".join(hub_env.paths("GET")), 10), hub_env.paths("GET")
    started = time.monotonic()
    mask, _ = api_select(str(path), [[180, 100, 1]], None, 0, "grabcut")
    _, picked, _, _ = select_ui.on_photo(str(path))
    at = gr.SelectData(None, {"index": [180, 100], "value": None})  # a 300 px photo is its own preview
    _, picked, _ = select_ui.on_click(str(path), picked, "add", 0, [], at)
    waited = time.monotonic() - started
    print(f"\n/select and a click served in {waited:.2f} s while the detector was still dripping")
    assert finder.is_alive() and waited < 10
    assert iou(np.asarray(Image.open(mask)) > 0, obj) > 0.9 and iou(picked.full(picked.clicked), obj) > 0.9
    del hub_env.drip[dripping]  # the network is back: the dripping response is cut, the caller is told
    finder.join(30)
    assert not finder.is_alive() and outcome


