"""The shortcuts that keep a 10 MP Erase fast give exactly what the whole-image computations give (issue 18)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app import hires
from app.web import regions


def _holes(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(60, 300, 2))
    hole = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(1, 5))):
        cv2.circle(hole, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(1, 30)), 1, -1)
    return hole.astype(bool)


@pytest.mark.parametrize("seed", range(12))
def test_feather_inside_the_box_equals_the_whole_image_transform(seed):
    hole = _holes(seed)
    for feather in (1, 4, 8, 25):
        distance = cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, 5)
        whole = np.clip(1.0 - distance / (feather + 1), 0.0, 1.0).astype(np.float32)
        assert np.array_equal(hires.feather_alpha(hole, feather), whole)


@pytest.mark.parametrize("seed", range(12))
def test_regions_inside_the_box_equal_the_whole_image_components(seed):
    alpha = hires.feather_alpha(_holes(seed), 4)
    labels, found = regions.regions(alpha)
    count, whole, stats, _ = cv2.connectedComponentsWithStats((alpha > 0).astype(np.uint8), connectivity=8)
    order = sorted(range(1, count), key=lambda k: (stats[k, 1], stats[k, 0]))
    relabel = np.zeros(count, np.int32)
    relabel[order] = np.arange(1, count)
    assert np.array_equal(labels, relabel[whole]) and [r.label for r in found] == list(range(1, count))


def test_no_change_means_no_region():
    labels, found = regions.regions(np.zeros((20, 30), np.float32))
    assert not labels.any() and found == []


@pytest.mark.parametrize("seed", range(8))
def test_growing_inside_the_box_equals_growing_the_whole_mask(seed):
    from app import masks
    hole = _holes(seed)
    for pixels in (1, 8, 16, 40):
        assert np.array_equal(masks.grow(hole, pixels), masks._grow(hole, pixels))
