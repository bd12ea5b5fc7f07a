"""``weights fetch-official``: the authors' own archive on the Hub -> official files -> safetensors."""

from __future__ import annotations

import argparse
import hashlib
import io
import zipfile

import pytest
import torch

from app import registry
from app.errors import WeightsError
from app.registry import OfficialArchive
from app.weights import cli
from app.weights.archive import extract_members, fetch_archive
from app.weights.verify import read_safetensors_unchecked
from tests.test_weights_hub import hf_env, server, spec_for  # noqa: F401 - fixtures


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    """A zip of ``members``, byte-for-byte the same for the same members (fixed timestamps), so it can be pinned."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(zipfile.ZipInfo(name, date_time=(2022, 1, 1, 0, 0, 0)), data, compress_type=compression)
    return out.getvalue()


def _official_tiny() -> tuple[bytes, dict[str, torch.Tensor]]:
    """A tiny official checkpoint; the same bytes every call (seeded), so an archive of it can be pinned."""
    seeded = torch.Generator().manual_seed(7)
    state = {"conv.weight": torch.randn(3, 3, 1, 1, generator=seeded), "conv.bias": torch.randn(3, generator=seeded)}
    buffer = io.BytesIO()
    torch.save({"iteration": 7, "generator": state}, buffer)
    return buffer.getvalue(), state


def pinned_spec(monkeypatch: pytest.MonkeyPatch, archive: bytes | None, **fields) -> registry.ModelSpec:
    """The tiny model with an official archive pinned to ``archive``'s sha256 and size (None: unpinned)."""
    pins = {"sha256": hashlib.sha256(archive).hexdigest(), "size": len(archive)} if archive is not None else {}
    spec = spec_for("ns/tiny")
    archive_fields = {"repo": "authors/tiny", "file": "tiny.zip", "members": {"tiny/models/tiny.pth": "tiny.pth"},
                      **pins, **fields}
    spec = registry.ModelSpec(**{**spec.__dict__, "official_archive": OfficialArchive(**archive_fields)})
    monkeypatch.setattr(registry, "MODELS", registry.MODELS + (spec,))
    return spec


@pytest.fixture
def tiny_spec(monkeypatch):
    """Pinned to the archive that holds just :func:`_official_tiny` (what most tests serve)."""
    return pinned_spec(monkeypatch, _zip({"tiny/models/tiny.pth": _official_tiny()[0]}))


def test_fetch_extract_convert(server, hf_env, checkpoints, monkeypatch, capsys):  # noqa: F811
    data, state = _official_tiny()
    archive = _zip({"tiny/models/tiny.pth": data, "tiny/config.yaml": b"x: 1"}, zipfile.ZIP_DEFLATED)
    tiny_spec = pinned_spec(monkeypatch, archive)
    server.add("authors/tiny", {"tiny.zip": archive})
    args = argparse.Namespace(weights_command="fetch-official", id=tiny_spec.id, no_convert=False)
    assert cli.run(args) == 0
    folder = checkpoints / tiny_spec.id
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "model.safetensors", "tiny.pth"]
    converted = read_safetensors_unchecked(folder / "model.safetensors")
    assert all(torch.equal(converted[k], state[k]) for k in state)
    assert "sha256" in capsys.readouterr().out


def test_archive_without_the_member_or_not_a_zip(server, hf_env, checkpoints, monkeypatch):  # noqa: F811
    archive = _zip({"other.pth": b"x"})
    tiny_spec = pinned_spec(monkeypatch, archive)
    server.add("authors/tiny", {"tiny.zip": archive})
    with pytest.raises(WeightsError, match="has no tiny/models/tiny.pth"):
        extract_members(tiny_spec, fetch_archive(tiny_spec))
    assert not (checkpoints / tiny_spec.id).exists()
    broken = checkpoints / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(WeightsError, match="not a valid zip"):
        extract_members(tiny_spec, broken)


def test_lama_knows_the_official_distribution():
    source = registry.get("lama").official_archive
    assert (source.repo, source.file) == ("smartywu/big-lama", "big-lama.zip")
    assert source.members == {"big-lama/models/best.ckpt": "best.ckpt"}
    assert source.sha256 == "d7161bba4d68b438f9fa7f09dcb750a223804c300c68d214a5e0be16251fba8d"
    assert source.size == 381_428_720  # "381 MB" in ../shared/reference/MODELS.md


def test_the_default_tiny_archive_fetches_against_its_pin(server, hf_env, tiny_spec):  # noqa: F811
    archive = _zip({"tiny/models/tiny.pth": _official_tiny()[0]})
    server.add("authors/tiny", {"tiny.zip": archive})
    assert fetch_archive(tiny_spec).read_bytes() == archive  # what tests/test_download_deadline.py relies on
