"""Find the text (issue 30): the segmenter from ``checkpoints/``, the library, ``/text``, ``--find-text``, the panel.

The network is ours with the reference's synthetic weights (the fixtures' seed), so what it finds is the
official demo's mask for those weights (``tests/test_textseg_reference.py`` holds that to the fixtures);
here the plumbing around it is checked: the photo's own size, the grow, the bounded working size of a
large page, the messages without weights, and each front end giving the same mask.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import app
from app import masks, model_cache, registry
from app.errors import InpaintError, ModelUnavailableError
from app.selection import text
from app.web import select_panel as select_ui
from app.web.endpoints import api_text
from tests.reference import fixture_files
from tests.releases.textseg import write_release


@pytest.fixture(scope="module")
def release_root(tmp_path_factory) -> Path:
    """A checkpoints root holding the author's release file with the fixtures' synthetic weights (written once)."""
    root = tmp_path_factory.mktemp("textseg-checkpoints")
    write_release(root / registry.DEFAULT_TEXT_FINDER)
    return root


@pytest.fixture
def finder(release_root, monkeypatch, tmp_path) -> Path:
    monkeypatch.setenv("INPAINT_CHECKPOINTS", str(release_root))
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    return release_root


@pytest.fixture
def no_finder(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("INPAINT_CHECKPOINTS", str(tmp_path / "none"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model_cache.clear()
    yield
    model_cache.clear()


def page(w: int = 640, h: int = 480) -> np.ndarray:
    """The first fixture's image (its mask is known), else a textured page."""
    files = fixture_files("textseg")
    if files and (w, h) == (640, 480):
        return np.load(files[0])["image"]
    rng = np.random.default_rng(0)
    return np.clip(rng.normal(128, 60, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.slow  # three forwards of the 16 M-parameter network
def test_find_text_is_the_official_mask_at_the_photos_size_then_grown(finder):
    files = fixture_files("textseg")
    if not files:
        pytest.skip("no textseg fixtures (INPAINT_REFERENCE_FIXTURES)")
    image = page()
    exact = text.find_text(image, grow=0)
    assert exact.mask.shape == image.shape[:2] and exact.mask.dtype == bool
    official = np.load(files[0])["mask"].astype(bool)  # the official demo's, end to end
    assert (exact.mask != official).mean() < 1e-4  # exact here; a pixel whose logit is ~0 may flip on another CPU
    grown = text.find_text(image, grow=6)
    assert np.array_equal(grown.mask, masks.grow(exact.mask, 6)) and grown.mask.sum() > exact.mask.sum()
    assert grown.method == "textseg-xception" and grown.info()["grow"] == 6
    assert app.find_text is text.find_text  # the library's name for it


@pytest.mark.slow  # a 2480x3508 page: resizes and masks at 8.7 MP around one 600 px forward
def test_a_large_page_is_read_at_600_px_and_masked_at_its_own_size(finder, monkeypatch):
    seen = []
    net = text.get_finder(text.finder_spec())
    monkeypatch.setattr(type(net), "logits", lambda self, x: seen.append(tuple(x.shape)) or torch_zeros(x))
    found = text.find_text(page(2480, 3508), grow=0)
    assert seen == [(1, 3, 600, 600)] and found.mask.shape == (3508, 2480)


def torch_zeros(x):
    import torch

    return torch.full((1, 1, *x.shape[-2:]), -1.0)


def test_without_weights_it_says_so_and_what_to_do_instead(no_finder):
    with pytest.raises(ModelUnavailableError, match="text segmenter.*Paint over the lettering"):
        text.find_text(page(64, 64))
    assert text.finder_status()["ready"] is False


@pytest.mark.parametrize("grow", [-1, 65, float("nan"), "4"])
def test_a_bad_grow_is_refused_before_any_work(grow, no_finder):
    with pytest.raises(InpaintError, match="(?i)grow"):
        text.find_text(page(64, 64), grow=grow)


def test_a_photo_too_thin_to_read_gets_a_message(finder):
    with pytest.raises(InpaintError, match="too narrow"):
        text.find_text(np.zeros((4000, 4, 3), np.uint8))


@pytest.mark.slow  # a forward of the 16 M-parameter network (seconds on 2 cores)
def test_the_text_endpoint_writes_the_mask_png_of_the_photos_size(finder, tmp_path):
    path = tmp_path / "page.png"
    Image.fromarray(page(400, 320)).save(path)
    mask_file, info = api_text(str(path), 2)
    mask = np.asarray(Image.open(mask_file)) > 127
    assert mask.shape == (320, 400) and np.array_equal(mask, text.find_text(page(400, 320), grow=2).mask)
    assert info["method"] == "textseg-xception" and info["pixels"] == int(mask.sum()) and info["grow"] == 2


def test_the_text_endpoint_without_weights_names_no_server_path(no_finder, tmp_path):
    path = tmp_path / "page.png"
    Image.fromarray(page(64, 64)).save(path)
    with pytest.raises(gr.Error) as error:
        api_text(str(path), 4)
    assert "text segmenter" in error.value.message and "Paint over" in error.value.message
    assert str(tmp_path) not in error.value.message
    with pytest.raises(gr.Error, match="(?i)grow"):
        api_text(str(path), 99)


@pytest.mark.slow  # a forward of the 16 M-parameter network (seconds on 2 cores)
def test_find_text_in_the_cli_cleans_a_folder_of_pages(finder, tmp_path, capsys):
    from app import cli

    pages = tmp_path / "pages"
    pages.mkdir()
    for i in range(2):
        Image.fromarray(page(96 + 32 * i, 128)).save(pages / f"page{i}.png")
    out = tmp_path / "out"
    assert cli.main(["inpaint", str(pages), "--find-text", "--text-grow", "2", "-m", "telea", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["page0__telea.png", "page1__telea.png"]
    err = capsys.readouterr().err
    assert "page0.png: text found on" in err and "textseg-xception" in err and "grown 2 px" in err
    assert cli.main(["inpaint", str(pages), "--find-text", "--text-grow", "99", "-m", "telea", "-o", str(out)]) == 2


@pytest.mark.slow  # a forward of the 16 M-parameter network (seconds on 2 cores)
def test_find_text_on_the_page_is_a_tick_that_erase_fills_and_its_slider_grows(finder, tmp_path):
    path = tmp_path / "page.png"
    image = page(400, 320)
    Image.fromarray(image).save(path)
    _, picked, _, _ = select_ui.on_photo(str(path))
    view, picked, ticks, note = select_ui.on_text(str(path), picked, 0, [])
    expected = text.find_text(image, grow=0).mask
    (label,) = ticks["choices"]
    assert label.startswith("the text found") and ticks["value"] == [label] and "Text found on" in note
    assert np.array_equal(select_ui.hole_of(picked, str(path), [label]), expected)
    assert view.shape[1] == 400
    _, wider, ticks, _ = select_ui.on_text_grow(str(path), picked, 8, [label])
    assert np.array_equal(select_ui.hole_of(wider, str(path), ticks["value"]), masks.grow(expected, 8))
    assert select_ui.hole_of(wider, str(path), []) is None  # unticked: the text stays
    _, kept, ticks, _ = select_ui.on_text_grow(str(path), wider, 4, [])  # unticked stays unticked
    assert ticks["value"] == []


def test_find_text_on_the_page_without_weights_says_what_to_do(no_finder, tmp_path):
    path = tmp_path / "page.png"
    Image.fromarray(page(64, 64)).save(path)
    _, picked, _, _ = select_ui.on_photo(str(path))
    with pytest.raises(gr.Error, match="text segmenter.*Paint over"):
        select_ui.on_text(str(path), picked, 4, [])
    with pytest.raises(gr.Error, match="Upload a photo first"):
        select_ui.on_text(None, picked, 4, [])


@pytest.mark.slow  # ~65 MB of synthetic weights through the loopback Drive's TLS, then a forward
def test_the_release_comes_from_the_authors_drive_file_on_first_use_and_is_pinned(drive, monkeypatch, tmp_path,
                                                                                  pins_file):
    """The registry's own entry and file id; the file served as Drive serves one file (virus-scan page first)."""
    import json

    from app.weights.resolve import provisioned_dir

    spec = registry.text_finder()
    release = write_release(tmp_path / "authors") / "text_seg_model_681epos.pt"
    drive.files[spec.official_drive.id] = (release.name, release.read_bytes())
    drive.modes[spec.official_drive.id] = "confirm"
    assert model_cache.availability(spec).ok  # Drive answered for the file: nothing downloaded yet
    found = text.find_text(page(200, 160), grow=0)
    assert found.mask.shape == (160, 200)
    pinned = json.loads(pins_file.read_text())[spec.id]["first_use"][release.name]
    assert pinned["size"] == release.stat().st_size and spec.official_drive.id in pinned["from"]
    assert sorted(p.name for p in provisioned_dir(spec).iterdir()) == ["README.md", "model.safetensors"]


def test_drawn_text_changes_only_its_true_mask_and_is_the_same_for_a_seed():
    from benchmarks.text_pages import iou, with_text

    clean = np.full((240, 320, 3), 90, np.uint8)
    drawn, truth = with_text(clean, 3)
    again, same = with_text(clean, 3)
    assert np.array_equal(drawn, again) and np.array_equal(truth, same)
    assert 0 < truth.mean() < 0.3 and np.array_equal(drawn[~truth], clean[~truth])
    assert (drawn[truth] != 90).any() and iou(truth, truth) == 1.0 and iou(truth, ~truth) == 0.0


def test_a_text_finder_that_finds_nothing_or_everything_is_suspect():
    from app.weights_check import Report
    from app.weights_check_text import TextReport

    spec = registry.text_finder()
    assert TextReport(Report(spec), share=[0.0, 0.0]).problems() == [
        "it found no text on any of the photos (all of them have some)"]
    assert "marks 80% of the photos" in TextReport(Report(spec), share=[0.8, 0.8]).problems()[0]
    assert TextReport(Report(spec), share=[0.03, 0.0]).problems() == []


@pytest.mark.slow  # two forwards per photo (eval and the demo's train-BN mode)
def test_weights_check_runs_the_text_finder_on_photos_with_drawn_text(finder, capsys):
    from app.weights_cli import main
    from benchmarks.common import evalset_dir

    if not (evalset_dir() / "masks" / "object").is_dir():
        pytest.skip("no evaluation set (INPAINT_EVALSET)")
    assert main(["check", "textseg-xception", "--photos", "1"]) == 0
    out = capsys.readouterr().out
    assert "textseg-xception: OK" in out and "in eval mode" in out and "train-BN mode" in out
    assert main(["list"]) == 0 and "textseg-xception" in capsys.readouterr().out


def test_the_benchmark_says_not_measured_without_the_released_weights_and_renders(no_finder, tmp_path):
    from benchmarks import bench_text, machine

    quality = bench_text.quality(tmp_path, 2)
    assert quality == {"measured": False, "reason": f"{bench_text.NOT_MEASURED}: no weights of textseg-xception, "
                                                     "lama on this machine"}
    times = {"wall_s": 2.0, "cpu_s": 3.5}
    speed = {"weights": "random", "network_600": {"ours": times, "ours_peak_mb": 240.0}}
    speed |= {label: {"size": list(size), "find_text": times, "peak_mb": 300.0}
              for label, size in bench_text.SIZES.items()}
    data = {"command": "python -m benchmarks.bench_text", "duration_s": 60.0, "machine": machine.describe("cpu"),
            "threads": 2, "rounds": 3, "quality": quality, "speed": speed}
    shown = bench_text.section(data)
    assert "not measured (released weights unavailable offline)" in shown and "2480x3508" in shown
    assert "2.00 s / 3.50 s" in shown and "MODELS.md" in shown
    speed["network_600"] |= {"official": times, "official_peak_mb": 250.0, "max_abs_diff": 1e-6}
    assert "largest logit difference 1.0e-06" in bench_text.section(data)


@pytest.mark.slow  # two photos: a forward each and two fills
def test_the_photo_benchmark_scores_the_found_mask_against_the_drawn_truth(finder, monkeypatch):
    """With the released weights it would score them; here the synthetic ones and Telea stand in for the plumbing."""
    from benchmarks import bench_text
    from benchmarks.common import evalset_dir

    if not (evalset_dir() / "images").is_dir():
        pytest.skip("no evaluation set (INPAINT_EVALSET)")
    monkeypatch.setattr(bench_text, "FILLER", "telea")
    monkeypatch.setattr(bench_text, "weights_here", lambda model_id: True)
    found = bench_text.quality(evalset_dir(), 2)
    assert found["measured"] and len(found["rows"]) == 2
    row = found["rows"][0]
    assert 0 <= row["iou"] <= 1 and 0 < row["text_share"] < 0.3 and np.isfinite(row["psnr_true"])
    assert set(found["mean"]) == {"iou", "psnr_found", "psnr_true"}
