"""Which device the networks run on, and in which precision on the CPU: decided here, once, for the whole app.

CUDA when there is one (on a ZeroGPU Space ``spaces`` makes it look present at start-up), else the
CPU; ``INPAINT_DEVICE`` overrides both. On the CPU, :func:`cpu_bf16` says whether the networks that
qualify run bfloat16 autocast (where the CPU computes bf16 natively; ``INPAINT_CPU_BF16`` forces
either way); the loader hands the answer to each network as it deploys it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping

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


# --------------------------------------------------------------------------- CPU precision

#: ``INPAINT_CPU_BF16``: ``auto`` (default) runs bfloat16 autocast where this CPU computes bf16 natively,
#: ``on`` forces it, ``off`` keeps float32. Only for networks that declare ``FACTS.cpu_bf16`` (measured
#: faithful and faster); ``INPAINT_HALF=0`` keeps float32 whatever this says.
CPU_BF16_ENV = "INPAINT_CPU_BF16"
CPU_BF16_MODES = ("auto", "on", "off")


@functools.cache
def native_cpu_bf16() -> bool:
    """Whether this CPU has bf16 dot-product instructions (AVX512-BF16, AMX; Arm's BF16), asked of torch once.

    oneDNN's own ``_is_mkldnn_bf16_supported`` says yes on any AVX-512 CPU, where it emulates bf16
    with conversions and runs autocast 2-50x slower than float32 (issue 29): the instructions
    themselves are the question. Cached: the CPU does not change while the app runs.
    """
    cpu = torch.cpu
    if cpu._is_avx2_supported():  # x86: the flags torch reads through cpuinfo
        return bool(cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def cpu_bf16(environ: Mapping[str, str] | None = None, native: Callable[[], bool] | None = None) -> bool:
    """Whether networks that qualify run bf16 autocast on the CPU: the setting, else the CPU's capability.

    Read by the loader as it deploys each network. ``native`` (default :func:`native_cpu_bf16`, looked
    up at the call so a test can replace it) makes both answers testable on any machine; an unknown
    value of the setting is refused rather than silently read as ``auto``.
    """
    mode = (os.environ if environ is None else environ).get(CPU_BF16_ENV, "auto").strip().lower() or "auto"
    if mode not in CPU_BF16_MODES:
        raise ModelUnavailableError(f"{CPU_BF16_ENV}={mode!r}: use one of {', '.join(CPU_BF16_MODES)}.")
    return mode == "on" or (mode == "auto" and (native or native_cpu_bf16)())
