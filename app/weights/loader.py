"""Turn weights on disk into a ready network: the one path every neural model loads through.

Sources, in order of precedence: ``checkpoints/<model-id>/`` (our safetensors, or the
authors' release files under their official names), then the Hub cache (safetensors
only — nothing downloaded is ever unpickled).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from app.errors import WeightsError
from app.registry import ModelSpec
from app.weights.official import has_official, read_official
from app.weights.strict import load_strict

SAFETENSORS_NAME = "model.safetensors"
CHECKPOINTS_ENV = "INPAINT_CHECKPOINTS"


def checkpoints_root() -> Path:
    """``$INPAINT_CHECKPOINTS`` or the repo's ``checkpoints/`` folder."""
    env = os.environ.get(CHECKPOINTS_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "checkpoints"


def local_dir(spec: ModelSpec) -> Path:
    return checkpoints_root() / spec.id


def official_files(spec: ModelSpec) -> tuple:
    """The authors' release files the model's network class declares."""
    return getattr(spec.entry_class(), "OFFICIAL_FILES", ())


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path.name} is not a valid safetensors file ({exc}). "
                           "Delete it and download or convert it again.") from exc


def read_folder(spec: ModelSpec, folder: Path) -> dict[str, torch.Tensor] | None:
    """Weights found in ``folder`` (safetensors first, then official files), or None."""
    if (folder / SAFETENSORS_NAME).is_file():
        return read_safetensors(folder / SAFETENSORS_NAME)
    files = official_files(spec)
    if files and has_official(folder, files):
        return read_official(folder, files)
    return None


def instantiate(spec: ModelSpec, state: dict[str, torch.Tensor], device: str | torch.device = "cpu",
                source: str = "weights") -> torch.nn.Module:
    """Build the network of ``spec``, load ``state`` strictly, move it to ``device``, eval mode."""
    cls = spec.entry_class()
    # A network with optional parts (PIC's discriminator) shapes itself from the weights.
    net = cls.for_state(state, **spec.kwargs) if hasattr(cls, "for_state") else cls(**spec.kwargs)
    load_strict(net, state, source=f"{spec.name} {source}")
    return net.to(device).eval().requires_grad_(False)


def load_from_folder(spec: ModelSpec, folder: Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load ``spec`` from the weights in ``folder`` (the path the app uses for local weights)."""
    state = read_folder(spec, folder)
    if state is None:
        raise WeightsError(f"No weights for {spec.name} in {folder}: expected {describe_expected(spec)}.")
    return instantiate(spec, state, device, source=f"weights in {folder}")


def describe_expected(spec: ModelSpec) -> str:
    official = " + ".join(f.name for f in official_files(spec) if f.required)
    return f"{SAFETENSORS_NAME}" + (f" or the official {official}" if official else "")
