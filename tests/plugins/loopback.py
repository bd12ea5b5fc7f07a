"""Loopback servers and the environment that points the app at them, as fixtures any test uses by name.

- the Hub (:mod:`tests.hub_server`): ``server``, ``hf_env`` (online, fresh ``HF_HOME``), ``hub_env``
  (the same, with no segmenter embeddings kept) and ``synthetic`` (official-layout bytes to serve);
- Google Drive (:mod:`tests.drive_server`): ``tls`` and ``drive``;
- an authors' release server (:mod:`tests.file_server`): ``files``.

Plain helpers that go with them (``spec_for``, ``go_offline``, ``FILE``, ...) are in :mod:`tests.hub_weights`.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants
from safetensors.torch import save

from app import model_cache, registry
from app.weights import hub
from tests import drive_server
from tests.drive_server import DriveServer
from tests.file_server import Files
from tests.hub_server import HubServer
from tests.hub_weights import MANIFEST
from tests.reference import make_state_dict

# ------------------------------------------------------------------ the Hub


@pytest.fixture
def server() -> Iterator[HubServer]:
    with HubServer() as running:
        yield running


@pytest.fixture
def hf_env(server, tmp_path, monkeypatch, checkpoints) -> Iterator[Path]:
    """Online against ``server``, with a fresh HF_HOME; returns the hub cache folder."""
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    hub.forget_unreachable()
    model_cache.clear()
    yield tmp_path / "hf" / "hub"
    hub.forget_unreachable()
    model_cache.clear()


@pytest.fixture
def hub_env(server, hf_env) -> Iterator[HubServer]:
    """Online against a loopback Hub with a fresh cache (``hf_env``), no segmenter embeddings kept."""
    from app.selection import clicks as selection

    selection.forget_embeddings()
    yield server
    selection.forget_embeddings()


@pytest.fixture(scope="session")
def synthetic() -> dict[int, tuple[dict[str, torch.Tensor], bytes]]:
    """Seed -> (state_dict from the reference manifest, its safetensors bytes)."""
    out = {}
    for seed in (1, 2):
        state = make_state_dict(MANIFEST, seed)
        out[seed] = (state, save(dict(state)))
    return out


# ------------------------------------------------------------------ Google Drive


@pytest.fixture(scope="session")
def tls(tmp_path_factory) -> tuple[ssl.SSLContext, Path]:
    """A self-signed certificate for the loopback Drive: (server context, the CA file clients trust)."""
    return drive_server.make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def drive(tls, monkeypatch, tmp_path, checkpoints) -> Iterator[DriveServer]:
    """A loopback Drive in front of gdown, a fresh HF_HOME, and no Hub mirror for anything."""
    running = DriveServer(tls[0])
    drive_server.use(monkeypatch, running.proxy, tls[1])
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv(registry.HUB_NAMESPACE_ENV, raising=False)
    hub.forget_unreachable()
    model_cache.clear()
    yield running
    model_cache.clear()
    running.stop()


# ------------------------------------------------------------------ an authors' release server


@pytest.fixture
def files() -> Iterator[Files]:
    running = Files()
    yield running
    running.shutdown()
    running.server_close()
