"""LaMa (big-lama) against outputs of the official code, loaded from an official-format ``best.ckpt``.

The fixtures hold what ``advimman/lama``'s ``bin/predict.py`` produced with synthetic
weights (``make_state_dict("lama_generator", weight_seed)``); we save the same weights
the way the release does (a Lightning checkpoint with discriminator/loss tensors and
pickled non-tensor hyper-parameters) and load them through the app's only loader. Batching,
strict loading and odd sizes (padded) are the shared contract (``test_model_contract.py``).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch

from app import registry
from app.errors import WeightsError
from app.models.base import Batch
from app.models.lama import BigLaMa, pad_symmetric
from app.weights.loader import load_from_folder
from tests.reference import assert_matches_fixture, fixture_params
from tests.releases.lama import (
    SETSTATE_CALLS,
    default_seed,
    generator_state,
    write_best_ckpt,
)


class Exploit:
    """Pickles as a call of ``os.system``: unpickling it with plain ``pickle`` would run a shell."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def predict(net: BigLaMa, images: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """(B, H, W, 3) float32 raw predictions for a stack of crops."""
    prediction = net.inpaint(Batch(images=images, holes=holes))
    assert prediction.samples.shape == (len(images), 1, *images.shape[1:])
    assert prediction.samples.dtype == np.float32
    return prediction.samples[:, 0]


@pytest.mark.parametrize("fixture", fixture_params("lama"))
def test_matches_official_outputs(fixture: Path, checkpoints: Path) -> None:
    case = dict(np.load(fixture))
    folder = write_best_ckpt(checkpoints / "lama", generator_state(int(case["weight_seed"])))
    net = load_from_folder(registry.get("lama"), folder)
    assert isinstance(net, BigLaMa) and not net.training
    assert SETSTATE_CALLS == [], "the pickled hyper-parameters class was imported and run"

    image, hole = case["image"], case["hole"].astype(bool)
    pred = predict(net, image[None], hole[None])[0]
    mask = hole[..., None].astype(np.float32)
    inpainted = mask * pred + (1 - mask) * (image.astype(np.float32) / 255)
    ours = {
        "predicted_image": pred.transpose(2, 0, 1),
        "inpainted": inpainted.transpose(2, 0, 1),
        "inpainted_uint8_rgb": np.clip(inpainted * 255, 0, 255).astype(np.uint8).astype(np.int16),
    }
    assert_matches_fixture(fixture, ours)


@pytest.mark.parametrize(("height", "width"), [(5, 3), (8, 16), (13, 250), (1, 7)])
def test_pad_symmetric_matches_numpy(height: int, width: int) -> None:
    x = np.arange(2 * height * width, dtype=np.float32).reshape(1, 2, height, width)
    want = np.pad(x, ((0, 0), (0, 0), (0, -height % 8), (0, -width % 8)), mode="symmetric")
    np.testing.assert_array_equal(pad_symmetric(torch.from_numpy(x), 8).numpy(), want)


@pytest.mark.parametrize("where", ["metadata", "state_dict"])
def test_malicious_pickle_is_not_executed(tmp_path: Path, where: str) -> None:
    """A checkpoint naming ``os.system`` anywhere (metadata or weights) is refused, not run, left as it was."""
    marker = tmp_path / "pwned"
    generator = dict(generator_state(default_seed()))
    extra: dict[str, object] = {"callbacks": Exploit(marker)} if where == "metadata" else {}
    if where == "state_dict":  # a non-tensor smuggled among the generator weights
        generator["model.1.ffc.convl2l.weight"] = Exploit(marker)
    folder = write_best_ckpt(tmp_path / "lama", generator, **extra)
    before = (folder / "best.ckpt").read_bytes()
    with pytest.raises(WeightsError, match=r"refers to (posix|os)\.system, which is how a pickle runs code"):
        load_from_folder(registry.get("lama"), folder)
    assert not marker.exists(), "the pickle's os.system call was executed"
    assert (folder / "best.ckpt").read_bytes() == before
    assert SETSTATE_CALLS == []
