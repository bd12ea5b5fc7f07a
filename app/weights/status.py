"""Whether a model can run here, and where its weights are: the one answer the page, CLI, library and API show.

Decided without loading anything and without network beyond the remembered source probes
(:mod:`app.weights.probe`): the network's or pipeline's files on disk, in the cache, or their source
answering; and, for a model that needs minutes per fill on a CPU, whether this machine has a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.devices import select_device
from app.errors import InpaintError
from app.specs import ModelSpec, Progress
from app.weights import hub_pipeline, probe
from app.weights.provision import obtain
from app.weights.resolve import Location, locate
from app.weights.sources import Source, describe_source, download_phrase


@dataclass(frozen=True)
class Availability:
    """Whether a model can run now: the one answer the UI, CLI, library and API all show."""

    ok: bool
    reason: str = ""  # for the operator: why not and what to provide, or where the weights come from
    public: str = ""  # for a visitor of the page: one line, no server paths or commands ("" = nothing to add)


def availability(spec: ModelSpec) -> Availability:
    """Whether ``spec`` can run now, without loading it: its weights are on disk, or their source answered.

    A source is asked at most once every few minutes (:mod:`app.weights.probe`), so a model is
    never listed as ready only because a download is planned for it.
    """
    if spec.kind == "classical":
        return Availability(True)
    try:
        spec.entry_class()
    except (ImportError, AttributeError) as exc:
        return Availability(False, f"{spec.name} is not part of this installation ({exc}).",
                            "it is not part of this installation")
    try:
        location = weights_location(spec)
    except InpaintError as exc:  # e.g. a registry entry naming a pickle on the Hub, a malformed pins file
        return Availability(False, str(exc), "its weights are misconfigured on this server")
    slow = unavailable_here(spec)
    if slow:
        return Availability(False, slow, "it needs a GPU, and this server has none")
    silent = _silence(spec, location) if location.status == "remote" else None
    if silent is not None:
        return Availability(False, silent.reason, silent.public)
    return Availability(location.status != "missing", location.reason, location.public)


@dataclass(frozen=True)
class Offer:
    """How the page and ``weights list`` offer a model: ready, downloads on first use, or unavailable (and why)."""

    state: Literal["ready", "download", "unavailable"]
    source: Source  # where its weights come from (app.weights.sources), named the same everywhere
    public: str  # one line for a visitor: "" when ready, the download's size and source, or why it cannot run
    reason: str = ""  # the operator's detail (availability().reason): for the server log and the CLI


def offer(spec: ModelSpec) -> Offer:
    """:func:`availability` split into the three states a visitor sees, with the source described once."""
    state = availability(spec)
    try:
        location = weights_location(spec) if spec.kind != "classical" else None
    except InpaintError:
        location = None
    source = describe_source(spec, location)
    if not state.ok:
        return Offer("unavailable", source, state.public, state.reason)
    if location is None or location.status != "remote":
        return Offer("ready", source, "", state.reason)
    if not location.public.startswith("downloads"):  # e.g. an archive already downloaded, converted on first use
        return Offer("ready", source, location.public, state.reason)
    return Offer("download", source, download_phrase(source), state.reason)


def needs_download(spec: ModelSpec) -> bool:
    """True when ``spec``'s weights must come from the Hub before it can run (decided without network)."""
    if spec.kind == "classical":
        return False
    try:
        return weights_location(spec).status == "remote"
    except InpaintError:
        return False  # availability() reports why it cannot run


def download(spec: ModelSpec, progress: Progress | None = None) -> tuple[Path, ...]:
    """Fetch ``spec``'s weights (mirror files verified, or the official archive converted) without loading them.

    Returns where they are. A diffusers pipeline's files are pinned when it first loads
    (:func:`app.model_cache.get_inpainter`), not here.
    """
    if spec.kind == "diffusion":
        folder, lora, _ = hub_pipeline.obtain(spec, progress)
        return (folder,) if lora is None else (folder, lora)
    return obtain(spec, progress=progress).paths


def unavailable_here(spec: ModelSpec) -> str:
    """Why ``spec`` is not offered on this machine whatever its weights (a CPU where it takes minutes), or ""."""
    return hub_pipeline.too_slow_here(spec, select_device()) if spec.kind == "diffusion" else ""


def weights_location(spec: ModelSpec) -> Location:
    """Where ``spec``'s weights are or would come from (no network): its network's files, or its pipeline's."""
    return hub_pipeline.locate(spec) if spec.kind == "diffusion" else locate(spec)


def _silence(spec: ModelSpec, location: Location) -> probe.Silence | None:
    return hub_pipeline.silence(spec) if spec.kind == "diffusion" else probe.silence(spec, location)
