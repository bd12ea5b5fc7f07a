"""Where MAT's weights come from (issue 26): Acly/MAT's float16 safetensors on the Hub, pinned by its sha256.

The authors publish only network pickles that carry code, which the studio never loads; the plain state
dicts with the official key names are Acly/MAT's float16 safetensors (first) and IOPaint's float32 release
(held to its md5: ``test_official_download.py``). Served here by the loopback Hub under the real repo id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
import torch
from huggingface_hub import constants
from safetensors.torch import save

from app import model_cache, registry
from app.errors import WeightsError
from app.weights import hub, pins
from tests.hub_server import HubServer
from tests.reference import make_state_dict

SPEC = registry.get("mat-places512")
FILE = "MAT_Places512_G_fp16.safetensors"


@pytest.fixture
def server(monkeypatch, tmp_path, checkpoints) -> Iterator[HubServer]:
    with HubServer() as running:
        monkeypatch.setenv("HF_ENDPOINT", running.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        hub.forget_unreachable()
        model_cache.clear()
        yield running
        model_cache.clear()
        hub.forget_unreachable()


def half_release() -> tuple[dict[str, torch.Tensor], bytes]:
    """Synthetic official weights as Acly/MAT publishes them: float16, official key names, safetensors."""
    half = {key: value.half() if value.is_floating_point() else value
            for key, value in make_state_dict("mat_G", 1).items()}
    return half, save(half)


def test_mat_comes_from_the_float16_copy_on_the_hub_loaded_strictly_in_float32(server):
    assert SPEC.weights.repo == "Acly/MAT" and SPEC.weights.files[FILE]  # the registry pins its sha256
    half, data = half_release()
    commit = server.add("Acly/MAT", {FILE: data})
    # The test's bytes are not the real file: record them as this deployment's pin (pins.json wins).
    pins.record_mirror(SPEC, "Acly/MAT", commit, {FILE: hashlib.sha256(data).hexdigest()})
    net = model_cache.get_inpainter(SPEC)
    loaded = net.state_dict()
    assert set(loaded) == set(half)
    assert all(value.dtype == torch.float32 for value in loaded.values() if value.is_floating_point())
    assert all(torch.equal(loaded[key].cpu(), value.float()) for key, value in half.items())


def test_other_bytes_than_the_registry_pins_are_refused_naming_both_hashes(server):
    _, data = half_release()
    server.add("Acly/MAT", {FILE: data})
    with pytest.raises(WeightsError) as caught:
        model_cache.get_inpainter(SPEC)
    assert SPEC.weights.files[FILE] in str(caught.value) and hashlib.sha256(data).hexdigest() in str(caught.value)
