"""MAT as released: ``Places_512_FullData_G.pth``, the generator's bare state dict with the official key
names (as IOPaint ships it)."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from tests.reference import make_state_dict

RELEASED = "Places_512_FullData_G.pth"


@functools.cache
def official_state(seed: int) -> dict[str, torch.Tensor]:
    """Synthetic official state_dict (63 M values: cached per seed)."""
    return {k: torch.as_tensor(v) for k, v in make_state_dict("mat_G", seed).items()}


def write_release(folder: Path, seed: int = 1) -> Path:
    """``Places_512_FullData_G.pth``: torch.save of the generator's bare state dict, official key names."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(official_state(seed), folder / RELEASED)
    return folder
