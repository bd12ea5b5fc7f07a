"""Progress that moves per sample, and each sample's own time on its label (issue 18)."""

from __future__ import annotations

import pytest

from app import pipeline, registry
from app.images import Photo
from tests.helpers import box_hole, textured


@pytest.mark.slow  # a random-weight Pluralistic, three samples: ~4 s here
def test_progress_advances_per_sample_and_labels_carry_their_own_time(weights, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = registry.get("pic-places2")
    weights(spec)
    photo, hole = Photo(pixels=textured(200, 240)), box_hole(200, 240, 60, 120, 80, 160)
    told: list[tuple[float, str]] = []
    results = pipeline.run(photo, hole, [spec.id], pipeline.Options(samples=3, margin=32),
                           progress=lambda f, m: told.append((f, m)))
    steps = [(f, m) for f, m in told if "sample" in m]
    assert [m.split(" done")[0] for _, m in steps] == [f"{spec.name}: sample {k} of 3" for k in (1, 2, 3)]
    fractions = [f for f, _ in steps]
    assert fractions == sorted(fractions) and len(set(fractions)) == 3  # moves with every sample
    loading = [m for _, m in told if m.startswith("Loading") or "loaded in" in m]
    assert loading and all("sample" not in m for m in loading)  # loading is reported on its own
    assert [r.label.split(" · ")[1] for r in results] == ["sample 1", "sample 2", "sample 3"]
    for r in results:
        assert r.label.endswith(f"{r.seconds:.1f} s") and r.seconds > 0
    seconds = [r.seconds for r in results]
    assert len(set(seconds)) == 3  # each sample's own time, not the whole run's on every label


def test_a_model_that_reports_no_samples_gets_its_whole_time():
    """Classical models never call the hook: one sample, the whole run on its label, no per-sample step."""
    photo, hole = Photo(pixels=textured(120, 160)), box_hole(120, 160, 40, 80, 50, 110)
    told: list[str] = []
    (result,) = pipeline.run(photo, hole, ["telea"], progress=lambda f, m: told.append(m))
    assert result.seconds > 0 and not any("sample" in m for m in told)
