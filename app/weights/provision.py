"""Weights from the authors' own files (a Hub archive, or an HTTPS file), converted once, on first use.

LaMa's authors publish ``big-lama.zip`` on the Hub (``smartywu/big-lama``), so a fresh
deployment can serve LaMa with no mirror at all. On first use the archive is taken from
huggingface_hub's cache (a Space's ``preload_from_hub`` put it there at build time) or
downloaded with progress; its size and sha256 pins are checked before it is opened; the
release file is extracted into a staging folder, read with the restricted unpickler (no code
from it runs), strictly loaded into the network and written as safetensors into
``$HF_HOME/inpaint-studio/<id>/``. The pickle is deleted again; only the safetensors and its
model card stay, so a restart of the app loads them without downloading or converting.
mmagic's releases (DeepFill, PConv, GLCIC) come the same way from download.openmmlab.com
(:mod:`app.weights.download`), and EdgeConnect's, RFR-Net's and PIC's from the authors' Google Drive
(:mod:`app.weights.gdrive`, pinned on first use). A failure at any step leaves nothing half-written behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path

import torch

from app.errors import ModelUnavailableError
from app.specs import ModelSpec, OfficialDownload
from app.weights import gdrive, hub, pins
from app.weights.archive import extract_members, fetch_archive
from app.weights.convert import CARD_NAME, convert
from app.weights.download import fetch_download
from app.weights.fetch import fetch
from app.weights.loader import load_state
from app.weights.resolve import SAFETENSORS_NAME, Location, cached_location, locate, provisioned_dir
from app.weights.verify import sha256_of

log = logging.getLogger(__name__)
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def obtain(spec: ModelSpec, location: Location | None = None, progress: hub.Progress | None = None) -> Location:
    """A readable location of ``spec``'s weights: ``location`` itself, or what fetching it produced.

    ``remote`` locations are fetched here (mirror files downloaded, or the archive provisioned),
    so every caller (first click, ``weights download``, the API) gets weights the same way. Cached
    mirror files nothing pins yet go through :func:`~app.weights.fetch.fetch` too, which pins them.
    """
    location = location or locate(spec)
    if location.status == "missing":
        raise ModelUnavailableError(location.reason)
    if location.status == "cached" and any(entry.sha256 is None for entry in location.entries):
        return cached_location(spec, fetch(spec, progress))  # cache hits, pinned on this first use
    if location.status != "remote":
        return location
    if location.via == "archive":
        provision(spec, progress)
        return locate(spec)
    return cached_location(spec, fetch(spec, progress))


def state_of(spec: ModelSpec, progress: hub.Progress | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """The one way from a spec to its weights: located, fetched or converted where needed, then read exactly
    there (:func:`~app.weights.loader.load_state`); returns the state_dict and where it came from."""
    return load_state(spec, obtain(spec, progress=progress), progress)


def provision(spec: ModelSpec, progress: hub.Progress | None = None) -> Path:
    """``spec``'s safetensors converted from its official archive (once; later calls find it)."""
    folder = provisioned_dir(spec)
    target = folder / SAFETENSORS_NAME
    with _lock_for(spec.id):  # two first clicks at once convert once
        if target.is_file():
            return target
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=folder))
        try:
            pin = _official_files(spec, staging, progress)
            _report(progress, f"Converting {spec.name} to safetensors")
            done = convert(spec, staging, check=True)  # strict load: only now may a first download be pinned
            pin()
            os.replace(done.card, folder / CARD_NAME)
            os.replace(done.weights, target)  # last: its presence means "provisioned"
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _official_files(spec: ModelSpec, staging: Path, progress: hub.Progress | None) -> gdrive.Pinning:
    """The authors' release files of ``spec`` in ``staging`` (as they are, or out of their archive or Drive folder).

    Returns what to do once they converted and loaded strictly: pin Drive files on their first use.
    """
    source = pins.official(spec)
    if source is None and spec.official_drive is not None:
        return gdrive.fetch_release(spec, staging, progress)
    if isinstance(source, OfficialDownload):
        path = fetch_download(source, staging, progress)
        if not source.sha256:  # held to the name's prefix only: say what to pin
            log.warning("%s: downloaded %s, sha256 %s; pin it in pins.json ({\"%s\": {\"archive\": {\"sha256\": ...,"
                        " \"size\": %d}}})", spec.id, source.file, sha256_of(path), spec.id, path.stat().st_size)
        return _nothing
    archive = fetch_archive(spec, progress)
    _report(progress, f"Extracting {archive.name}")
    extract_members(spec, archive, staging)
    return _nothing


def _nothing() -> None:
    """Hub archives and HTTPS files are pinned in the registry or pins.json: nothing to pin on first use."""


def _report(progress: hub.Progress | None, message: str) -> None:
    if progress:
        progress(1.0, message)


def _lock_for(model_id: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(model_id, threading.Lock())
