"""Global&Local (mmagic GLCIC) against the official outputs, loaded from an official-format release.

The fixtures hold what mmagic's ``MMagicInferencer('global_local').infer`` produced with synthetic
weights; we write the same weights as the release does (the whole inpaintor's state_dict: the
generator plus the discriminators ``disc.*``), load them through the app's loader and rebuild every
fixture array from ONE ``inpaint`` call. Other sizes are checked against the architecture spelled out
below in float64. Batching, strict loading and sizes off the multiple are the shared contract
(``test_model_contract.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from app import registry
from app.errors import InpaintError
from app.models.base import Batch, Prediction
from app.models.glcic import GlobalLocalNet
from app.models.mmagic import to_pixels
from app.weights.loader import load_from_folder
from tests.conftest import assert_matches_fixture, fixture_params, make_state_dict
from tests.test_rfr_reference import random_batch

MODEL_ID = "glcic-places2"
#: The file names as MODELS.md (section 9) lists them; the tests do not read them from the class.
PLACES = "gl_256x256_8x12_places_20200619-52a040a8.pth"
CELEBA = "gl_256x256_8x12_celeba_20200619-5af0493f.pth"
#: What mmcv writes beside the weights; the numpy scalar (a logged metric) makes torch's
#: ``weights_only`` loader decline, so the app's restricted unpickler reads the file.
META = {"mmedit_version": "0.x", "time": "20200619_000000", "iter": 500000, "best_psnr": np.float64(23.152),
        "config": "model = dict(type='GLInpaintor')"}
#: Discriminator entries the release also holds; the last would land on a generator key if the
#: loader stripped any first component instead of exactly ``generator.``.
DISCRIMINATOR = {
    "disc.global_disc.conv1.conv.weight": torch.zeros(64, 3, 5, 5),
    "disc.local_disc.fc.fc.bias": torch.zeros(1),
    "disc.encoder.enc1.conv.weight": torch.zeros(1),
}
OFFICIAL_ATOL = 1e-4  # float64 spelling vs our float32, normalised units (index.json's tolerance for fake_res)


@lru_cache(maxsize=2)
def _generator_state(seed: int) -> dict[str, Tensor]:
    return dict(make_state_dict("glcic_generator", seed))


def generator_state(seed: int = 1) -> dict[str, Tensor]:
    """A fresh copy (callers edit it) of the cached synthetic generator weights."""
    return dict(_generator_state(seed))


def write_release(folder: Path, generator: dict[str, Tensor], file: str = PLACES) -> Path:
    """Save ``generator`` as mmagic's ``publish_model`` left the release: the whole inpaintor's state_dict."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {f"generator.{key}": value for key, value in generator.items()} | DISCRIMINATOR
    torch.save({"meta": META, "state_dict": state}, folder / file)
    return folder


def write_for_contract(folder: Path, edit: Callable[[str, dict[str, Tensor]], None] | None) -> Path:
    """The writer ``test_model_contract.py`` calls: the Places file, ``edit`` applied to the generator."""
    generator = generator_state()
    if edit:
        edit("generator", generator)
    return write_release(folder, generator)


def load(folder: Path, model_id: str = MODEL_ID) -> GlobalLocalNet:
    net = load_from_folder(registry.get(model_id), folder)
    assert type(net) is GlobalLocalNet and not net.training
    return net


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> GlobalLocalNet:
    """The network with weight seed 1, loaded once for the tests that need no file of their own."""
    return load(write_release(tmp_path_factory.mktemp("checkpoints") / MODEL_ID, generator_state()))


def read_case(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


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
    fill_bgr = prediction.samples[0, 0][..., ::-1] * 255  # the app's fill, back in destruct's 0..255 BGR
    pred_img = np.where(hole[..., None], fill_bgr, image[..., ::-1].astype(np.float32)).transpose(2, 0, 1)
    exported = np.round(np.clip(pred_img / 255, 0, 1) * 255)[::-1].transpose(1, 2, 0)  # tensor2img, half-even
    return {"masked_img": run["x"][:3], "fake_res": run["fake"], "pred_img": pred_img,
            "pred_img_uint8_rgb": exported}


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
    state = load(write_release(checkpoints / "glcic-celeba", generator, CELEBA), "glcic-celeba").state_dict()
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
    np.testing.assert_allclose(got, want.permute(0, 2, 3, 1).numpy(), rtol=0, atol=OFFICIAL_ATOL / 2)


def test_sizes_off_4_are_refused_with_the_rule(net: GlobalLocalNet) -> None:
    """250x270 fails inside the official code (272 != 270); we say why, before any work."""
    with pytest.raises(InpaintError, match=r"multiples of 4, got 250x270"):
        net.inpaint(random_batch(1, 250, 270, seed=32))
