"""Bytes of weight files and archives as the tests build them: zips that can be pinned, torch's three formats.

The ``tiny_spec`` fixture (the tiny model pinned to an archive of :func:`official_tiny`) is in
:mod:`tests.plugins.tiny_models`.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile

import pytest
import torch

from app import registry
from app.registry import OfficialArchive
from tests.hub_weights import spec_for


def zip_of(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    """A zip of ``members``, byte-for-byte the same for the same members (fixed timestamps), so it can be pinned."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(zipfile.ZipInfo(name, date_time=(2022, 1, 1, 0, 0, 0)), data, compress_type=compression)
    return out.getvalue()


def official_tiny() -> tuple[bytes, dict[str, torch.Tensor]]:
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


def legacy_save(obj: object) -> bytes:
    """``torch.save`` in the legacy (pre-1.6, one pickle stream after another) format."""
    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=False)
    return buffer.getvalue()


def zip_save(obj: object) -> bytes:
    """``torch.save`` in today's zip format."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def tar_of(members: dict[str, bytes]) -> bytes:
    """torch's legacy tar format (storages, tensors, pickle), which torch.load still reads."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
