"""Small builders shared by the tests (photos with structure, masks, batches of crops) and waiting helpers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import cv2
import numpy as np
import pytest

if TYPE_CHECKING:
    from app.models.base import Batch

T = TypeVar("T")


def textured(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """An RGB uint8 image with gradients and noise, so fills are never trivially equal."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], axis=2)
    return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


def box_hole(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    hole = np.zeros((h, w), bool)
    hole[y0:y1, x0:x1] = True
    return hole


def never_blocking(fifo: Path, call: Callable[[], T], timeout: float = 10.0) -> T:
    """``call()``'s result (or exception, raised here), failing instead of hanging when it blocks on ``fifo``.

    A reader that opens a FIFO waits for a writer forever; if it does, this opens the writing end
    (which frees it) and fails the test.
    """
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # the writer arrives and leaves: the reader sees EOF
        thread.join(5)
        pytest.fail(f"reading {fifo.name} blocked for {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def run_async(coroutine):
    """``asyncio.run`` in a thread of its own: the browser tests' Playwright keeps an event loop in this one."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    """Poll ``condition`` until it holds or ``seconds`` pass; its last answer."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def scene(w: int = 300, h: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured green background with a red ellipse: (rgb, the ellipse's mask)."""
    rng = np.random.default_rng(seed)
    bg = (rng.normal(0, 1, (h // 8 + 1, w // 8 + 1, 3)) * 40 + (90, 140, 90)).clip(0, 255).astype(np.uint8)
    rgb = cv2.resize(bg, (w, h), interpolation=cv2.INTER_CUBIC)
    obj = np.zeros((h, w), np.uint8)
    cv2.ellipse(obj, (int(w * 0.6), int(h * 0.5)), (int(w * 0.15), int(h * 0.3)), 15, 0, 360, 1, -1)
    rgb[obj > 0] = (np.array([200, 80, 60]) + rng.normal(0, 12, (int(obj.sum()), 3))).clip(0, 255)
    return rgb, obj > 0


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks."""
    return float((a & b).sum() / max((a | b).sum(), 1))


def random_batch(n: int, h: int, w: int, seed: int) -> Batch:
    """Noise-free-ish crops (smooth gradients + noise) with a rectangle and scattered holes."""
    from app.models.base import Batch  # torch: imported by the tests that batch crops only

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([yy / h, xx / w, (yy + xx) / (h + w)], -1)[None] * 200
    images = np.clip(base + rng.normal(0, 20, (n, h, w, 3)), 0, 255).astype(np.uint8)
    holes = rng.random((n, h, w)) < 0.05
    holes[:, h // 4: h // 2, w // 3: 2 * w // 3] = True
    return Batch(images, holes)
