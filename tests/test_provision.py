"""A neural model on the first visit: the authors' Hub archive, converted once, kept in the HF cache."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
import torch
from huggingface_hub import hf_hub_download

from app import model_cache, registry
from app.errors import ModelUnavailableError, WeightsError
from app.specs import HubWeights
from app.weights.resolve import locate, provisioned_dir
from app.weights.verify import read_safetensors_unchecked
from tests.archives import official_tiny, pinned_spec, zip_of
from tests.hub_weights import FILE, go_offline

MEMBER = "tiny/models/tiny.pth"


def unmirrored(monkeypatch: pytest.MonkeyPatch, archive: bytes) -> registry.ModelSpec:
    """The tiny model with its official archive pinned to ``archive`` and no Hub mirror configured (like LaMa)."""
    spec = pinned_spec(monkeypatch, archive)
    spec = registry.ModelSpec(**{**spec.__dict__, "weights": HubWeights("tiny", "v1", {FILE: None})})
    monkeypatch.setattr(registry, "MODELS", registry.MODELS[:-1] + (spec,))
    monkeypatch.delenv(registry.HUB_NAMESPACE_ENV, raising=False)
    return spec


@pytest.fixture
def archive() -> bytes:
    return zip_of({MEMBER: official_tiny()[0], "tiny/config.yaml": b"x: 1"}, zipfile.ZIP_DEFLATED)


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_first_use_downloads_converts_and_a_restart_reuses_it(server, hf_env, checkpoints, monkeypatch, archive):
    spec = unmirrored(monkeypatch, archive)
    server.add("authors/tiny", {"tiny.zip": archive})
    location = locate(spec)
    assert (location.status, location.via) == ("remote", "archive")
    assert "will download" in location.reason and "authors/tiny/tiny.zip" in location.reason
    assert model_cache.availability(spec).ok  # the Hub answered for the archive: one HEAD, nothing downloaded
    assert [(r.method, r.path) for r in server.requests] == [("HEAD", "/authors/tiny/resolve/main/tiny.zip")]

    steps = []
    model = model_cache.get_inpainter(spec, progress=lambda f, m: steps.append(m))
    _, state = official_tiny()
    assert torch.equal(model.conv.weight, state["conv.weight"])
    assert any("Extracting" in s for s in steps) and any("Converting" in s for s in steps)
    folder = provisioned_dir(spec)
    assert folder.is_relative_to(hf_env.parent)  # in HF_HOME, beside the hub cache
    assert files_in(folder) == ["README.md", "model.safetensors"]  # no pickle, no staging folder left
    assert all(torch.equal(read_safetensors_unchecked(folder / "model.safetensors")[k], v) for k, v in state.items())

    model_cache.clear()  # a restart: the converted weights are found, nothing is downloaded
    fetched = len(server.paths("GET"))
    go_offline(monkeypatch)
    assert locate(spec).status == "local" and "converted from authors/tiny/tiny.zip" in locate(spec).reason
    model_cache.get_inpainter(spec)
    assert len(server.paths("GET")) == fetched


def test_a_preloaded_archive_is_converted_offline(server, hf_env, checkpoints, monkeypatch, archive):
    """What a Space's preload_from_hub leaves in the cache at build time is used without the network."""
    spec = unmirrored(monkeypatch, archive)
    server.add("authors/tiny", {"tiny.zip": archive})
    hf_hub_download("authors/tiny", "tiny.zip", cache_dir=str(hf_env), endpoint=server.url)
    server.stop()
    go_offline(monkeypatch)
    location = locate(spec)
    assert location.status == "remote" and "already downloaded" in location.reason
    model_cache.get_inpainter(spec)
    assert files_in(provisioned_dir(spec)) == ["README.md", "model.safetensors"]


@pytest.mark.parametrize("damage", ["wrong sha256", "truncated member"])
def test_a_bad_archive_leaves_nothing_behind(server, hf_env, checkpoints, monkeypatch, archive, damage):
    if damage == "wrong sha256":
        spec = unmirrored(monkeypatch, archive)
        server.add("authors/tiny", {"tiny.zip": archive[:-1] + bytes([archive[-1] ^ 1])})
        match = "is .* bytes|does not match its pinned sha256"
    else:  # pinned to the damaged file itself: the pins pass, the member's CRC does not
        bad = bytearray(zip_of({MEMBER: official_tiny()[0]}))
        bad[200] ^= 0xFF
        spec = unmirrored(monkeypatch, bytes(bad))
        server.add("authors/tiny", {"tiny.zip": bytes(bad)})
        match = "damaged|not a valid zip"
    with pytest.raises(WeightsError, match=match):
        model_cache.get_inpainter(spec)
    assert files_in(provisioned_dir(spec)) == []
    assert locate(spec).status == "remote"  # the next click tries again


def test_offline_without_the_archive_is_unavailable_with_the_reason(hf_env, checkpoints, monkeypatch, archive):
    spec = unmirrored(monkeypatch, archive)
    go_offline(monkeypatch)
    state = model_cache.availability(spec)
    assert not state.ok
    assert "offline" in state.reason or "no Hub mirror" in state.reason
    assert "authors/tiny/tiny.zip" in state.reason
    with pytest.raises(ModelUnavailableError):
        model_cache.get_inpainter(spec)


def test_pins_file_repins_an_archive(server, hf_env, checkpoints, monkeypatch, archive, pins_file):
    """The authors re-upload: the deployer re-pins in pins.json, no Python edited."""
    spec = unmirrored(monkeypatch, archive)
    other = zip_of({MEMBER: official_tiny()[0]})
    server.add("authors/tiny", {"tiny.zip": other})
    with pytest.raises(WeightsError, match="pinned"):
        model_cache.get_inpainter(spec)
    pins_file.write_text(json.dumps({spec.id: {"archive": {"sha256": hashlib.sha256(other).hexdigest(),
                                                           "size": len(other)}}}))
    assert model_cache.get_inpainter(spec) is not None


def test_lama_comes_from_its_official_archive_and_the_others_need_a_mirror(server, hf_env, checkpoints,
                                                                          monkeypatch):
    monkeypatch.delenv(registry.HUB_NAMESPACE_ENV, raising=False)
    lama = locate(registry.get("lama"))
    assert (lama.status, lama.via) == ("remote", "archive")
    assert "~381 MB smartywu/big-lama/big-lama.zip" in lama.reason
    for spec in registry.NEURAL:
        if spec.official_drive is not None:  # EdgeConnect, RFR-Net, PIC: the authors' Drive (tests/test_gdrive.py)
            drive = locate(spec)
            assert (drive.status, drive.via) == ("remote", "archive") and "Google Drive" in drive.reason, spec.id
        elif spec.official_archive is None and spec.official_download is None:
            state = model_cache.availability(spec)
            assert not state.ok and "no Hub mirror is configured" in state.reason, spec.id
    monkeypatch.setenv(registry.HUB_NAMESPACE_ENV, "someone")  # a deployer's mirrors
    assert locate(registry.get("rfr-psv")).via == "mirror"
    assert locate(registry.get("lama")).via == "mirror"  # a configured mirror wins over the archive
    assert server.requests == []
