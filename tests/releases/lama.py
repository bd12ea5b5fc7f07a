"""Big LaMa as released: ``best.ckpt``, a Lightning checkpoint with discriminator/loss tensors and pickled
hyper-parameters (advimman/lama)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from tests.reference import fixture_files, make_state_dict

#: Records every call of :meth:`LightningHParams.__setstate__`: it must stay empty,
#: proving the loader neither imported nor ran the class it found in the pickle.
SETSTATE_CALLS: list[object] = []


class LightningHParams:
    """Stands in for the OmegaConf config Lightning pickles into ``hyper_parameters``."""

    def __init__(self) -> None:
        self.generator = {"kind": "ffc_resnet", "ngf": 64, "n_blocks": 18}

    def __setstate__(self, state: dict) -> None:
        SETSTATE_CALLS.append(state)
        self.__dict__.update(state)


#: Other networks of the Lightning module that the loader must skip, including one
#: whose key would collide with a generator key if the ``generator.`` filter were wrong.
FOREIGN = {
    "discriminator.model0.0.weight": torch.zeros(64, 3, 4, 4),
    "discriminator.model.34.bias": torch.zeros(7),
    "loss_resnet_pl.impl.conv1.weight": torch.zeros(64, 3, 7, 7),
}


@functools.lru_cache(maxsize=2)
def generator_state(seed: int) -> Mapping[str, torch.Tensor]:
    """Synthetic official generator weights (cached: 51 M values take a while to draw)."""
    return make_state_dict("lama_generator", seed)


def write_best_ckpt(folder: Path, generator: Mapping[str, torch.Tensor], **extra: object) -> Path:
    """Save ``generator`` as the release does: ``torch.save`` of a Lightning checkpoint."""
    state = {f"generator.{k}": v for k, v in generator.items()} | FOREIGN
    ckpt = {"epoch": 0, "global_step": 0, "pytorch-lightning_version": "1.2.9", "state_dict": state,
            "hyper_parameters": LightningHParams(), **extra}
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, folder / "best.ckpt")
    return folder


def default_seed() -> int:
    files = fixture_files("lama")
    return int(np.load(files[0])["weight_seed"]) if files else 1
