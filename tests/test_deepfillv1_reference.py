"""DeepFill v1 against the official mmagic outputs, loaded from an official-format release file.

The fixtures hold what mmagic's ``MMagicInferencer(...).infer`` produced with synthetic weights
(``make_state_dict("deepfillv1_generator", weight_seed)``); we save the same weights as the release
does (``{'meta', 'state_dict'}`` with ``generator.`` and ``disc.`` entries) and load them through
the app's loader (restricted unpickler, strict load). One ``inpaint`` call per fixture gives every
array: the BGR normalised input, both stages, the contextual-attention output, the composite and
the exported PNG. Contextual attention is also checked alone against a crop-by-crop transcription
of the official steps on non-square, batched maps, where the fixtures (square, batch 1) cannot see
an index-order or batching mistake. Batching of the whole network, strict loading and sizes off
the multiple are the shared contract (``test_model_contract.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app import registry
from app.errors import CropSizeError
from app.models.base import Batch
from app.models.deepfillv1 import ContextualAttention, DeepFillV1
from app.weights.loader import load_from_folder
from tests.deepfill_reference import V1, fill_from_reference, loop_attention, official_arrays, run_case
from tests.helpers import random_batch
from tests.mmagic_release import generator_state, read_case, write_release
from tests.reference import assert_matches_fixture, fixture_params
from tests.tolerances import assert_close

MODEL_ID = "deepfillv1-places2"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> DeepFillV1:
    """One network loaded from a release with weight seed 1, for the behaviour tests."""
    folder = write_release(V1, tmp_path_factory.mktemp("checkpoints") / MODEL_ID, generator_state(V1))
    return load_from_folder(registry.get(MODEL_ID), folder)


# --------------------------------------------------------------------------- official outputs


@pytest.mark.parametrize("fixture", fixture_params("deepfillv1"))
def test_matches_official_outputs(fixture: Path, checkpoints: Path) -> None:
    case = read_case(fixture)
    folder = write_release(V1, checkpoints / MODEL_ID, generator_state(V1, int(case["weight_seed"])))
    net = load_from_folder(registry.get(MODEL_ID), folder)
    assert type(net) is DeepFillV1 and not net.training
    run, prediction = run_case(net, case["image"], case["hole"].astype(bool))
    expected = {"fill_rgb": fill_from_reference(case["stage2_fake_res"])} if "stage2_fake_res" in case else {}
    assert_matches_fixture(fixture, official_arrays(run) | {"fill_rgb": prediction.samples[0, 0]}, expected)


def test_celeba_release_loads_for_the_celeba_id(checkpoints: Path) -> None:
    """The CelebA file (an alias of the same network) is found under its own name and loaded as is."""
    generator = generator_state(V1, seed=2)
    folder = write_release(V1, checkpoints / "deepfillv1-celeba", generator, V1.celeba)
    state = load_from_folder(registry.get("deepfillv1-celeba"), folder).state_dict()
    assert state.keys() == generator.keys()
    assert all(torch.equal(state[key], value) for key, value in generator.items())


# --------------------------------------------------------------------------- contextual attention


def holes_at_quarter(n: int, height: int, width: int) -> torch.Tensor:
    """(n, 1, H/4, W/4) masks: one rectangle, two rectangles, none (crops never share holes)."""
    mask = torch.zeros(n, 1, height, width)
    mask[0, :, 6:14, 10:22] = 1
    mask[1 % n, :, 2:8, 4:10] = 1
    mask[1 % n, :, 16:22, 28:36] = 1
    return mask


def test_contextual_attention_is_the_official_one_on_batched_non_square_maps() -> None:
    torch.manual_seed(0)
    x = 0.3 * torch.randn(3, 16, 24, 40)  # a 96x160 crop at H/4; its H/8 map is 12x20
    mask = holes_at_quarter(3, 24, 40)
    attention = ContextualAttention()
    together = attention(x, mask)
    assert_close("deepfill.attention_loop", together, loop_attention(x, mask, attention.fuse_kernel))
    for i in range(3):
        assert_close("deepfill.attention_alone", attention(x[i:i + 1], mask[i:i + 1]), together[i:i + 1])


def test_attention_without_a_known_candidate_gives_zeros_not_nan() -> None:
    """The official softmax over nothing but ``-inf`` is NaN; that crop gets zeros, the others are untouched."""
    torch.manual_seed(1)
    x = torch.randn(2, 8, 16, 24)
    mask = torch.zeros(2, 1, 16, 24)
    mask[0] = 1
    mask[0, :, 5, 7] = 0  # a known pixel off the 1/2 grid: every candidate still touches the hole
    mask[1, :, 4:9, 4:12] = 1
    attention = ContextualAttention()
    out = attention(x, mask)
    assert torch.equal(out[0], torch.zeros_like(out[0]))
    assert_close("deepfill.attention_loop", out[1:], loop_attention(x[1:], mask[1:], attention.fuse_kernel))


# --------------------------------------------------------------------------- sizes


def test_non_square_crops_at_the_smallest_size(model: DeepFillV1) -> None:
    """72 px is the least side (reflection pad 16 at H/4); one batch equals the crops one by one."""
    batch = random_batch(2, 72, 104, seed=11)
    together = model.inpaint(batch)
    assert together.samples.shape == (2, 1, 72, 104, 3) and np.isfinite(together.samples).all()
    for i in range(2):
        alone = model.inpaint(Batch(batch.images[i:i + 1], batch.holes[i:i + 1]))
        assert_close("deepfill.batch", together.samples[i], alone.samples[0])
    with pytest.raises(CropSizeError, match=r"multiples of 8 and at least 72 px, got 64x104"):
        model.inpaint(random_batch(1, 64, 104, seed=12))
