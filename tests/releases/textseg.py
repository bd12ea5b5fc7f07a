"""The comic text segmenter as released: ``text_seg_model_681epos.pt``, a bare state dict written with ``torch.save``
(``checkpoints/ReadME.md`` of yu45020/Text_Segmentation_Image_Inpainting; keys as the manifest ``textseg_xception``)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from app.models.textseg import RELEASED
from tests.reference import fixture_files, make_state_dict

MANIFEST = "textseg_xception"


@functools.lru_cache(maxsize=2)
def official_state(seed: int) -> dict[str, torch.Tensor]:
    """Synthetic official weights (cached: 16 M values per draw)."""
    return dict(make_state_dict(MANIFEST, seed))


def default_seed() -> int:
    files = fixture_files("textseg")
    return int(np.load(files[0])["weight_seed"]) if files else 1


def write_release(folder: Path, state: dict[str, torch.Tensor] | None = None, name: str = RELEASED) -> Path:
    """Save ``state`` (default: the fixtures' weights) as the author did: ``torch.save(model.state_dict())``."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(dict(state if state is not None else official_state(default_seed())), folder / name)
    return folder
