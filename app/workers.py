"""Who computes when in the web app: one inference at a time, weight downloads beside it.

Gradio holds a concurrency slot for a whole event, so an event that first downloads weights and
then infers would hold the inference worker for the whole download, and a slow Hub would hold
every other visitor in the queue. Every web entry point (the page's Erase, ``/inpaint`` and its
MCP tool) therefore fetches the weights it lacks first, in the download lane
(:data:`DOWNLOAD_CONCURRENCY` at once, whoever asks), and only then takes the inference slot
(:data:`INFERENCE_SLOTS`) for decoding the photo, running the models and writing the results. A
caller waiting for the slot holds nothing but file paths, so waiting costs no memory.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from app import registry
from app.errors import Cancelled, InpaintError
from app.model_cache import download, needs_download
from app.weights.hub import Progress

#: Requests computing at once (memory: one request's photo and results each); the page's Erase group has as many.
INFERENCE_SLOTS = int(os.environ.get("INPAINT_CONCURRENCY", "1"))
DOWNLOAD_CONCURRENCY = 2  # weight downloads at once, apart from the inference slot
API_CONCURRENCY = 4  # /inpaint calls admitted at once: fetching weights, or waiting for the slot with paths only
POLL_SECONDS = 0.25  # how often a caller waiting for the slot checks that its client is still there

#: Every weight download at once, for inpainting and selection alike (:mod:`app.selection.lane` shares it).
DOWNLOADS = threading.BoundedSemaphore(DOWNLOAD_CONCURRENCY)


class Lane:
    """A fixed number of slots that work takes in turn; a caller whose client leaves stops waiting."""

    def __init__(self, slots: int) -> None:
        self._slots = threading.BoundedSemaphore(max(1, slots))

    @contextmanager
    def slot(self, cancelled: Callable[[], bool] | None = None) -> Iterator[None]:
        """Hold a slot for the block (waiting while they are all taken)."""
        while not self._slots.acquire(timeout=POLL_SECONDS):
            if cancelled is not None and cancelled():
                raise Cancelled("The request was cancelled (the client left) while it waited for its turn; "
                                "nothing was computed.")
        try:
            yield
        finally:
            self._slots.release()


INFERENCE = Lane(INFERENCE_SLOTS)


def inference_slot(cancelled: Callable[[], bool] | None = None) -> contextlib.AbstractContextManager[None]:
    """Hold the inference slot for the block (see :class:`Lane`)."""
    return INFERENCE.slot(cancelled)


def fetch_missing(model_ids: Sequence[str], progress: Progress | None = None) -> dict[str, InpaintError]:
    """Download the weights of ``model_ids`` that are not here yet, outside the inference slot.

    Returns the models whose download failed, with why; the caller runs the others (and
    :func:`still_missing` keeps a failed one from being downloaded again inside the slot).
    """
    failed: dict[str, InpaintError] = {}
    for model_id in dict.fromkeys(model_ids):
        spec = registry.get(model_id)
        if not needs_download(spec):
            continue
        with DOWNLOADS:
            try:
                download(spec, progress=progress)
            except InpaintError as exc:
                failed[model_id] = exc
    return failed


def still_missing(model_ids: Sequence[str]) -> list[str]:
    """Those of ``model_ids`` whose weights are still not here (their download failed or has not finished)."""
    return [model_id for model_id in dict.fromkeys(model_ids) if needs_download(registry.get(model_id))]
