"""The model-agnostic pipeline with the classical inpainters (no weights needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app import api, hires, masks, pipeline, registry
from app.errors import BadImageError, BadMaskError, InpaintError
from app.hires import feather_alpha
from app.images import Photo
from app.models.base import Batch
from tests.helpers import box_hole, textured

CLASSICAL = ["telea", "navier-stokes", "patchmatch"]


def _untouched(result, photo, hole, options):
    band = feather_alpha(masks.grow(hole, options.grow), options.feather) > 0
    return (result.photo.pixels[~band] == photo.pixels[~band]).all()


@pytest.mark.parametrize("model", CLASSICAL)
@pytest.mark.parametrize("strategy", ["crop", "resize", "original"])
def test_fill_changes_hole_only(model, strategy):
    photo = Photo(pixels=textured(160, 200))
    hole = box_hole(160, 200, 60, 90, 80, 120) | box_hole(160, 200, 5, 12, 5, 40)
    options = pipeline.Options(strategy=strategy, margin=24)
    (result,) = pipeline.run(photo, hole, [model], options)
    assert result.photo.pixels.shape == photo.pixels.shape
    assert _untouched(result, photo, hole, options)
    filled = result.photo.pixels[hole].astype(int)
    assert np.abs(filled - photo.pixels[hole]).mean() > 1  # the hole really was re-painted
    assert result.seconds > 0 and result.model.id == model


def test_several_models_one_result_each_and_labels():
    photo = Photo(pixels=textured(64, 64))
    results = pipeline.run(photo, box_hole(64, 64, 20, 30, 20, 30), CLASSICAL)
    assert [r.model.id for r in results] == CLASSICAL
    assert all(r.label.startswith(r.model.name) and r.label.endswith(" s") for r in results)


def test_rgba_and_16bit_photos_keep_alpha_and_depth():
    rgba16 = np.dstack([textured(64, 64).astype(np.uint16) * 257, np.full((64, 64), 40000, np.uint16)])
    photo = Photo(pixels=rgba16)
    hole = box_hole(64, 64, 20, 30, 20, 30)
    (result,) = pipeline.run(photo, hole, ["telea"])
    out = result.photo.pixels
    assert out.dtype == np.uint16 and (out[..., 3] == 40000).all()
    assert _untouched(result, photo, hole, pipeline.Options())


def test_fill_is_plausible_on_a_smooth_gradient():
    y, x = np.mgrid[0:128, 0:128]
    smooth = np.stack([x * 2, y * 2, np.full_like(x, 90)], axis=2).astype(np.uint8)
    hole = box_hole(128, 128, 50, 70, 50, 70)
    for model in CLASSICAL:
        (result,) = pipeline.run(Photo(pixels=smooth), hole, [model])
        error = np.abs(result.photo.pixels[hole].astype(int) - smooth[hole]).mean()
        assert error < 12, (model, error)


def test_bad_requests_have_clear_messages():
    photo = Photo(pixels=textured(32, 32))
    with pytest.raises(BadMaskError, match="empty"):
        pipeline.run(photo, np.zeros((32, 32), bool), ["telea"])
    with pytest.raises(BadMaskError, match="whole image"):
        pipeline.run(photo, np.ones((32, 32), bool), ["telea"])
    with pytest.raises(InpaintError, match="Unknown model 'nope'. Choose from: telea"):
        pipeline.run(photo, box_hole(32, 32, 1, 5, 1, 5), ["nope"])
    with pytest.raises(InpaintError, match="mask is 16x16 but the photo is 32x32"):
        pipeline.run(photo, np.ones((16, 16), bool), ["telea"])
    with pytest.raises(InpaintError, match="Samples must be a number from 1 to 16"):
        pipeline.Options(samples=0)


def test_progress_reports_reach_one():
    seen = []
    pipeline.run(Photo(pixels=textured(32, 32)), box_hole(32, 32, 10, 20, 10, 20), ["telea", "navier-stokes"],
                 progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("OpenCV Navier-Stokes" in m for _, m in seen)


class CountingInpainter:
    """Records the batch sizes it is given; fills with mid-grey."""

    batches: list[tuple[int, int, int]] = []

    def inpaint(self, batch, *, samples=1, seed=0):
        from app.models.base import Prediction

        CountingInpainter.batches.append(batch.images.shape[:3])
        b, h, w, _ = batch.images.shape
        return Prediction(samples=np.full((b, 1, h, w, 3), 0.5, np.float32))


def test_many_holes_run_in_bounded_batches_at_the_model_size(monkeypatch):
    from app import model_cache, registry

    spec = registry.ModelSpec(id="counting", name="Counting", kind="classical", licence="-",
                              entry="tests.test_pipeline:CountingInpainter", native_size=64, size_multiple=16,
                              max_batch=3)
    monkeypatch.setattr(registry, "MODELS", registry.MODELS + (spec,))
    model_cache.clear()
    CountingInpainter.batches.clear()
    hole = np.zeros((400, 1000), bool)
    for i in range(7):  # seven separate small holes, far apart
        hole[180:200, 40 + i * 140: 60 + i * 140] = True
    (result,) = pipeline.run(Photo(pixels=textured(400, 1000)), hole, ["counting"], pipeline.Options(margin=20))
    assert [b for b, _, _ in CountingInpainter.batches] == [3, 3, 1]
    assert all((h, w) == (64, 64) for _, h, w in CountingInpainter.batches)
    assert (np.abs(result.photo.pixels[hole].astype(float) - 127.5) <= 1).all()
    model_cache.clear()


# ------------------------------------------------------------------------- tiny photos


@pytest.mark.parametrize("size", [(1, 1), (1, 40), (40, 1)])
def test_a_photo_below_2x2_is_too_small_whatever_its_mask(size):
    """A 1x1 photo was told its mask was empty (or covered everything): it is the photo that cannot be inpainted."""
    w, h = size
    says = f"The photo is {w}x{h} px, too small to inpaint: the smallest photo this app takes is 2x2 px"
    photo = Photo(pixels=textured(h, w))
    for hole in (np.zeros((h, w), bool), np.ones((h, w), bool)):
        with pytest.raises(BadImageError, match=says):
            pipeline.run(photo, hole, ["telea"])
    with pytest.raises(BadImageError, match=says):  # the library: before a mask of another shape is judged
        api.inpaint(textured(h, w), np.zeros((7, 3), np.uint8), "telea")


def test_a_2x2_photo_is_inpainted_by_every_classical_method():
    photo = Photo(pixels=textured(2, 2))
    hole = np.zeros((2, 2), bool)
    hole[0, 0] = True
    for result in pipeline.run(photo, hole, CLASSICAL, pipeline.Options(grow=0, feather=0)):
        assert (result.photo.pixels[~hole] == photo.pixels[~hole]).all()


def test_a_mask_only_the_growth_makes_whole_says_so():
    hole = np.zeros((4, 4), bool)
    hole[1, 1] = True
    with pytest.raises(BadMaskError, match="Grown by 8 px, the mask covers the whole photo .4x4 px.: lower the mask "
                                           "growth"):
        pipeline.run(Photo(pixels=textured(4, 4)), hole, ["telea"], pipeline.Options(grow=8))


def _network_entries() -> list:
    entries = list(dict.fromkeys(spec.entry for spec in registry.NEURAL))
    return [pytest.param(entry, id=entry.rsplit(":", 1)[-1],
                         marks=() if entry.endswith(":GLCIC") else pytest.mark.slow)  # ~5 s each on a 2-core CPU
            for entry in entries]


@pytest.mark.parametrize("entry", _network_entries())
def test_every_network_takes_the_windows_of_tiny_and_thin_photos(entry):
    """The windows the pipeline plans for a 2x2 photo, a 2x300 strip and a 3 px hole without margin run through the
    network (random weights: the shapes are what matters); they used to fail inside it below its least side."""
    spec = next(spec for spec in registry.NEURAL if spec.entry == entry)
    torch.manual_seed(0)
    net = spec.network()(**spec.kwargs).eval()
    for (h, w), strategy, margin in [((2, 2), "crop", 128), ((2, 300), "resize", 128), ((600, 600), "crop", 0)]:
        hole = box_hole(h, w, h // 2, h // 2 + 1, w // 2, w // 2 + 1)
        image = textured(h, w)
        for window in hires.plan(hole, hires.Strategy(strategy), spec.crop_limit, spec.size_multiple, margin,
                                 square=spec.native_size is not None, least=spec.least_side):
            assert min(window.target) >= spec.least_side
            batch = Batch(images=hires.extract(image, window)[None], holes=hires.extract(hole, window)[None], guides={})
            with torch.inference_mode():
                assert np.isfinite(net.inpaint(batch).samples).all(), (spec.id, h, w, strategy)
