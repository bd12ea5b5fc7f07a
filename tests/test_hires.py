"""High-resolution windows and paste-back."""

from __future__ import annotations

import numpy as np
import pytest

from app import hires, pipeline
from app.errors import InpaintError
from app.hires import Strategy
from app.images import Photo
from tests.helpers import box_hole, textured


def _covered(windows, shape):
    cover = np.zeros(shape, int)
    for w in windows:
        cover[w.slices] += 1
    return cover


def test_crop_window_per_region_with_margin_and_multiple():
    hole = box_hole(600, 800, 100, 140, 100, 160) | box_hole(600, 800, 400, 450, 600, 700)
    windows = hires.plan(hole, Strategy.CROP, limit=None, multiple=8, margin=32)
    assert len(windows) == 2
    cover = _covered(windows, hole.shape)
    assert (cover[hole] == 1).all()  # every hole pixel exactly once
    for w in windows:
        assert w.w % 8 == 0 and w.h % 8 == 0 and (w.w, w.h) == w.target
        region = hole[w.slices]
        ys, xs = np.nonzero(region)
        assert ys.min() >= 32 and xs.min() >= 32  # context margin on every side


def test_window_at_the_border_is_shifted_inside():
    hole = box_hole(300, 400, 0, 20, 380, 400)  # top-right corner
    (w,) = hires.plan(hole, Strategy.CROP, limit=None, multiple=16, margin=50, square=True)
    assert w.x >= 0 and w.y >= 0 and w.x + w.w <= 400 and w.y + w.h <= 300
    assert w.w == w.h  # shifted, not truncated
    assert hole[w.slices].sum() == hole.sum()


def test_overlapping_windows_are_merged():
    hole = box_hole(300, 300, 100, 110, 100, 110) | box_hole(300, 300, 130, 140, 130, 140)
    windows = hires.plan(hole, Strategy.CROP, limit=None, multiple=1, margin=30)
    assert len(windows) == 1 and (_covered(windows, hole.shape)[hole] == 1).all()


def test_large_window_is_resized_to_the_model_limit():
    hole = box_hole(3000, 4000, 1000, 2000, 1000, 1800)
    (w,) = hires.plan(hole, Strategy.CROP, limit=256, multiple=32, margin=128, square=True)
    assert max(w.target) == 256 and w.target[0] % 32 == 0 and w.target[1] % 32 == 0
    assert w.w > 1000


def test_resize_and_original_strategies_cover_the_whole_image():
    hole = box_hole(500, 700, 10, 20, 10, 20)
    (r,) = hires.plan(hole, Strategy.RESIZE, limit=256, multiple=8, margin=0)
    assert (r.w, r.h) == (700, 500) and max(r.target) == 256
    (o,) = hires.plan(hole, Strategy.ORIGINAL, limit=None, multiple=8, margin=0)
    assert (o.x, o.y, o.w, o.h) == (0, 0, 700, 500)  # the whole photo at its own size...
    assert all(t % 8 == 0 and abs(t - s) < 8 for t, s in zip(o.target, (700, 500)))  # ...up to the multiple


def test_original_with_a_size_limit_is_the_whole_photo_as_is_or_refused():
    """ORIGINAL never quietly becomes RESIZE: within the model's limit it is the photo as is, beyond it refused."""
    hole = box_hole(200, 300, 10, 20, 10, 20)
    (o,) = hires.plan(hole, Strategy.ORIGINAL, limit=512, multiple=8, margin=0)
    (r,) = hires.plan(hole, Strategy.RESIZE, limit=256, multiple=8, margin=0)
    assert (o.w, o.h) == (300, 200) and o.target == (304, 200) and max(r.target) == 256
    big = box_hole(500, 700, 10, 20, 10, 20)
    with pytest.raises(InpaintError, match="takes at most 256 px per side; the photo is 700x500. Choose crop"):
        hires.plan(big, Strategy.ORIGINAL, limit=256, multiple=8, margin=0)


def test_original_refused_by_one_model_leaves_the_others_their_fills():
    photo = Photo(pixels=textured(300, 1200))
    failed = {}
    (result,) = pipeline.run(photo, box_hole(300, 1200, 100, 140, 500, 560), ["patchmatch", "telea"],
                             pipeline.Options(strategy="original"), on_failure=lambda s, e: failed.update({s.id: e}))
    assert result.model.id == "telea" and result.photo.size == (1200, 300)
    assert "PatchMatch: The original strategy" in str(failed["patchmatch"]) and "1200x300" in str(failed["patchmatch"])


def test_feather_band():
    hole = box_hole(50, 50, 20, 30, 20, 30)
    alpha = hires.feather_alpha(hole, 6)
    assert (alpha[hole] == 1).all()
    assert 0 < alpha[25, 17] < 1  # inside the band, outside the hole
    assert alpha[25, 12] == 0 and alpha[0, 0] == 0
    assert alpha[25, 19] > alpha[25, 17]  # falls off with distance


def test_paste_changes_only_hole_and_band():
    image = textured(80, 100)
    hole = box_hole(80, 100, 30, 50, 40, 60)
    alpha = hires.feather_alpha(hole, 4)
    (w,) = hires.plan(hole, Strategy.CROP, limit=64, multiple=16, margin=16)
    out = image.copy()
    hires.paste(out, np.ones((w.target[1], w.target[0], 3), np.float32), w, alpha)
    changed = (out != image).any(axis=2)
    assert changed[hole].all()
    assert not changed[alpha == 0].any()  # bit-identical outside hole + feather band
    assert (out[hole] == 255).all()


def test_paste_keeps_16bit_and_alpha():
    image = np.dstack([textured(40, 40).astype(np.uint16) * 257, np.full((40, 40), 1234, np.uint16)])
    hole = box_hole(40, 40, 10, 20, 10, 20)
    (w,) = hires.plan(hole, Strategy.CROP, limit=None, multiple=1, margin=5)
    out = image.copy()
    hires.paste(out, np.zeros((w.h, w.w, 3), np.float32), w, hires.feather_alpha(hole, 0))
    assert out.dtype == np.uint16 and (out[..., 3] == 1234).all()
    assert (out[hole][:, :3] == 0).all() and (out[~hole] == image[~hole]).all()


# ------------------------------------------------------------------ the least side a network takes


def test_a_small_crop_is_widened_to_the_least_side_inside_the_photo():
    """A 3 px hole with no margin: DeepFill takes no less than 72 px, so it gets 72 px of real photo, not a resample."""
    hole = box_hole(600, 800, 300, 303, 400, 403)
    (window,) = hires.plan(hole, Strategy.CROP, limit=512, multiple=8, margin=0, square=True, least=72)
    assert (window.w, window.h) == window.target == (72, 72) and hole[window.slices].sum() == 9
    hole |= box_hole(600, 800, 330, 333, 430, 433)
    windows = hires.plan(hole, Strategy.CROP, limit=512, multiple=8, margin=0, square=True, least=72)
    assert len(windows) == 1 and (_covered(windows, hole.shape)[hole] == 1).all()  # widened, then merged
    corner = box_hole(600, 800, 0, 3, 797, 800)
    (window,) = hires.plan(corner, Strategy.CROP, limit=512, multiple=8, margin=0, least=72)
    assert (window.x + window.w, window.y, window.w, window.h) == (800, 0, 72, 72)  # shifted inside, not cut


@pytest.mark.parametrize("strategy", list(Strategy))
def test_a_photo_smaller_than_the_least_side_is_upscaled_to_it(strategy):
    hole = np.zeros((2, 3), bool)
    hole[0, 0] = True
    (window,) = hires.plan(hole, strategy, limit=256, multiple=32, margin=128, square=True, least=64)
    assert (window.x, window.y, window.w, window.h, window.target) == (0, 0, 3, 2, (64, 64))
    assert hires.extract(np.zeros((2, 3, 3), np.uint8), window).shape == (64, 64, 3)


def test_a_thin_photo_keeps_the_least_side_when_downscaled_to_the_limit():
    (window,) = hires.plan(np.ones((30, 5000), bool), Strategy.RESIZE, limit=1536, multiple=8, margin=0, least=16)
    assert window.target == (1536, 16)
