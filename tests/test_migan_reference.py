"""MI-GAN (256 and 512) against outputs of the official code, loaded from an official-format ``.pt``.

The fixtures hold what ``Picsart-AI-Research/MI-GAN``'s ``scripts/demo.py`` computed with
``migan_inference.Generator(resolution=R)`` and synthetic weights
(``make_state_dict("migan_generator" | "migan512_generator", weight_seed)``). The release is a bare
state dict written with ``torch.save``; we write the same and load it through the app's only loader.
Batching, strict loading and sizes are the shared contract (``test_model_contract.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from app import registry
from app.errors import CropSizeError
from app.models.base import Batch
from app.models.migan import MIGAN, MIGAN256, MIGAN512, Upsample2d
from app.weights.loader import load_from_folder
from tests.reference import assert_matches_fixture, fixture_files, fixture_params
from tests.releases.migan import VARIANTS, default_seed, official_state, write_release


def demo_outputs(net: MIGAN, image: np.ndarray, hole: np.ndarray) -> dict[str, np.ndarray]:
    """The statements of ``scripts/demo.py`` for one RxR image, through our ``inpaint`` for the result."""
    known = torch.from_numpy(1 - hole.astype(np.float32))[None, None]  # read_mask: white (255) = known, // 255
    rgb = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    x = MIGAN.network_input(rgb, known)
    with torch.inference_mode():
        output = net(x)[0]
        bottleneck = net.encode(x)
    fill = net.inpaint(Batch(images=image[None], holes=hole[None].astype(bool))).samples
    assert fill.shape == (1, 1, *image.shape) and fill.dtype == np.float32
    result = (torch.from_numpy(fill[0, 0]) * 255).to(torch.uint8).numpy()  # demo.py's .to(torch.uint8) truncates
    mask = (1 - hole.astype(np.uint8))[..., None]
    composed = image * mask + result * (1 - mask)  # uint8 arithmetic, as demo.py composes
    return {"x": x[0].numpy(), "enc_out": bottleneck[0].numpy(), "output": output.numpy(),
            "result_uint8": result.astype(np.int16), "composed_uint8": composed.astype(np.int16)}


def _check(prefix: str, fixture: Path, checkpoints: Path) -> None:
    variant = VARIANTS[prefix]
    case = dict(np.load(fixture))
    folder = write_release(checkpoints / variant.model_id, official_state(variant.manifest, int(case["weight_seed"])))
    net = load_from_folder(registry.get(variant.model_id), folder)
    assert type(net) is variant.network and not net.training
    assert_matches_fixture(fixture, demo_outputs(net, case["image"], case["hole"]))


@pytest.mark.parametrize("fixture", fixture_params("migan"))
def test_migan256_matches_official_outputs(fixture: Path, checkpoints: Path) -> None:
    _check("migan", fixture, checkpoints)


@pytest.mark.parametrize("fixture", fixture_params("migan512"))
def test_migan512_matches_official_outputs(fixture: Path, checkpoints: Path) -> None:
    _check("migan512", fixture, checkpoints)


def test_fixture_prefixes_do_not_overlap() -> None:
    """``migan_*`` must not pick up the 512 fixtures (their arrays are another size)."""
    assert not any(path.name.startswith("migan512") for path in fixture_files("migan"))


@pytest.mark.parametrize("prefix", list(VARIANTS))
def test_state_dict_layout_equals_the_release(prefix: str) -> None:
    """Keys, shapes and order exactly as the official ``Generator(resolution=R).state_dict()``."""
    variant = VARIANTS[prefix]
    state = official_state(variant.manifest, default_seed(prefix))
    ours = variant.network().state_dict()
    assert list(ours) == list(state)
    assert all(tuple(ours[k].shape) == tuple(v.shape) for k, v in state.items())


@pytest.mark.parametrize("prefix", list(VARIANTS))
def test_the_released_file_name_is_found_as_an_alias(prefix: str, checkpoints: Path) -> None:
    """``migan_256_places2.pt`` (as downloaded by hand from the authors' Drive) loads as is."""
    variant = VARIANTS[prefix]
    state = official_state(variant.manifest, default_seed(prefix))
    folder = write_release(checkpoints / variant.model_id, state, variant.released)
    loaded = load_from_folder(registry.get(variant.model_id), folder).state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[key], value) for key, value in state.items())


def test_only_its_own_resolution_is_taken() -> None:
    """The noise and zero-insertion buffers are fixed-size: another size is refused with a message."""
    net = MIGAN512()
    image = np.zeros((1, 256, 256, 3), np.uint8)
    with pytest.raises(CropSizeError, match=r"exactly 512x512"):
        net.inpaint(Batch(images=image, holes=np.ones((1, 256, 256), bool)))


def _official_upsample(x: torch.Tensor, module: Upsample2d) -> torch.Tensor:
    """MODELS.md: nearest x2, times ``filter_const``, pad (2, 1, 2, 1), depthwise 4x4."""
    y = F.interpolate(x, scale_factor=2, mode="nearest") * module.filter_const
    return F.conv2d(F.pad(y, (2, 1, 2, 1)), module.filter.weight, groups=x.shape[1])


def test_the_transposed_convolution_equals_zero_insertion_for_any_filter() -> None:
    """The shortcut is exact for any stored filter (an asymmetric one here), in float64."""
    torch.manual_seed(0)
    module = Upsample2d(5, 16).double()
    with torch.no_grad():
        module.filter.weight.copy_(torch.randn_like(module.filter.weight))
    x = torch.randn(2, 5, 8, 8, dtype=torch.float64)
    assert module.inserts_zeros
    torch.testing.assert_close(module(x), _official_upsample(x, module), rtol=0, atol=1e-12)


def test_another_filter_const_takes_the_official_steps() -> None:
    """A file whose ``filter_const`` is not the zero-insertion pattern is computed as the official code does."""
    module = Upsample2d(3, 8).double()
    state = module.state_dict()
    state["filter_const"] = torch.rand(1, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    module.load_state_dict(state)
    assert not module.inserts_zeros
    x = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(module(x), _official_upsample(x, module), rtol=0, atol=1e-12)
    net = MIGAN256()
    net.load_state_dict(net.state_dict() | {"synthesis.b8.upsample.filter_const": torch.zeros(1, 1, 8, 8)})
    assert not net.synthesis.b8.upsample.inserts_zeros and net.synthesis.b16.upsample.inserts_zeros


def test_the_fused_convolution_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """oneDNN's convolution with the leaky ReLU inside (CPU, float32) against the two plain steps."""
    from app.models import migan

    torch.manual_seed(0)
    net = MIGAN256().eval()
    x = torch.randn(1, 4, 256, 256)
    with torch.inference_mode():
        fused = net(x)
        monkeypatch.setattr(migan, "_fused_available", lambda: False)
        plain = net(x)
    torch.testing.assert_close(fused, plain, rtol=0, atol=1e-5)
