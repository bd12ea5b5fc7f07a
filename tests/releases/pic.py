"""PIC (Pluralistic) as released: bare state dicts ``latest_net_{E,G,D}.pth``, every key prefixed ``module.``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import torch

from tests.reference import make_state_dict

FILES = {"pic_net_E": "latest_net_E.pth", "pic_net_G": "latest_net_G.pth", "pic_net_D": "latest_net_D.pth"}
COMPONENTS = {"pic_net_E": "encoder", "pic_net_G": "generator", "pic_net_D": "discriminator"}
Edit = Callable[[str, dict[str, torch.Tensor]], None]


@functools.cache
def _official_state(name: str, seed: int) -> dict[str, torch.Tensor]:
    """Synthetic official state_dict (slow to make: cached per network and seed)."""
    return dict(make_state_dict(name, seed))


def write_release(folder: Path, seed: int = 1, *, prefix: str = "module.", skip: tuple[str, ...] = (),
                  edit: Edit | None = None) -> Path:
    """Write latest_net_{E,G,D}.pth as the authors did (torch.save of a bare, DataParallel-prefixed state_dict)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, file_name in FILES.items():
        if name in skip:
            continue
        state = dict(_official_state(name, seed))
        if edit is not None:
            edit(name, state)
        torch.save({prefix + k: v for k, v in state.items()}, folder / file_name)
    return folder
