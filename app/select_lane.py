"""Where click-to-select work runs in the web app: weights fetched first, then one select slot.

Gradio holds a concurrency slot for a whole event, download included, and an API call
(``/select``, ``/people``, their MCP tools) is one event: it cannot be split into a download step
and a work step the way the page chains Erase. So the panel's events and the two endpoints run
without a Gradio limit and take turns here instead: :func:`fetch` downloads the segmenter or
detector a call needs in the download lane (:data:`DOWNLOAD_CONCURRENCY` at once), holding no
slot, and only then :func:`select_slot` is taken for decoding the photo and running the models,
which never download inside it (``fetch=False``). A dripping Hub therefore delays only the
caller who needs those weights; everyone else's clicks are served meanwhile.

The slot is the select lane's own (:data:`SELECT_SLOTS`, ``INPAINT_CONCURRENCY`` like the queue):
a click takes ~0.1 s and must not wait behind another visitor's inpainting run.
(:mod:`app.workers` does the same for inpainting.)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from app.errors import Cancelled, InpaintError
from app.registry import PretrainedSpec
from app.segmenters import must_download
from app.weights import pretrained
from app.weights.hub import Progress

SELECT_SLOTS = max(1, int(os.environ.get("INPAINT_CONCURRENCY", "1") or 1))
DOWNLOAD_CONCURRENCY = 2  # segmenter and detector downloads at once, apart from the select slot
POLL_SECONDS = 0.25  # how often a caller waiting for the slot checks that its client is still there

_select = threading.BoundedSemaphore(SELECT_SLOTS)
_downloads = threading.BoundedSemaphore(DOWNLOAD_CONCURRENCY)


@contextmanager
def select_slot(cancelled: Callable[[], bool] | None = None) -> Iterator[None]:
    """Hold the select slot for the block; a caller whose client leaves while waiting stops waiting."""
    while not _select.acquire(timeout=POLL_SECONDS):
        if cancelled is not None and cancelled():
            raise Cancelled("The request was cancelled (the client left) while it waited for its turn.")
    try:
        yield
    finally:
        _select.release()


def fetch(specs: Sequence[PretrainedSpec], progress: Progress | None = None) -> dict[str, InpaintError]:
    """Download those of ``specs`` whose weights must come from the Hub, holding no select slot.

    Returns the ones whose download failed, with why; the work that follows runs without
    them (GrabCut for a segmenter) rather than trying the download again inside the slot.
    """
    failed: dict[str, InpaintError] = {}
    for spec in {s.id: s for s in specs}.values():
        if not must_download(spec):
            continue
        with _downloads:
            try:
                pretrained.obtain(spec, progress)
            except InpaintError as exc:
                failed[spec.id] = exc
    return failed
