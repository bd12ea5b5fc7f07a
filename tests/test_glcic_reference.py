"""Global&Local (mmagic GLCIC) against the official outputs, loaded from an official-format release.

The fixtures hold what mmagic's ``MMagicInferencer('global_local').infer`` produced with synthetic
weights; we write the same weights as the release does (the whole inpaintor's state_dict: the
generator plus the discriminators ``disc.*``), load them through the app's loader and rebuild every
fixture array from ONE ``inpaint`` call. Other sizes are checked against the architecture spelled out
below in float64. Batching, strict loading and sizes off the multiple are the shared contract
(``test_model_contract.py``).
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
from app.models.glcic import GlobalLocalNet
from app.models.mmagic import to_pixels
from tests import mmagic_release as release
from tests.helpers import random_batch
from tests.mmagic_release import GLCIC, read_case
from tests.reference import assert_matches_fixture, fixture_params
from tests.tolerances import assert_close

MODEL_ID = "glcic-places2"
#: The writer ``test_model_contract.py`` calls (the Places file, an edit applied to the generator).


def generator_state(seed: int = 1) -> dict[str, Tensor]:
    return release.generator_state(GLCIC, seed)


def write_release(folder: Path, generator: dict[str, Tensor], file: str = GLCIC.places) -> Path:
    return release.write_release(GLCIC, folder, generator, file)


def load(folder: Path, model_id: str = MODEL_ID) -> GlobalLocalNet:
    return release.load(folder, model_id, GlobalLocalNet)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> GlobalLocalNet:
    """The network with weight seed 1, loaded once for the tests that need no file of their own."""
    return load(write_release(tmp_path_factory.mktemp("checkpoints") / MODEL_ID, generator_state()))


# --------------------------------------------------------------------------- official outputs


def run_case(net: GlobalLocalNet, image: np.ndarray, hole: np.ndarray) -> tuple[dict[str, Tensor], Prediction]:
    """``inpaint`` on one crop, with the generator's 4-channel input and its output recorded."""
    seen: dict[str, Tensor] = {}
    hooks = [
        net.register_forward_pre_hook(lambda _m, args: seen.__setitem__("x", args[0])),
        net.register_forward_hook(lambda _m, _a, out: seen.__setitem__("fake", out)),
    ]
    try:
        prediction = net.inpaint(Batch(image[None], hole[None]))
    finally:
        for hook in hooks:
            hook.remove()
    return {"x": seen["x"][0], "fake": seen["fake"][0]}, prediction


def official_arrays(run: dict[str, Tensor], prediction: Prediction, image: np.ndarray,
                    hole: np.ndarray) -> dict[str, object]:
    """The fixture's arrays: the net's tensors as recorded, the composite and PNG from what ``inpaint`` returned."""
    return {"masked_img": run["x"][:3], "fake_res": run["fake"]} | release.exported_arrays(prediction, image, hole)


@pytest.mark.parametrize("fixture", fixture_params("glcic"))
def test_matches_official_outputs(fixture: Path, checkpoints: Path) -> None:
    case = read_case(fixture)
    net = load(write_release(checkpoints / MODEL_ID, generator_state(int(case["weight_seed"]))))
    hole = case["hole"].astype(bool)
    run, prediction = run_case(net, case["image"], hole)
    # The 4th input channel is the official mask: 1 = hole, no ones channel (OneStageInpaintor).
    assert run["x"].shape[0] == 4
    np.testing.assert_array_equal(run["x"][3].numpy(), hole)
    assert_matches_fixture(fixture, official_arrays(run, prediction, case["image"], hole))


def test_celeba_release_loads_for_the_celeba_id(checkpoints: Path) -> None:
    """The CelebA file (an alias of the same network) is found under its own name and loaded as is."""
    generator = generator_state(seed=2)
    state = load(write_release(checkpoints / "glcic-celeba", generator, GLCIC.celeba), "glcic-celeba").state_dict()
    assert state.keys() == generator.keys()
    assert all(torch.equal(state[key], value) for key, value in generator.items())


# --------------------------------------------------------------------------- the architecture, spelled out


def _block(state: dict[str, Tensor], name: str, x: Tensor, transposed: bool = False, **conv: int) -> Tensor:
    """mmcv ``ConvModule``: bias-free conv (or 4x4/2 transposed conv) -> eval BN (eps 1e-5) -> ReLU, float64."""
    weight = state[f"{name}.conv.weight"].double()
    x = F.conv_transpose2d(x, weight, stride=2, padding=1) if transposed else F.conv2d(x, weight, **conv)
    stats = [state[f"{name}.bn.{kind}"].double() for kind in ("running_mean", "running_var", "weight", "bias")]
    return F.relu(F.batch_norm(x, *stats, eps=1e-5))


def spelled_out(state: dict[str, Tensor], x: Tensor) -> Tensor:
    """``GLEncoderDecoder`` as MODELS.md section 9 lists it: encoder -> dilation neck -> decoder -> clip."""
    x = _block(state, "encoder.enc1", x.double(), padding=2)
    for i, stride in zip(range(2, 7), (2, 1, 2, 1, 1), strict=True):
        x = _block(state, f"encoder.enc{i}", x, stride=stride, padding=1)
    for i, dilation in enumerate((2, 4, 8, 16)):
        x = _block(state, f"dilation_neck.dilation_convs.{i}", x, padding=dilation, dilation=dilation)
    for i in range(1, 7):
        upsamples = i in (3, 5)
        x = _block(state, f"decoder.dec{i}", x, transposed=upsamples, padding=0 if upsamples else 1)
    x = F.conv2d(x, state["decoder.dec7.conv.weight"].double(), state["decoder.dec7.conv.bias"].double(), padding=1)
    return x.clamp(-1, 1)


def test_odd_quarter_size_follows_the_architecture(net: GlobalLocalNet) -> None:
    """60x92: H/4 and W/4 odd (15x23), so the transposed convs must give back exactly the input size."""
    batch = random_batch(1, 60, 92, seed=31)
    holes = torch.from_numpy(batch.holes)[:, None].double()
    bgr = torch.from_numpy(batch.images[..., ::-1].copy()).permute(0, 3, 1, 2).double()
    masked = (bgr * (1 - holes) + 127.5 * holes - 127.5) / 127.5
    want = to_pixels(spelled_out(generator_state(), torch.cat([masked, holes], 1))).flip(1) / 255
    got = net.inpaint(batch).samples[:, 0]
    assert_close("glcic.spelled_out", got, want.permute(0, 2, 3, 1))


def test_sizes_off_4_are_refused_with_the_rule(net: GlobalLocalNet) -> None:
    """250x270 fails inside the official code (272 != 270); we say why, before any work."""
    with pytest.raises(InpaintError, match=r"multiples of 4, got 250x270"):
        net.inpaint(random_batch(1, 250, 270, seed=32))
