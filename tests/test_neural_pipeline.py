"""Every neural model of the registry through the high-resolution pipeline.

Weights: each network's own initialisation saved as our safetensors in a temporary
``checkpoints/<id>/`` (the fills are noise, but every code path of the app runs: the
loader, the windows at the model's size and multiple, batching, paste-back, side maps).
The official files and outputs are covered by the ``*_reference`` tests.
"""

from __future__ import annotations

import numpy as np
import pytest

from app import masks, model_cache, pipeline, registry
from app.hires import feather_alpha
from app.images import Photo
from tests.helpers import box_hole, textured

FAMILIES = {}
for _spec in registry.MODELS:
    if _spec.kind == "neural":
        FAMILIES.setdefault(_spec.entry, _spec)  # one entry per network class is enough
NEURAL = list(FAMILIES.values())


def _photo_and_hole():
    photo = Photo(pixels=textured(300, 420))
    hole = box_hole(300, 420, 100, 160, 150, 230) | box_hole(300, 420, 10, 30, 380, 410)
    return photo, hole


@pytest.mark.parametrize("spec", NEURAL, ids=lambda s: s.id)
@pytest.mark.slow  # over 3 s here: the full run only (README, fast lane)
def test_model_runs_through_the_pipeline(spec, weights, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    state = model_cache.availability(spec)
    assert not state.ok and str(spec.id) in state.reason  # offline, nothing local: unavailable, says where
    weights(spec)
    assert model_cache.availability(spec).ok
    photo, hole = _photo_and_hole()
    options = pipeline.Options(samples=2, seed=3, margin=32)
    results = pipeline.run(photo, hole, [spec.id], options)
    assert len(results) == (2 if spec.diverse else 1)
    band = feather_alpha(masks.grow(hole, options.grow), options.feather) > 0
    for result in results:
        assert result.photo.pixels.shape == photo.pixels.shape
        assert (result.photo.pixels[~band] == photo.pixels[~band]).all()
        assert (result.photo.pixels[hole] != photo.pixels[hole]).any()


def _spec_with(predicate) -> registry.ModelSpec:
    for spec in NEURAL:
        if predicate(spec):
            return spec
    pytest.skip("no such model in the registry")


@pytest.mark.slow  # over 1 s here: the full run only (README, fast lane)
def test_diverse_samples_reproducible_by_seed(weights):
    spec = _spec_with(lambda s: s.diverse)
    weights(spec)
    photo, hole = _photo_and_hole()
    first = sorted(pipeline.run(photo, hole, [spec.id], pipeline.Options(samples=3, seed=7)), key=lambda r: r.sample)
    again = pipeline.run(photo, hole, [spec.id], pipeline.Options(samples=1, seed=7))
    other = pipeline.run(photo, hole, [spec.id], pipeline.Options(samples=1, seed=8))
    # Same image whatever N; batched float maths may flip a rare rounding by one level.
    drift = np.abs(first[0].photo.pixels.astype(int) - again[0].photo.pixels)
    assert drift.max() <= 1 and (drift > 0).mean() < 1e-4
    assert (first[0].photo.pixels != first[1].photo.pixels).any()
    assert (first[0].photo.pixels != other[0].photo.pixels).any()


@pytest.mark.slow  # over 3 s here: the full run only (README, fast lane)
def test_guides_steer_models_that_accept_them_and_side_maps_are_full_size(weights):
    spec = _spec_with(lambda s: s.guides)
    weights(spec)
    photo, hole = _photo_and_hole()
    (plain,) = pipeline.run(photo, hole, [spec.id])
    strokes = {g: box_hole(300, 420, 128, 132, 150, 230) for g in spec.guides}
    (steered,) = pipeline.run(photo, hole, [spec.id], guides=strokes)
    assert (plain.photo.pixels[hole] != steered.photo.pixels[hole]).any()
    for values in plain.maps.values():
        assert values.shape == hole.shape and values.dtype == np.float32
