"""An instrumented tiny network for the model cache's tests (and the GPU's): it counts its builds, can
widen a race window, coordinate two loads or raise out-of-memory on its next call.

The ``local`` fixture of :mod:`tests.plugins.tiny_models` writes its weights and hands out specs.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np
import torch
from torch import nn

from app.models.base import Batch, NetworkFacts, NeuralNetwork, Prediction
from app.registry import ModelSpec

WEIGHT = 0.25


class TinyNet(NeuralNetwork):
    """Counts its builds; ``slow`` widens the race window; ``role`` coordinates two loads."""

    FACTS = NetworkFacts()

    builds = 0
    events: dict[str, threading.Event] = {}
    oom_next = False
    last_activation: weakref.ref | None = None
    inference_mode_seen: list[bool] = []

    def __init__(self, slow: float = 0.0, role: str = "") -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        type(self).builds += 1
        if role == "first":  # blocks until the second model's load has started
            self.events["first_started"].set()
            self.events["first_released"] = self.events["second_started"].wait(10)
        elif role == "second":
            self.events["first_started"].wait(10)
            self.events["second_started"].set()
        threading.Event().wait(slow)

    def inpaint(self, batch: Batch, *, samples: int = 1, seed: int = 0) -> Prediction:
        type(self).inference_mode_seen.append(torch.is_inference_mode_enabled())
        activation = torch.ones(256, 1024)
        type(self).last_activation = weakref.ref(activation)
        if type(self).oom_next:
            type(self).oom_next = False
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return Prediction(samples=batch.images[:, None].astype(np.float32) / 255)


def tiny_spec(model_id: str, **kwargs) -> ModelSpec:
    return ModelSpec(id=model_id, name=f"Tiny {model_id}", kind="neural", entry=f"{__name__}:TinyNet",
                     licence="MIT", kwargs=kwargs)
