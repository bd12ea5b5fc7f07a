"""RFR-Net as released: ``checkpoint_psv.pth``-style containers from the authors' ``utils/io.py`` save_ckpt."""

from __future__ import annotations

from pathlib import Path

import torch

from app.models.rfr import RFRNet
from tests.reference import make_state_dict

MODEL_ID = "rfr-psv"
FILE_NAME = RFRNet.OFFICIAL_FILES[0].name
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
_STATES: dict[int, dict[str, torch.Tensor]] = {}


def official_state(seed: int = 1) -> dict[str, torch.Tensor]:
    """Synthetic official state_dict, built once per seed (31 M values)."""
    if seed not in _STATES:
        _STATES[seed] = dict(make_state_dict("rfr_G", seed))
    return dict(_STATES[seed])


def write_official(checkpoints: Path, generator: dict[str, torch.Tensor]) -> Path:
    """Save ``generator`` the way utils/io.py save_ckpt does; return the model's folder."""
    params = [torch.nn.Parameter(v.clone()) for k, v in generator.items() if not k.endswith(BUFFERS)]
    folder = checkpoints / MODEL_ID
    folder.mkdir(exist_ok=True)
    container = {"n_iter": 0, "generator": generator, "optimizer_G": torch.optim.Adam(params).state_dict()}
    torch.save(container, folder / FILE_NAME)
    return folder
