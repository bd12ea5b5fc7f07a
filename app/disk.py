"""Disk use of the web app, bounded: every file it keeps lives under one folder, capped in size and age.

Uploads, editor layers and results all land in Gradio's temporary folder, which the studio
points at a folder of its own (``GRADIO_TEMP_DIR``, default ``<tmp>/inpaint-studio``), so
sweeping it touches nothing of other programs. The bounds, per server process:

- **One upload** is at most :data:`MAX_UPLOAD_MB` (200 MB): its stated size (Content-Length) is
  checked before a byte is written (:mod:`app.web.uploads`; no stated size, no upload), and Gradio's
  ``max_file_size`` stops a file part that grows past it.
- **One client's uploads** in use are at most ``INPAINT_CLIENT_UPLOAD_MB`` (256 MB) together,
  uploads in flight included; the next one is refused (429) with a message. A client is an IP
  address (an IPv6 /64), behind a proxy the address it forwarded (:func:`app.web.uploads.client_of`).
- **The folder** holds at most ``INPAINT_DISK_CAP_MB`` (2048 MB). Before every upload and every run
  it is swept (:func:`sweep`): files older than ``INPAINT_FILE_MAX_AGE`` seconds (1 h) go, in use or
  not, then the oldest files *not in use*, until the folder with the uploads in flight and the new
  one fits. If it still does not, uploads still waiting for their event give way, but only those
  of clients with more waiting than the newcomer (:func:`admit`: a flood from many addresses
  yields to a visitor sending a few MB, never the reverse). An upload that still does not fit is
  refused (503) with a message, and a run is refused while the folder is over the cap: no file in
  use is deleted to make room.

In use is known, not guessed by age (:data:`holds`): the photos a page session works on (until the
page closes, at most the age limit), the latest run of each session, every run for
``INPAINT_UPLOAD_CLAIM_SECONDS`` (600 s: its downloads), and an upload until the event it was sent
for has run (:func:`app.web.uploads.release_after_events`; at most the same 600 s, the longest its
event may wait in the queue).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Collection, Iterable
from pathlib import Path

MAX_AGE_ENV = "INPAINT_FILE_MAX_AGE"
DEFAULT_MAX_AGE = 3600
CAP_ENV = "INPAINT_DISK_CAP_MB"
DEFAULT_CAP_MB = 2048
CLIENT_ENV = "INPAINT_CLIENT_UPLOAD_MB"
DEFAULT_CLIENT_MB = 256
CLAIM_ENV = "INPAINT_UPLOAD_CLAIM_SECONDS"
DEFAULT_CLAIM = 600
#: Largest single upload (Gradio's ``max_file_size``; the gate refuses a larger stated size first).
MAX_UPLOAD_MB = 200


def max_age() -> float:
    return float(os.environ.get(MAX_AGE_ENV, DEFAULT_MAX_AGE))


def cap_bytes() -> int:
    return int(float(os.environ.get(CAP_ENV, DEFAULT_CAP_MB)) * (1 << 20))


def client_bytes() -> int:
    """Most one client's uploads in use may hold together (``INPAINT_CLIENT_UPLOAD_MB``)."""
    return int(float(os.environ.get(CLIENT_ENV, DEFAULT_CLIENT_MB)) * (1 << 20))


def claim_seconds() -> float:
    """How long a fresh upload or a run is in use without anyone saying so (``INPAINT_UPLOAD_CLAIM_SECONDS``)."""
    return float(os.environ.get(CLAIM_ENV, DEFAULT_CLAIM))


def key(path: str | Path) -> str:
    """One spelling per file (holds and sweeps compare these): absolute, links resolved."""
    return os.path.realpath(path)


class Holds:
    """Files in use, which the size cap never deletes: per path, its owners and until when each holds it.

    An owner is a page session (``session:<hash>``), a client's fresh uploads (``upload:<client>``)
    or a run (``run:<folder>``); a folder held holds everything in it. The client that uploaded a
    file is remembered while anyone holds it, so its uploads count against that client even once a
    session works on them. Thread-safe: uploads, runs and page events change it at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ends: dict[str, dict[str, float]] = {}  # path -> owner -> end (time.time())
        self._uploader: dict[str, str] = {}  # path -> the client whose upload it is

    def hold(self, owner: str, paths: Iterable[str | Path], seconds: float | None = None,
             uploader: str | None = None) -> None:
        """``owner`` uses ``paths`` for ``seconds`` from now (None: until released)."""
        end = math.inf if seconds is None else time.time() + seconds
        with self._lock:
            for path in map(key, paths):
                self._ends.setdefault(path, {})[owner] = end
                if uploader is not None:
                    self._uploader[path] = uploader

    def release(self, owner: str, paths: Iterable[str | Path] | None = None) -> None:
        """``owner`` no longer uses ``paths`` (None: anything it held)."""
        with self._lock:
            for path in list(self._ends) if paths is None else map(key, paths):
                owners = self._ends.get(path, {})
                owners.pop(owner, None)
                if not owners:
                    self._drop(path)

    def release_uploads(self, paths: Iterable[str | Path]) -> None:
        """The event these uploads were sent for has run: they no longer wait for it (a session may still hold them)."""
        with self._lock:
            for path in map(key, paths):
                owners = self._ends.get(path, {})
                for owner in [owner for owner in owners if owner.startswith("upload:")]:
                    del owners[owner]
                if path in self._ends and not owners:
                    self._drop(path)

    def held(self) -> set[str]:
        """The paths someone still holds (expired holds are forgotten here)."""
        now = time.time()
        with self._lock:
            for path, owners in list(self._ends.items()):
                for owner, end in list(owners.items()):
                    if end <= now:
                        del owners[owner]
                if not owners:
                    self._drop(path)
            return set(self._ends)

    def uploads_of(self, client: str) -> int:
        """Bytes of ``client``'s uploads that are still held and on disk."""
        held = self.held()
        with self._lock:
            mine = [path for path, who in self._uploader.items() if who == client and path in held]
        total = 0
        for path in mine:
            with contextlib.suppress(OSError):
                total += os.stat(path).st_size
        return total

    def waiting(self) -> dict[str, list[str]]:
        """Uploads that nothing but their upload hold uses yet (their event has not claimed them), by client."""
        self.held()  # forget what expired
        by_client: dict[str, list[str]] = {}
        with self._lock:
            for path, owners in self._ends.items():
                if path in self._uploader and all(owner.startswith("upload:") for owner in owners):
                    by_client.setdefault(self._uploader[path], []).append(path)
        return by_client

    def evict(self, path: str) -> bool:
        """Delete ``path`` if it is still only waiting for its event (checked and deleted under the lock:
        a session claiming it at that moment keeps it). Returns whether it was deleted."""
        with self._lock:
            owners = self._ends.get(path, {})
            if not all(owner.startswith("upload:") for owner in owners):
                return False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(path))  # Gradio's folder per upload, when empty
            self._drop(path)
            return True

    def _drop(self, path: str) -> None:
        self._ends.pop(path, None)
        self._uploader.pop(path, None)


#: The process's files in use (see :class:`Holds`).
holds = Holds()
_sweep_lock = threading.Lock()
_in_flight: dict[str, int] = {}  # client -> bytes of its uploads being received now
_in_flight_lock = threading.Lock()
_admit_lock = threading.Lock()  # one upload admitted at a time (see admit)


def in_use(path: Path, root: str, held: set[str]) -> bool:
    """Whether ``path`` (under ``root``, both spelled by :func:`key`) or a folder above it is held."""
    text = str(path)
    while len(text) > len(root):
        if text in held:
            return True
        text = os.path.dirname(text)
    return False


def sweep(root: Path, age: float | None = None, cap: int | None = None, keep: Collection[str] = (),
          room: int = 0) -> int:
    """Delete what is too old under ``root``, then the oldest files not in use while it holds over ``cap - room``.

    ``keep``: files never deleted (the page's own, e.g. the examples' copies, which Gradio serves
    for the server's whole life and which carry their source's old mtime). Files in use
    (:data:`holds`) go only by age. While uploads are in flight, the files directly in ``root`` are
    theirs being written (Gradio's temporary files): neither counted (the gate counts their stated
    size) nor deleted. Returns the bytes left; more than ``cap - room`` when what is left is in use.
    One sweep at a time (each upload and run sweeps).
    """
    age = max_age() if age is None else age
    cap = cap_bytes() if cap is None else cap
    with _sweep_lock:
        real = key(root)
        keep = {key(path) for path in keep}
        held = holds.held()
        receiving = bool(uploading())
        now = time.time()
        files, emptied = [], set()
        for path in _files(Path(real)):
            if str(path) in keep or (receiving and str(path.parent) == real):
                continue
            with contextlib.suppress(FileNotFoundError):
                stat = path.stat()
                if now - stat.st_mtime > age:
                    path.unlink()
                    emptied.add(path.parent)
                else:
                    files.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total + room <= cap:
                break
            if not in_use(path, real, held):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    total -= size
                    emptied.add(path.parent)
        _remove_emptied(emptied, real, held)
        return total


def uploading() -> int:
    """Bytes of the uploads being received now, all clients together."""
    with _in_flight_lock:
        return sum(_in_flight.values())


class UploadRefused(Exception):
    """An upload that would break a bound; ``status`` is the HTTP answer, the message is the visitor's."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def admit(root: Path, client: str, size: int, keep: Collection[str] = ()) -> Callable[[], None]:
    """Room for one upload of ``size`` bytes from ``client``, reserved until the returned function is called.

    Sweeps first; raises :class:`UploadRefused` when the upload is over the per-file limit, when
    the client's uploads in use would pass their total, or when the folder would pass its cap
    with only files in use left to delete. One admission at a time, so uploads arriving together
    cannot all take the last room.
    """
    if size > (MAX_UPLOAD_MB + 1) * (1 << 20):  # a multipart body: the file plus its part headers
        raise UploadRefused(413, f"This file is {size / 1e6:.0f} MB; uploads are at most {MAX_UPLOAD_MB} MB each.")
    with _admit_lock:
        with _in_flight_lock:
            mine = _in_flight.get(client, 0)
        mine += holds.uploads_of(client)
        if mine + size > client_bytes():
            raise UploadRefused(429, f"Your uploads in use on this server already take {mine / 1e6:.0f} MB, and one "
                                f"visitor may have at most {client_bytes() / 1e6:.0f} MB. Close other tabs of the "
                                f"studio, or try again in {claim_seconds() / 60:.0f} minutes.")
        others = uploading()
        over = sweep(root, keep=keep, room=others + size) + others + size - cap_bytes()
        if over > 0 and over > _evict_waiting(over, client, size):
            raise UploadRefused(503, "The server's space for uploads is full right now (every file on it is in "
                                "use); please try again in a few minutes.")
        with _in_flight_lock:
            _in_flight[client] = _in_flight.get(client, 0) + size
    return functools.partial(_received, client, size)


def _evict_waiting(need: int, client: str, size: int) -> int:
    """Free ``need`` bytes from uploads still waiting for their event, taken only from clients that have
    more waiting than ``client`` would with this upload: the biggest first, its oldest upload first.

    A flood from many addresses fills the folder with fresh uploads; a visitor with a few MB to send
    (the editor's layers at Erase) still gets in, and a flooder never pushes out a smaller visitor's
    files. Returns the bytes freed.
    """
    waiting = {who: sorted(_sized(paths)) for who, paths in holds.waiting().items()}
    mine = sum(bytes_ for _, bytes_, _ in waiting.pop(client, [])) + size
    totals = {who: sum(bytes_ for _, bytes_, _ in files) for who, files in waiting.items()}
    freed = 0
    while freed < need and totals:
        who = max(totals, key=totals.__getitem__)
        if totals[who] <= mine or not waiting[who]:
            break
        _, bytes_, path = waiting[who].pop(0)
        totals[who] -= bytes_
        if holds.evict(path):
            freed += bytes_
    return freed


def _sized(paths: Iterable[str]) -> list[tuple[float, int, str]]:
    """(mtime, size, path) of the paths still on disk."""
    sized = []
    for path in paths:
        with contextlib.suppress(OSError):
            stat = os.stat(path)
            sized.append((stat.st_mtime, stat.st_size, path))
    return sized


def _received(client: str, size: int) -> None:
    """The upload is over (stored, refused by Gradio, or cut off): its reservation ends."""
    with _in_flight_lock:
        _in_flight[client] -= size
        if not _in_flight[client]:
            del _in_flight[client]


def _files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and not path.is_symlink()] if root.is_dir() else []


def _remove_emptied(folders: set[Path], root: str, held: set[str]) -> None:
    """The folders a sweep deleted files from, and their parents up to ``root``, once empty and not held.

    Only those: an empty folder the sweep did not empty may be a run's or an upload's, about to
    be written into.
    """
    for folder in sorted(folders, key=lambda p: -len(p.parts)):
        while len(str(folder)) > len(root) and str(folder) not in held:
            try:
                folder.rmdir()  # only succeeds when empty
            except OSError:
                break
            folder = folder.parent


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
