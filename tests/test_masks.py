"""Mask extraction: from the editor's layers or uploaded files to a boolean hole map."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app import masks
from app.errors import BadMaskError


def test_white_on_black_mask_file(tmp_path):
    array = np.zeros((20, 30), np.uint8)
    array[5:10, 5:15] = 255
    Image.fromarray(array).save(tmp_path / "m.png")
    hole = masks.to_hole(tmp_path / "m.png", (30, 20))
    np.testing.assert_array_equal(hole, array > 0)


def test_transparent_mask_uses_alpha():
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., :3] = 255  # white everywhere, but only the opaque part is painted
    rgba[2:4, 2:4, 3] = 255
    hole = masks.to_hole(rgba, (10, 10))
    assert hole.sum() == 4 and hole[2:4, 2:4].all()


def test_preview_mask_is_scaled_to_the_photo():
    small = np.zeros((100, 150), bool)
    small[40:60, 60:90] = True
    hole = masks.to_hole(small, (1500, 1000))
    assert hole.shape == (1000, 1500)
    assert hole[450:550, 650:850].all() and not hole[:350].any() and not hole[:, :550].any()


def test_grow_dilates_roundly():
    hole = np.zeros((41, 41), bool)
    hole[20, 20] = True
    grown = masks.grow(hole, 5)
    assert grown[20, 15] and grown[20, 25] and grown[15, 20]
    assert not grown[15, 15]  # round kernel: the corner stays out
    assert masks.grow(hole, 0).sum() == 1


def test_empty_and_full_masks_refused():
    with pytest.raises(BadMaskError, match="empty"):
        masks.validate(np.zeros((5, 5), bool))
    with pytest.raises(BadMaskError, match="whole image"):
        masks.validate(np.ones((5, 5), bool))


def test_strokes_split_by_brush_colour_including_antialiased_edges():
    layer = np.zeros((10, 20, 4), np.uint8)
    layer[2:5, 2:5] = (255, 0, 80, 255)  # hole brush
    layer[2:5, 10:15] = (0, 229, 255, 255)  # edge brush
    layer[6, 2] = (200, 10, 70, 90)  # soft edge of a hole stroke
    maps = masks.strokes_by_colour([layer], {"hole": (255, 0, 80), "edges": (0, 229, 255)})
    assert maps["hole"].sum() == 10 and maps["hole"][6, 2]
    assert maps["edges"].sum() == 15 and not (maps["hole"] & maps["edges"]).any()


def test_layer_without_alpha_refused():
    with pytest.raises(BadMaskError, match="transparency"):
        masks.strokes_by_colour([np.zeros((4, 4, 3), np.uint8)], {"hole": (255, 0, 0)})
