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

_inference = threading.BoundedSemaphore(INFERENCE_SLOTS)
_downloads = threading.BoundedSemaphore(DOWNLOAD_CONCURRENCY)


@contextmanager
def inference_slot(cancelled: Callable[[], bool] | None = None) -> Iterator[None]:
    """Hold the inference slot for the block; a caller whose client leaves while waiting stops waiting."""
    while not _inference.acquire(timeout=POLL_SECONDS):
        if cancelled is not None and cancelled():
            raise Cancelled("The request was cancelled (the client left) while it waited for its turn; "
                            "nothing was computed.")
    try:
        yield
    finally:
        _inference.release()


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
        with _downloads:
            try:
                download(spec, progress=progress)
            except InpaintError as exc:
                failed[model_id] = exc
    return failed


def still_missing(model_ids: Sequence[str]) -> list[str]:
    """Those of ``model_ids`` whose weights are still not here (their download failed or has not finished)."""
    return [model_id for model_id in dict.fromkeys(model_ids) if needs_download(registry.get(model_id))]
