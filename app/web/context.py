"""The running event's context: whether its client is still there, and whose session it is.

Read from Gradio's own state (its queue and request), so the handlers, the endpoints and the select
panel ask the same question the same way.
"""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr
from gradio.context import LocalContext


def client_left() -> Callable[[], bool]:
    """A poll that says whether the client of the running event has gone (tab closed, call cancelled).

    Gradio marks a queued event not ``alive`` when its client's stream closes, and drops it from
    its active jobs when the client cancels it, but the function's thread runs on either way; the
    pipeline polls this between window batches and stops.
    """
    blocks, event_id = LocalContext.blocks.get(None), LocalContext.event_id.get(None)
    if blocks is None or event_id is None or blocks._queue is None:
        return lambda: False

    def left() -> bool:
        events = [event for job in list(blocks._queue.active_jobs) if job for event in job]
        return not any(event._id == event_id and event.alive for event in events)

    return left


def session_of(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or ""
