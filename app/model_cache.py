"""Ready-to-run inpainters: built once, kept while useful, guarded while running.

The pipeline asks :func:`get_inpainter` for a model by spec and never cares whether it is
classical or neural, where its weights came from or which device it is on. Neural models
stay in memory while their weights fit a memory budget (:func:`memory_budget`: a share of the
GPU's memory, or of the RAM on the CPU; ``INPAINT_MODEL_MEMORY_MB`` sets it), least recently
used evicted first, so comparing four models does not reload them on every run;
``INPAINT_MAX_LOADED_MODELS`` optionally caps their number too. Each is loaded once even when
many requests ask for it at the same moment (one lock per model, so other models load in parallel).
Model calls go through :func:`run_guarded`, which turns an out-of-memory error into a
message for the user and frees the memory, so the next request still works.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

from app.devices import DEVICE_ENV as DEVICE_ENV
from app.devices import select_device
from app.errors import OutOfMemoryError
from app.models.base import Inpainter
from app.specs import ModelSpec, Progress
from app.weights import hub_pipeline
from app.weights.loader import instantiate
from app.weights.provision import state_of
from app.weights.status import Availability as Availability
from app.weights.status import Offer as Offer
from app.weights.status import availability as availability
from app.weights.status import download as download
from app.weights.status import needs_download as needs_download
from app.weights.status import offer as offer
from app.weights.status import unavailable_here as unavailable_here
from app.weights.status import weights_location as weights_location

MAX_LOADED_ENV = "INPAINT_MAX_LOADED_MODELS"
MEMORY_ENV = "INPAINT_MODEL_MEMORY_MB"
#: Shares of the device's memory loaded weights may take by default: the rest is for activations
#: (a GPU), and for the photos, results and other requests (the CPU's RAM).
GPU_SHARE, CPU_SHARE = 0.5, 0.25

T = TypeVar("T")
log = logging.getLogger(__name__)

_registry_lock = threading.Lock()  # guards the dicts below, never held while loading
_model_locks: dict[str, threading.Lock] = {}
_classical: dict[str, Inpainter] = {}  # cheap, never evicted
_neural: OrderedDict[str, Inpainter] = OrderedDict()  # LRU order: oldest first


def get_inpainter(spec: ModelSpec, progress: Progress | None = None) -> Inpainter:
    """The inpainter of ``spec``, built on first use (download reported to ``progress``)."""
    model = _lookup(spec)
    if model is not None:
        return model
    with _lock_for(spec.id):
        model = _lookup(spec)  # another request may have loaded it while we waited
        if model is None:
            model = _build(spec, progress)
            _store(spec, model)
        return model


def get_or_build(spec, build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """The loaded model of a non-inpainter ``spec`` (segmenter, detector: anything with ``id``), built once.

    Kept with the neural inpainters: the same per-model lock, LRU order and memory budget.
    """
    model = _lookup(spec)
    if model is not None:
        return model
    with _lock_for(spec.id):
        model = _lookup(spec)
        if model is None:
            model = build()
            _store(spec, model)
        return model


def loaded_ids() -> list[str]:
    """Neural models in memory, least recently used first."""
    with _registry_lock:
        return list(_neural)


def clear() -> None:
    """Unload every model (tests, or a "free memory" button)."""
    with _registry_lock:
        loaded = bool(_neural)
        _classical.clear()
        _neural.clear()
    if loaded:  # a full garbage collection takes ~0.2-0.5 s; nothing to free, nothing to wait for
        _free_memory()


def max_loaded() -> int | None:
    """``INPAINT_MAX_LOADED_MODELS``: an optional cap on the number of loaded neural models (None = no cap)."""
    raw = os.environ.get(MAX_LOADED_ENV, "")
    try:
        return max(1, int(raw)) if raw.strip() else None
    except ValueError:
        log.warning("%s=%r is not a number; no cap on the number of models", MAX_LOADED_ENV, raw)
        return None


def memory_budget(device: torch.device | None = None) -> int:
    """Bytes the loaded models' weights may take: ``INPAINT_MODEL_MEMORY_MB``, else a share of the device's memory."""
    raw = os.environ.get(MEMORY_ENV, "").strip()
    if raw:
        try:
            return int(float(raw) * (1 << 20))
        except ValueError:
            log.warning("%s=%r is not a number of MB; using the default share", MEMORY_ENV, raw)
    device = device or select_device()
    if device.type == "cuda":
        return int(GPU_SHARE * torch.cuda.get_device_properties(device).total_memory)
    return int(CPU_SHARE * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def weights_bytes(model: Inpainter | dict[str, torch.Tensor]) -> int:
    """Bytes of a model's (or a state dict's) tensors: what keeping it loaded costs."""
    if isinstance(model, dict):
        tensors = list(model.values())
    elif isinstance(model, torch.nn.Module):
        tensors = [*model.parameters(), *model.buffers()]
    elif callable(getattr(model, "networks", None)):  # a wrapper of several networks (a diffusers pipeline)
        tensors = [t for net in model.networks() for t in (*net.parameters(), *net.buffers())]
    else:
        return 0
    return sum(t.numel() * t.element_size() for t in tensors)


# ------------------------------------------------------------------------------ guard


def run_guarded(spec: ModelSpec, fn: Callable[..., T], *args, **kwargs) -> T:
    """``fn(*args, **kwargs)`` in inference mode; running out of memory becomes :class:`OutOfMemoryError`.

    The pipeline wraps every model call in it. The memory is freed before the user sees
    the error, so the next request starts clean.
    """
    return _call(spec, fn, args, kwargs, inference=True)


def _call(spec: ModelSpec, fn: Callable[..., T], args: tuple, kwargs: dict, inference: bool) -> T:
    """Call ``fn``; map an out-of-memory error once the failed call's frames are gone.

    A plain function, not a context manager, on purpose: the new error is raised after the
    except block, when the original exception and its traceback (which pin every tensor of
    the failed forward pass) are already released, so emptying the CUDA cache frees them.
    """
    try:
        if not inference:
            return fn(*args, **kwargs)
        with torch.inference_mode():
            return fn(*args, **kwargs)
    except (torch.OutOfMemoryError, RuntimeError) as exc:
        if not _is_oom(exc):
            raise
        message = _oom_message(spec, exc)
    _free_memory()
    raise OutOfMemoryError(message)


def _is_oom(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in text or "can't allocate memory" in text


def _oom_message(spec: ModelSpec, exc: BaseException) -> str:
    where = "GPU" if isinstance(exc, torch.OutOfMemoryError) or "CUDA" in str(exc) else "device"
    return (f"{spec.name} ran out of {where} memory ({str(exc).splitlines()[0][:160]}). The memory was freed; "
            "try a smaller selection, fewer samples, another model, or fewer loaded models "
            f"({MEMORY_ENV}).")


# ---------------------------------------------------------------------------- helpers


def _lock_for(model_id: str) -> threading.Lock:
    with _registry_lock:
        return _model_locks.setdefault(model_id, threading.Lock())


def _lookup(spec: ModelSpec) -> Inpainter | None:
    with _registry_lock:
        if spec.kind == "classical":
            return _classical.get(spec.id)
        model = _neural.get(spec.id)
        if model is not None:
            _neural.move_to_end(spec.id)
        return model


def _store(spec: ModelSpec, model: Inpainter) -> None:
    with _registry_lock:
        if spec.kind == "classical":
            _classical[spec.id] = model
            return
        _neural[spec.id] = model
        _neural.move_to_end(spec.id)
    _trim()


def _trim(incoming: int = 0, count: int = 0) -> None:
    """Evict least recently used neural models until ``incoming`` more bytes (and ``count`` more models) fit.

    The most recently used model always stays: one model over the budget is still served.
    """
    budget, cap = memory_budget(), max_loaded()
    evicted = []
    with _registry_lock:
        while _neural and (sum(map(weights_bytes, _neural.values())) + incoming > budget
                           or (cap is not None and len(_neural) + count > cap)):
            if not incoming and not count and len(_neural) == 1:
                break
            evicted.append(_neural.popitem(last=False))
    if evicted:
        log.info("unloading %s", ", ".join(model_id for model_id, _ in evicted))
        del evicted
        _free_memory()


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _build(spec: ModelSpec, progress: Progress | None) -> Inpainter:
    if spec.kind == "classical":
        return spec.entry_class()(**spec.kwargs)
    device = select_device()
    if spec.kind == "diffusion":
        return _call(spec, _build_pipeline, (spec, device, progress), {}, inference=False)
    state, source = state_of(spec, progress)
    _trim(incoming=weights_bytes(state), count=1)  # make room on the device before the new weights go there
    if progress:
        progress(1.0, f"Loading {spec.name} on {device}")
    # Moving the weights to the GPU can run out of memory too.
    return _call(spec, instantiate, (spec, state, device), {"source": source}, inference=False)


def _build_pipeline(spec: ModelSpec, device: torch.device, progress: Progress | None) -> Inpainter:
    """A diffusers model: its files fetched (pinned once it loaded), the pipeline on ``device``, wrapped."""
    folder, lora, pin = hub_pipeline.obtain(spec, progress)
    _trim(incoming=pipeline_bytes(folder), count=1)
    if progress:
        progress(1.0, f"Loading {spec.name} on {device}")
    model = spec.entry_class()(hub_pipeline.load(spec, folder, lora, device), **spec.kwargs)
    pin()
    return model


def pipeline_bytes(folder: Path) -> int:
    """What a pipeline's weights take in memory, about: the size of its safetensors files."""
    return sum(path.stat().st_size for path in folder.glob("*/*.safetensors"))
