"""Malformed event payloads get a message, not Gradio's bare "Error" (issue 24).

Gradio checks some of an event's payload itself, before any handler of ours runs, and what it
raises then is not a ``gr.Error``: the page shows "Error" with no message and the log a traceback.
Two such payloads an out-of-date or hostile page can send:

* fewer values than the event's inputs: a merge with too few picks (the pick boxes are
  re-rendered per run; a page out of step sends the old number);
* event data that is not what the event promises its handler: a click (``gr.SelectData``)
  without an ``index`` or ``value``, or with no event data at all.

:func:`guard_events` wraps the app's Blocks so both are refused with a message. What the
payload's values mean (a click's index outside the preview, a pick that is not a result) is
checked by the handlers themselves.
"""

from __future__ import annotations

import functools
import inspect
import logging
import typing
from collections.abc import Callable
from typing import Any

import gradio as gr
from gradio.events import EventData

log = logging.getLogger(__name__)

OUT_OF_DATE = "This page sent {got} of the {needed} values this action needs: it may be out of date. " \
    "Reload the page and try again."
MALFORMED = "This action's event did not say what it was about (its data is malformed). Reload the page and try again."


def guard_events(demo: gr.Blocks) -> gr.Blocks:
    """``demo`` with too few input values and malformed event data refused by a ``gr.Error`` with a message."""
    validate = demo.validate_inputs

    @functools.wraps(validate)
    def validate_inputs(block_fn: Any, inputs: list[Any]) -> None:
        try:
            validate(block_fn, inputs)
        except ValueError as exc:
            log.info("refused an event with too few values: %s", str(exc).splitlines()[0])
            raise gr.Error(OUT_OF_DATE.format(got=len(inputs), needed=len(block_fn.inputs)), title="Out of date",
                           print_exception=False) from exc

    process = demo.process_api

    @functools.wraps(process)
    async def process_api(*args: Any, **kwargs: Any) -> Any:
        block_fn = kwargs["block_fn"] if "block_fn" in kwargs else args[0]
        if not isinstance(block_fn, int):
            check_event_data(block_fn.fn, kwargs.get("event_data"))
        return await process(*args, **kwargs)

    demo.validate_inputs = validate_inputs  # type: ignore[method-assign]
    demo.process_api = process_api  # type: ignore[method-assign]
    return demo


def check_event_data(fn: Callable | None, event_data: EventData | None) -> None:
    """Refuse ``event_data`` that the ``gr.EventData`` subclass ``fn`` takes could not be made from."""
    for hint in _event_hints(fn):
        try:
            if event_data is None:
                raise ValueError("no event data")
            hint(event_data.target, event_data._data)
        except Exception as exc:  # noqa: BLE001 - whatever the payload breaks, the visitor gets the message
            log.info("refused malformed event data for %s: %r", getattr(fn, "__name__", fn), exc)
            raise gr.Error(MALFORMED, title="Malformed event", print_exception=False) from exc


@functools.lru_cache(maxsize=256)
def _event_hints(fn: Callable | None) -> tuple[type[EventData], ...]:
    """The ``gr.EventData`` subclasses among ``fn``'s parameter annotations (Gradio passes those itself)."""
    if fn is None:
        return ()
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - an annotation that does not resolve: Gradio would not pass event data either
        return ()
    names = inspect.signature(fn).parameters
    return tuple(h for n, h in hints.items() if n in names and inspect.isclass(h) and issubclass(h, EventData))
