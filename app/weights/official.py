"""Read the authors' released checkpoint files without running pickled code.

The official releases are ``torch.save`` pickles in several containers (a bare
state_dict, ``{'generator': ...}``, a Lightning ``best.ckpt``...). Each model module
declares its files with :class:`OfficialFile`; :func:`read_official` turns them into
one flat state_dict in *our* key layout (``<component>.<key>``), which is also the
layout of our safetensors files, so both sources go through the same strict load.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from app.errors import WeightsError


@dataclass(frozen=True)
class OfficialFile:
    """One released file and how its tensors map onto our network."""

    name: str  # file name as released, e.g. "EdgeModel_gen.pth"
    component: str  # our submodule it fills, e.g. "edge" ("" = the root module)
    container: str | None = None  # key of the state_dict inside the saved dict, None = bare
    prefix: str = ""  # prefix to strip from every key, e.g. "module." or "generator."
    # True: keys without ``prefix`` belong to other networks and are ignored (LaMa's
    # Lightning checkpoint holds the discriminator and losses too). False: ``prefix``
    # is optional (files saved with or without DataParallel both load).
    only_prefixed: bool = False
    # Model-specific renaming of an official key; return None to drop the key
    # (e.g. PIC's aliased duplicates). Applied after the prefix is stripped.
    rename: Callable[[str, Mapping[str, torch.Tensor]], str | None] | None = None
    required: bool = True
    aliases: tuple[str, ...] = ()  # other names the same file is known under (e.g. per dataset)

    def find(self, folder: Path) -> Path | None:
        """The file in ``folder`` under its name or one of its aliases."""
        for name in (self.name, *self.aliases):
            if (folder / name).is_file():
                return folder / name
        return None


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler for checkpoints that hold harmless non-tensor objects.

    torch's ``weights_only`` loader refuses any class it does not know (Lightning
    checkpoints carry OmegaConf configs, for instance). Here only tensor-rebuilding and
    plain container types are real; every other class becomes an inert placeholder
    instead of being imported, so no code from the file runs.
    """

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        if _is_safe(module, name):
            return super().find_class(module, name)
        return _placeholder(module, name)


_SAFE = {
    "builtins": {"dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "str", "bytes", "bool",
                 "slice"},
    "collections": {"OrderedDict", "defaultdict"},
    "_codecs": {"encode"},
    "torch": {"Size", "device", "dtype", "float32", "float16", "bfloat16", "int64", "int32", "uint8", "bool"},
    "torch._tensor": {"_rebuild_from_type_v2"},
    "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
    "numpy": {"ndarray", "dtype"},
}


def _is_safe(module: str, name: str) -> bool:
    if module == "torch._utils" and name.startswith("_rebuild"):
        return True
    if module == "torch" and name.endswith("Storage"):
        return True
    if module == "numpy.dtypes" and name.endswith("DType"):
        return True
    return name in _SAFE.get(module, ())


def _placeholder(module: str, name: str) -> type:
    """A do-nothing class standing in for ``module.name`` from the pickle."""

    class Placeholder:
        def __init__(self, *args, **kwargs) -> None:
            self.args, self.kwargs = args, kwargs

        def __setstate__(self, state) -> None:
            self.state = state

    Placeholder.__qualname__ = Placeholder.__name__ = f"Unloaded[{module}.{name}]"
    return Placeholder


class _RestrictedPickleModule:
    Unpickler = _RestrictedUnpickler
    load = pickle.load
    __name__ = "restricted_pickle"


def load_pickle(path: Path) -> object:
    """``torch.load`` a release file safely: weights_only first, the restricted unpickler second."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass
    except Exception as exc:  # truncated or not a torch file at all
        raise WeightsError(f"{path.name} is not a readable PyTorch checkpoint ({exc}).") from exc
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_RestrictedPickleModule)
    except Exception as exc:
        raise WeightsError(f"{path.name} is not a readable PyTorch checkpoint ({exc}).") from exc


def _state_dict_of(obj: object, spec: OfficialFile) -> Mapping[str, torch.Tensor]:
    if spec.container is not None:
        if not isinstance(obj, Mapping) or spec.container not in obj:
            keys = list(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
            raise WeightsError(f"{spec.name}: expected a dict with key '{spec.container}', found {keys}.")
        obj = obj[spec.container]
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{spec.name}: expected a state_dict, found {type(obj).__name__}.")
    return obj


def map_keys(state: Mapping[str, torch.Tensor], spec: OfficialFile) -> dict[str, torch.Tensor]:
    """Official keys of one file -> our ``<component>.<key>`` layout."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
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


def read_official(folder: Path, files: tuple[OfficialFile, ...]) -> dict[str, torch.Tensor]:
    """Read every released file of a model from ``folder`` into one flat state_dict."""
    missing = [f.name for f in files if f.required and f.find(folder) is None]
    if missing:
        raise WeightsError(f"Missing {', '.join(missing)} in {folder}.")
    state: dict[str, torch.Tensor] = {}
    for spec in files:
        path = spec.find(folder)
        if path is not None:
            state.update(map_keys(_state_dict_of(load_pickle(path), spec), spec))
    return state


def has_official(folder: Path, files: tuple[OfficialFile, ...]) -> bool:
    """True when every required official file is present in ``folder``."""
    return all(f.find(folder) is not None for f in files if f.required)
