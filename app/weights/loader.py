"""Turn resolved weights into a ready network: the one path every neural model loads through.

:func:`app.weights.resolve.locate` decides *where* the weights are (our safetensors or the
authors' files in ``checkpoints/<model-id>/``, else the Hub cache, else a download);
:func:`load_state` reads exactly the files of that :class:`~app.weights.resolve.Location`
and looks nowhere else; :func:`instantiate` builds the network through its
:class:`~app.models.base.NeuralNetwork` contract and loads the state strictly.
"""

from __future__ import annotations

from pathlib import Path

import torch

from app.devices import cpu_bf16
from app.errors import ModelUnavailableError, WeightsError
from app.specs import ModelSpec
from app.weights import hub
from app.weights.fetch import fetch
from app.weights.official import read_official_file
from app.weights.resolve import (
    CHECKPOINTS_ENV,
    SAFETENSORS_NAME,
    Entry,
    Location,
    cached_location,
    checkpoints_root,
    describe_expected,
    find_local,
    local_dir,
)
from app.weights.strict import load_strict
from app.weights.verify import read_safetensors_checked, read_safetensors_unchecked, verify_file

__all__ = ["CHECKPOINTS_ENV", "SAFETENSORS_NAME", "checkpoints_root", "instantiate", "load_from_folder",
           "load_state", "local_dir", "read_entries"]


def load_state(spec: ModelSpec, location: Location,
               progress: hub.Progress | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """The flat state_dict at ``location`` and its description; a ``remote`` location is downloaded first.

    Nothing is looked up again: the files read are exactly ``location.entries`` (or, for a
    download, exactly the files :func:`~app.weights.fetch.fetch` returns).
    """
    if location.status == "missing":
        raise ModelUnavailableError(location.reason)
    if location.status == "remote":
        location = cached_location(spec, fetch(spec, progress))
    return read_entries(spec, location.entries), location.source


def read_entries(spec: ModelSpec, entries: tuple[Entry, ...]) -> dict[str, torch.Tensor]:
    """One flat state_dict from resolved files: checked safetensors (pins too) or the authors' files."""
    state: dict[str, torch.Tensor] = {}
    for entry in entries:
        state.update(_read_entry(spec, entry))
    return state


def _read_entry(spec: ModelSpec, entry: Entry) -> dict[str, torch.Tensor]:
    if entry.official is not None:
        return read_official_file(entry.path, entry.official)
    if entry.sha256:
        verify_file(spec, entry.name, entry.path, entry.sha256)  # header + pin (the hash is memoised)
        return read_safetensors_unchecked(entry.path)
    return read_safetensors_checked(entry.path)


def instantiate(spec: ModelSpec, state: dict[str, torch.Tensor], device: str | torch.device = "cpu",
                source: str = "weights") -> torch.nn.Module:
    """Build the network of ``spec`` for ``state``, load it strictly, deploy it on ``device`` (eval, no grad), told
    whether this CPU runs bf16 for the networks that declare it (``app.devices.cpu_bf16``, decided at each load)."""
    net = spec.network().for_state(state, **spec.kwargs)
    load_strict(net, state, source=f"{spec.name} {source}")
    return net.deploy(device, cpu_bf16=cpu_bf16())


def load_from_folder(spec: ModelSpec, folder: Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load ``spec`` from the weights in ``folder`` (the rule the app applies to ``checkpoints/<id>/``)."""
    entries = find_local(spec, folder)
    if not entries:
        raise WeightsError(f"No weights for {spec.name} in {folder}: expected {describe_expected(spec)}.")
    return instantiate(spec, read_entries(spec, entries), device, source=f"weights in {folder}")
