"""What the weight-source tests serve and load: a two-tensor network, its spec on the loopback Hub, its bytes.

The servers themselves, and the environment that points the app at them, are fixtures of
:mod:`tests.plugins.loopback` (``server``, ``hf_env``, ...), used by name.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from huggingface_hub import constants
from safetensors.torch import save
from torch import nn

from app.models.base import Batch, NetworkFacts, NeuralNetwork, Prediction
from app.specs import HubWeights, Licence, ModelSpec
from app.weights.official import OfficialFile
from app.weights.verify import read_safetensors_checked

MANIFEST = "edgeconnect_InpaintingModel_gen"  # 43 MB of synthetic tensors, quick to make
FILE = "model.safetensors"


class TinyNet(NeuralNetwork):
    """A two-tensor network; counts how often it is built."""

    FACTS = NetworkFacts(official_files=(OfficialFile("tiny.pth", "", container="generator"),))
    builds = 0

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        type(self).builds += 1

    def inpaint(self, batch: Batch, *, samples: int = 1, seed: int = 0) -> Prediction:
        return Prediction(samples=batch.images[:, None].astype(np.float32) / 255)


def tiny_bytes(value: float) -> bytes:
    return save({"conv.weight": torch.full((3, 3, 1, 1), value), "conv.bias": torch.zeros(3)})


def spec_for(repo: str, sha: str | None = None, entry: str = f"{__name__}:TinyNet", model_id: str = "tiny",
             revision: str = "v1") -> ModelSpec:
    return ModelSpec(id=model_id, name=f"Tiny ({model_id})", kind="neural", entry=entry,
                     licence=Licence("Apache-2.0", "apache-2.0"),
                     weights=HubWeights(repo=repo, revision=revision, files={FILE: sha}))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def go_offline(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def read(path: Path) -> dict[str, torch.Tensor]:
    return read_safetensors_checked(path)


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert list(a) == list(b) or set(a) == set(b)
    for key in b:
        assert torch.equal(a[key], b[key]), key
