"""Which device the networks run on: one decision, read by the model cache and the weights' availability.

CUDA when there is one (on a ZeroGPU Space ``spaces`` makes it look present at start-up), else the
CPU; ``INPAINT_DEVICE`` overrides both.
"""

from __future__ import annotations

import os

import torch

from app.errors import ModelUnavailableError

DEVICE_ENV = "INPAINT_DEVICE"


def select_device() -> torch.device:
    """CUDA when available, unless ``INPAINT_DEVICE`` (cpu, cuda, cuda:1, ...) says otherwise."""
    wanted = os.environ.get(DEVICE_ENV, "").strip().lower()
    if wanted in {"", "auto"}:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(wanted)
    except RuntimeError as exc:
        raise ModelUnavailableError(f"{DEVICE_ENV}={wanted!r} is not a device; use cpu, cuda or cuda:N.") from exc
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise ModelUnavailableError(f"{DEVICE_ENV}={wanted} but this machine has "
                                    f"{torch.cuda.device_count()} CUDA device(s); use cpu or another index.")
    return device
