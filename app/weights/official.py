"""Read the authors' released checkpoint files without running pickled code.

The official releases are ``torch.save`` pickles in several containers (a bare
state_dict, ``{'generator': ...}``, a Lightning ``best.ckpt``...). Each model module
declares its files with :class:`OfficialFile`; :func:`read_official` turns them into
one flat state_dict in *our* key layout (``<component>.<key>``), which is also the
layout of our safetensors files, so both sources go through the same strict load.

How a file is read (:func:`load_pickle`), so that no code from it ever runs:

* TorchScript archives are refused up front: they are programs, and ``torch.load`` would
  hand them to ``torch.jit.load``.
* Every pickle record of the file is then scanned without constructing anything
  (:mod:`app.weights.pickle_scan`): nesting depth, opcodes, hashing work, allocations asked of
  allowed globals, declared storages, codecs and numpy arrays are bounded there, so no file
  can crash the process or hold its memory or time; the globals it names are judged by the
  same allowlist as below.
* torch's own ``weights_only`` loader is tried first. When it declines (a Lightning
  checkpoint's OmegaConf config, argparse metadata, a legacy tar file), the file is read
  again with :class:`_RestrictedUnpickler` as torch's ``pickle_module``, which then reads
  EVERY pickle record of every format torch loads: the zip format's ``data.pkl``, and the
  legacy format's magic number, protocol, sys_info, main and storage-key records (and the
  tar variant's storage and tensor tables).
* That unpickler never imports anything. A global is looked up in :data:`ALLOWED` (the tensor
  rebuild functions, storage types, dtypes, containers and numpy array/scalar types that
  ``torch.save`` writes for real checkpoints); a global from a module family in
  :data:`CODE_RUNNERS` (os, subprocess, builtins beyond the allowed types, torch and numpy
  beyond the allowed names, ...) is how a pickle runs code, so the file is refused with a
  :class:`WeightsError` naming it; any other global (OmegaConf, argparse, Lightning
  callbacks) becomes an inert placeholder class, so metadata never stops a load.
* Setting attributes on a class or function (pickle's BUILD on a callable) is refused: it
  would change that type for the whole process. ``_rebuild_from_type_v2`` only rebuilds a
  tensor with an allowed rebuild function into ``Tensor``/``Parameter``.
* Files are only ever opened for reading: a refused file is left exactly as it was.
"""

from __future__ import annotations

import _codecs
import _compat_pickle
import functools
import pickle
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.serialization as torch_serialization

from app.errors import WeightsError
from app.specs import OfficialFile
from app.weights.pickle_scan import LATIN1, Refusal, Unreadable, scan_checkpoint, shown

try:
    from numpy._core import multiarray as _multiarray  # numpy 2
except ImportError:  # numpy 1
    from numpy.core import multiarray as _multiarray


# ------------------------------------------------------------------ what a pickle may name

#: Top-level modules whose globals are how a pickle runs code (call a program, evaluate a
#: string, import or open something, fetch an attribute). Outside :data:`ALLOWED`, a global
#: from any of them makes the whole file refused; it is never imported.
CODE_RUNNERS = frozenset({
    "builtins", "os", "posix", "nt", "posixpath", "ntpath", "subprocess", "_posixsubprocess", "sys", "importlib",
    "imp", "runpy", "pkgutil", "zipimport", "site", "shutil", "tempfile", "glob", "io", "_io", "pathlib",
    "fileinput", "socket", "select", "ssl", "http", "urllib", "ftplib", "smtplib", "telnetlib", "xmlrpc",
    "webbrowser", "pickle", "_pickle", "pickletools", "copyreg", "marshal", "shelve", "dill", "cloudpickle",
    "joblib", "ctypes", "_ctypes", "mmap", "code", "codeop", "pty", "pdb", "bdb", "timeit", "trace", "profile",
    "cProfile", "inspect", "types", "functools", "operator", "_operator", "codecs", "_codecs", "logging",
    "multiprocessing", "threading", "_thread", "signal", "asyncio", "concurrent", "gc", "atexit", "weakref",
    "yaml", "pip", "setuptools", "distutils", "torch", "numpy",
})


def _rebuild_from_type(func: Callable[..., Any], new_type: type, args: tuple, state: Any) -> torch.Tensor:
    """``torch._tensor._rebuild_from_type_v2`` limited to what ``torch.save`` writes.

    The original calls any ``func`` from the file; here it must be a tensor rebuild
    function and the type a tensor type, so the call cannot be repurposed.
    """
    if not any(func is f for f in _REBUILDS.values()):
        raise _Refused(f"rebuilds a tensor with {_qualname(func)}")
    if new_type not in (torch.Tensor, torch.nn.Parameter):
        raise _Refused(f"rebuilds a tensor as {_qualname(new_type)}")
    return torch._tensor._rebuild_from_type_v2(func, new_type, args, state)


_REBUILDS: dict[str, Callable[..., Any]] = {name: getattr(torch._utils, name) for name in (
    "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
    "_rebuild_parameter_with_state")}


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it (``(text, 'latin1')``); other codecs can be quadratic."""
    if type(text) is not str or encoding not in LATIN1 or errors != "strict":
        raise _Refused(f"asks _codecs.encode for the {shown(str(encoding), 40)!r} codec (only latin1 is read)",
                       runs_code=False)
    return _codecs.encode(text, "latin1")


_STORAGES = ("Float", "Half", "BFloat16", "Double", "Long", "Int", "Short", "Char", "Byte", "Bool")
_MULTIARRAY = {"_reconstruct": _multiarray._reconstruct, "scalar": _multiarray.scalar}

#: Every global a checkpoint may name, by (module, name), and the object it stands for.
#: Storage types map to torch's own ``StorageType`` (what torch's loader itself uses), not
#: to the storage classes, so no class of torch is handed to the pickle.
ALLOWED: dict[tuple[str, str], Any] = {
    **{("builtins", t.__name__): t for t in (dict, list, tuple, set, frozenset, int, float, complex, str, bytes,
                                             bytearray, bool, slice)},
    ("collections", "OrderedDict"): OrderedDict,
    ("collections", "defaultdict"): defaultdict,
    ("_codecs", "encode"): _latin1_encode,  # protocol-2 pickles spell bytes as _codecs.encode(text, "latin1")
    **{("torch._utils", name): f for name, f in _REBUILDS.items()},
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
    ("torch", "Tensor"): torch.Tensor,
    ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    **{("torch", name): value for name, value in vars(torch).items() if isinstance(value, torch.dtype)},
    **{("torch", f"{kind}Storage"): torch_serialization.StorageType(f"{kind}Storage") for kind in _STORAGES},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{(module, name): f for module in ("numpy.core.multiarray", "numpy._core.multiarray")
       for name, f in _MULTIARRAY.items()},
}


class _Refused(Refusal):
    """A pickle asked for something only a code-running pickle needs (``clause`` says what)."""

    def __init__(self, clause: str, runs_code: bool = True) -> None:
        super().__init__(clause, runs_code)


def _qualname(obj: object) -> str:
    """``module.name`` of what the pickle named (a placeholder says what it stands for), cut for a message."""
    if isinstance(obj, type) and hasattr(obj, "origin"):
        return shown(obj.origin)
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return shown(f"{getattr(obj, '__module__', None) or '?'}.{name}")


def _canonical(module: str, name: str) -> tuple[str, str]:
    """Python 2 names (``__builtin__``, ``copy_reg``...) as Python 3 would import them."""
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _classify(module: str, name: str) -> tuple[str, str] | None:
    """The canonical name of an allowed global, None for one that becomes a placeholder; refused if it runs code."""
    module, name = _canonical(module, name)
    if (module, name) in ALLOWED:
        return module, name
    if module.partition(".")[0] in CODE_RUNNERS:
        raise _Refused(f"refers to {shown(f'{module}.{name}')}")
    return None


class _RestrictedUnpickler(pickle._Unpickler):
    """Unpickler for checkpoints that hold harmless non-tensor objects; imports nothing.

    Pure Python (not ``pickle.Unpickler``) because only its opcode table can be changed,
    and BUILD must be guarded (see :meth:`load_build`). Checkpoint pickles are small: the
    tensor bytes are read by torch outside the pickle.
    """

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle API
        allowed = _classify(module, name)
        return ALLOWED[allowed] if allowed else _placeholder(*_canonical(module, name))

    def load_build(self) -> None:
        """Pickle's BUILD (set an object's state), refused on classes and functions."""
        if callable(self.stack[-2]):
            raise _Refused(f"sets attributes of {_qualname(self.stack[-2])}")
        super().load_build()

    dispatch = {**pickle._Unpickler.dispatch, pickle.BUILD[0]: load_build}


@functools.lru_cache(maxsize=4096)
def _placeholder(module: str, name: str) -> type:
    """A do-nothing class standing in for ``module.name`` from the pickle (keeps what it is given).

    One class per name, shared (a class costs ~2 kB; the scan allows 1,024 names per file).
    """

    class Placeholder:
        origin = f"{module}.{name}"

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.args, self.kwargs, self.items = args, kwargs, {}

        def __setstate__(self, state: Any) -> None:
            self.state = state

        def __setitem__(self, key: Any, value: Any) -> None:  # a dict subclass's items
            self.items[key] = value

        def append(self, value: Any) -> None:  # a list subclass's items
            self.items[len(self.items)] = value

    Placeholder.__qualname__ = Placeholder.__name__ = f"Unloaded[{Placeholder.origin}]"
    return Placeholder


class _RestrictedPickleModule:
    """What ``torch.load(pickle_module=...)`` uses for every record it unpickles."""

    __name__ = "restricted_pickle"
    Unpickler = _RestrictedUnpickler
    UnpicklingError = pickle.UnpicklingError

    @staticmethod
    def load(file: Any, **kwargs: Any) -> Any:
        """torch's legacy loaders read their leading records with ``pickle_module.load``."""
        return _RestrictedUnpickler(file, **kwargs).load()


# ------------------------------------------------------------------------------ loading


def _refuse_torchscript(path: Path) -> None:
    """``torch.load`` would pass a TorchScript archive to ``torch.jit.load``, which runs its code.

    Decided exactly as torch decides (its own zip reader and test), before torch.load.
    """
    with open(path, "rb") as f:
        if not torch_serialization._is_zipfile(f):
            return
        with torch_serialization._open_zipfile_reader(f) as reader:
            scripted = torch_serialization._is_torchscript_zip(reader)
    if scripted:
        raise WeightsError(f"{path.name} is a TorchScript program, not a checkpoint of weights; loading it would run "
                           "its code, so it was not loaded and was left untouched. Use the authors' original release "
                           "file instead (see checkpoints/README.md).")


_GET_AGAIN = ("delete the file and get it again from the authors' release, or use the model's safetensors mirror "
              "(`python -m app weights download MODEL_ID`).")


def _refusal(path: Path, refused: Refusal) -> WeightsError:
    if not refused.runs_code:
        return WeightsError(
            f"{path.name} {refused.clause}: a file built like that could crash the server or exhaust its memory or "
            "time, so it was not loaded and was left untouched. A checkpoint of weights needs nothing of the kind: "
            + _GET_AGAIN)
    return WeightsError(
        f"{path.name} {refused.clause}, which is how a pickle runs code; it was not loaded and was left untouched. "
        "A checkpoint of weights needs nothing of the kind: " + _GET_AGAIN)


def load_pickle(path: Path) -> object:
    """``torch.load`` a release file safely: scanned first, then weights_only, then the restricted unpickler.

    The scan (:func:`~app.weights.pickle_scan.scan_checkpoint`) bounds what either reader may cost.
    """
    try:
        _refuse_torchscript(path)
        scan_checkpoint(path, _classify)
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - declined (metadata, legacy tar) or unreadable: the second reader decides
            pass
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RestrictedPickleModule)
    except Refusal as refused:
        raise _refusal(path, refused) from None
    except Unreadable as exc:
        raise WeightsError(f"{path.name} is not a readable PyTorch checkpoint ({exc}).") from None
    except WeightsError:
        raise
    except Exception as exc:  # truncated or not a torch file at all
        raise WeightsError(f"{path.name} is not a readable PyTorch checkpoint ({exc}).") from exc


def _state_dict_of(obj: object, spec: OfficialFile) -> Mapping[str, torch.Tensor]:
    if spec.container is not None:
        if not isinstance(obj, Mapping) or spec.container not in obj:
            # names only: the repr of a key the file built could be as large as it likes
            keys = [str(k)[:60] if isinstance(k, str) else type(k).__name__ for k in islice(obj, 8)] \
                if isinstance(obj, Mapping) else type(obj).__name__
            raise WeightsError(f"{spec.name}: expected a dict with key '{spec.container}', found {keys}.")
        obj = obj[spec.container]
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{spec.name}: expected a state_dict, found {type(obj).__name__}.")
    return obj


def map_keys(state: Mapping[str, torch.Tensor], spec: OfficialFile) -> dict[str, torch.Tensor]:
    """Official keys of one file -> our ``<component>.<key>`` layout."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(key, str):  # a state_dict's keys are names; anything else is not a release of ours
            raise WeightsError(f"{spec.name}: a key of its state_dict is a {type(key).__name__}, not a name.")
        if spec.prefix and key.startswith(spec.prefix):
            key = key[len(spec.prefix):]
        elif spec.prefix and spec.only_prefixed:
            continue
        if spec.rename is not None:
            key = spec.rename(key, state)
            if key is None:
                continue
        if not isinstance(value, torch.Tensor):
            raise WeightsError(f"{spec.name}: entry '{key}' is a {type(value).__name__}, not a tensor.")
        out[f"{spec.component}.{key}" if spec.component else key] = value
    return out


def find_official(folder: Path, files: tuple[OfficialFile, ...]) -> tuple[tuple[OfficialFile, Path], ...] | None:
    """Each present file of ``files`` in ``folder`` with its path, or None when a required one is missing."""
    found = tuple((f, path) for f in files if (path := f.find(folder)) is not None)
    present = {f.name for f, _ in found}
    return found if files and all(f.name in present for f in files if f.required) else None


def read_official_file(path: Path, spec: OfficialFile) -> dict[str, torch.Tensor]:
    """One released file at ``path``, read safely, in our ``<component>.<key>`` layout."""
    return map_keys(_state_dict_of(load_pickle(path), spec), spec)


def read_official(folder: Path, files: tuple[OfficialFile, ...]) -> dict[str, torch.Tensor]:
    """Read every released file of a model from ``folder`` into one flat state_dict."""
    missing = [f.name for f in files if f.required and f.find(folder) is None]
    if missing:
        raise WeightsError(f"Missing {', '.join(missing)} in {folder}.")
    state: dict[str, torch.Tensor] = {}
    for spec, path in find_official(folder, files) or ():
        state.update(read_official_file(path, spec))
    return state
