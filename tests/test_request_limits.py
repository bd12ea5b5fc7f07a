"""What one request may cost: option ranges, repeated models, memory, and work for a client that left."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import textwrap

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from app import pipeline, registry
from app.errors import Cancelled, InpaintError
from app.images import Photo
from app.model_cache import clear
from app.web import canvas, endpoints, page
from tests.helpers import box_hole, textured

OUT_OF_RANGE = {
    "margin": [-1, 513, math.nan, math.inf, "lots"],
    "grow": [-1, 65, 400, math.nan, -math.inf],
    "feather": [-8, 65, math.nan],
    "samples": [0, 17, math.nan, 1e9],
    "seed": [-1, 2**32, math.nan],
}


@pytest.mark.parametrize(("name", "value"), [(n, v) for n, values in OUT_OF_RANGE.items() for v in values])
def test_every_numeric_option_has_its_range_enforced(name, value):
    low, high = pipeline.RANGES[name]
    with pytest.raises(InpaintError, match=f"{name.capitalize()} must be a number from {low} to {high}"):
        pipeline.Options(**{name: value})


def test_the_ui_controls_offer_exactly_the_enforced_ranges():
    demo = page.build()
    sliders = {c.label: (c.minimum, c.maximum) for c in demo.blocks.values() if isinstance(c, gr.Slider)}
    assert sliders["Crop margin (px)"] == pipeline.RANGES["margin"]
    assert sliders["Grow mask (px)"] == pipeline.RANGES["grow"]
    assert sliders["Seam feather (px)"] == pipeline.RANGES["feather"]


@pytest.fixture
def files(tmp_path):
    photo, mask = tmp_path / "photo.png", tmp_path / "mask.png"
    Image.fromarray(textured(120, 160)).save(photo)
    Image.fromarray(box_hole(120, 160, 40, 60, 40, 70).astype(np.uint8) * 255).save(mask)
    return str(photo), str(mask)


@pytest.mark.parametrize(("position", "value", "words"), [(3, math.nan, "Samples"), (6, math.inf, "Margin"),
                                                          (7, 400, "Grow"), (8, -1, "Feather"),
                                                          (4, -5, "Seed")])
def test_api_refuses_out_of_range_numbers_with_a_message(files, position, value, words):
    args = [*files, ["telea"], 1, 0, "crop", 128, 8, 8]
    args[position] = value
    with pytest.raises(gr.Error, match=f"{words} must be a number") as failure:
        endpoints.api_inpaint(*args)
    assert "Something went wrong" not in failure.value.message


def test_repeated_model_ids_run_once(files):
    outputs, info = endpoints.api_inpaint(*files, ["telea", "telea", "navier-stokes", "telea"], 1, 0, "crop", 32, 0, 0)
    assert [row["model"] for row in info] == ["telea", "navier-stokes"] and len(outputs) == 2


def test_a_request_over_the_memory_limit_is_refused_before_any_work(monkeypatch):
    photo = Photo(pixels=np.zeros((1000, 1000, 3), np.uint8))
    calls = []
    monkeypatch.setattr(pipeline, "prepare_hole", lambda *a: calls.append(a))
    monkeypatch.setenv(pipeline.REQUEST_MEMORY_ENV, "64")
    # 3 MB photo + 16 samples + 2 classical results: ~81 MB
    diverse = [s.id for s in registry.MODELS if s.diverse][:1]
    with pytest.raises(InpaintError, match=r"18 full-resolution result\(s\) of this 1000x1000 photo would need about"):
        pipeline.run(photo, box_hole(1000, 1000, 1, 5, 1, 5), ["telea", "patchmatch", *diverse],
                     pipeline.Options(samples=16))
    assert calls == []


MEASURE = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from app import pipeline
    from app.web import results as shown
    from app.images import load_photo
    from tests.helpers import textured
    def peak(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    h, w = int(sys.argv[1]), int(sys.argv[2])
    hole = np.zeros((h, w), bool); hole[h // 3:h // 2, w // 3:w // 2] = True
    small = load_photo(textured(64, 64))
    pipeline.run(small, hole[:64, :64] | np.eye(64, dtype=bool), ["telea", "navier-stokes"])  # warm up
    pixels = np.tile(textured(256, 256), (h // 256 + 1, w // 256 + 1, 1))[:h, :w]
    photo = load_photo(pixels)
    base = peak()
    options = pipeline.Options(margin=64)
    results = pipeline.run(photo, hole, ["telea", "navier-stokes"], options)
    shown.present(photo, results, pipeline.changed_area(photo, hole, options))  # the page's previews too
    print(peak() - base, pipeline.estimate_memory(photo, len(results)))
""")


@pytest.mark.slow
def test_peak_memory_of_a_request_stays_under_the_stated_estimate(tmp_path):
    """The per-request limit is only honest if the estimate bounds what a request really holds."""
    env = {"GRADIO_TEMP_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", MEASURE, "3000", "4000"], capture_output=True, text=True,
                         cwd=canvas.ASSETS.parent, env=env, timeout=300, check=True).stdout.split()
    measured, estimate = int(out[-2]), int(out[-1])
    assert measured <= estimate, (measured / 2**20, estimate / 2**20)


def test_work_stops_between_window_batches_once_the_client_left(monkeypatch):
    """Eight holes in eight batches of one: the client leaves after the second."""
    clear()
    spec = dataclasses.replace(registry.get("telea"), max_batch=1)
    monkeypatch.setattr(registry, "MODELS", tuple(spec if s.id == spec.id else s for s in registry.MODELS))
    calls: list[int] = []
    photo = Photo(pixels=textured(200, 400))
    hole = np.zeros((200, 400), bool)
    for i in range(8):
        hole[20:40, 10 + 48 * i:30 + 48 * i] = True

    def left() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(Cancelled, match="nothing was saved"):
        pipeline.run(photo, hole, [spec.id], pipeline.Options(margin=4, grow=0), cancelled=left)
    assert len(calls) == 4  # before the model, then one poll per batch until the one that said yes
