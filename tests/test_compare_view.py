"""Comparing fills where they differ, picking one per hole, continuing from a result (handlers, no browser)."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from app import masks, model_cache, registry
from app.images import load_photo
from app.web import canvas, handlers, model_list, results
from app.weights import hub
from tests.editor import H, W, editor_with, pixels, write_photo
from tests.helpers import textured

HOLES = [(200, 320, 250, 400), (800, 900, 1200, 1420)]  # y0, y1, x0, x1 at full resolution: far apart


@pytest.fixture
def photo(tmp_path):
    """A photo with an ICC profile and EXIF (they must survive continuing from a result)."""
    return write_photo(tmp_path)


def run(photo, holes=HOLES, models=("telea", "navier-stokes"), grow=4, feather=4, edges=()) -> handlers.Shown:
    return handlers.on_run(str(photo), None, editor_with(holes, edges), list(models), 1, 0, "crop", 64, grow, feather)


def test_tiles_show_the_holes_small_and_each_view_has_its_rows(photo):
    shown = run(photo)
    together, columns = results.gallery(shown.run, results.VIEWS[0])
    assert [c for _, c in together] == ["original", *shown.run["labels"]] and columns == 3
    each, columns = results.gallery(shown.run, results.VIEWS[1])
    assert columns == 3 and len(each) == 2 * 3  # one row per hole: original + two results
    assert [c.split(" · ")[0] for _, c in each] == ["hole 1"] * 3 + ["hole 2"] * 3
    for path, _ in together + each:
        with Image.open(path) as tile:
            assert tile.format == "WEBP" and max(tile.size) <= 512
    with Image.open(each[0][0]) as first, Image.open(together[0][0]) as both:
        assert first.size[0] < both.size[0]  # a hole alone is a closer view than both together
    labels = shown.run["labels"]
    assert labels[0].startswith("OpenCV Telea") and labels[1].startswith("OpenCV Navier-Stokes")


@pytest.mark.slow  # over 1.5 s here: the full run only (README, fast lane)
def test_clicking_a_tile_shows_that_result_in_the_slider_and_its_hole_at_1_1(photo):
    shown = run(photo)
    view = results.VIEWS[1]
    slider, chosen, box, choice, zoomed, panel = handlers.on_select(
        shown.run, view, str(photo), False, gr.SelectData(None, {"index": 5, "value": None}))
    assert chosen == shown.files[1]  # hole 2, second result
    assert slider == (shown.run["slides"][0], shown.run["slides"][2])
    assert box == shown.run["boxes"][view][5] and panel["visible"]
    assert choice["value"] == shown.run["labels"][1] and choice["choices"][0] == "original"
    x0, y0, x1, y1 = box
    np.testing.assert_array_equal(np.asarray(Image.open(zoomed)).shape[:2], (y1 - y0, x1 - x0))  # 1:1, not shrunk
    original = handlers.on_select(shown.run, view, str(photo), False, gr.SelectData(None, {"index": 3, "value": None}))
    assert original[:2] == (gr.skip(), gr.skip()) and original[3]["value"] == "original"  # hole 2's original tile
    for path in slider:
        with Image.open(path) as image:
            assert max(image.size) == canvas.PREVIEW_SIDE


def test_merge_takes_each_hole_from_its_pick_and_leaves_the_rest_untouched(photo):
    shown = run(photo)
    telea, ns = shown.run["labels"]
    slider, merged, chosen = handlers.on_merge(shown.run, str(photo), telea, ns)
    assert chosen == merged and Image.open(merged).size == (W, H)
    out, original = pixels(merged), pixels(photo)
    first, second = pixels(shown.files[0]), pixels(shown.files[1])
    changed_first = (first != original).any(axis=2)
    changed_second = (second != original).any(axis=2)
    top = np.zeros((H, W), bool)
    top[: H // 2] = True  # hole 1 and its feather band lie in the upper half, hole 2 in the lower
    assert changed_first[top].any() and changed_second[~top].any()
    np.testing.assert_array_equal(out[top], first[top])  # hole 1 (band included) exactly the Telea result
    np.testing.assert_array_equal(out[~top], second[~top])  # hole 2 exactly the Navier-Stokes result
    untouched = ~(changed_first | changed_second)
    np.testing.assert_array_equal(out[untouched], original[untouched])  # outside: bit for bit
    band = changed_first & ~masks.grow(_hole(0), 4)  # the feather band of hole 1: a blend of two
    assert band.any() and (out[band] != original[band]).any()
    # Too few picks, or one that is not a result of this run (a page out of step): a message, no merge (issue 24).
    for picks in ((telea,), (), (None, None), ("not a result", ns)):
        with pytest.raises(gr.Error, match="Pick one of this run's results for each of its 2 holes"):
            handlers.on_merge(shown.run, str(photo), *picks)


def _hole(index: int) -> np.ndarray:
    y0, y1, x0, x1 = HOLES[index]
    hole = np.zeros((H, W), bool)
    hole[y0:y1, x0:x1] = True
    return hole


@pytest.mark.slow  # over 1.5 s here: the full run only (README, fast lane)
def test_continue_makes_the_result_the_photo_and_undo_goes_back(photo):
    shown = run(photo, holes=HOLES[:1], models=("telea",))
    editor, path, preset, info, history = handlers.on_continue(shown.chosen, str(photo), [])
    assert path == shown.files[0] and history == [str(photo)] and preset is None and not editor["layers"]
    assert all(value in (None, [], "") for value in handlers.clear_results())  # then the results are cleared
    kept, original = load_photo(path), load_photo(photo)
    assert kept.icc == original.icc and kept.exif  # profile and EXIF carried through
    second = run(path, holes=HOLES[1:], models=("telea",))  # keep erasing from the result
    assert (pixels(second.files[0])[200:320, 250:400] == pixels(path)[200:320, 250:400]).all()
    _, back, _, _, history = handlers.on_undo(path, history)
    assert back == str(photo) and history == []
    with pytest.raises(gr.Error, match="Nothing to undo"):
        handlers.on_undo(back, history)


def test_clearing_the_photo_forgets_everything():
    photo_path, *rest = handlers.on_clear()
    assert photo_path is None and rest == [None, "Upload a photo to start.", [], [], None, None, None, None, ""]
    with pytest.raises(gr.Error, match="Upload a photo first"):  # Erase cannot run on the old photo
        handlers.on_run(photo_path, None, editor_with(HOLES), ["telea"], 1, 0, "crop", 64, 4, 4)


@pytest.mark.slow  # over 1.5 s here: the full run only (README, fast lane)
def test_an_edge_guide_across_the_hole_does_not_leave_a_strip_of_the_object(photo):
    """The cyan stroke drawn through the red hole is a guide for EdgeConnect only; the hole stays whole."""
    strip = (240, 280, 200, 450)  # crosses hole 1 and sticks out on both sides
    shown = run(photo, holes=HOLES[:1], models=("telea",), grow=0, feather=0, edges=[strip])
    changed = (pixels(shown.files[0]) != pixels(photo)).any(axis=2)
    inside = np.zeros((H, W), bool)
    inside[245:275, 260:390] = True  # the strip where it lies inside the hole
    assert changed[inside].mean() > 0.95, "a strip of the original stayed inside the hole"
    outside = np.zeros((H, W), bool)
    outside[245:275, 200:240] = True  # the strip outside the hole: a guide, not erased
    assert not changed[outside].any()


def test_unavailable_models_are_folded_behind_one_line_with_a_reason_for_visitors(monkeypatch, tmp_path):
    """Only what can run is a tick; the rest is one line saying how many and why, each listed inside (issue 25)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("INPAINT_CHECKPOINTS", str(tmp_path / "none"))
    monkeypatch.setenv("INPAINT_SLOW_ON_CPU", "1")  # the diffusion remover too is unavailable for being offline
    model_cache.clear()
    shown = model_list.model_choices()
    neural = [spec.id for spec in registry.MODELS if spec.kind != "classical"]
    assert [i for _, i in shown.choices] == [spec.id for spec in registry.CLASSICAL]
    assert set(shown.unavailable) == set(neural)
    assert shown.heading == f"{len(neural)} more models unavailable: this server is offline and does not have " \
        "their weights"
    folded = shown.folded.splitlines()
    assert len(folded) == len(neural) and all("this server is offline" in line for line in folded)
    assert all(registry.get(i).name in shown.folded for i in neural)
    assert "this server is offline" in shown.table
    for text in (shown.table, shown.folded, shown.heading):  # no server paths or commands
        assert str(tmp_path) not in text and "python -m app" not in text and "weights push" not in text
    assert str(tmp_path) in model_cache.availability(registry.get(neural[0])).reason  # the operator keeps the detail


def test_the_downloads_say_their_sizes_and_sources_once_per_source():
    from app.weights.sources import Source

    hub, server = Source("hub", "the Hugging Face Hub", 381_428_720), Source("server", "the authors' server")
    drive = Source("drive", "the authors' Google Drive", 86_000_000, approx=True)
    assert model_list.download_info([]) == ""
    assert model_list.download_info([("LaMa", hub), ("DeepFill v1", server), ("DeepFill v2", server),
                                     ("EdgeConnect", drive), ("EdgeConnect (faces)", drive)]) == \
        "↓ downloads its weights when first chosen: LaMa from the Hugging Face Hub (381 MB); 2 models from the " \
        "authors' server (size unknown); 2 models from the authors' Google Drive (~86 MB each)."


def test_the_fold_says_why_in_one_line_whatever_the_reasons():
    assert model_list.fold_heading([]) == ""
    assert model_list.fold_heading(["it is not part of this installation"]) == \
        "1 more model unavailable: it is not part of this installation"
    assert model_list.fold_heading(["its weights are not installed on this server"] * 2) == \
        "2 more models unavailable: their weights are not installed on this server"
    assert model_list.fold_heading(["its weights are not installed on this server",
                            "the Hugging Face Hub cannot be reached right now"]) == \
        "2 more models unavailable on this server — why"


@pytest.mark.parametrize("hub_state", ["offline", "answers", "down"])
def test_ui_cli_library_and_api_agree_on_what_can_run(monkeypatch, tmp_path, capsys, hub_state):
    """One decision (model_cache.availability) behind the page, `weights list`, list_models() and the API.

    "Ready" means on disk or the source answered: LaMa (whose only source here is its official
    archive on the Hub) is ready only while the Hub answers for that file, asked once for all three.
    """
    from app import api
    from app import weights_cli as cli
    from tests.hub_server import HubServer

    with HubServer() as hub_server:
        hub_server.add("smartywu/big-lama", {"big-lama.zip": b"not fetched at listing time"})
        monkeypatch.setenv("HF_HUB_OFFLINE", "1" if hub_state == "offline" else "0")
        monkeypatch.setenv("HF_ENDPOINT", hub_server.url if hub_state == "answers" else "http://127.0.0.1:9")
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        monkeypatch.setenv("INPAINT_CHECKPOINTS", str(tmp_path / "none"))
        monkeypatch.delenv(registry.HUB_NAMESPACE_ENV, raising=False)
        shown = model_list.model_choices()
        unavailable, table = shown.unavailable, shown.table
        library = {row["id"]: row["available"] for row in api.list_models()}
        assert cli.main(["list"]) == 0
        listed_lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
        listed = {model_id: line.split()[1] for model_id, line in listed_lines.items()}
        for model_id in registry.ids():
            ok = model_id not in unavailable
            assert library[model_id] == ok and (listed[model_id] != "missing") == ok, model_id
        assert ("lama" in unavailable) == (hub_state != "answers")
        assert hub_server.paths("GET") == []  # listing downloads nothing
        hub_files = ["/Acly/MAT/resolve/main/MAT_Places512_G_fp16.safetensors",  # MAT's copy on the Hub
                     "/smartywu/big-lama/resolve/main/big-lama.zip"]
        assert sorted(hub_server.paths("HEAD")) == (hub_files if hub_state == "answers" else [])  # asked once each
    if hub_state == "answers":  # a tick that says what the first use downloads, and from where
        assert ("LaMa (big-lama) ↓", "lama") in shown.choices
        assert shown.info == "↓ downloads its weights when first chosen: LaMa (big-lama) from the Hugging Face Hub " \
            "(381 MB)."
        assert "first use" in listed_lines["lama"] and "381 MB" in listed_lines["lama"]
        assert "the Hugging Face Hub" in listed_lines["lama"]
    if hub_state == "down":
        rows = {row.split("**")[1]: row for row in table.splitlines()[2:]}
        assert rows["LaMa (big-lama)"].endswith("unavailable: the Hugging Face Hub cannot be reached right now |")
        assert rows["DeepFill v2 (Places2)"].endswith("unavailable: the authors' download server cannot be reached "
                                                      "right now |")


def test_each_visit_asks_again_so_a_hub_that_came_back_makes_its_models_ready(monkeypatch, tmp_path):
    from app.weights import probe
    from tests.hub_server import HubServer

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("INPAINT_CHECKPOINTS", str(tmp_path / "none"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    models, fold, folded, table = model_list.on_load()
    assert "lama" not in [i for _, i in models["choices"]] and "LaMa (big-lama)" in folded
    assert fold["visible"] and fold["label"].endswith("unavailable on this server — why")
    with HubServer() as hub_server:  # the Hub is back; the memory of its silence has expired
        hub_server.add("smartywu/big-lama", {"big-lama.zip": b"x"})
        monkeypatch.setenv("HF_ENDPOINT", hub_server.url)
        probe.forget()
        hub.forget_unreachable()
        models, fold, folded, table = model_list.on_load()
    assert ("LaMa (big-lama) ↓", "lama") in models["choices"] and "value" not in models  # the visitor's ticks stay
    assert "LaMa (big-lama) from the Hugging Face Hub (381 MB)" in models["info"]
    assert "LaMa (big-lama)" not in folded
    assert "downloads 381 MB from the Hugging Face Hub on first use" in table


def test_a_diverse_models_samples_get_their_own_row_in_sample_order():
    """All holes together: the original and single-result models first, then each diverse model's samples in
    a row of their own (sample 1..N, whatever order they came in), captions naming model, sample and time."""
    from app import pipeline
    from app.images import Photo
    original = Photo(pixels=textured(300, 400))
    hole = np.zeros((300, 400), bool)
    hole[100:160, 120:200] = True
    pic, telea, ns = registry.get("pic-places2"), registry.get("telea"), registry.get("navier-stokes")
    fills = [pipeline.Result(telea, 0, original, 0.5), pipeline.Result(pic, 2, original, 1.3),
             pipeline.Result(pic, 0, original, 1.1), pipeline.Result(ns, 0, original, 0.4),
             pipeline.Result(pic, 1, original, 1.2)]
    run = results.present(original, fills, hole.astype(np.float32))
    tiles, columns = results.gallery(run, results.VIEWS[0])
    assert columns == 3
    captions = [c for _, c in tiles]
    assert captions[:3] == ["original", "OpenCV Telea · 0.5 s", "OpenCV Navier-Stokes · 0.4 s"]
    assert captions[3:] == [f"Pluralistic (Places2) · sample {k} · {s} s" for k, s in ((1, 1.1), (2, 1.2), (3, 1.3))]
    picks = [results.result_at(run, results.VIEWS[0], i) for i in range(len(tiles))]
    assert picks == [None, 0, 3, 2, 4, 1]  # clicking a sample's tile picks that sample's result
    fills.pop(1)  # two samples only: the short row is filled with blanks that pick nothing
    run = results.present(original, fills, hole.astype(np.float32))
    tiles, columns = results.gallery(run, results.VIEWS[0])
    assert columns == 3 and [c for _, c in tiles][3:] == [fills[1].label, fills[3].label, ""]
    assert results.result_at(run, results.VIEWS[0], 5) is None
    one = [fills[0], fills[1]]  # one sample: it joins the first row, no blank tiles
    run = results.present(original, one, hole.astype(np.float32))
    tiles, columns = results.gallery(run, results.VIEWS[0])
    assert columns == 3 and [c for _, c in tiles] == ["original", one[0].label, one[1].label]
