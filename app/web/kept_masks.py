"""What the click-to-select panel keeps between a visitor's events: small masks, per session, capped, freed.

A selection at a 47 MP photo's size is a 47 MB boolean array. Kept as such in a ``gr.State``
(the clicked object, the objects before it, every person found), 20 visitors with three clicks
held 3.1 GB more than the same visitors without clicks, and Gradio keeps a closed tab's state for
an hour. Here a mask is kept as the bits of its bounding box, packed and compressed
(:class:`Packed`: a selected object is a few kB to a few hundred kB whatever the photo's size), in
a store per visitor's session (:class:`Store`) that the panel's state only points into by key:

* capped per session (:data:`SESSION_MB_ENV`: a selection over it is refused with a message) and
  in all (:data:`TOTAL_MB_ENV`: the sessions used longest ago are dropped first);
* freed when the page closes (the panel registers :meth:`Store.forget` on ``demo.unload``), when
  Gradio deletes the panel's state, and after :data:`TTL_ENV` seconds without use;
* a selection whose masks were freed says so (:class:`SelectionExpired`) instead of erasing nothing.
"""

from __future__ import annotations

import math
import os
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from app.errors import InpaintError

TTL_ENV = "INPAINT_SELECTION_TTL"  # seconds a visitor's selection is kept without use
SESSION_MB_ENV = "INPAINT_SELECTION_SESSION_MB"  # compressed masks one visitor may keep
TOTAL_MB_ENV = "INPAINT_SELECTION_TOTAL_MB"  # compressed masks all visitors together may keep
DEFAULT_TTL_S, DEFAULT_SESSION_MB, DEFAULT_TOTAL_MB = 1800.0, 32.0, 512.0


class SelectionExpired(InpaintError):
    """The masks a selection points to were freed (unused too long, or the server needed the memory)."""


class SelectionTooLarge(InpaintError):
    """One visitor's kept masks would pass the per-session cap."""


def _setting(name: str, default: float) -> float:
    """A positive number from the environment; a bad value falls back to the default (never a crash mid-click)."""
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if math.isfinite(value) and value > 0 else default


@dataclass(frozen=True)
class Packed:
    """A boolean mask kept small: the bits of its bounding box, zlib-compressed, and the whole mask's shape."""

    shape: tuple[int, int]  # (height, width) of the whole mask
    box: tuple[int, int, int, int]  # y0, y1, x0, x1 of its True pixels; (0, 0, 0, 0) when there are none
    bits: bytes

    @classmethod
    def of(cls, mask: np.ndarray) -> Packed:
        """``mask`` (H, W) bool packed; cropping first keeps a small object small on a large photo."""
        shape = (int(mask.shape[0]), int(mask.shape[1]))
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size == 0:
            return cls(shape, (0, 0, 0, 0), b"")
        y0, y1 = int(rows[0]), int(rows[-1]) + 1
        cols = np.flatnonzero(mask[y0:y1].any(axis=0))
        x0, x1 = int(cols[0]), int(cols[-1]) + 1
        return cls(shape, (y0, y1, x0, x1), zlib.compress(np.packbits(mask[y0:y1, x0:x1]).tobytes(), 1))

    @property
    def nbytes(self) -> int:
        return len(self.bits) + 64  # the bits and a little for the record itself

    @property
    def empty(self) -> bool:
        return not self.bits

    def crop(self) -> np.ndarray:
        """The mask inside :attr:`box` as (y1 - y0, x1 - x0) bool."""
        y0, y1, x0, x1 = self.box
        if self.empty:
            return np.zeros((0, 0), bool)
        bits = np.frombuffer(zlib.decompress(self.bits), np.uint8)
        return np.unpackbits(bits, count=(y1 - y0) * (x1 - x0)).reshape(y1 - y0, x1 - x0).view(bool)

    def add_to(self, canvas: np.ndarray) -> np.ndarray:
        """``canvas`` (of :attr:`shape`) with this mask's pixels set: a union without a full-size copy per part."""
        if not self.empty:
            y0, y1, x0, x1 = self.box
            canvas[y0:y1, x0:x1] |= self.crop()
        return canvas

    def full(self) -> np.ndarray:
        """The whole (H, W) bool mask again, exactly as it was packed."""
        return self.add_to(np.zeros(self.shape, bool))

    def scaled(self, size: tuple[int, int]) -> np.ndarray:
        """The mask at ``size`` (width, height), e.g. the preview's, scaling only the bounding box."""
        w, h = size
        small = np.zeros((h, w), bool)
        if self.empty:
            return small
        y0, y1, x0, x1 = self.box
        fy, fx = h / self.shape[0], w / self.shape[1]
        top, left = math.floor(y0 * fy), math.floor(x0 * fx)
        bottom, right = max(top + 1, min(h, math.ceil(y1 * fy))), max(left + 1, min(w, math.ceil(x1 * fx)))
        part = cv2.resize(self.crop().view(np.uint8), (right - left, bottom - top), interpolation=cv2.INTER_NEAREST)
        small[top:bottom, left:right] = part.view(bool)
        return small


@dataclass
class _Session:
    masks: dict[str, Packed] = field(default_factory=dict)
    previous: set[str] = field(default_factory=set)  # what the visitor's selection before the last one used
    used: float = 0.0


class Store:
    """Packed masks per session, by key: capped, swept after a time to live, forgotten on request.

    Limits are read from the environment at each call (``None`` arguments), so a test or an
    operator can change them without a restart.
    """

    def __init__(self, ttl_s: float | None = None, session_mb: float | None = None, total_mb: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl, self._session_mb, self._total_mb, self._clock = ttl_s, session_mb, total_mb, clock
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    @property
    def ttl_s(self) -> float:
        return self._ttl or _setting(TTL_ENV, DEFAULT_TTL_S)

    def session_cap(self) -> int:
        return int((self._session_mb or _setting(SESSION_MB_ENV, DEFAULT_SESSION_MB)) * 2**20)

    def total_cap(self) -> int:
        return int((self._total_mb or _setting(TOTAL_MB_ENV, DEFAULT_TOTAL_MB)) * 2**20)

    def put(self, session: str, mask: np.ndarray | Packed) -> str:
        """Keep ``mask`` for ``session``; its key. :class:`SelectionTooLarge` past the session's cap."""
        packed = mask if isinstance(mask, Packed) else Packed.of(mask)
        with self._lock:
            self._sweep()
            held = self._sessions.setdefault(session, _Session())
            if _size(held) + packed.nbytes > self.session_cap():
                raise SelectionTooLarge(
                    f"This selection is too detailed to keep (over {self.session_cap() / 2**20:.0f} MB compressed "
                    "for one visitor): clear it, or paint the rest of what should go.")
            key = uuid.uuid4().hex
            held.masks[key] = packed
            held.used = self._clock()
            self._evict(keep=session)
            return key

    def get(self, session: str, key: str) -> Packed:
        """The mask ``key`` of ``session``; :class:`SelectionExpired` when it was freed."""
        with self._lock:
            self._sweep()
            held = self._sessions.get(session)
            if held is None or key not in held.masks:
                raise SelectionExpired(
                    f"The click selection was cleared (it was not used for {self.ttl_s / 60:.0f} minutes, or the "
                    "server needed the memory): click on what should go again.")
            held.used = self._clock()
            return held.masks[key]

    def holds(self, session: str, keys: Iterable[str]) -> bool:
        """Whether every one of ``keys`` is still kept for ``session`` (none were freed)."""
        with self._lock:
            self._sweep()
            masks = self._sessions[session].masks if session in self._sessions else {}
            return all(key in masks for key in keys)

    def settle(self, session: str, keys: Iterable[str]) -> None:
        """``session``'s selection now uses ``keys``: free the rest (what the one before used stays, as an
        event already running may still read it)."""
        keys = set(keys)
        with self._lock:
            held = self._sessions.get(session)
            if held is None:
                return
            held.masks = {k: v for k, v in held.masks.items() if k in keys or k in held.previous}
            held.previous = keys
            if not held.masks:
                del self._sessions[session]

    def forget(self, session: str) -> None:
        """The visitor left (or their state was deleted): free everything of ``session``."""
        with self._lock:
            self._sessions.pop(session, None)

    def nbytes(self, session: str | None = None) -> int:
        """Bytes kept for ``session`` (all sessions by default)."""
        with self._lock:
            if session is None:
                return sum(_size(s) for s in self._sessions.values())
            return _size(self._sessions[session]) if session in self._sessions else 0

    def sessions(self) -> int:
        with self._lock:
            return len(self._sessions)

    def _sweep(self) -> None:
        cutoff = self._clock() - self.ttl_s
        for name in [n for n, s in self._sessions.items() if s.used < cutoff]:
            del self._sessions[name]

    def _evict(self, keep: str) -> None:
        """Past the total cap: drop the sessions used longest ago (never ``keep``, the one adding now)."""
        total, cap = sum(_size(s) for s in self._sessions.values()), self.total_cap()
        for name, held in sorted(self._sessions.items(), key=lambda item: item[1].used):
            if total <= cap:
                return
            if name != keep:
                total -= _size(held)
                del self._sessions[name]


def _size(held: _Session) -> int:
    return sum(p.nbytes for p in held.masks.values())


#: The panel's store (one per server process).
STORE = Store()
