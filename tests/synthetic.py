"""Synthetic weights so neural models take part in app-level tests (their fills are noise).

PIC is written as the authors' release files (``latest_net_{E,G,D}.pth``) made from
``../shared/reference`` when it is there, so the app's official-file loader runs; other
models, and PIC without the reference material, get the network's own initialisation
as our ``model.safetensors``. Either way every code path of a real model runs.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from app import registry
from tests.paths import REFERENCE

PIC_RELEASE = {"pic_net_E": "latest_net_E.pth", "pic_net_G": "latest_net_G.pth", "pic_net_D": "latest_net_D.pth"}


def write_random_init(root: Path, model_id: str, seed: int = 0) -> Path:
    """``<root>/<model_id>/model.safetensors`` from the network's own initialisation."""
    spec = registry.get(model_id)
    torch.manual_seed(seed)
    state = {k: v.contiguous() for k, v in spec.entry_class()(**spec.kwargs).state_dict().items()}
    folder = root / model_id
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / "model.safetensors"))
    return folder


def _reference_init():
    path = REFERENCE / "init_weights.py"
    if not path.is_file() or not (REFERENCE / "manifests").is_dir():
        return None
    spec = importlib.util.spec_from_file_location("reference_init_weights", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_pic_release(root: Path, model_id: str = "pic-places2", seed: int = 1) -> Path:
    """The authors' PIC files from the reference manifests (DataParallel ``module.`` keys), else random init."""
    init = _reference_init()
    if init is None:
        return write_random_init(root, model_id, seed)
    folder = root / model_id
    folder.mkdir(parents=True, exist_ok=True)
    for name, file_name in PIC_RELEASE.items():
        entries = json.loads((REFERENCE / "manifests" / f"{name}.json").read_text())["entries"]
        state = init.make_state_dict(entries, seed)
        torch.save({"module." + k: v for k, v in state.items()}, folder / file_name)
    return folder


def checkpoints_with(root: Path, *model_ids: str) -> Path:
    """A checkpoints root holding synthetic weights for ``model_ids`` (PIC ids as release files)."""
    root.mkdir(parents=True, exist_ok=True)
    for model_id in model_ids:
        if model_id.startswith("pic-"):
            write_pic_release(root, model_id)
        else:
            write_random_init(root, model_id)
    return root


def copy_checkpoints(source: Path, target: Path) -> Path:
    """A private copy (a test may delete weights from it) without rebuilding the tensors."""
    shutil.copytree(source, target, copy_function=shutil.copy)
    return target
