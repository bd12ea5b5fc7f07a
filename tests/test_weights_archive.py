"""``weights fetch-official``: the authors' own archive on the Hub -> official files -> safetensors."""

from __future__ import annotations

import argparse
import io
import os
import pickle
import zipfile

import pytest
import torch

from app import registry
from app import weights_cli as cli
from app.errors import WeightsError
from app.weights.archive import extract_members, fetch_archive
from app.weights.resolve import locate
from app.weights.verify import read_safetensors_unchecked
from tests.archives import official_tiny, pinned_spec, zip_of


def test_fetch_extract_convert(server, hf_env, checkpoints, monkeypatch, capsys):
    data, state = official_tiny()
    archive = zip_of({"tiny/models/tiny.pth": data, "tiny/config.yaml": b"x: 1"}, zipfile.ZIP_DEFLATED)
    tiny_spec = pinned_spec(monkeypatch, archive)
    server.add("authors/tiny", {"tiny.zip": archive})
    args = argparse.Namespace(weights_command="fetch-official", id=tiny_spec.id, no_convert=False)
    assert cli.run(args) == 0
    folder = checkpoints / tiny_spec.id
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "model.safetensors", "tiny.pth"]
    converted = read_safetensors_unchecked(folder / "model.safetensors")
    assert all(torch.equal(converted[k], state[k]) for k in state)
    assert "sha256" in capsys.readouterr().out


def test_archive_without_the_member_or_not_a_zip(server, hf_env, checkpoints, monkeypatch):
    archive = zip_of({"other.pth": b"x"})
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


def test_the_default_tiny_archive_fetches_against_its_pin(server, hf_env, tiny_spec):
    archive = zip_of({"tiny/models/tiny.pth": official_tiny()[0]})
    server.add("authors/tiny", {"tiny.zip": archive})
    assert fetch_archive(tiny_spec).read_bytes() == archive  # what tests/test_download_deadline.py relies on


def _refused_member(kind: str) -> bytes:
    """A release file ``weights fetch-official`` must refuse: one that would run code, or one that does not fit."""
    if kind == "hostile pickle":
        return pickle.dumps(_Calls(os.getcwd))  # a harmless call, but a call: refused before anything runs
    buffer = io.BytesIO()
    torch.save({"generator": {"conv.weight": torch.ones(3, 3, 1, 1)}}, buffer)  # conv.bias missing
    return buffer.getvalue()


class _Calls:
    def __init__(self, func) -> None:
        self.func = func

    def __reduce__(self) -> tuple:
        return self.func, ()


@pytest.mark.parametrize(("kind", "says"), [("bad hash", "does not match its pinned sha256"),
                                            ("hostile pickle", "getcwd"),
                                            ("failed strict load", "missing keys: conv.bias")])
@pytest.mark.parametrize("no_convert", [False, True])
def test_a_refused_fetch_leaves_nothing_in_checkpoints(server, hf_env, checkpoints, monkeypatch, capsys,
                                                       kind, says, no_convert):
    """Whatever refuses the file, nothing of it reaches checkpoints/<id>/, so the model is not listed as local."""
    good = zip_of({"tiny/models/tiny.pth": official_tiny()[0]})
    archive = good if kind == "bad hash" else zip_of({"tiny/models/tiny.pth": _refused_member(kind)})
    spec = pinned_spec(monkeypatch, archive)
    server.add("authors/tiny", {"tiny.zip": good[:-1] + bytes([good[-1] ^ 1]) if kind == "bad hash" else archive})
    assert cli.main(["fetch-official", spec.id, *(["--no-convert"] if no_convert else [])]) == 1
    assert says in capsys.readouterr().err
    assert list(checkpoints.iterdir()) == []  # no best.ckpt, no model folder, no staging folder
    assert locate(spec).status != "local"
    assert cli.main(["list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(f"{spec.id} "))
    assert "local" not in row


def test_no_convert_keeps_only_the_checked_official_file(server, hf_env, checkpoints, monkeypatch,
                                                         tiny_spec, capsys):
    server.add("authors/tiny", {"tiny.zip": zip_of({"tiny/models/tiny.pth": official_tiny()[0]})})
    assert cli.main(["fetch-official", tiny_spec.id, "--no-convert"]) == 0
    assert [p.name for p in checkpoints.iterdir()] == [tiny_spec.id]
    assert [p.name for p in (checkpoints / tiny_spec.id).iterdir()] == ["tiny.pth"]
    assert "loads strictly" in capsys.readouterr().out
    assert locate(tiny_spec).status == "local"
