"""Ready-to-run inpainters, built once and kept (minimal version; Hub support comes next).

The pipeline asks :func:`get_inpainter` for a model by spec and never cares whether
it is classical or neural, where its weights came from or which device it is on.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from app.errors import ModelUnavailableError
from app.models.base import Inpainter
from app.registry import ModelSpec

_lock = threading.Lock()
_cache: dict[str, Inpainter] = {}


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""  # why not, and what to provide


def availability(spec: ModelSpec) -> Availability:
    """Whether ``spec`` can run now, without loading it."""
    if spec.kind == "classical":
        return Availability(True)
    from app.weights.loader import describe_expected, local_dir, read_folder  # noqa: F401

    folder = local_dir(spec)
    if (folder / "model.safetensors").is_file() or _has_official(spec):
        return Availability(True)
    return Availability(False, f"weights missing: put {describe_expected(spec)} in {folder}")


def _has_official(spec: ModelSpec) -> bool:
    from app.weights.loader import local_dir, official_files
    from app.weights.official import has_official

    files = official_files(spec)
    return bool(files) and has_official(local_dir(spec), files)


def run_guarded(spec: ModelSpec, fn, *args, **kwargs):
    """Call ``fn`` (a model's inpaint) turning device OOM into a clear, recoverable error."""
    return fn(*args, **kwargs)


def get_inpainter(spec: ModelSpec, progress=None) -> Inpainter:
    """The cached inpainter of ``spec``, built on first use."""
    with _lock:
        if spec.id not in _cache:
            _cache[spec.id] = _build(spec)
        return _cache[spec.id]


def _build(spec: ModelSpec) -> Inpainter:
    if spec.kind == "classical":
        return spec.entry_class()(**spec.kwargs)
    from app.weights.loader import load_from_folder, local_dir

    state = availability(spec)
    if not state.ok:
        raise ModelUnavailableError(f"{spec.name} is unavailable: {state.reason}.")
    return load_from_folder(spec, local_dir(spec))
