"""No code from a file ever runs, nothing is lost or left behind (issue 13).

Every hostile file here is written by the test itself, and its payload only touches a
marker file in the test's temporary folder. Each one goes through every way a release
file is read: ``read_official``, the app's loader (``model_cache``, as the web app and the
``inpaint`` CLI use it), ``weights verify``, ``weights convert`` and ``weights
fetch-official`` from the loopback Hub. Each time: refused with a message naming the file
and what it refers to, the marker absent, the file's bytes unchanged, no safetensors written.
Then: real-shaped checkpoints still load, weights that would break inference are refused by
``weights verify``, and official archives are pinned, size-checked and extracted all or nothing.
"""

from __future__ import annotations

import _codecs
import argparse
import builtins
import collections
import hashlib
import io
import os
import pathlib
import pickle
import resource
import shutil
import signal
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import numpy.testing._private.utils as numpy_test_utils
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from app import model_cache, registry
from app import weights_cli as cli
from app.errors import WeightsError
from app.weights.archive import extract_members, fetch_archive
from app.weights.official import load_pickle, read_official
from app.weights.strict import load_strict
from tests.archives import legacy_save, official_tiny, pinned_spec, tar_of, zip_of, zip_save

MEMBER = "tiny/models/tiny.pth"
RAN = "code from the file ran"


class Reduce:
    """Pickles as ``func(*args)``: what a hostile file asks the unpickler to call."""

    def __init__(self, func: Callable, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple:
        return self.func, self.args


def _checkpoint(meta: object) -> dict:
    """A tiny official checkpoint with ``meta`` pickled before the tensors."""
    return {"meta": meta, "iteration": 1,
            "generator": {"conv.weight": torch.ones(3, 3, 1, 1), "conv.bias": torch.zeros(3)}}


def _touch(marker: Path) -> Reduce:
    return Reduce(os.system, f"touch {marker}")


def _exec(marker: Path) -> Reduce:
    return Reduce(builtins.exec, f"open({str(marker)!r}, 'w').write({RAN!r})")


def _records(data: bytes, count: int) -> int:
    """Offset after the first ``count`` pickle records of a (trusted, our own) legacy file."""
    stream = io.BytesIO(data)
    for _ in range(count):
        pickle.load(stream)
    return stream.tell()


# --------------------------------------------------------------- hostile files
# Each builder: marker -> (file bytes, what the refusal says the file does).

_SYSTEM = f"refers to {os.system.__module__}.system"


def legacy_first_record(marker: Path) -> tuple[bytes, str]:
    """The payload as the magic-number record, then a legitimate legacy body."""
    return pickle.dumps(_touch(marker), protocol=2) + legacy_save(_checkpoint(None)), _SYSTEM


def legacy_sys_info_record(marker: Path) -> tuple[bytes, str]:
    """Magic number and protocol as torch writes them, the payload as the sys_info record."""
    body = legacy_save(_checkpoint(None))
    at, after = _records(body, 2), _records(body, 3)
    return body[:at] + pickle.dumps(_exec(marker), protocol=2) + body[after:], "refers to builtins.exec"


def legacy_main_record(marker: Path) -> tuple[bytes, str]:
    return legacy_save(_checkpoint(_exec(marker))), "refers to builtins.exec"


def zip_main_record(marker: Path) -> tuple[bytes, str]:
    """``Path(marker).touch()``: pickled as ``getattr(Path, 'touch')``."""
    return zip_save(_checkpoint(Reduce(pathlib.Path.touch, pathlib.Path(marker)))), "refers to builtins.getattr"


def tar_storage_table(marker: Path) -> tuple[bytes, str]:
    """The tar format's storage count, read with ``pickle_module.load`` before anything else."""
    payload = pickle.dumps(Reduce(subprocess.call, ["touch", str(marker)]), protocol=2)
    return tar_of({"storages": payload}), "refers to subprocess.call"


def tar_main_pickle(marker: Path) -> tuple[bytes, str]:
    empty = pickle.dumps(0, protocol=2)
    return tar_of({"storages": empty + pickle.dumps([], protocol=2), "tensors": empty,
                 "pickle": pickle.dumps(_checkpoint(_touch(marker)), protocol=2)}), _SYSTEM


def rebuild_with_os_system(marker: Path) -> tuple[bytes, str]:
    """The payload as the ``func`` of an allowed ``_rebuild_from_type_v2``."""
    tensor = Reduce(torch._tensor._rebuild_from_type_v2, os.system, torch.Tensor, (f"touch {marker}",), {})
    return zip_save(_checkpoint(tensor)), _SYSTEM


def rebuild_with_unknown_function(marker: Path) -> tuple[bytes, str]:
    """``func`` from a module outside every list (a placeholder): the rebuild itself refuses it."""
    tensor = Reduce(torch._tensor._rebuild_from_type_v2, _write_marker, torch.Tensor, (str(marker),), {})
    return zip_save(_checkpoint(tensor)), f"rebuilds a tensor with {__name__}._write_marker"


def codecs_argument(marker: Path) -> tuple[bytes, str]:
    """A payload as the text of ``_codecs.encode`` (how protocol-2 pickles spell bytes)."""
    return legacy_save(_checkpoint(Reduce(_codecs.encode, _touch(marker), "latin1"))), _SYSTEM


def numpy_object_array(marker: Path) -> tuple[bytes, str]:
    """numpy's ``_reconstruct`` path: an object array whose element is the payload."""
    return zip_save(_checkpoint(np.array([_touch(marker)], dtype=object))), _SYSTEM


def numpy_runstring(marker: Path) -> tuple[bytes, str]:
    """A numpy function outside the allowlist that evaluates a string."""
    code = f"open({str(marker)!r}, 'w').write({RAN!r})"
    return legacy_save(_checkpoint(Reduce(numpy_test_utils.runstring, code, {}))), \
        "refers to numpy.testing._private.utils.runstring"


def build_on_a_class(marker: Path) -> tuple[bytes, str]:
    """BUILD on ``torch.Tensor`` (allowed as a type): would set a class attribute for the whole process."""
    payload = b"\x80\x02ctorch\nTensor\nN}X\x0c\x00\x00\x00planted_attrK\x01s\x86b."
    return payload + legacy_save(_checkpoint(None)), "sets attributes of torch.Tensor"


def torchscript(marker: Path) -> tuple[bytes, str]:
    """A TorchScript archive: torch.load would hand it to torch.jit.load."""
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(nn.Conv2d(3, 3, 1)), buffer)
    return buffer.getvalue(), "is a TorchScript program"


def _write_marker(path: str) -> None:
    Path(path).write_text(RAN)


HOSTILE = [legacy_first_record, legacy_sys_info_record, legacy_main_record, zip_main_record, tar_storage_table,
           tar_main_pickle, rebuild_with_os_system, rebuild_with_unknown_function, codecs_argument,
           numpy_object_array, numpy_runstring, build_on_a_class, torchscript]


# --------------------------------------------------------------- entry points
# Each: (spec, folder, file bytes) -> the user-facing message; the file lies at folder/tiny.pth.


def via_read_official(spec: registry.ModelSpec, folder: Path, data: bytes, capsys) -> str:
    with pytest.raises(WeightsError) as error:
        read_official(folder, spec.network().FACTS.official_files)
    return str(error.value)


def via_app_loader(spec: registry.ModelSpec, folder: Path, data: bytes, capsys) -> str:
    """What the web app and ``python -m app inpaint`` do on first use of a model."""
    model_cache.clear()
    try:
        with pytest.raises(WeightsError) as error:
            model_cache.get_inpainter(spec)
    finally:
        model_cache.clear()
    return str(error.value)


def via_verify(spec: registry.ModelSpec, folder: Path, data: bytes, capsys) -> str:
    assert cli.main(["verify", spec.id]) == 1
    err = capsys.readouterr().err
    assert f"{spec.id}: FAILED" in err
    return err


def via_convert(spec: registry.ModelSpec, folder: Path, data: bytes, capsys) -> str:
    assert cli.main(["convert", spec.id]) == 1
    return capsys.readouterr().err


def via_fetch_official(spec: registry.ModelSpec, folder: Path, data: bytes, capsys) -> str:
    """The archive is pinned (it IS the authors' file); the pickle inside is still refused at conversion, in a
    staging folder: the model's folder keeps exactly what it held (``test_weights_archive.py`` starts empty)."""
    assert cli.main(["fetch-official", spec.id]) == 1
    return capsys.readouterr().err


ENTRIES = [via_read_official, via_app_loader, via_verify, via_convert, via_fetch_official]


@pytest.fixture
def hub_spec(server, hf_env, checkpoints, monkeypatch):
    """(spec, server): the tiny model (official file tiny.pth) with an archive served by the loopback Hub."""
    def serve(member: bytes) -> registry.ModelSpec:
        archive = zip_of({MEMBER: member})
        server.add("authors/tiny", {"tiny.zip": archive})
        return pinned_spec(monkeypatch, archive)
    return serve


#: Every hostile file through every entry point; the fast lane keeps every file through the reader all
#: entry points share and every entry point with the critical first-record payload.
MATRIX = [pytest.param(hostile, entry, id=f"{hostile.__name__}-{entry.__name__}",
                       marks=() if entry is via_read_official or hostile is HOSTILE[0] else pytest.mark.slow)
          for hostile in HOSTILE for entry in ENTRIES]


@pytest.mark.parametrize(("hostile", "entry"), MATRIX)
def test_hostile_file_is_refused_never_run_and_left_untouched(hostile, entry, hub_spec, checkpoints, tmp_path,
                                                              capsys):
    marker = tmp_path / "marker"
    data, says = hostile(marker)
    spec = hub_spec(data)
    folder = checkpoints / spec.id
    folder.mkdir()
    (folder / "tiny.pth").write_bytes(data)

    message = entry(spec, folder, data, capsys)

    assert not marker.exists(), RAN
    assert f"tiny.pth {says}" in message
    assert "was left untouched" in message
    if hostile is not torchscript:
        assert "which is how a pickle runs code; it was not loaded" in message
    assert (folder / "tiny.pth").read_bytes() == data
    assert sorted(p.name for p in folder.iterdir()) == ["tiny.pth"]  # no safetensors, no card, no leftovers
    assert not hasattr(torch.Tensor, "planted_attr")


def test_the_payloads_are_real(tmp_path):
    """Read with plain pickle (what the fix replaces), the payloads do run: the tests above test something."""
    for builder in (legacy_first_record, legacy_main_record, zip_main_record, numpy_object_array, numpy_runstring):
        marker = tmp_path / builder.__name__
        data, _ = builder(marker)
        if data.startswith(b"PK"):
            with zipfile.ZipFile(io.BytesIO(data)) as bundle:
                data = bundle.read(next(n for n in bundle.namelist() if n.endswith("data.pkl")))
        stream = io.BytesIO(data)
        for _ in range(4):  # a legacy file's magic number, protocol, sys_info, main record
            unpickler = pickle.Unpickler(stream)
            unpickler.persistent_load = lambda pid: None
            try:
                unpickler.load()
            except Exception:  # noqa: BLE001 - the tensors cannot be rebuilt here; the marker is what matters
                break
        assert marker.exists(), builder.__name__


class _PlantedConfig:
    """Pickled as ``planted_module.Config``: a module the test writes, which must never be imported."""


_PlantedConfig.__module__, _PlantedConfig.__qualname__ = "planted_module", "Config"


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_an_unknown_module_is_never_imported(tmp_path, monkeypatch, legacy):
    """A global from a module outside every list becomes a placeholder; importing the module would run it."""
    marker = tmp_path / "marker"
    stand_in = ModuleType("planted_module")
    stand_in.Config = _PlantedConfig
    monkeypatch.setitem(sys.modules, "planted_module", stand_in)  # pickle checks the name resolves
    path = tmp_path / "tiny.pth"
    path.write_bytes((legacy_save if legacy else zip_save)(_checkpoint(_PlantedConfig())))
    monkeypatch.delitem(sys.modules, "planted_module")
    (tmp_path / "planted_module.py").write_text(f"open({str(marker)!r}, 'w').write({RAN!r})\nclass Config: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    assert type(load_pickle(path)["meta"]).__name__ == "Unloaded[planted_module.Config]"
    assert not marker.exists() and "planted_module" not in sys.modules


# ------------------------------------------------------- real checkpoints still load


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_real_shaped_checkpoints_still_load(tmp_path, legacy):
    """Lightning-like: float16 and bfloat16 tensors, Parameters, int buffers, numpy and argparse metadata."""
    marker = tmp_path / "marker"
    state = collections.OrderedDict(
        [("conv.weight", torch.randn(3, 3, 1, 1).half()), ("conv.bias", nn.Parameter(torch.randn(3))),
         ("norm.num_batches_tracked", torch.tensor(5)), ("emb.weight", torch.randn(2, 2).bfloat16()),
         ("view", torch.arange(10.0)[2:6])])
    checkpoint = {
        "epoch": 40, "pytorch-lightning_version": "1.2.9", "state_dict": state,
        "hyper_parameters": argparse.Namespace(lr=1e-3, name="big-lama"),
        "callbacks": {Reduce(_write_marker, str(marker)): {"best_model_score": torch.tensor(0.5)}},
        "metrics": {"score": np.float32(0.25), "steps": np.int64(7), "curve": np.linspace(0, 1, 4)},
        "optimizer_states": [{"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"betas": (0.9, 0.99)}]}],
        "raw": b"\x00\xffbytes", "flags": {1, 2}, "frozen": frozenset({3}), "span": slice(1, 4), "z": 1 + 2j,
    }
    path = tmp_path / "best.ckpt"
    path.write_bytes(legacy_save(checkpoint) if legacy else zip_save(checkpoint))
    before = path.read_bytes()

    loaded = load_pickle(path)

    for key, tensor in state.items():
        assert loaded["state_dict"][key].dtype == tensor.dtype and torch.equal(loaded["state_dict"][key], tensor)
    assert isinstance(loaded["state_dict"]["conv.bias"], nn.Parameter)
    assert type(loaded["hyper_parameters"]).__name__ == "Unloaded[argparse.Namespace]"
    assert loaded["hyper_parameters"].state == {"lr": 1e-3, "name": "big-lama"}
    assert type(next(iter(loaded["callbacks"]))).__name__ == f"Unloaded[{__name__}._write_marker]"
    assert loaded["metrics"]["score"] == np.float32(0.25) and loaded["metrics"]["steps"] == 7
    assert np.array_equal(loaded["metrics"]["curve"], np.linspace(0, 1, 4))
    assert (loaded["raw"], loaded["flags"], loaded["frozen"], loaded["z"]) == (b"\x00\xffbytes", {1, 2}, {3}, 1 + 2j)
    assert not marker.exists() and path.read_bytes() == before


def test_a_tar_format_file_without_payload_loads(tmp_path):
    empty = pickle.dumps(0, protocol=2)
    path = tmp_path / "old.pth"
    path.write_bytes(tar_of({"storages": empty + pickle.dumps([], protocol=2), "tensors": empty,
                           "pickle": pickle.dumps({"generator": {"step": 3}}, protocol=2)}))
    assert load_pickle(path) == {"generator": {"step": 3}}


# ------------------------------------------------ weights that would break inference


class NormNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.norm = nn.BatchNorm2d(3)


def test_strict_load_accepts_half_precision_and_integer_buffers():
    state = {k: v.half() if v.is_floating_point() else v.int() for k, v in NormNet().state_dict().items()}
    net = NormNet()
    load_strict(net, state)
    assert net.conv.weight.dtype == torch.float32 and net.norm.num_batches_tracked.dtype == torch.int64
    assert torch.equal(net.conv.weight, state["conv.weight"].float())


@pytest.mark.parametrize(("bad", "says"), [
    (lambda w: w.mul(100).to(torch.int8), "non-floating values for floating-point tensors: conv.weight (int8)"),
    (lambda w: w.index_fill(0, torch.tensor([1]), float("nan")), "NaN or infinite values in: conv.weight"),
    (lambda w: w.index_fill(0, torch.tensor([0]), float("inf")).half(), "NaN or infinite values in: conv.weight"),
], ids=["int8", "nan", "inf-float16"])
@pytest.mark.parametrize("container", ["official", "safetensors"])
def test_verify_refuses_weights_that_would_break_inference(bad, says, container, checkpoints, monkeypatch, capsys):
    spec = pinned_spec(monkeypatch, None)
    folder = checkpoints / spec.id
    folder.mkdir()
    state = {"conv.weight": bad(torch.randn(3, 3, 1, 1)), "conv.bias": torch.zeros(3)}
    if container == "official":
        torch.save({"generator": state}, folder / "tiny.pth")
    else:
        save_file(state, str(folder / "model.safetensors"))
    assert cli.main(["verify", spec.id]) == 1
    err = capsys.readouterr().err
    assert says in err and "download or convert it again" in err
    if container == "official":
        assert cli.main(["convert", spec.id]) == 1
        assert says in capsys.readouterr().err and not (folder / "model.safetensors").exists()


def test_verify_accepts_float16_official_weights(checkpoints, monkeypatch, capsys):
    spec = pinned_spec(monkeypatch, None)
    (checkpoints / spec.id).mkdir()
    torch.save({"generator": {"conv.weight": torch.randn(3, 3, 1, 1).half(), "conv.bias": torch.zeros(3).half()}},
               checkpoints / spec.id / "tiny.pth")
    assert cli.main(["verify", spec.id]) == 0
    assert "loads strictly" in capsys.readouterr().out


# ------------------------------------------------------------- official archives


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` (hidden ones too) with its bytes and mtime."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()} if folder.exists() else {}


def _patch_central(archive: bytes, member: str, offset: int, fmt: str, value: int) -> bytes:
    """Change one field of ``member``'s central-directory entry (what ZipInfo is read from)."""
    data = bytearray(archive)
    with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
        pos = bundle.start_dir
    while data[pos:pos + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        if data[pos + 46:pos + 46 + name_len].decode() == member:
            struct.pack_into(fmt, data, pos + offset, value)
        pos += 46 + name_len + extra_len + comment_len
    return bytes(data)


def _flip_data_byte(archive: bytes, member: str) -> bytes:
    """Corrupt one byte of a stored member's data: its CRC no longer matches (found at the end of the read)."""
    with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
        info = bundle.getinfo(member)
    name_len, extra_len = struct.unpack_from("<HH", archive, info.header_offset + 26)
    at = info.header_offset + 30 + name_len + extra_len + info.compress_size // 2
    return archive[:at] + bytes([archive[at] ^ 0xFF]) + archive[at + 1:]


TWO_MEMBERS = {"tiny/models/first.pth": "first.pth", MEMBER: "tiny.pth"}


def _two_member_spec(monkeypatch, archive: bytes, **fields) -> registry.ModelSpec:
    return pinned_spec(monkeypatch, archive, members=TWO_MEMBERS, **fields)


def test_unpinned_archive_is_refused_before_download(server, hf_env, monkeypatch):
    spec = pinned_spec(monkeypatch, None)
    server.add("authors/tiny", {"tiny.zip": zip_of({MEMBER: official_tiny()[0]})})
    with pytest.raises(WeightsError, match="has no sha256 pin") as error:
        fetch_archive(spec)
    assert "sha256sum tiny.zip" in str(error.value) and "app/registry.py" in str(error.value)
    assert not any("tiny.zip" in request.path for request in server.requests)  # not even downloaded


def test_wrong_sha_or_size_is_refused_and_nothing_extracted(server, hf_env, checkpoints, monkeypatch,
                                                            capsys):
    archive = zip_of({MEMBER: official_tiny()[0]})
    served = archive[:-1] + bytes([archive[-1] ^ 1])
    server.add("authors/tiny", {"tiny.zip": served})
    spec = pinned_spec(monkeypatch, archive)
    with pytest.raises(WeightsError, match="does not match its pinned sha256") as error:
        fetch_archive(spec)
    assert _sha(archive) in str(error.value) and _sha(served) in str(error.value)
    assert cli.main(["fetch-official", spec.id]) == 1
    assert "does not match its pinned sha256" in capsys.readouterr().err
    assert not (checkpoints / spec.id).exists()
    resized = pinned_spec(monkeypatch, archive, size=len(archive) + 1)
    with pytest.raises(WeightsError, match=f"is {len(archive)} bytes, not the pinned {len(archive) + 1}"):
        fetch_archive(resized)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_oversized_member_is_refused_before_anything_is_written(checkpoints, monkeypatch, tmp_path):
    archive = zip_of({"tiny/models/first.pth": b"ok", MEMBER: b"x" * 2000})
    spec = _two_member_spec(monkeypatch, archive, max_member_bytes=1000)
    (tmp_path / "a.zip").write_bytes(archive)
    with pytest.raises(WeightsError, match="would unpack to 2,000 bytes, more than the 1,000 allowed"):
        extract_members(spec, tmp_path / "a.zip")
    assert not (checkpoints / spec.id).exists()


def test_zip_bomb_ratio_is_refused_and_the_folder_is_as_before(checkpoints, monkeypatch, tmp_path):
    archive = zip_of({"tiny/models/first.pth": b"ok", MEMBER: bytes(4 << 20)}, zipfile.ZIP_DEFLATED)
    spec = _two_member_spec(monkeypatch, archive)
    folder = checkpoints / spec.id
    folder.mkdir()
    (folder / "tiny.pth").write_bytes(b"the good official file")
    before = _snapshot(folder)
    (tmp_path / "a.zip").write_bytes(archive)
    with pytest.raises(WeightsError, match="times its packed size .* zip bomb"):
        extract_members(spec, tmp_path / "a.zip")
    assert _snapshot(folder) == before


def test_encrypted_member_is_refused(checkpoints, monkeypatch, tmp_path):
    archive = _patch_central(zip_of({"tiny/models/first.pth": b"ok", MEMBER: b"data"}), MEMBER, 8, "<H", 0x1)
    spec = _two_member_spec(monkeypatch, archive)
    (tmp_path / "a.zip").write_bytes(archive)
    with pytest.raises(WeightsError, match="it is encrypted"):
        extract_members(spec, tmp_path / "a.zip")
    assert not (checkpoints / spec.id).exists()


@pytest.mark.parametrize("damage", ["bad-crc", "truncated"])
def test_damaged_member_leaves_nothing_and_keeps_the_good_file(damage, checkpoints, monkeypatch, tmp_path):
    """The first member is fine and written first; the second fails at the end of its read."""
    good, new = official_tiny()[0], zip_save(_checkpoint(None))
    archive = zip_of({"tiny/models/first.pth": b"first member", MEMBER: new})
    if damage == "bad-crc":
        archive = _flip_data_byte(archive, MEMBER)
    else:  # declares more bytes than it holds
        archive = _patch_central(archive, MEMBER, 24, "<I", len(new) + 100)
    spec = _two_member_spec(monkeypatch, archive)
    folder = checkpoints / spec.id
    folder.mkdir()
    (folder / "tiny.pth").write_bytes(good)
    before = _snapshot(folder)
    (tmp_path / "a.zip").write_bytes(archive)

    with pytest.raises(WeightsError, match="is damaged .*nothing was extracted"):
        extract_members(spec, tmp_path / "a.zip")

    assert _snapshot(folder) == before  # no .partial, no first.pth, tiny.pth untouched (bytes and mtime)


def test_damaged_member_in_a_new_folder_leaves_no_folder(checkpoints, monkeypatch, tmp_path):
    archive = _flip_data_byte(zip_of({"tiny/models/first.pth": b"first", MEMBER: b"second member"}), MEMBER)
    spec = _two_member_spec(monkeypatch, archive)
    (tmp_path / "a.zip").write_bytes(archive)
    with pytest.raises(WeightsError, match="Bad CRC"):
        extract_members(spec, tmp_path / "a.zip")
    assert list(checkpoints.iterdir()) == []


def test_disk_full_during_extraction_leaves_the_folder_as_before(checkpoints, monkeypatch, tmp_path):
    """A real write failure (the file-size limit: EFBIG, as ENOSPC would be) halfway through a member."""
    archive = zip_of({"tiny/models/first.pth": b"first member", MEMBER: os.urandom(256 << 10)})
    spec = _two_member_spec(monkeypatch, archive)
    folder = checkpoints / spec.id
    folder.mkdir()
    (folder / "tiny.pth").write_bytes(b"the good official file")
    before = _snapshot(folder)
    (tmp_path / "a.zip").write_bytes(archive)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, hard))
    try:
        with pytest.raises(WeightsError, match="Could not write tiny/models/tiny.pth .*nothing was extracted"):
            extract_members(spec, tmp_path / "a.zip")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert _snapshot(folder) == before


def test_not_enough_room_is_refused_up_front(checkpoints, monkeypatch, tmp_path):
    archive = zip_of({"tiny/models/first.pth": b"first", MEMBER: b"second"})
    spec = _two_member_spec(monkeypatch, archive)
    (tmp_path / "a.zip").write_bytes(archive)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: SimpleNamespace(free=4))  # 4 bytes free
    with pytest.raises(WeightsError, match="only 0 MB are free; nothing was extracted"):
        extract_members(spec, tmp_path / "a.zip")
    assert not (checkpoints / spec.id).exists()


def test_successful_reextraction_replaces_the_official_file(checkpoints, monkeypatch, tmp_path):
    data = official_tiny()[0]
    archive = zip_of({"tiny/models/first.pth": b"first", MEMBER: data}, zipfile.ZIP_DEFLATED)
    spec = _two_member_spec(monkeypatch, archive)
    folder = checkpoints / spec.id
    folder.mkdir()
    (folder / "tiny.pth").write_bytes(b"an older file")
    (tmp_path / "a.zip").write_bytes(archive)
    assert extract_members(spec, tmp_path / "a.zip") == [folder / "first.pth", folder / "tiny.pth"]
    assert (folder / "tiny.pth").read_bytes() == data and (folder / "first.pth").read_bytes() == b"first"
    assert sorted(p.name for p in folder.iterdir()) == ["first.pth", "tiny.pth"]
