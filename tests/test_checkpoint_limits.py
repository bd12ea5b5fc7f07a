"""A checkpoint costs bounded memory and time, and ends in a message (issue 24).

Every hostile pickle here is written opcode by opcode and put where torch reads it: the zip
format's ``data.pkl`` (in a real ``torch.save`` archive), the legacy format's main record or
its magic-number record (in a real legacy file), the legacy tar format's members. Each goes
through ``load_pickle``, the one reader every loader uses (the web app, the CLI, ``weights
verify/convert/fetch-official``; ``test_weights_security.py`` holds that). Each time: a
``WeightsError`` naming the file and what it does, in well under a second, the process's
peak memory as before, the file's bytes unchanged. The call runs under an address-space
ceiling (1 GiB above what the process maps), so a regression fails the test with a
``MemoryError`` instead of taking the machine down. ``test_the_payloads_are_real`` shows the
readers, without the scan, really do allocate, crash or stall on them.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import pickletools
import resource
import struct
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from app.errors import WeightsError
from app.weights import pickle_scan
from app.weights.official import OfficialFile, _classify, _RestrictedPickleModule, load_pickle, read_official_file
from tests.archives import legacy_save, tar_of, zip_save

GB3 = 3_000_000_000
MAGIC = 0x1950A86A20F9469CFC6C
BOUNDED = "could crash the server or exhaust its memory or time, so it was not loaded and was left untouched"


# ------------------------------------------------------------------ writing pickles by hand


def _int(n: int) -> bytes:
    if 0 <= n < 256:
        return pickle.BININT1 + bytes([n])
    if -(2 ** 31) <= n < 2 ** 31:
        return pickle.BININT + struct.pack("<i", n)
    data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return pickle.LONG1 + bytes([len(data)]) + data


def _text(s: str) -> bytes:
    data = s.encode("utf-8")
    return pickle.BINUNICODE + struct.pack("<I", len(data)) + data


def _bytes(b: bytes) -> bytes:
    return pickle.BINBYTES + struct.pack("<I", len(b)) + b


def _global(module: str, name: str) -> bytes:
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def _call(module: str, name: str, *args: bytes) -> bytes:
    """``module.name(*args)`` by REDUCE."""
    return _global(module, name) + pickle.MARK + b"".join(args) + pickle.TUPLE + pickle.REDUCE


def _record(body: bytes) -> bytes:
    """One protocol-2 pickle whose value is what ``body`` leaves on the stack."""
    return pickle.PROTO + b"\x02" + body + pickle.STOP


def _in_dict(key: bytes, value: bytes = pickle.NONE) -> bytes:
    return pickle.EMPTY_DICT + key + value + pickle.SETITEM


# ------------------------------------------------------------------ real containers, one record replaced


def zip_with(data_pkl: bytes, **members: bytes) -> bytes:
    """A real ``torch.save`` zip archive with its ``data.pkl`` (and ``members``, by record name) replaced."""
    source = zipfile.ZipFile(io.BytesIO(zip_save({"w": torch.ones(2)})))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as bundle:
        prefix = source.namelist()[0].partition("/")[0]
        for info in source.infolist():
            record = info.filename.removeprefix(prefix + "/")
            bundle.writestr(info, data_pkl if record == "data.pkl" else members.pop(record, source.read(info)))
        for record, data in members.items():
            bundle.writestr(f"{prefix}/{record}", data)
    return out.getvalue()


def _record_end(data: bytes, count: int) -> int:
    """Offset after the first ``count`` pickle records of our own legacy file (read as opcodes, never run)."""
    stream = io.BytesIO(data)
    for _ in range(count):
        for _op in pickletools.genops(stream):
            pass
    return stream.tell()


def legacy_with(index: int, record: bytes) -> bytes:
    """A real legacy file (magic number, protocol, sys_info, main, keys, blocks) with record ``index`` replaced."""
    data = legacy_save({"w": torch.ones(2)})
    start, end = _record_end(data, index), _record_end(data, index + 1)
    return data[:start] + record + data[end:]


def in_magic_number(body: bytes) -> bytes:
    """``body`` runs inside the magic-number record, whose value is still the magic number."""
    return legacy_with(0, _record(body + pickle.POP + _int(MAGIC)))


# ------------------------------------------------------------------ the hostile records


def _memo_chain(step: bytes, times: int) -> bytes:
    """``x = (); repeat: x = step(x)``, ``x`` living in memo slot 0; leaves ``x`` on the stack."""
    slot = pickle.BINPUT + b"\0" + pickle.POP
    return pickle.EMPTY_TUPLE + slot + (pickle.BINGET + b"\0" + step + slot) * times + pickle.BINGET + b"\0"


def deep_key_by_opcodes(depth: int = 10 ** 6) -> bytes:
    """``{((((...),),),): None}`` 10**6 deep: hashing the key overflows the C stack (1 MB)."""
    return _record(_in_dict(pickle.EMPTY_TUPLE + pickle.TUPLE1 * depth))


def deep_key_by_memo(depth: int = 10 ** 6) -> bytes:
    """The same nesting without nested opcodes: ``x = (); repeat: x = (x,)`` through the memo."""
    return _record(_in_dict(_memo_chain(pickle.TUPLE1, depth)))


def bytearray_by_reduce(n: int = GB3) -> bytes:
    return _call("builtins", "bytearray", _int(n))


def bytearray_by_inst(n: int = GB3) -> bytes:
    return pickle.MARK + _int(n) + pickle.INST + b"__builtin__\nbytearray\n"


def numpy_object_array(count: int = 250_000_000) -> bytes:
    """numpy's own spelling of an array, of Python objects: numpy allocates 8 bytes each before checking."""
    empty = _call("numpy._core.multiarray", "_reconstruct", _global("numpy", "ndarray"), _int(0) + pickle.TUPLE1,
                  _bytes(b"b"))
    dtype = _call("numpy", "dtype", _text("O8"), pickle.NEWFALSE, pickle.NEWTRUE)
    state = pickle.MARK + _int(1) + _int(count) + pickle.TUPLE1 + dtype + pickle.NEWFALSE + pickle.EMPTY_LIST \
        + pickle.TUPLE
    return empty + state + pickle.BUILD


def numpy_huge_reconstruct() -> bytes:
    return _call("numpy.core.multiarray", "_reconstruct", _global("numpy", "ndarray"), _int(GB3) + pickle.TUPLE1,
                 _bytes(b"b"))


PUNY = "".join(chr(0x4E00 + i) for i in range(64))  # the probe used 61 kB of distinct characters: 42 s


def punycode_by_codecs() -> bytes:
    return _call("_codecs", "encode", _text(PUNY), _text("punycode"))


def punycode_by_str() -> bytes:
    return _call("builtins", "str", _bytes(PUNY.encode("punycode")), _text("punycode"))


def punycode_by_bytes() -> bytes:
    return _call("builtins", "bytes", _text(PUNY), _text("punycode"))


def colliding_keys(count: int = 20_000) -> bytes:
    """Integers that share one hash (``n * (2**61 - 1)``): inserting them is quadratic (4 s for these)."""
    keys = b"".join(_int(i * (2 ** 61 - 1)) + pickle.NONE for i in range(count))
    return pickle.EMPTY_DICT + pickle.MARK + keys + pickle.SETITEMS


def doubling_tuple_key(levels: int = 60) -> bytes:
    """``t = (t, t)`` 60 times through the memo: 120 opcodes, a key that hashes 2**60 elements."""
    return _in_dict(_memo_chain(pickle.DUP + pickle.TUPLE2, levels))


def repeated_copies(size: int = 10 ** 5, copies: int = 10 ** 5) -> bytes:
    """``list(L)`` of one memoised 10**5-element list, 10**5 times: 10**10 pointers from 1 MB."""
    big = pickle.EMPTY_LIST + pickle.BINPUT + b"\1" + pickle.MARK + pickle.NONE * size + pickle.APPENDS + pickle.POP
    copy = pickle.BINGET + b"\2" + pickle.BINGET + b"\1" + pickle.TUPLE1 + pickle.REDUCE
    return big + _global("builtins", "list") + pickle.BINPUT + b"\2" + pickle.POP + pickle.EMPTY_LIST \
        + pickle.MARK + copy * copies + pickle.APPENDS


def repeated_latin1(copies: int = 20_000) -> bytes:
    """``_codecs.encode(text, 'latin1')`` of one memoised 1 MB text, kept 20,000 times: 20 GB from 1.1 MB."""
    encode = _global("_codecs", "encode") + pickle.BINPUT + b"\1" + pickle.POP \
        + _text("x" * (1 << 20)) + _text("latin1") + pickle.TUPLE2 + pickle.BINPUT + b"\2" + pickle.POP
    again = pickle.BINGET + b"\1" + pickle.BINGET + b"\2" + pickle.REDUCE
    return encode + pickle.EMPTY_LIST + pickle.MARK + again * copies + pickle.APPENDS


def placeholder_keeping_arguments(size: int = 10 ** 5, calls: int = 10 ** 5) -> bytes:
    """An unknown class called 10**5 times with one memoised 10**5-tuple: each instance keeps its own copy."""
    args = pickle.MARK + pickle.NONE * size + pickle.TUPLE + pickle.BINPUT + b"\1" + pickle.POP
    call = pickle.BINGET + b"\2" + pickle.BINGET + b"\1" + pickle.REDUCE
    return args + _global("lightning", "Callback") + pickle.BINPUT + b"\2" + pickle.POP + pickle.EMPTY_LIST \
        + pickle.MARK + call * calls + pickle.APPENDS


def _hidden_after_a_frame() -> bytes:
    """A magic-number record whose frame goes on after its STOP: the pure-Python reader skips the rest of the
    frame, so its next record (a bomb) is not where a scan reading on from the STOP would look."""
    harmless = legacy_save({"w": torch.ones(2)})
    protocol = harmless[_record_end(harmless, 1):_record_end(harmless, 2)]
    inside = _int(MAGIC) + pickle.STOP + protocol  # a scan reading on finds a harmless protocol record here
    magic = pickle.PROTO + b"\x04" + pickle.FRAME + struct.pack("<Q", len(inside)) + inside
    return magic + _record(bytearray_by_reduce()) + harmless[_record_end(harmless, 2):]


def unknown_globals(count: int = 1025) -> bytes:
    """1,025 different unknown names: the restricted reader makes a class for each (2**20 of them: 2 GB)."""
    return pickle.MARK + b"".join(_global("lightning", f"C{i}") for i in range(count)) + pickle.TUPLE


def legacy_storage(numel: int = 10 ** 9) -> bytes:
    """A legacy main record whose tensor declares a storage of ``numel`` floats (torch allocates it first)."""
    pid = pickle.MARK + _text("storage") + _global("torch", "FloatStorage") + _text("0") + _text("cpu") \
        + _int(numel) + pickle.NONE + pickle.TUPLE + pickle.BINPERSID
    tensor = _call("torch._utils", "_rebuild_tensor_v2", pid, _int(0), _int(2) + pickle.TUPLE1,
                   _int(1) + pickle.TUPLE1, pickle.NEWFALSE, _call("collections", "OrderedDict"))
    return _record(_in_dict(_text("w"), tensor))


# ------------------------------------------------------------------ the cases

#: (id, file bytes, what the message says the file does)
CASES = [
    ("deep-key-zip", lambda: zip_with(deep_key_by_opcodes()), "nests values more than 100 levels deep"),
    ("deep-key-legacy", lambda: legacy_with(3, deep_key_by_opcodes()), "nests values more than 100 levels deep"),
    ("deep-key-by-memo-zip", lambda: zip_with(deep_key_by_memo()), "nests values more than 100 levels deep"),
    ("deep-key-by-memo-magic-number", lambda: in_magic_number(deep_key_by_memo()[2:-1] + pickle.POP),
     "nests values more than 100 levels deep"),
    ("bytearray-reduce-zip", lambda: zip_with(_record(bytearray_by_reduce())),
     "asks builtins.bytearray for 3,000,000,000 bytes"),
    ("bytearray-inst-zip", lambda: zip_with(_record(bytearray_by_inst())),
     "asks builtins.bytearray for 3,000,000,000 bytes"),
    ("bytearray-reduce-legacy-main", lambda: legacy_with(3, _record(_in_dict(_text("w"), bytearray_by_reduce()))),
     "asks builtins.bytearray for 3,000,000,000 bytes"),
    ("bytearray-reduce-magic-number", lambda: in_magic_number(bytearray_by_reduce()),
     "asks builtins.bytearray for 3,000,000,000 bytes"),
    ("bytearray-inst-magic-number", lambda: in_magic_number(bytearray_by_inst()),
     "asks builtins.bytearray for 3,000,000,000 bytes"),
    ("bytes-reduce-legacy-main", lambda: legacy_with(3, _record(_call("builtins", "bytes", _int(GB3)))),
     "asks builtins.bytes for 3,000,000,000 bytes"),
    ("numpy-object-array-zip", lambda: zip_with(_record(numpy_object_array())),
     "holds a numpy array of Python objects"),
    ("numpy-object-array-legacy", lambda: legacy_with(3, _record(numpy_object_array())),
     "holds a numpy array of Python objects"),
    ("numpy-reconstruct-shape-zip", lambda: zip_with(_record(numpy_huge_reconstruct())),
     "asks numpy.core.multiarray._reconstruct for 3,000,000,000 bytes"),
    ("punycode-codecs-zip", lambda: zip_with(_record(punycode_by_codecs())),
     "asks _codecs.encode for the 'punycode' codec"),
    ("punycode-codecs-magic-number", lambda: in_magic_number(punycode_by_codecs()),
     "asks _codecs.encode for the 'punycode' codec"),
    ("punycode-str-legacy", lambda: legacy_with(3, _record(punycode_by_str())), "asks builtins.str for the 'punycode'"),
    ("punycode-bytes-zip", lambda: zip_with(_record(punycode_by_bytes())), "asks builtins.bytes for the 'punycode'"),
    ("colliding-keys-zip", lambda: zip_with(_record(colliding_keys())),
     "has more than 32 distinct keys with the same hash"),
    ("doubling-tuple-key-legacy", lambda: legacy_with(3, _record(doubling_tuple_key())),
     "makes its reader hash or copy more than"),
    ("repeated-copies-zip", lambda: zip_with(_record(repeated_copies())),
     "makes builtins.list and other calls copy more than"),
    ("repeated-latin1-legacy", lambda: legacy_with(3, _record(repeated_latin1())),
     "makes _codecs.encode and other calls copy more than"),
    ("placeholder-keeping-arguments-zip", lambda: zip_with(_record(placeholder_keeping_arguments())),
     "makes lightning.Callback and other calls copy more than"),
    ("frame-of-3-gb-magic-number", lambda: in_magic_number(pickle.FRAME + struct.pack("<Q", GB3)),
     "is not a readable PyTorch checkpoint (declares a frame of 3,000,000,000 bytes"),
    ("record-ending-inside-its-frame-legacy", lambda: _hidden_after_a_frame(), "is not a readable PyTorch checkpoint "
     "(ends a pickle record inside a frame"),
    ("frame-of-3-gb-zip", lambda: zip_with(_record(pickle.FRAME + struct.pack("<Q", GB3) + pickle.NONE)),
     "is not a readable PyTorch checkpoint (declares a frame of 3,000,000,000 bytes"),
    ("unknown-globals-flood-zip", lambda: zip_with(_record(unknown_globals())),
     "names more than 1,024 different unknown classes or functions"),
    ("megabyte-long-name-legacy", lambda: legacy_with(3, _record(_global("os", "x" * (1 << 19)))),
     "refers to os.xxxxxxxx"),
    ("zip-directory-of-5-mb", lambda: _zip_directory_of(5 << 20), "has a zip directory of 5,"),
    ("tar-pax-header", lambda: _tar_with_pax_header(), "has a tar header of type b'x'"),
    ("legacy-storage-of-1e9-floats", lambda: legacy_with(3, legacy_storage()),
     "declares 4,000,000,000 bytes of tensor storage in a file of"),
    ("zip-storage-longer-than-its-record", lambda: zip_with(_record(legacy_storage(10 ** 9)).replace(
        pickle.NONE + pickle.TUPLE + pickle.BINPERSID, pickle.TUPLE + pickle.BINPERSID)),
     "declares storage '0' of 4,000,000,000 bytes, but holds 8 for it"),
    ("zip-deflated-member", lambda: _deflated(zip_with(_record(pickle.NONE))),
     "has a compressed or encrypted zip member"),
    ("tar-fifo-member", lambda: _tar_with_fifo(), "has a tar header of type b'6', which torch's tar writer never"),
]


def _deflated(archive: bytes) -> bytes:
    """The same archive with its storage record deflated (torch would inflate whatever size it declares)."""
    source, out = zipfile.ZipFile(io.BytesIO(archive)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as bundle:
        for info in source.infolist():
            method = zipfile.ZIP_DEFLATED if info.filename.endswith("data/0") else zipfile.ZIP_STORED
            bundle.writestr(info.filename, source.read(info), compress_type=method)
    return out.getvalue()


def _zip_directory_of(size: int) -> bytes:
    """A real archive with a directory of about ``size`` bytes (long names: Python keeps ~350 B per entry)."""
    names = {f"junk/{i:02d}" + "x" * 60_000: b"" for i in range(-(-size // 60_000))}
    return zip_with(_record(pickle.NONE), **names)


def _tar_with_pax_header() -> bytes:
    """torch's tar layout with a PAX extended header: ``tarfile`` parses every such record into a dict."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in {"storages": pickle.dumps(0, protocol=2) + pickle.dumps([], protocol=2),
                           "tensors": pickle.dumps(0, protocol=2), "pickle": pickle.dumps({}, protocol=2)}.items():
            info = tarfile.TarInfo(name)
            info.size, info.pax_headers = len(data), {f"k{i}": "v" for i in range(1000)}
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _tar_with_fifo() -> bytes:
    """torch extracts ``storages`` and opens it: as a FIFO the open never returns."""
    plain = tar_of({"tensors": pickle.dumps(0, protocol=2), "pickle": pickle.dumps({}, protocol=2)})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        fifo = tarfile.TarInfo("storages")
        fifo.type = tarfile.FIFOTYPE
        tar.addfile(fifo)
        with tarfile.open(fileobj=io.BytesIO(plain)) as source:
            for info in source.getmembers():
                tar.addfile(info, source.extractfile(info))
    return buffer.getvalue()


@contextlib.contextmanager
def memory_ceiling(headroom: int = 1 << 30) -> Iterator[None]:
    """At most ``headroom`` more address space than the process maps now: a bomb fails instead of swapping."""
    mapped = int(Path("/proc/self/status").read_text().split("VmSize:")[1].split()[0]) * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (mapped + headroom, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _refused(path: Path) -> tuple[str, float, float]:
    """``load_pickle`` on ``path`` under the ceiling: (message, seconds, growth of the peak in MB)."""
    before, start = _peak_mb(), time.perf_counter()
    with memory_ceiling(), pytest.raises(WeightsError) as error:
        load_pickle(path)
    return str(error.value), time.perf_counter() - start, _peak_mb() - before


@pytest.mark.parametrize(("build", "says"), [pytest.param(build, says, id=name) for name, build, says in CASES])
def test_a_hostile_checkpoint_is_refused_in_bounded_memory_and_time(build: Callable[[], bytes], says: str,
                                                                    tmp_path: Path) -> None:
    path = tmp_path / "best.ckpt"
    path.write_bytes(data := build())

    message, seconds, grown = _refused(path)

    assert f"best.ckpt {says}" in message
    if "not a readable" not in says and not says.startswith("refers to"):  # malformed, code: said so
        assert BOUNDED in message and "get it again from the authors' release" in message
    assert str(tmp_path) not in message and len(message) < 1000  # the file's name, never where it lies
    assert seconds < 2, f"{seconds:.1f} s"
    assert grown < 100, f"peak memory grew by {grown:.0f} MB"
    assert path.read_bytes() == data


# ------------------------------------------------------------------ where the bounds are


def test_the_bounds_sit_where_the_module_states_them(tmp_path: Path) -> None:
    """Nesting of exactly ``MAX_DEPTH`` and ``bytes(MAX_MADE_BYTES)`` are read; one more is refused."""
    path = tmp_path / "edge.pth"
    deepest = pickle_scan.MAX_DEPTH - 2  # the dict and the tuple () itself are levels too
    path.write_bytes(zip_with(deep_key_by_opcodes(deepest)))
    assert len(load_pickle(path)) == 1
    path.write_bytes(zip_with(deep_key_by_opcodes(deepest + 1)))
    assert "nests values more than 100 levels deep" in _refused(path)[0]

    path.write_bytes(zip_with(_record(_call("builtins", "bytes", _int(pickle_scan.MAX_MADE_BYTES)))))
    assert load_pickle(path) == bytes(pickle_scan.MAX_MADE_BYTES)
    path.write_bytes(zip_with(_record(_call("builtins", "bytes", _int(pickle_scan.MAX_MADE_BYTES + 1)))))
    assert "asks builtins.bytes for 65,537 bytes (at most 65,536 in all)" in _refused(path)[0]


def test_latin1_bytes_and_numpy_arrays_as_pickle_writes_them_still_load(tmp_path: Path) -> None:
    """Protocol 2's ``_codecs.encode(text, 'latin1')``, ``bytearray``, sets and numpy arrays, in both formats."""
    import numpy as np

    value = {"raw": b"\x00\xff" * 50, "buffer": bytearray(b"ab"), "set": {1, 2}, "frozen": frozenset({(1, 2)}),
             "array": np.arange(12, dtype=np.float32).reshape(3, 4), "text": np.array(["a", "bc"]),
             "when": np.datetime64("2020-01-01", "ns"), "tensor": torch.arange(6).view(2, 3).t()}
    for legacy in (False, True):
        path = tmp_path / f"meta{legacy}.pth"
        path.write_bytes(legacy_save(value) if legacy else zip_save(value))
        loaded = load_pickle(path)
        assert {k: v for k, v in loaded.items() if k not in ("array", "text", "tensor")} == \
            {k: v for k, v in value.items() if k not in ("array", "text", "tensor")}
        assert np.array_equal(loaded["array"], value["array"]) and list(loaded["text"]) == ["a", "bc"]
        assert torch.equal(loaded["tensor"], value["tensor"])


def test_a_big_lama_shaped_checkpoint_scans_quickly(tmp_path: Path) -> None:
    """Structure of big-lama's best.ckpt (generator, discriminator, Adam moments: 4,000 tensors), tiny values.

    The scan's cost follows the opcodes, not the tensor bytes; the full-size file (612 MB) scans
    in the same time (figures in ``app/weights/pickle_scan.py``).
    """
    state = {f"generator.model.{i}.weight": torch.zeros(1) for i in range(1000)} \
        | {f"discriminator.model{i}.weight": torch.zeros(1) for i in range(300)}
    moments = {i: {"step": torch.tensor(1.0), "exp_avg": torch.zeros(1), "exp_avg_sq": torch.zeros(1)}
               for i in range(len(state))}
    checkpoint = {"epoch": 40, "state_dict": state, "pytorch-lightning_version": "1.2.9",
                  "optimizer_states": [{"state": moments, "param_groups": [{"lr": 1e-3, "params": list(moments)}]}]}
    for legacy in (False, True):
        path = tmp_path / "best.ckpt"
        path.write_bytes(legacy_save(checkpoint) if legacy else zip_save(checkpoint))
        start = time.perf_counter()
        assert pickle_scan.scan_checkpoint(path, _classify).ops > 40_000
        assert time.perf_counter() - start < 3  # ~0.2 s here; room for a loaded 2-core machine


# ------------------------------------------------------------------ the payloads are real


def test_the_payloads_are_real(tmp_path: Path) -> None:
    """Without the scan, torch's reader with our allowlist does try to allocate what the files ask for."""
    for name, data in [("bytearray", legacy_with(3, _record(_in_dict(_text("w"), bytearray_by_reduce())))),
                       ("storage", legacy_with(3, legacy_storage()))]:
        path = tmp_path / f"{name}.pth"
        path.write_bytes(data)
        with memory_ceiling(), pytest.raises((MemoryError, RuntimeError), match="alloc|^$"):
            torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RestrictedPickleModule)


@pytest.mark.slow
def test_the_deep_key_kills_torchs_own_reader(tmp_path: Path) -> None:
    """``torch.load(weights_only=True)``, which ``load_pickle`` tries first, dies of the 1 MB deep key."""
    path = tmp_path / "deep.pth"
    path.write_bytes(zip_with(deep_key_by_opcodes()))
    code = f"import torch; torch.load({str(path)!r}, weights_only=True)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0)))
    assert done.returncode < 0, done.stderr.decode()[-500:]  # killed by a signal (SIGSEGV)


# ------------------------------------------------------------------ the figures in app/weights/pickle_scan.py


def _big_lama_shaped(folder: Path) -> dict[str, Path]:
    """best.ckpt as Lightning writes it for big-lama (zeros of the real shapes), in both formats."""
    import argparse
    import json

    from tests.paths import REFERENCE

    manifest = REFERENCE / "manifests" / "lama_generator.json"
    entries = json.loads(manifest.read_text())["entries"] if manifest.is_file() else \
        [{"key": f"model.{i}.weight", "shape": [192, 192, 3, 3]} for i in range(989)]  # 51 M values too
    state = {f"generator.{e['key']}": torch.zeros(e["shape"]) for e in entries} \
        | {f"discriminator.model{i}.{j}.weight": torch.zeros(64, 64, 4, 4) for i in range(5) for j in range(60)}
    moments = {i: {"step": torch.tensor(1.0), "exp_avg": torch.zeros_like(v), "exp_avg_sq": torch.zeros_like(v)}
               for i, v in enumerate(state.values())}
    checkpoint = {"epoch": 40, "global_step": 1000, "pytorch-lightning_version": "1.2.9", "state_dict": state,
                  "optimizer_states": [{"state": moments, "param_groups": [{"lr": 1e-3, "params": list(moments)}]}],
                  "hyper_parameters": argparse.Namespace(lr=1e-3, generator={"kind": "ffc_resnet", "n_blocks": 18})}
    paths = {"zip": folder / "best.ckpt", "legacy": folder / "best_legacy.ckpt"}
    torch.save(checkpoint, paths["zip"])
    torch.save(checkpoint, paths["legacy"], _use_new_zipfile_serialization=False)
    return paths


def _measure(read: Callable[[], object]) -> tuple[float, float]:
    """(best of 3 seconds, peak MB of Python allocations) of ``read()``."""
    import gc
    import tracemalloc

    seconds = []
    for _ in range(3):
        gc.collect()
        start = time.perf_counter()
        read()
        seconds.append(time.perf_counter() - start)
    tracemalloc.start()
    read()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return min(seconds), peak / 1e6


def main() -> None:
    """``python -m tests.test_checkpoint_limits``: what the scan costs on a real-shaped and on the worst files."""
    import functools
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for kind, path in _big_lama_shaped(Path(tmp)).items():
            cost = pickle_scan.scan_checkpoint(path, _classify)
            scan, peak = _measure(functools.partial(pickle_scan.scan_checkpoint, path, _classify))
            start = time.perf_counter()
            load_pickle(path)
            total = time.perf_counter() - start
            print(f"big-lama-shaped {kind}: {path.stat().st_size / 1e6:.0f} MB, {cost.ops:,} opcodes: "
                  f"scan {scan:.2f} s ({scan / cost.ops * 1e6:.1f} us/opcode), {peak:.0f} MB; "
                  f"load_pickle {total:.1f} s")
            path.unlink()
        n = pickle_scan.MAX_OPS - 8
        worst = {"lists": pickle.MARK + pickle.EMPTY_LIST * n + pickle.POP_MARK + pickle.NONE,
                 "ints": pickle.EMPTY_LIST + pickle.MARK + _int(1 << 20) * n + pickle.APPENDS}
        for kind, body in worst.items():
            path = Path(tmp) / f"{kind}.pth"
            path.write_bytes(zip_with(_record(body)))
            scan, peak = _measure(functools.partial(pickle_scan.scan_checkpoint, path, _classify))
            read, read_peak = _measure(functools.partial(torch.load, path, weights_only=False,
                                                         pickle_module=_RestrictedPickleModule))
            print(f"worst ({n:,} opcodes of {kind}): scan {scan:.2f} s, {peak:.0f} MB; "
                  f"torch's restricted reader {read:.2f} s, {read_peak:.0f} MB")


if __name__ == "__main__":
    main()


def test_a_state_dict_keyed_by_something_else_than_names_is_a_message(tmp_path: Path) -> None:
    path = tmp_path / "gen.pth"
    torch.save({"generator": {1: torch.zeros(2), (2, 3): torch.ones(1)}}, path)
    with pytest.raises(WeightsError, match=r"gen.pth: a key of its state_dict is a int, not a name"):
        read_official_file(path, OfficialFile("gen.pth", "", container="generator"))
