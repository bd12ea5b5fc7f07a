"""``weights fetch-official``: the authors' own archive on the Hub -> official files -> safetensors."""

from __future__ import annotations

import argparse
import io
import zipfile

import pytest
import torch

from app import registry
from app.errors import WeightsError
from app.registry import OfficialArchive
from app.weights import cli
from app.weights.archive import extract_members, fetch_archive
from app.weights.loader import read_safetensors
from tests.test_weights_hub import hf_env, server, spec_for  # noqa: F401 - fixtures


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return out.getvalue()


def _official_tiny() -> tuple[bytes, dict[str, torch.Tensor]]:
    state = {"conv.weight": torch.randn(3, 3, 1, 1), "conv.bias": torch.randn(3)}
    buffer = io.BytesIO()
    torch.save({"iteration": 7, "generator": state}, buffer)
    return buffer.getvalue(), state


@pytest.fixture
def tiny_spec(monkeypatch):
    spec = spec_for("ns/tiny")
    spec = registry.ModelSpec(**{**spec.__dict__, "official_archive": OfficialArchive(
        repo="authors/tiny", file="tiny.zip", members={"tiny/models/tiny.pth": "tiny.pth"})})
    monkeypatch.setattr(registry, "MODELS", registry.MODELS + (spec,))
    return spec


def test_fetch_extract_convert(server, hf_env, tiny_spec, checkpoints, capsys):  # noqa: F811
    data, state = _official_tiny()
    server.add("authors/tiny", {"tiny.zip": _zip({"tiny/models/tiny.pth": data, "tiny/config.yaml": b"x: 1"})})
    args = argparse.Namespace(weights_command="fetch-official", id=tiny_spec.id, no_convert=False)
    assert cli.run(args) == 0
    folder = checkpoints / tiny_spec.id
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "model.safetensors", "tiny.pth"]
    converted = read_safetensors(folder / "model.safetensors")
    assert all(torch.equal(converted[k], state[k]) for k in state)
    assert "sha256" in capsys.readouterr().out


def test_archive_without_the_member_or_not_a_zip(server, hf_env, tiny_spec, checkpoints):  # noqa: F811
    server.add("authors/tiny", {"tiny.zip": _zip({"other.pth": b"x"})})
    with pytest.raises(WeightsError, match="has no tiny/models/tiny.pth"):
        extract_members(tiny_spec, fetch_archive(tiny_spec))
    broken = checkpoints / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(WeightsError, match="not a valid zip"):
        extract_members(tiny_spec, broken)


def test_lama_knows_the_official_distribution():
    source = registry.get("lama").official_archive
    assert (source.repo, source.file) == ("smartywu/big-lama", "big-lama.zip")
    assert source.members == {"big-lama/models/best.ckpt": "best.ckpt"}
