"""Partial convolution (mmagic PConv) against the official outputs, loaded from an official-format release.

The fixtures hold what mmagic's ``MMagicInferencer('partial_conv').infer`` produced with synthetic
weights; we write the same weights as the release does (the whole inpaintor's state_dict: the
generator, with its all-ones ``weight_mask_updater`` buffers, plus the perceptual-loss VGG), load them
through the app's loader and rebuild every fixture array from ONE ``inpaint`` call. Other sizes are
checked against the official formulas spelled out below. Batching, strict loading and
sizes off the multiple are the shared contract (``test_model_contract.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from app.errors import InpaintError
from app.models.base import Batch, Prediction
from app.models.mmagic import to_pixels
from app.models.pconv import PartialConv2d, PartialConvNet
from tests import mmagic_release as release
from tests.helpers import random_batch
from tests.mmagic_release import PCONV, read_case
from tests.reference import assert_matches_fixture, fixture_params
from tests.tolerances import assert_close

MODEL_ID = "pconv-places2"
#: The writer ``test_model_contract.py`` calls (the Places file, an edit applied to the generator).


def generator_state(seed: int = 1) -> dict[str, Tensor]:
    """A fresh copy of the cached synthetic generator weights (51.6 M values)."""
    return release.generator_state(PCONV, seed)


def write_release(folder: Path, generator: dict[str, Tensor], file: str = PCONV.places) -> Path:
    return release.write_release(PCONV, folder, generator, file)


def load(folder: Path, model_id: str = MODEL_ID) -> PartialConvNet:
    return release.load(folder, model_id, PartialConvNet)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> PartialConvNet:
    """The network with weight seed 1, loaded once for the tests that need no file of their own."""
    return load(write_release(tmp_path_factory.mktemp("checkpoints") / MODEL_ID, generator_state()))


# --------------------------------------------------------------------------- official outputs


def run_case(net: PartialConvNet, image: np.ndarray, hole: np.ndarray) -> tuple[dict[str, Tensor], Prediction]:
    """``inpaint`` on one crop, with the generator's inputs, its bottleneck and its raw output recorded."""
    seen: dict[str, object] = {}
    hooks = [
        net.register_forward_pre_hook(lambda _m, args: seen.__setitem__("inputs", args)),
        net.register_forward_hook(lambda _m, _a, out: seen.__setitem__("fake", out[0])),
        net.encoder.register_forward_hook(lambda _m, _a, out: seen.__setitem__("h7", out[-1][0])),
    ]
    try:
        prediction = net.inpaint(Batch(image[None], hole[None]))
    finally:
        for hook in hooks:
            hook.remove()
    masked, known = seen["inputs"]
    return {"masked": masked[0], "known": known[0], "h7": seen["h7"][0], "fake": seen["fake"][0]}, prediction


def official_arrays(run: dict[str, Tensor], prediction: Prediction, image: np.ndarray,
                    hole: np.ndarray) -> dict[str, object]:
    """The fixture's arrays: the net's tensors as recorded, the composite and PNG from what ``inpaint`` returned."""
    return ({"masked_img": run["masked"], "enc_out": run["h7"], "fake_res": run["fake"]}
            | release.exported_arrays(prediction, image, hole))


@pytest.mark.parametrize("fixture", fixture_params("pconv"))
def test_matches_official_outputs(fixture: Path, checkpoints: Path) -> None:
    case = read_case(fixture)
    net = load(write_release(checkpoints / MODEL_ID, generator_state(int(case["weight_seed"]))))
    hole = case["hole"].astype(bool)
    run, prediction = run_case(net, case["image"], hole)
    # The net sees the official mask: 1 = known, repeated to 3 channels (PConvInpaintor.forward_tensor).
    np.testing.assert_array_equal(run["known"].numpy(), np.repeat(~hole[None], 3, axis=0))
    assert_matches_fixture(fixture, official_arrays(run, prediction, case["image"], hole))


@pytest.mark.slow  # 206 MB written and read back: ~8 s here
def test_celeba_release_loads_for_the_celeba_id(checkpoints: Path) -> None:
    """The CelebA file (an alias of the same network) is found under its own name and loaded as is."""
    generator = generator_state(seed=2)
    state = load(write_release(checkpoints / "pconv-celeba", generator, PCONV.celeba), "pconv-celeba").state_dict()
    assert state.keys() == generator.keys()
    assert all(torch.equal(state[key], value) for key, value in generator.items())


# --------------------------------------------------------------------------- the official formulas, spelled out


def _partial_conv(state: dict[str, Tensor], name: str, x: Tensor, mask: Tensor, stride: int) -> tuple[Tensor, Tensor]:
    """mmagic ``PartialConv2d(multi_channel=True, eps=1e-8)`` as MODELS.md section 8 writes it."""
    weight = state[f"{name}.conv.weight"].float()
    pad = weight.shape[-1] // 2
    updated = F.conv2d(mask, state[f"{name}.conv.weight_mask_updater"].float(), stride=stride, padding=pad)
    ratio = weight[0].numel() / (updated + 1e-8)
    updated = torch.clamp(updated, 0, 1)
    ratio = ratio * updated
    bias = state.get(f"{name}.conv.bias")
    raw = F.conv2d(x * mask, weight, None if bias is None else bias.float(), stride=stride, padding=pad)
    if bias is None:
        return raw * ratio, updated
    bias = bias.float().view(1, -1, 1, 1)
    return ((raw - bias) * ratio + bias) * updated, updated


def _norm(state: dict[str, Tensor], name: str, x: Tensor) -> Tensor:
    def stat(kind: str) -> Tensor:
        return state[f"{name}.bn.{kind}"].float()
    return F.batch_norm(x, stat("running_mean"), stat("running_var"), stat("weight"), stat("bias"), eps=1e-5)


def spelled_out(state: dict[str, Tensor], masked: Tensor, known: Tensor) -> Tensor:
    """``PConvEncoderDecoder`` step by step from the state_dict: 7 stride-2 stages down, 7 x2 stages up."""
    hidden = [(masked.float(), known.float())]
    for i in range(1, 8):
        x, mask = _partial_conv(state, f"encoder.enc{i}", *hidden[-1], stride=2)
        hidden.append((F.relu(x if i == 1 else _norm(state, f"encoder.enc{i}", x)), mask))
    x, mask = hidden[7]
    for i in range(7, 0, -1):
        x = torch.cat([F.interpolate(x, scale_factor=2.0, mode="nearest"), hidden[i - 1][0]], 1)
        mask = torch.cat([F.interpolate(mask, scale_factor=2.0, mode="nearest"), hidden[i - 1][1]], 1)
        x, mask = _partial_conv(state, f"decoder.dec{i}", x, mask, stride=1)
        if i > 1:
            x = F.leaky_relu(_norm(state, f"decoder.dec{i}", x), 0.2)
    return x


def assert_close_to_spelled_out(net: PartialConvNet, state: dict[str, Tensor], batch: Batch) -> None:
    """``inpaint`` against the spelling, in the units ``inpaint`` returns (RGB, 0..1)."""
    holes = torch.from_numpy(batch.holes)[:, None].float()
    bgr = torch.from_numpy(batch.images[..., ::-1].copy()).permute(0, 3, 1, 2).float()
    masked = (bgr * (1 - holes) + 127.5 * holes - 127.5) / 127.5
    want = to_pixels(spelled_out(state, masked, (1 - holes).expand(-1, 3, -1, -1))).flip(1) / 255
    got = net.inpaint(batch).samples[:, 0]
    assert_close("pconv.spelled_out", got, want.permute(0, 2, 3, 1))


def test_non_square_size_follows_the_official_formulas(net: PartialConvNet) -> None:
    """128x256 (a 1x2 bottleneck): the boxed mask count is the official convolution, and nothing is transposed."""
    assert all(m.ones_kernel for m in net.modules() if isinstance(m, PartialConv2d))
    assert_close_to_spelled_out(net, generator_state(), random_batch(1, 128, 256, seed=21))


@pytest.mark.slow  # a release written and read back, then the spelled-out forward: ~10 s here
def test_the_mask_kernel_is_read_from_the_file(checkpoints: Path) -> None:
    """A release whose ``weight_mask_updater`` is not all ones is honoured, as the official layer does."""
    generator = generator_state()
    kernel = torch.rand(64, 192, 3, 3, generator=torch.Generator().manual_seed(0))
    generator["decoder.dec2.conv.weight_mask_updater"] = kernel
    net = load(write_release(checkpoints / MODEL_ID, generator))
    assert not net.decoder.dec2.conv.ones_kernel and net.decoder.dec3.conv.ones_kernel
    assert_close_to_spelled_out(net, generator, random_batch(1, 128, 128, seed=22))


# --------------------------------------------------------------------------- precision and sizes


def test_half_precision_keeps_the_mask_ratio_finite(net: PartialConvNet) -> None:
    """Under the declared autocast dtype (CPU autocast: the same dtype rounding as CUDA) a layer keeps its mask
    float32 and exact, and its output finite: in float16 the ratio's 1e-8 vanishes, so a window that saw
    nothing would give 0 * inf, and counts above 2048 (up to 9216 here) would round."""
    layer = net.decoder.dec5.conv  # 1024 inputs x 3x3
    rng = torch.Generator().manual_seed(25)
    x = torch.randn(1, 1024, 8, 8, generator=rng)
    mask = (torch.rand(1, 1024, 8, 8, generator=rng) < 0.7).float()
    mask[..., :4, :4] = 0  # a hole wider than the window
    with torch.inference_mode():
        want, want_mask = layer(x, mask)
        with torch.autocast("cpu", dtype=PartialConvNet.FACTS.gpu_dtype):
            got, got_mask = layer(x, mask)
    assert got_mask.dtype == torch.float32 and torch.equal(got_mask, want_mask)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, want, rtol=0.01, atol=0.01 * float(want.abs().max()))


@pytest.mark.slow  # float16 convolutions are slow on the CPU: ~40 s here
def test_half_precision_fill_stays_close(net: PartialConvNet) -> None:
    """The whole network under the declared dtype: finite, and within a few levels of float32 in a large hole."""
    batch = random_batch(1, 128, 128, seed=23)
    batch.holes[:, 16:112, 8:120] = True  # a large hole: sparse windows give the largest ratios
    want = net.inpaint(batch).samples
    with torch.autocast("cpu", dtype=PartialConvNet.FACTS.gpu_dtype):
        got = net.inpaint(batch).samples
    assert np.isfinite(got).all()
    assert np.abs(got - want)[:, 0][batch.holes].max() * 255 < 8  # levels; float16 measured ~3 at 256 px


def test_sizes_off_128_are_refused_with_the_rule(net: PartialConvNet) -> None:
    """192x320 fails inside the official code ("Expected size 4 but got size 3"); we say why, before any work."""
    with pytest.raises(InpaintError, match=r"multiples of 128, got 192x320"):
        net.inpaint(random_batch(1, 192, 320, seed=24))
