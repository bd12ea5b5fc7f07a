"""MI-GAN (256 and 512) as released: a bare state dict written with ``torch.save``
(``scripts/export_inference_model.py``)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from app.models.migan import MIGAN, MIGAN256, MIGAN512, OFFICIAL_NAME
from tests.reference import fixture_files, make_state_dict


class Variant(NamedTuple):
    model_id: str  # the registry spec the fixtures are compared through
    manifest: str  # ../shared/reference/manifests/<manifest>.json
    network: type[MIGAN]
    released: str  # one of the authors' file names for it


#: Fixture prefix -> variant. ``fixture_files("migan")`` globs ``migan_*``, which leaves ``migan512_*`` out.
VARIANTS = {
    "migan": Variant("migan-places2", "migan_generator", MIGAN256, "migan_256_places2.pt"),
    "migan512": Variant("migan-places2-512", "migan512_generator", MIGAN512, "migan_512_places2.pt"),
}


@functools.lru_cache(maxsize=4)
def official_state(manifest: str, seed: int) -> dict[str, torch.Tensor]:
    """Synthetic official weights (cached: 6-7 M values per draw)."""
    return dict(make_state_dict(manifest, seed))


def default_seed(prefix: str) -> int:
    files = fixture_files(prefix)
    return int(np.load(files[0])["weight_seed"]) if files else 1


def write_release(folder: Path, state: dict[str, torch.Tensor], name: str = OFFICIAL_NAME) -> Path:
    """Save ``state`` as ``scripts/export_inference_model.py`` does: ``torch.save(model.state_dict())``."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(dict(state), folder / name)
    return folder
