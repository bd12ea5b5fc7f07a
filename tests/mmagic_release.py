"""The mmagic releases (DeepFill v1/v2, PConv, GLCIC) as the tests write them, and what their tests share.

Each release is a mmcv checkpoint ``{'meta': {...}, 'state_dict': {...}}`` holding the WHOLE
inpaintor (MODELS.md section 5): ``generator.*`` (synthetic weights from ../shared/reference, made
once per seed and cached: PConv's are 51.6 M values) plus entries the app must ignore (the
discriminators ``disc.*``, PConv's perceptual-loss VGG). One of those foreign entries always
ends in a generator key, so a loader that stripped any first component instead of exactly
``generator.`` would be caught. The file names are MODELS.md's (sections 6-9); the tests do not
read them from the classes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from app import registry
from app.models.base import NeuralNetwork, Prediction
from app.weights.loader import load_from_folder
from tests.reference import make_state_dict

#: Edits one part of the official weights before they are written (``test_model_contract.Edit``).
Edit = Callable[[str, dict[str, Tensor]], None]


@dataclass(frozen=True)
class Release:
    """One network's release pair: its manifest, its two published files, what mmcv saved beside the generator."""

    manifest: str
    places: str  # the file of the ``*-places2`` model id
    celeba: str  # the file of the ``*-celeba`` model id
    meta: dict
    foreign: dict[str, Tensor] = field(repr=False)


#: What mmcv writes beside the weights (strings only, like the release's run metadata).
_DEEPFILL_META = {"mmedit_version": "0.x", "time": "20200619_000000",
                  "config": "model = dict(type='TwoStageInpaintor')"}
_DEEPFILL_DISC = {
    "disc.global_disc.conv1.conv.weight": torch.zeros(64, 4, 5, 5),
    "disc.local_disc.fc.fc.bias": torch.zeros(1),
    "disc.stage1.encoder.enc1.conv.bias": torch.zeros(1),
}


def _logged_meta(inpaintor: str, psnr: float) -> dict:
    """Metadata with a logged metric: the numpy scalar makes torch's ``weights_only`` loader decline,
    so the app's restricted unpickler reads the file."""
    return {"mmedit_version": "0.x", "time": "20200619_000000", "iter": 500000, "best_psnr": np.float64(psnr),
            "config": f"model = dict(type='{inpaintor}')"}


V1 = Release("deepfillv1_generator", "deepfillv1_256x256_8x2_places_20200619-c00a0e21.pth",
             "deepfillv1_256x256_4x4_celeba_20200619-dd51a855.pth", _DEEPFILL_META, _DEEPFILL_DISC)
V2 = Release("deepfillv2_generator", "deepfillv2_256x256_8x2_places_20200619-10d15793.pth",
             "deepfillv2_256x256_8x2_celeba_20200619-c96e5f12.pth", _DEEPFILL_META, _DEEPFILL_DISC)
PCONV = Release(
    "pconv_generator", "pconv_256x256_stage2_4x2_places_20200619-1ffed0e8.pth",
    "pconv_256x256_stage2_4x2_celeba_20200619-860f8b95.pth", _logged_meta("PConvInpaintor", 22.762),
    {"loss_percep.vgg.mean": torch.zeros(1, 3, 1, 1),
     "loss_percep.vgg.vgg_layers.0.weight": torch.zeros(64, 3, 3, 3),
     "loss_percep.encoder.enc1.conv.bias": torch.zeros(1)})
GLCIC = Release(
    "glcic_generator", "gl_256x256_8x12_places_20200619-52a040a8.pth",
    "gl_256x256_8x12_celeba_20200619-5af0493f.pth", _logged_meta("GLInpaintor", 23.152),
    {"disc.global_disc.conv1.conv.weight": torch.zeros(64, 3, 5, 5),
     "disc.local_disc.fc.fc.bias": torch.zeros(1),
     "disc.encoder.enc1.conv.weight": torch.zeros(1)})


@lru_cache(maxsize=4)
def _generator_state(manifest: str, seed: int) -> dict[str, Tensor]:
    return dict(make_state_dict(manifest, seed))


def generator_state(release: Release, seed: int = 1) -> dict[str, Tensor]:
    """A fresh copy (callers edit it) of the cached synthetic generator weights."""
    return dict(_generator_state(release.manifest, seed))


def write_release(release: Release, folder: Path, generator: dict[str, Tensor], file: str | None = None) -> Path:
    """Save ``generator`` the way mmagic's ``publish_model`` left the release (the Places file by default)."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {f"generator.{key}": value for key, value in generator.items()} | release.foreign
    torch.save({"meta": release.meta, "state_dict": state}, folder / (file or release.places))
    return folder


def write_for_contract(release: Release, folder: Path, edit: Edit | None) -> Path:
    """The writer ``test_model_contract.py`` calls: the Places file, ``edit`` applied to the generator part."""
    generator = generator_state(release)
    if edit:
        edit("generator", generator)
    return write_release(release, folder, generator)


def load(folder: Path, model_id: str, cls: type[NeuralNetwork]) -> NeuralNetwork:
    """The app's loader on ``folder``: exactly ``cls``, in eval mode."""
    net = load_from_folder(registry.get(model_id), folder)
    assert type(net) is cls and not net.training
    return net


def read_case(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def exported_arrays(prediction: Prediction, image: np.ndarray, hole: np.ndarray) -> dict[str, np.ndarray]:
    """The official composite and PNG (``forward_test``, ``destruct``, ``tensor2img``) of what ``inpaint`` gave."""
    fill_bgr = prediction.samples[0, 0][..., ::-1] * 255  # the app's fill, back in destruct's 0..255 BGR
    pred_img = np.where(hole[..., None], fill_bgr, image[..., ::-1].astype(np.float32)).transpose(2, 0, 1)
    exported = np.round(np.clip(pred_img / 255, 0, 1) * 255)[::-1].transpose(1, 2, 0)  # half-even, as numpy
    return {"pred_img": pred_img, "pred_img_uint8_rgb": exported}
