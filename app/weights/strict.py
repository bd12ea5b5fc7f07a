"""Strict state_dict loading with an error that names the offending keys.

The official loaders use ``strict=False`` (or swallow the error), which silently
leaves layers at their random init and produces garbage fills. We refuse instead.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from app.errors import WeightsError

_SHOW = 8  # keys named per category in a message


def _names(keys: list[str]) -> str:
    more = f" (+{len(keys) - _SHOW} more)" if len(keys) > _SHOW else ""
    return ", ".join(keys[:_SHOW]) + more


def load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], source: str = "weights") -> None:
    """Copy ``state`` into ``module``; every key and shape must match exactly."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}"
        for k in set(expected) & set(state)
        if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    problems = []
    if missing:
        problems.append(f"missing keys: {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_names(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatch: {_names(mismatched)}")
    if problems:
        raise WeightsError(f"{source} do not fit {type(module).__name__}: " + "; ".join(problems) + ".")
    module.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)
