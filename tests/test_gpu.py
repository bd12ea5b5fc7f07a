"""ZeroGPU: the GPU is held only for forward passes, for a duration sized from the request."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from app import gpu, pipeline
from app.errors import OutOfMemoryError
from app.images import Photo
from app.models.base import Batch
from app.options import Options
from tests.instrumented import TinyNet
from tests.paths import REPO


def batch(crops: int, side: int) -> Batch:
    return Batch(images=np.zeros((crops, side, side, 3), np.uint8), holes=np.ones((crops, side, side), bool))


def test_duration_grows_with_the_work_and_stays_within_bounds(local):
    spec = local("a")
    one = gpu.gpu_seconds(spec, batch(1, 256))
    assert gpu.BASE_SECONDS < one < 15  # a small request asks for little, so it queues first
    assert gpu.gpu_seconds(spec, batch(4, 256)) > one
    assert gpu.gpu_seconds(spec, batch(1, 256), samples=8) > one
    assert gpu.gpu_seconds(spec, batch(1, 512)) > one
    assert gpu.gpu_seconds(spec, batch(8, 512), samples=16) == gpu.MAX_SECONDS


def test_off_zerogpu_it_is_the_plain_function_and_failures_come_back_as_themselves(local):
    assert not hasattr(gpu.forward, "zerogpu")  # spaces.GPU is a no-op off ZeroGPU
    spec = local("a")
    TinyNet.oom_next = True
    outcome = gpu.forward(spec, batch(1, 8))
    assert isinstance(outcome, OutOfMemoryError)  # handed back, not raised inside the worker
    with pytest.raises(OutOfMemoryError):
        TinyNet.oom_next = True
        gpu.run_network(spec, batch(1, 8))
    assert gpu.run_network(spec, batch(1, 8)).samples.shape == (1, 1, 8, 8, 3)


def test_the_pipeline_runs_neural_models_through_the_gpu_call(local, monkeypatch):
    """Only the network's forward passes go through gpu.forward; loading and classical models do not."""
    spec = local("a")
    monkeypatch.setattr(pipeline.registry, "get", lambda model_id: spec if model_id == "a" else _real(model_id))
    calls = []
    real = gpu.forward
    monkeypatch.setattr(gpu, "forward", lambda *a, **k: calls.append(a[0].id) or real(*a, **k))
    photo = Photo(np.full((40, 40, 3), 100, np.uint8))
    hole = np.zeros((40, 40), bool)
    hole[10:20, 10:20] = True
    results = pipeline.run(photo, hole, ["a", "telea"], Options(margin=8))
    assert calls == ["a"] and len(results) == 2


def _real(model_id: str):
    from app import registry
    return next(s for s in registry.MODELS if s.id == model_id)


ZERO_GPU_CHECK = """
import json, numpy as np, torch
from safetensors.torch import save_file
import app
from app import gpu, model_cache, registry
from app.models.base import Batch
from spaces.zero.wrappers import static_duration
import tests.instrumented as tmc
spec = tmc.tiny_spec("z")
folder = __import__("pathlib").Path(__import__("os").environ["INPAINT_CHECKPOINTS"]) / "z"
folder.mkdir(parents=True)
save_file({"conv.weight": torch.ones(3, 3, 1, 1), "conv.bias": torch.zeros(3)}, folder / "model.safetensors")
net = model_cache.get_inpainter(spec)  # loaded outside any GPU call, as ZeroGPU wants
b = Batch(images=np.zeros((2, 256, 256, 3), np.uint8), holes=np.ones((2, 256, 256), bool))
print(json.dumps({"decorated": hasattr(gpu.forward, "zerogpu"), "device": str(net.conv.weight.device),
                  "duration": static_duration(gpu.gpu_seconds, spec, b, samples=3),
                  "expected": gpu.gpu_seconds(spec, b, samples=3),
                  "classical_plain": not hasattr(model_cache.run_guarded, "zerogpu")}))
"""


@pytest.mark.slow  # a fresh interpreter imports torch and the app under ZeroGPU's patches
def test_on_zerogpu_forward_is_decorated_and_weights_go_to_cuda_at_load(tmp_path):
    """The real ``spaces`` package in ZeroGPU mode (its device API unreachable: nothing is scheduled here)."""
    env = {**os.environ, "SPACES_ZERO_GPU": "true", "SPACES_ZERO_DEVICE_API_URL": "http://127.0.0.1:9/",
           "INPAINT_CHECKPOINTS": str(tmp_path / "checkpoints"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", ZERO_GPU_CHECK], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["decorated"] and seen["classical_plain"]
    assert seen["device"].startswith("cuda")  # placed on the (ZeroGPU) device when loaded
    assert seen["duration"] == seen["expected"] > gpu.BASE_SECONDS
