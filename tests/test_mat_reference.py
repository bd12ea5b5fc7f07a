"""MAT (app.models.mat) against the official outputs, and the app's reproducible-diversity contract.

The weights are synthetic (reference ``init_weights.py``) but written as they are released: a bare
state dict with the official key names (``Places_512_FullData_G.pth``, as IOPaint ships it), loaded
through the app's own loader. The fixtures store the latent ``z`` and both forced-dropout keep masks,
which are injected; every forward is a full 512x512 generator pass (seconds on a CPU), so only the
first fixture runs in the fast lane.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from app import registry
from app.models.base import SAMPLE_DONE, Batch, Prediction
from app.models.mat import KEEP1_SHAPE, KEEP2_SHAPE, MAT, latents
from app.weights.loader import load_from_folder
from app.weights.resolve import SAFETENSORS_NAME
from tests.helpers import textured
from tests.reference import assert_matches_fixture, fixture_params, manifest_entries
from tests.releases.mat import official_state, write_release

SPEC_ID = "mat-places512"
# Same latent, other batch: float32 kernels may sum in another order. Another latent moves hole pixels by >> this.
SAME_LATENT_TOL = 1e-5


def load(folder: Path) -> MAT:
    return load_from_folder(registry.get(SPEC_ID), folder)


@functools.cache
def _model_for_seed(folder: str, seed: int) -> MAT:
    return load(write_release(Path(folder) / SPEC_ID, seed))


# --------------------------------------------------------------------------- official outputs


def _ours(model: MAT, fx: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    image = torch.from_numpy(fx["image"]).permute(2, 0, 1)[None].float() / 127.5 - 1
    mask = 1 - torch.from_numpy(fx["hole"]).float()[None, None]  # fixture: 1 = hole; MAT: 1 = known
    z = torch.from_numpy(fx["z"])[None]
    keep1 = torch.from_numpy(fx["dropout_stage1"])[None].float()
    keep2 = torch.from_numpy(fx["dropout_stage2"])[None].float()
    with torch.inference_mode():
        run = model.run(image, mask, z, keep1, keep2)
    output = run.output[0]
    return {"image_in": image[0], "mask_in": mask[0], "ws": run.ws[0], "out_stg1": run.out_stg1[0],
            "dec_img": run.dec_img[0], "output": output,
            "output_uint8": (output.permute(1, 2, 0) * 127.5 + 127.5).round().clamp(0, 255).to(torch.uint8)}


@pytest.mark.parametrize("path", fixture_params("mat"))
def test_matches_fixture(path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    fx = dict(np.load(path))
    model = _model_for_seed(str(tmp_path_factory.getbasetemp() / "mat-release"), int(fx["weight_seed"]))
    errors = assert_matches_fixture(path, _ours(model, fx))
    assert {"image_in", "mask_in", "ws", "out_stg1", "dec_img", "output", "output_uint8"} <= set(errors)


# --------------------------------------------------------------------------- layout and loading


def test_state_dict_is_the_official_layout() -> None:
    """Keys, shapes and order of the official Generator.state_dict(), buffers included (the mask counter not)."""
    state = MAT().state_dict()
    entries = manifest_entries("mat_G")
    assert [(k, tuple(v.shape)) for k, v in state.items()] == [(e["key"], tuple(e["shape"])) for e in entries]
    assert not any("weight_maskUpdater" in k for k in state)


def test_constant_buffers_equal_the_official_ones() -> None:
    """resample_filter and attn_mask are constants of the architecture: ours must equal the released values."""
    ours = MAT().state_dict()
    official = official_state(1)
    constant = [k for k in ours if k.endswith(("resample_filter", "attn_mask"))]
    assert len(constant) == 68 + 4  # every resample_filter (MODELS.md says 64; the manifest holds 68) + 4 masks
    for key in constant:
        assert torch.equal(ours[key], official[key]), key


@pytest.mark.slow  # writes and reads the 250 MB release twice, then two full forwards
def test_float16_safetensors_copy_loads_as_float32(tmp_path: Path) -> None:
    """A float16 copy with the official keys (like the Hub's MAT_Places512_G_fp16.safetensors) is upcast on load."""
    folder = tmp_path / SPEC_ID
    folder.mkdir()
    half = {k: v.half().contiguous() for k, v in official_state(1).items()}
    save_file(half, str(folder / SAFETENSORS_NAME))
    model = load(folder)
    assert all(t.dtype == torch.float32 for t in model.state_dict().values())
    assert torch.equal(model.mapping.w_avg, half["mapping.w_avg"].float())
    batch = _batch(1)
    reference = load(write_release(tmp_path / "pth" / SPEC_ID)).inpaint(batch, samples=1, seed=0).samples
    got = model.inpaint(batch, samples=1, seed=0).samples
    assert np.isfinite(got).all() and np.abs(got - reference).max() < 0.1  # float16 rounding of the weights only


def test_latents_are_a_function_of_seed_and_sample() -> None:
    z, keep1, keep2 = latents(3, 1)
    assert z.shape == (1, 512) and keep1.shape == (1, *KEEP1_SHAPE) and keep2.shape == (1, *KEEP2_SHAPE)
    assert set(keep1.unique().tolist()) == {0.0, 1.0} and set(keep2.unique().tolist()) == {0.0, 1.0}
    assert 0.45 < keep1.mean() < 0.55 and 0.45 < keep2.mean() < 0.55  # p = 0.5, as F.dropout(p=0.5)
    torch.manual_seed(0)  # the global generator plays no part
    again = latents(3, 1)
    assert all(torch.equal(a, b) for a, b in zip((z, keep1, keep2), again, strict=True))
    assert not torch.equal(latents(3, 2)[0], z) and not torch.equal(latents(4, 1)[0], z)


def test_refuses_other_sizes() -> None:
    batch = Batch(images=np.zeros((1, 256, 256, 3), np.uint8), holes=np.zeros((1, 256, 256), bool))
    with pytest.raises(ValueError, match="512x512"):
        MAT().inpaint(batch)
    with pytest.raises(ValueError, match="samples"):
        MAT().inpaint(batch, samples=0)


# --------------------------------------------------------------------------- reproducible diversity


def _batch(n: int) -> Batch:
    images = np.stack([textured(512, 512, seed=i) for i in range(n)])
    holes = np.zeros(images.shape[:3], dtype=bool)
    holes[0, 150:330, 200:420] = True
    if n > 1:
        holes[1, 40:260, 60:200] = True
    return Batch(images=images, holes=holes)


def _hole_diff(a: np.ndarray, b: np.ndarray, holes: np.ndarray) -> float:
    return float(np.abs(a - b)[holes].max())


@pytest.mark.slow  # eight 512 px generator passes
def test_sample_k_independent_of_count_batch_and_history(tmp_path_factory: pytest.TempPathFactory) -> None:
    mat = _model_for_seed(str(tmp_path_factory.getbasetemp() / "mat-release"), 1)
    batch = _batch(2)
    told: list[int] = []
    token = SAMPLE_DONE.set(told.append)
    try:
        three = mat.inpaint(batch, samples=3, seed=7)  # both crops together, three samples
    finally:
        SAMPLE_DONE.reset(token)
    assert told == [-1, 0, 1, 2]  # the shared stage-1 encoding first, then each sample as it is done
    assert isinstance(three, Prediction)
    assert three.samples.shape == (2, 3, 512, 512, 3) and three.samples.dtype == np.float32
    assert 0.0 <= three.samples.min() and three.samples.max() <= 1.0

    second = Batch(images=batch.images[1:], holes=batch.holes[1:])
    one = mat.inpaint(second, samples=1, seed=7)  # one crop alone, one sample
    assert np.abs(one.samples[0, 0] - three.samples[1, 0]).max() <= SAME_LATENT_TOL
    mat.inpaint(Batch(images=batch.images[:1], holes=batch.holes[:1]), samples=1, seed=3)  # another request
    again = mat.inpaint(second, samples=1, seed=7)
    np.testing.assert_array_equal(again.samples, one.samples)

    other_seed = mat.inpaint(second, samples=1, seed=8)
    holes = batch.holes[1]
    assert _hole_diff(other_seed.samples[0, 0], one.samples[0, 0], holes) > 1e-2
    for i in range(2):
        for j in range(3):
            for k in range(j + 1, 3):
                assert _hole_diff(three.samples[i, j], three.samples[i, k], batch.holes[i]) > 1e-2
        # Known pixels: the official output is composited with the input (exact up to 8-bit rounding).
        known = ~batch.holes[i]
        assert np.abs(three.samples[i, 0][known] - batch.images[i][known] / 255).max() < 1e-5
