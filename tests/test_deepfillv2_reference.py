"""DeepFill v2 against the official mmagic outputs, loaded from an official-format release file.

Same procedure as ``test_deepfillv1_reference.py`` (one ``inpaint`` call per fixture gives the input,
both stages, the contextual-attention output, the composite and the exported PNG); the contextual
attention, shared with v1, is checked on its own there. What differs is the network: gated
convolutions, 0.75 width except the stage-2 decoder, tanh outputs. Batching, strict loading and
sizes off the multiple are the shared contract (``test_model_contract.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app import registry
from app.errors import CropSizeError
from app.models.base import Batch
from app.models.deepfillv2 import DeepFillV2
from app.weights.loader import load_from_folder
from tests.deepfill_reference import V2, fill_from_reference, official_arrays, run_case
from tests.helpers import random_batch
from tests.mmagic_release import generator_state, read_case, write_release
from tests.reference import assert_matches_fixture, fixture_params
from tests.tolerances import assert_close

MODEL_ID = "deepfillv2-places2"


@pytest.mark.parametrize("fixture", fixture_params("deepfillv2"))
def test_matches_official_outputs(fixture: Path, checkpoints: Path) -> None:
    case = read_case(fixture)
    folder = write_release(V2, checkpoints / MODEL_ID, generator_state(V2, int(case["weight_seed"])))
    net = load_from_folder(registry.get(MODEL_ID), folder)
    assert type(net) is DeepFillV2 and not net.training
    run, prediction = run_case(net, case["image"], case["hole"].astype(bool))
    expected = {"fill_rgb": fill_from_reference(case["stage2_fake_res"])} if "stage2_fake_res" in case else {}
    assert_matches_fixture(fixture, official_arrays(run) | {"fill_rgb": prediction.samples[0, 0]}, expected)


def test_celeba_release_loads_for_the_celeba_id(checkpoints: Path) -> None:
    """The CelebA file (an alias of the same network) is found under its own name and loaded as is."""
    generator = generator_state(V2, seed=2)
    folder = write_release(V2, checkpoints / "deepfillv2-celeba", generator, V2.celeba)
    state = load_from_folder(registry.get("deepfillv2-celeba"), folder).state_dict()
    assert state.keys() == generator.keys()
    assert all(torch.equal(state[key], value) for key, value in generator.items())


def test_non_square_crops_at_the_smallest_size(checkpoints: Path) -> None:
    """72 px is the least side (reflection pad 16 at H/4); one batch equals the crops one by one."""
    net = load_from_folder(registry.get(MODEL_ID), write_release(V2, checkpoints / MODEL_ID, generator_state(V2)))
    batch = random_batch(2, 104, 72, seed=13)
    together = net.inpaint(batch)
    assert together.samples.shape == (2, 1, 104, 72, 3) and np.isfinite(together.samples).all()
    for i in range(2):
        alone = net.inpaint(Batch(batch.images[i:i + 1], batch.holes[i:i + 1]))
        assert_close("deepfill.batch", together.samples[i], alone.samples[0])
    with pytest.raises(CropSizeError, match=r"multiples of 8 and at least 72 px, got 104x64"):
        net.inpaint(random_batch(1, 104, 64, seed=14))
