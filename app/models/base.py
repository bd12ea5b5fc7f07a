"""The one interface every inpainter implements, classical or neural.

The pipeline hands a model a batch of equally sized crops that already respect the
model's size multiple; the model returns its raw fill for the whole crop and the
pipeline alone decides which pixels of it reach the user (only the hole, with a
feathered seam). Keeping compositing out of the models is what lets the pipeline
promise that nothing outside the painted area changes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from app.specs import OfficialFile

#: ``INPAINT_HALF=0`` (or false/no/off) keeps every network in float32, on CUDA and on the CPU; default on.
#: Read at each call, like the other ``INPAINT_*`` limits, so a Space's setting applies without a rebuild.
HALF_ENV = "INPAINT_HALF"
_OFF = frozenset({"0", "false", "no", "off"})


@dataclass
class Batch:
    """Crops to fill: all the same size, a multiple of the model's ``size_multiple``."""

    images: np.ndarray  # (B, H, W, 3) uint8 RGB
    holes: np.ndarray  # (B, H, W) bool, True = pixel to fill
    # Optional user guidance keyed by name, e.g. {"edges": (B, H, W) bool strokes}.
    guides: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        b, h, w, c = self.images.shape
        if c != 3 or self.images.dtype != np.uint8:
            raise ValueError("Batch.images must be (B, H, W, 3) uint8")
        if self.holes.shape != (b, h, w):
            raise ValueError(f"Batch.holes must be {(b, h, w)}, got {self.holes.shape}")


@dataclass
class Prediction:
    """What a model produced for a :class:`Batch`."""

    samples: np.ndarray  # (B, S, H, W, 3) float32 in [0, 1]; S = number of samples
    # Side outputs worth showing next to the result, (B, H, W) float32 in [0, 1],
    # e.g. {"edges": predicted edge map}.
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    scores: np.ndarray | None = None  # (B, S) per-sample quality score, higher = better


class Inpainter(Protocol):
    """A ready-to-run model (weights loaded, on its device)."""

    def inpaint(self, batch: Batch, *, samples: int = 1, seed: int = 0) -> Prediction:
        """Fill the holes of every crop; diverse models return ``samples`` fills each.

        Sample k of a given seed must not depend on how many samples were asked for
        nor on earlier calls, so users can reproduce a fill they liked.
        """
        ...


@dataclass(frozen=True)
class NetworkFacts:
    """What the app must know about a network before it loads it, declared once on the class.

    The registry copies the sizes into every :class:`~app.registry.ModelSpec` of the network
    and the weights tools read the rest, so a fact cannot differ between two places.
    """

    #: Side of the square the network was trained at; None = any size.
    native_size: int | None = None
    #: Crop sides must be multiples of this (the downsamplings of the architecture).
    size_multiple: int = 1
    #: Largest crop side fed to the network; None = ``native_size``.
    max_size: int | None = None
    #: Smallest crop side the network takes (its deepest feature maps must stay larger than their
    #: padding); None = ``size_multiple``. The pipeline widens smaller crops, or upscales them when
    #: the photo itself is smaller.
    least_side: int | None = None
    #: Approximate size of the converted safetensors, shown before the first download.
    approx_mb: int | None = None
    #: The authors' release files, their containers and key layout (see :mod:`app.weights.official`).
    official_files: tuple[OfficialFile, ...] = ()
    #: The dtype this network runs in on CUDA (autocast, see :meth:`NeuralNetwork.precision`), chosen by
    #: measurement on the reference fixtures (``benchmarks/bench_precision.py``): float16 or bfloat16,
    #: whichever keeps the outputs finite and closest to float32. Measured where no GPU was lent with CPU
    #: autocast, a proxy for CUDA (same dtype rounding, other kernels). float32 = not measured: no half.
    gpu_dtype: torch.dtype = torch.float32
    #: Whether the network runs bfloat16 autocast on a CPU that computes bf16 natively (``app.devices.cpu_bf16``
    #: says whether this one does). True only when measured both faithful — at most 2 levels from float32 on
    #: every reference fixture (``python -m benchmarks.bench_precision``) — and at least 1.3x faster on such
    #: a CPU (``python -m benchmarks.bench_precision --cpu-settings``); the declaration names its figures.
    cpu_bf16: bool = False


class NeuralNetwork(nn.Module):
    """The contract of every neural network class: its facts, how it is built, how it runs.

    Explicit rather than probed with ``getattr``: the loader relies on exactly these members.
    A subclass without :class:`NetworkFacts` is refused when it is defined, so a forgotten
    fact fails at import instead of on a user's click. ``inpaint`` runs under
    ``torch.inference_mode()`` (the model cache's ``run_guarded``) on the device chosen by
    :meth:`deploy`; a network moves its inputs to its own weights' device.
    """

    FACTS: ClassVar[NetworkFacts]
    OFFICIAL_FILES: ClassVar[tuple[OfficialFile, ...]]  # = FACTS.official_files, set for each subclass
    #: Set by :meth:`deploy`: this instance runs bf16 autocast on the CPU (its facts allow it and the
    #: machine's decision, ``app.devices.cpu_bf16``, says so). False until deployed: float32.
    bf16_on_cpu: bool = False

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if not isinstance(getattr(cls, "FACTS", None), NetworkFacts):
            raise TypeError(f"{cls.__qualname__} must declare FACTS = NetworkFacts(...)")
        cls.OFFICIAL_FILES = cls.FACTS.official_files  # derived alias for callers that name it

    @classmethod
    def for_state(cls, state: Mapping[str, torch.Tensor], **kwargs) -> NeuralNetwork:
        """The network that ``state`` fits; override when parts are optional (PIC's discriminator)."""
        return cls(**kwargs)

    def deploy(self, device: str | torch.device, cpu_bf16: bool = False) -> NeuralNetwork:
        """On ``device``, in eval mode, without gradients: ready for inference.

        ``cpu_bf16`` is the machine's decision (``app.devices.cpu_bf16``, passed by the loader): the
        network takes it only where its own facts declare bf16 faithful and faster (``FACTS.cpu_bf16``).
        """
        self.bf16_on_cpu = bool(cpu_bf16 and self.FACTS.cpu_bf16)
        return self.to(device).eval().requires_grad_(False)

    @property
    def device(self) -> torch.device:
        """Where the weights live: inputs are moved there, whatever device the caller chose."""
        return next(self.parameters()).device

    def precision(self) -> contextlib.AbstractContextManager:
        """The autocast ``inpaint`` runs its forward under: ``FACTS.gpu_dtype`` on CUDA; on the CPU bfloat16
        where :meth:`deploy` was told so (:attr:`bf16_on_cpu`), else float32.

        Half precision is only worth it where the hardware makes it fast: tensor cores (CUDA), or a
        CPU's bf16 instructions (elsewhere bf16 is emulated, slower than float32 and less exact).
        ``INPAINT_HALF=0`` turns it off everywhere.
        """
        dtype = autocast_dtype(self.device, self.FACTS.gpu_dtype, half_enabled(), cpu_bf16=self.bf16_on_cpu)
        return contextlib.nullcontext() if dtype is None else torch.autocast(self.device.type, dtype=dtype)

    def inpaint(self, batch: Batch, *, samples: int = 1, seed: int = 0) -> Prediction:
        """See :meth:`Inpainter.inpaint`."""
        raise NotImplementedError


#: Set by the pipeline around a model call: told ``k`` once sample ``k`` of every crop is done (``-1``: the
#: work shared by all samples, e.g. PIC's encoder), so progress moves per sample and each sample's own
#: time is known. A context variable: it never leaks into a concurrent request. Unset: nobody listens.
SAMPLE_DONE: ContextVar[Callable[[int], None] | None] = ContextVar("sample_done", default=None)


def sample_done(k: int) -> None:
    """Tell the pipeline (if it listens) that sample ``k`` is done; ``-1``: the shared work is."""
    hook = SAMPLE_DONE.get()
    if hook is not None:
        hook(k)


def half_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``INPAINT_HALF`` (default on) allows half precision; 0/false/no/off say no."""
    value = (os.environ if environ is None else environ).get(HALF_ENV, "1")
    return value.strip().lower() not in _OFF


def autocast_dtype(device: torch.device, gpu_dtype: torch.dtype, half: bool,
                   cpu_bf16: bool = False) -> torch.dtype | None:
    """The dtype to autocast to on ``device``, or None for plain float32.

    ``cpu_bf16``: this network runs bfloat16 on this CPU (:attr:`NeuralNetwork.bf16_on_cpu`). Kept pure
    (no environment, no CUDA call, no CPU probe) so the decision is testable on any machine.
    """
    if not half:
        return None
    if device.type == "cpu":
        return torch.bfloat16 if cpu_bf16 else None
    if device.type != "cuda" or gpu_dtype == torch.float32:
        return None
    return gpu_dtype


def widen(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 when it is in a half dtype; float32 and float64 stay as they are (tests run in float64)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def float32_region(device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast switched off: the ops inside run in their inputs' dtype, so :func:`widen` those.

    For the few steps half precision cannot hold (a tiny epsilon added to a count, a norm of
    small values, an FFT of any size): they are cheap next to the convolutions around them.
    """
    return torch.autocast(device.type, enabled=False)
