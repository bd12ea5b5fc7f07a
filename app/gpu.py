"""Where a network's forward pass runs: inside a ZeroGPU allocation on a ZeroGPU Space, directly elsewhere.

On a ZeroGPU Space (``SPACES_ZERO_GPU=true``) ``spaces.GPU`` runs :func:`forward` in a worker
that holds a GPU for at most the seconds :func:`gpu_seconds` asks for; the queue serves
short requests first and visitors' daily GPU minutes are few, so the request is sized from
its work (windows, samples, window size) rather than a flat minute. Everything else of a
request — image hygiene, classical inpainters, loading weights (placed on ``cuda`` at load,
as ZeroGPU wants), paste-back and PNG encoding — runs outside it. Off ZeroGPU
``spaces.GPU`` returns the function unchanged, so the same code runs on a local GPU or the CPU.

The worker gets its arguments pickled, so :func:`forward` takes plain data (the model's spec
and a :class:`~app.models.base.Batch`) and finds the loaded network in the model cache, and it
hands failures back as values: ZeroGPU would otherwise replace the user's message (e.g.
"out of GPU memory, try fewer samples") with a generic worker error.
"""

from __future__ import annotations

import math

import spaces

from app.model_cache import get_inpainter, run_guarded
from app.models.base import Batch, Prediction
from app.specs import ModelSpec

#: Seconds ZeroGPU grants beyond the forward passes themselves: taking the GPU, moving the
#: weights onto it, the first CUDA kernels.
BASE_SECONDS = 8
MAX_SECONDS = 120  # the longest ZeroGPU call this app asks for


def gpu_seconds(spec: ModelSpec, batch: Batch, samples: int = 1, seed: int = 0) -> int:
    """The ZeroGPU duration for :func:`forward` with the same arguments (``spaces`` calls it so)."""
    crops, height, width = batch.holes.shape
    work = crops * max(samples, 1) * (height * width) / (256 * 256)
    return min(MAX_SECONDS, math.ceil(BASE_SECONDS + spec.gpu_seconds_per_crop * work))


@spaces.GPU(duration=gpu_seconds)
def forward(spec: ModelSpec, batch: Batch, samples: int = 1, seed: int = 0) -> Prediction | Exception:
    """One forward pass of ``spec``'s network on ``batch``; a failure is returned, not raised."""
    try:
        return run_guarded(spec, get_inpainter(spec).inpaint, batch, samples=samples, seed=seed)
    except Exception as exc:  # handed back whole; raised again by run_network
        return exc


def run_network(spec: ModelSpec, batch: Batch, samples: int = 1, seed: int = 0) -> Prediction:
    """:func:`forward`, raising the failure it handed back."""
    outcome = forward(spec, batch, samples=samples, seed=seed)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome
