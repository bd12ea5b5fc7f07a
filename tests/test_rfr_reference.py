"""RFR-Net against the authors' code: fixtures made by the official ``test()`` with synthetic weights.

Batching, strict loading and sizes are the shared contract (``test_model_contract.py``).

The weights go through the same path as a user's download: the official container is written
to ``checkpoints/<model-id>/`` and read by the app's one loader, strictly.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from app import registry
from app.errors import InpaintError, WeightsError
from app.models.base import Batch
from app.models.rfr import (
    AttentionState,
    KnowledgeConsistentAttention,
    RFRNet,
    attention_bytes,
    attention_floats,
)
from app.weights.loader import instantiate, load_from_folder
from tests.helpers import random_batch
from tests.reference import assert_matches_fixture, fixture_params, manifest_entries
from tests.releases.rfr import FILE_NAME, MODEL_ID, official_state, write_official
from tests.tolerances import assert_close


def load_official(checkpoints: Path, generator: dict[str, torch.Tensor]) -> torch.nn.Module:
    return load_from_folder(registry.get(MODEL_ID), write_official(checkpoints, generator))


@pytest.fixture(scope="module")
def net() -> torch.nn.Module:
    """Network with the fixtures' synthetic weights, for tests that need no file round trip."""
    return instantiate(registry.get(MODEL_ID), official_state(1))


def official_test(net: torch.nn.Module, image: np.ndarray, hole: np.ndarray) -> dict[str, np.ndarray]:
    """The statements of the official ``RFRNetModel.test()`` for one image (mask 1 = valid)."""
    gt = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    mask = 1 - torch.from_numpy(hole.astype(np.float32))[None, None]
    with torch.inference_mode():
        masked = gt * mask
        mask = torch.cat([mask] * 3, dim=1)
        fake = net(masked, mask)
        comp = fake * (1 - mask) + gt * mask
    comp_u8 = (comp[0] * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0)  # save_image rounding
    return {"fake_B": fake[0].numpy(), "comp_B": comp[0].numpy(), "comp_B_uint8": comp_u8.numpy()}


@pytest.mark.slow  # two full 256 px forwards per fixture: 5-6 s each on 2 cores
@pytest.mark.parametrize("path", fixture_params("rfr"))
def test_matches_official_outputs(path: Path, checkpoints: Path) -> None:
    with np.load(path) as data:
        fx = {k: data[k] for k in data.files}
    loaded = load_official(checkpoints, official_state(int(fx["weight_seed"])))
    assert_matches_fixture(path, official_test(loaded, fx["image"], fx["hole"]))
    # The app's entry point: same forward, raw output clamped to [0, 1], one sample.
    pred = loaded.inpaint(Batch(fx["image"][None], fx["hole"][None].astype(bool)))
    assert pred.samples.shape == (1, 1, *fx["image"].shape) and pred.samples.dtype == np.float32
    if "fake_B" in fx:
        clamped = np.clip(fx["fake_B"].astype(np.float32), 0, 1)
        assert_matches_fixture(path, {"fake_B": pred.samples[0, 0].transpose(2, 0, 1)}, expected={"fake_B": clamped})


@pytest.mark.slow  # over 3 s here: the full run only (README, fast lane)
def test_concurrent_calls_do_not_share_state(net: torch.nn.Module) -> None:
    batches = [random_batch(1, 64, 64, seed=s) for s in (4, 5)]
    sequential = [net.inpaint(b).samples for b in batches]
    with ThreadPoolExecutor(2) as pool:
        parallel = [p.samples for p in pool.map(net.inpaint, batches * 2)]
    for got, want in zip(parallel, sequential * 2, strict=True):
        assert_close("rfr.threads", got, want)


def reference_attention(att: KnowledgeConsistentAttention, feature: torch.Tensor, mask: torch.Tensor,
                        prev: tuple[torch.Tensor, torch.Tensor] | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The attention spelled out image by image with 1x1 (transposed) convolutions."""
    b, c, h, w = feature.shape
    mask = F.interpolate(mask, size=(h, w), mode="nearest")
    outs, scores_all = [], []
    for i in range(b):
        kernels = feature[i].reshape(c, h * w).t().reshape(h * w, c, 1, 1) + 1e-7
        kernels = kernels / (kernels ** 2).sum(dim=(1, 2, 3), keepdim=True) ** 0.5
        scores = F.avg_pool2d(F.conv2d(feature[i:i + 1], kernels), 3, 1, padding=1) * 9
        scores = F.softmax(scores, dim=1)
        if prev is not None:
            r = att.ratio.abs() + 1e-7
            scores = (prev[0][i:i + 1] * prev[1][i:i + 1] + scores * r) / (prev[1][i:i + 1] + r)
        scores_all.append(scores)
        outs.append(F.conv_transpose2d(scores, kernels))
    return torch.cat(outs), torch.cat(scores_all)


def test_batched_attention_equals_per_image_loop() -> None:
    torch.manual_seed(0)
    att = KnowledgeConsistentAttention().double()
    att.ratio.data.fill_(-0.37)  # |ratio| is what counts
    state: AttentionState | None = None
    prev = None
    with torch.inference_mode():
        for _ in range(3):  # state carried across recurrences
            feature = torch.randn(3, 8, 5, 7, dtype=torch.float64)
            mask = (torch.rand(3, 1, 20, 28) > 0.4).double()  # RFR passes a 4x finer mask
            out, state = att(feature, mask, state)
            ref_out, ref_scores = reference_attention(att, feature, mask, prev)
            prev = (ref_scores, F.interpolate(mask, size=(5, 7), mode="nearest"))
            assert_close("rfr.attention_float64", out, ref_out)
            assert_close("rfr.attention_float64", state.scores, ref_scores)


def test_state_dict_is_the_official_layout() -> None:
    expected = [(e["key"], tuple(e["shape"])) for e in manifest_entries("rfr_G")]
    got = [(k, tuple(v.shape)) for k, v in RFRNet().state_dict().items()]
    assert got == expected  # no mask-updater buffers, no prefix


def test_smaller_hole_variant_is_refused_by_shape(checkpoints: Path) -> None:
    """RFRNet_Smaller_Hole.py's checkpoints (5x5 Pconv2/21/22) are another network: refused, shapes named."""
    sd = official_state(1)
    for name in ("Pconv2", "Pconv21", "Pconv22"):
        sd[f"{name}.weight"] = torch.zeros(64, 64, 5, 5)
    with pytest.raises(WeightsError, match="shape mismatch") as info:
        load_official(checkpoints, sd)
    assert "Pconv21.weight (64, 64, 5, 5) != (64, 64, 7, 7)" in str(info.value)


def test_bare_state_dict_is_refused(checkpoints: Path) -> None:
    folder = checkpoints / MODEL_ID
    folder.mkdir()
    torch.save({"Pconv1.weight": torch.zeros(64, 3, 7, 7)}, folder / FILE_NAME)
    with pytest.raises(WeightsError, match="'generator'"):
        load_from_folder(registry.get(MODEL_ID), folder)


def test_missing_file_is_named(checkpoints: Path) -> None:
    folder = checkpoints / MODEL_ID
    folder.mkdir()
    with pytest.raises(WeightsError, match=FILE_NAME):
        load_from_folder(registry.get(MODEL_ID), folder)


@pytest.mark.slow  # over 3 s here: the full run only (README, fast lane)
def test_memory_bound() -> None:
    """Whatever the photo and strategy, the pipeline hands RFR at most max_batch crops of 256 px."""
    from app import hires

    assert attention_floats(256, 256) == (32 * 32) ** 2
    assert attention_floats(512, 384) == (64 * 48) ** 2
    assert attention_bytes(256, 256, batch=2) == 2 * attention_bytes(256, 256)
    spec = registry.get(MODEL_ID)
    hole = np.zeros((3000, 4000), bool)
    hole[100:2900:300, 100:3900:7] = True  # many regions, some merged into big windows
    for strategy in hires.Strategy:
        try:
            windows = hires.plan(hole, strategy, spec.crop_limit, spec.size_multiple, 128, square=True)
        except InpaintError:  # ORIGINAL on a photo larger than RFR takes: refused, nothing reaches the network
            assert strategy is hires.Strategy.ORIGINAL
            continue
        for window in windows:
            assert max(window.target) <= 256
    assert attention_bytes(256, 256, batch=spec.max_batch) <= 96 * 2**20
