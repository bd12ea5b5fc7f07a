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


def _blob(h: int = 40, w: int = 60) -> np.ndarray:
    hole = np.zeros((h, w), bool)
    hole[10:25, 20:45] = True
    return hole


@pytest.mark.parametrize("how", ["red on black", "green on black", "0/1 labels", "0/1 with one stray 2", "grey 100",
                                 "alpha, black paint", "16-bit white", "float 0..1", "jpeg", "palette"])
def test_what_a_person_sees_as_painted_is_the_hole_in_files_and_arrays(tmp_path, how):
    hole = _blob()
    gray = hole.astype(np.uint8)
    if how == "red on black":
        image = np.zeros((*hole.shape, 3), np.uint8)
        image[hole] = (255, 0, 0)
    elif how == "green on black":
        image = np.zeros((*hole.shape, 3), np.uint8)
        image[hole] = (0, 160, 0)
    elif how == "0/1 labels":
        image = gray
    elif how == "0/1 with one stray 2":
        image = gray.copy()
        image[12, 22] = 2
    elif how == "grey 100":
        image = gray * 100
    elif how == "alpha, black paint":
        image = np.zeros((*hole.shape, 4), np.uint8)
        image[hole, 3] = 255
    elif how == "16-bit white":
        image = hole.astype(np.uint16) * 65535
    elif how == "float 0..1":
        image = hole.astype(np.float32)
    else:
        image = gray * 255
    np.testing.assert_array_equal(masks.to_hole(image, (60, 40)), hole)
    if how == "float 0..1":
        return  # no common file format holds it
    path = tmp_path / ("mask.jpg" if how == "jpeg" else "mask.png")
    if how == "palette":
        Image.fromarray(image).convert("P").save(path)
    elif how == "jpeg":
        Image.fromarray(image).save(path, quality=60)
    else:
        Image.fromarray(image).save(path)
    np.testing.assert_array_equal(masks.to_hole(path, (60, 40)), hole, err_msg=how)


def test_jpeg_noise_alone_is_not_paint():
    noise = np.random.default_rng(0).integers(0, 9, (40, 60)).astype(np.uint8)
    assert not masks.to_hole(noise, (60, 40)).any()


@pytest.mark.parametrize("mask_size", [(40, 40), (80, 30), (60, 43)])
def test_a_mask_of_another_shape_is_refused_with_both_sizes(mask_size):
    w, h = mask_size
    with pytest.raises(BadMaskError, match=f"mask is {w}x{h} but the photo is 600x400.*not stretched"):
        masks.to_hole(np.zeros((h, w), np.uint8), (600, 400))


@pytest.mark.parametrize("mask_size", [(300, 200), (1024, 683), (1024, 682), (1200, 800)])
def test_a_mask_of_the_same_shape_at_another_size_is_scaled(mask_size):
    w, h = mask_size
    assert masks.to_hole(np.full((h, w), 255, np.uint8), (600, 400)).all()


@pytest.mark.parametrize("radius", [3, 40])
def test_grow_is_a_round_disc_at_any_radius(radius):
    hole = np.zeros((201, 201), bool)
    hole[100, 100] = True
    grown = masks.grow(hole, radius)
    ys, xs = np.nonzero(grown)
    distance = np.hypot(ys - 100, xs - 100)
    assert distance.max() <= radius + 0.5 and grown[100, 100 + radius] and grown[100 - radius, 100]
    assert abs(grown.sum() - np.pi * radius**2) < 0.1 * np.pi * radius**2 + 8
