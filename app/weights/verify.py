"""Checks on weights files: truncation (safetensors header), sha256 pins, and the two ways to read one.

The sha256 of a file is memoised by (real path, size, mtime), so a warm start does not
re-hash hundreds of MB while a changed file is hashed again. A file that fails is refused,
never deleted: it may be the user's, and the message says exactly which file, which hashes
and what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from app.errors import WeightsError
from app.specs import ModelSpec

_HASH_CHUNK = 8 << 20
_MAX_HEADER = 100 << 20  # safetensors caps its JSON header at 100 MB

_hashes: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


def sha256_of(path: Path, fresh: bool = False) -> str:
    """sha256 of ``path``, memoised on (real path, size, mtime) — a changed file is re-hashed."""
    real, key = _memo_key(path)
    with _hash_lock:
        if not fresh and key in _hashes:
            return _hashes[key]
    digest = hashlib.sha256()
    with open(real, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    with _hash_lock:
        _hashes[key] = digest.hexdigest()
    return _hashes[key]


def _memo_key(path: Path) -> tuple[Path, tuple[str, int, int]]:
    real = Path(os.path.realpath(path))
    stat = real.stat()
    return real, (str(real), stat.st_size, stat.st_mtime_ns)




def known_sha256(path: Path) -> str | None:
    """The memoised sha256 of ``path`` if it was hashed as it is now, else None (never hashes)."""
    with _hash_lock:
        return _hashes.get(_memo_key(path)[1])


def check_safetensors(path: Path) -> None:
    """Refuse a truncated or malformed safetensors file by reading its header only (cheap)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if not 0 < length <= min(_MAX_HEADER, size - 8):
            raise WeightsError(f"{path} is not a safetensors file (no valid header; {size} bytes). "
                               "Delete it and download or convert it again.")
        header = _parse_header(path, f.read(length))
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    expected = 8 + length + max(ends, default=0)
    if expected != size:
        state = "truncated" if size < expected else "longer than its header says"
        raise WeightsError(f"{path} is {state}: {size} bytes, its header describes {expected}. "
                           "Delete it and download or convert it again.")


def _parse_header(path: Path, raw: bytes) -> dict:
    try:
        header = json.loads(raw)
        for key, entry in header.items():
            if key != "__metadata__":
                int(entry["data_offsets"][1])
        return header
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise WeightsError(f"{path} is not a safetensors file (malformed header: {exc}). "
                           "Delete it and download or convert it again.") from exc


def verify_file(spec: ModelSpec, name: str, path: Path, expected: str | None, fresh: bool = False) -> str:
    """Structure check, then the sha256 pin if there is one; returns the sha256 (or "")."""
    check_safetensors(path)
    if not expected and not fresh:
        return ""
    actual = sha256_of(path, fresh=fresh)
    if expected and actual != expected.lower():
        raise WeightsError(
            f"{spec.name}: {name} failed its sha256 check and was NOT used.\n  file:     {path}\n"
            f"  expected: {expected.lower()} (pinned for {spec.id} in the registry or pins.json)\n"
            f"  actual:   {actual}\n"
            f"Nothing was deleted. Re-download it with `python -m app weights download --force {spec.id}`, "
            "or delete that file if you put it there yourself.")
    return actual



def read_safetensors_unchecked(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file as the library reads them; a failure becomes a :class:`WeightsError`."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path.name} is not a valid safetensors file ({exc}). "
                           "Delete it and download or convert it again.") from exc


def read_safetensors_checked(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file after the cheap header check (truncation gets a clearer message)."""
    check_safetensors(path)
    return read_safetensors_unchecked(path)
