"""Models on disk as fixtures any test uses by name: the instrumented tiny network (``local``), random-init
weights for a registered spec (``weights``), the tiny model pinned to an official archive (``tiny_spec``)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from app import model_cache, registry
from tests.archives import official_tiny, pinned_spec, zip_of
from tests.instrumented import WEIGHT, TinyNet
from tests.instrumented import tiny_spec as instrumented_spec


@pytest.fixture
def local(checkpoints, monkeypatch):
    """Writes local safetensors for tiny models (:class:`tests.instrumented.TinyNet`); starts and ends with
    an empty cache."""
    for name in ("INPAINT_MAX_LOADED_MODELS", "INPAINT_DEVICE"):
        monkeypatch.delenv(name, raising=False)
    model_cache.clear()
    TinyNet.builds = 0
    TinyNet.oom_next = False
    TinyNet.inference_mode_seen = []

    def make(model_id: str, **kwargs) -> registry.ModelSpec:
        folder = checkpoints / model_id
        folder.mkdir(exist_ok=True)
        save_file({"conv.weight": torch.full((3, 3, 1, 1), WEIGHT), "conv.bias": torch.zeros(3)},
                  folder / "model.safetensors")
        return instrumented_spec(model_id, **kwargs)

    yield make
    model_cache.clear()


@pytest.fixture
def weights(checkpoints):
    """Write random-init safetensors for a spec; clears the model cache around the test."""
    model_cache.clear()

    def write(spec: registry.ModelSpec) -> None:
        torch.manual_seed(0)
        state = {k: v.contiguous() for k, v in spec.entry_class()(**spec.kwargs).state_dict().items()}
        folder = checkpoints / spec.id
        folder.mkdir()
        save_file(state, str(folder / "model.safetensors"))

    yield write
    model_cache.clear()


@pytest.fixture
def tiny_spec(monkeypatch) -> registry.ModelSpec:
    """Pinned to the archive that holds just :func:`tests.archives.official_tiny` (what most tests serve)."""
    return pinned_spec(monkeypatch, zip_of({"tiny/models/tiny.pth": official_tiny()[0]}))
