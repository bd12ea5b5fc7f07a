"""Strict state_dict loading with an error that names the offending keys.

The official loaders use ``strict=False`` (or swallow the error), which silently
leaves layers at their random init and produces garbage fills. We refuse instead:

* every key and shape must match the network exactly;
* a floating-point parameter or buffer must be given floating-point values (float16,
  bfloat16, float32 and float64 files are all fine and cast to the network's dtype);
  integer values there (int8 from a quantised export, say) would be cast silently and
  only fail at inference. Integer buffers (BatchNorm's ``num_batches_tracked``) stay integer;
* floating-point values must be finite: a NaN or infinity anywhere spreads over the whole
  fill. One ``torch.isfinite(t).all()`` per tensor keeps this cheap.
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


def _fit_problems(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> list[str]:
    """Missing, unexpected and misshaped keys."""
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
    return problems


def _value_problems(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> list[str]:
    """Non-floating values for floating tensors, and NaN/inf values (one pass over the keys)."""
    not_float, not_finite = [], []
    for key in sorted(state):
        value = state[key]
        if expected[key].is_floating_point() and not value.is_floating_point():
            not_float.append(f"{key} ({str(value.dtype).removeprefix('torch.')})")
        elif value.is_floating_point() and not bool(torch.isfinite(value).all()):
            not_finite.append(key)
    problems = []
    if not_float:
        problems.append(f"non-floating values for floating-point tensors: {_names(not_float)}")
    if not_finite:
        problems.append(f"NaN or infinite values in: {_names(not_finite)}")
    return problems


def load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], source: str = "weights") -> None:
    """Copy ``state`` into ``module``; every key and shape must match, every value be usable."""
    expected = module.state_dict()
    problems = _fit_problems(expected, state)
    if problems:
        raise WeightsError(f"{source} do not fit {type(module).__name__}: " + "; ".join(problems) + ".")
    problems = _value_problems(expected, state)
    if problems:
        raise WeightsError(f"{source} are not usable by {type(module).__name__}: " + "; ".join(problems)
                           + ". The file is damaged or holds other (e.g. quantised) weights: download or convert "
                           "it again from the original release.")
    module.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)
