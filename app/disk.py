"""Disk use of the web app, bounded: every file it keeps lives under one folder, swept by age and size.

Uploads, editor layers and results all land in Gradio's temporary folder, which the studio
points at a folder of its own (``GRADIO_TEMP_DIR``, default ``<tmp>/inpaint-studio``), so
sweeping it touches nothing of other programs. Files older than ``INPAINT_FILE_MAX_AGE``
seconds (default 1 h) are deleted; when the folder still holds more than
``INPAINT_DISK_CAP_MB`` (default 2048 MB), the oldest files go first until it fits, except
files younger than :data:`IN_USE_SECONDS`, which a running request may still be reading.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Collection
from pathlib import Path

MAX_AGE_ENV = "INPAINT_FILE_MAX_AGE"
DEFAULT_MAX_AGE = 3600
CAP_ENV = "INPAINT_DISK_CAP_MB"
DEFAULT_CAP_MB = 2048
#: A file this young may belong to a request in progress: the size cap never deletes it.
IN_USE_SECONDS = 120


def max_age() -> float:
    return float(os.environ.get(MAX_AGE_ENV, DEFAULT_MAX_AGE))


def cap_bytes() -> int:
    return int(float(os.environ.get(CAP_ENV, DEFAULT_CAP_MB)) * (1 << 20))


def sweep(root: Path, age: float | None = None, cap: int | None = None, keep: Collection[str] = ()) -> int:
    """Delete what is too old under ``root``, then the oldest files while it holds over ``cap`` bytes.

    ``keep``: files never deleted (the page's own, e.g. the examples' copies, which Gradio serves
    for the server's whole life and which carry their source's old mtime). Returns the bytes
    left. Safe to run from several requests at once (a file another sweep deleted first is skipped).
    """
    age = max_age() if age is None else age
    cap = cap_bytes() if cap is None else cap
    now = time.time()
    files = []
    for path in _files(root):
        if str(path) in keep:
            continue
        with contextlib.suppress(FileNotFoundError):
            stat = path.stat()
            if now - stat.st_mtime > age:
                path.unlink()
            else:
                files.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in files)
    for mtime, size, path in sorted(files):
        if total <= cap or now - mtime < IN_USE_SECONDS:
            break
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            total -= size
    _remove_empty_folders(root)
    return total


def _files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and not path.is_symlink()] if root.is_dir() else []


def _remove_empty_folders(root: Path) -> None:
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only succeeds when empty


def made_since(root: Path, start: float) -> set[str]:
    """Files under ``root`` created (ctime: copies keep their source's mtime) at or after ``start``."""
    made = set()
    for path in _files(root):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_ctime >= start:
                made.add(str(path))
    return made


def remove(folders: list[Path]) -> None:
    """Delete the given run folders (a visitor's session ended)."""
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
