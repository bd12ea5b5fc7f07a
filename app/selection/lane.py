"""Where click-to-select work runs in the web app: weights fetched first, then one select slot.

Gradio holds a concurrency slot for a whole event, download included, and an API call
(``/select``, ``/people``, their MCP tools) is one event: it cannot be split into a download step
and a work step the way the page chains Erase. So the panel's events and the two endpoints run
without a Gradio limit and take turns here instead: :func:`fetch` downloads the segmenter or
detector a call needs in the download lane (:data:`DOWNLOAD_CONCURRENCY` at once), holding no
slot, and only then :func:`select_slot` is taken for decoding the photo and running the models,
which never download inside it (``fetch=False``). A dripping Hub therefore delays only the
caller who needs those weights; everyone else's clicks are served meanwhile.

The slot is the select lane's own (as many as the inference lane of :mod:`app.workers`, which does
the same for inpainting): a click takes ~0.1 s and must not wait behind another visitor's
inpainting run. Downloads share one lane with inpainting's (:data:`app.workers.DOWNLOADS`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

from app.errors import InpaintError
from app.selection.segmenters import must_download
from app.specs import PretrainedSpec
from app.weights import pretrained
from app.weights.hub import Progress
from app.workers import DOWNLOADS, INFERENCE_SLOTS, Lane

SELECT = Lane(INFERENCE_SLOTS)


def select_slot(cancelled: Callable[[], bool] | None = None) -> AbstractContextManager[None]:
    """Hold the select slot for the block (see :class:`app.workers.Lane`)."""
    return SELECT.slot(cancelled)


def fetch(specs: Sequence[PretrainedSpec], progress: Progress | None = None) -> dict[str, InpaintError]:
    """Download those of ``specs`` whose weights must come from the Hub, holding no select slot.

    Returns the ones whose download failed, with why; the work that follows runs without
    them (GrabCut for a segmenter) rather than trying the download again inside the slot.
    """
    failed: dict[str, InpaintError] = {}
    for spec in {s.id: s for s in specs}.values():
        if not must_download(spec):
            continue
        with DOWNLOADS:
            try:
                pretrained.obtain(spec, progress)
            except InpaintError as exc:
                failed[spec.id] = exc
    return failed
