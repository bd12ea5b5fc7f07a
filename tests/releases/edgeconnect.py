"""EdgeConnect as released: ``EdgeModel_gen.pth`` and ``InpaintingModel_gen.pth``, as the official
``BaseModel.save`` writes them."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import torch

from tests.reference import make_state_dict

MODEL_ID = "edgeconnect-places2"
# release file -> (manifest name, our component)
RELEASE = {
    "EdgeModel_gen.pth": ("edgeconnect_EdgeModel_gen", "edge"),
    "InpaintingModel_gen.pth": ("edgeconnect_InpaintingModel_gen", "painter"),
}


@lru_cache(maxsize=4)
def _official_state(manifest: str, seed: int) -> dict[str, torch.Tensor]:
    return dict(make_state_dict(manifest, seed))


def official_state(manifest: str, seed: int) -> dict[str, torch.Tensor]:
    """A fresh copy (the strict tests edit it) of the cached synthetic state_dict."""
    return dict(_official_state(manifest, seed))


def write_release(folder: Path, seed: int, edit: dict[str, Callable[[dict], object]] | None = None) -> Path:
    """Write both generator files exactly as the official ``BaseModel.save`` does."""
    folder.mkdir(parents=True, exist_ok=True)
    for file, (manifest, _) in RELEASE.items():
        state = official_state(manifest, seed)
        if edit and file in edit:
            edit[file](state)
        torch.save({"iteration": 0, "generator": state}, folder / file)
    return folder


#: Keys the shared contract's strict-load cases edit (test_model_contract.py).
EDITS = [
    ("EdgeModel_gen.pth", "middle.3.conv_block.1.weight_v"),
    ("EdgeModel_gen.pth", "decoder.0.weight_orig"),
    ("InpaintingModel_gen.pth", "encoder.4.bias"),
]
