"""Function signatures as Gradio reads them: one parameter per knob of :mod:`app.options` and per guide kind.

Gradio names an endpoint's parameters after the function's and shows its docstring in the API page and the MCP
schema, so the knobs and guides must be real, documented parameters; the handlers get them as one mapping.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

from app import options
from app.web.canvas import guide_kinds

log = logging.getLogger(__name__)


def takes_knobs(handler: Callable) -> Callable:
    """``handler(..., knobs, ...)`` as Gradio calls it: one parameter per knob of :mod:`app.options` for ``knobs``.

    Gradio names ``/inpaint``'s parameters after the function's (gradio_client callers pass them
    by keyword) and finds Progress and Request by position in its signature, so the knobs must be
    real parameters; the handler gets them as one mapping, and checks them inside its own error
    handling (a bad value is a message, not a crash).
    """
    inner = inspect.signature(handler)
    outer = options.signature_with_knobs(handler, "knobs")

    @functools.wraps(handler)
    def call(*args: Any, **kwargs: Any) -> Any:
        bound = outer.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        knobs = {name: values.pop(name) for name in options.NAMES}
        forward = inner.bind_partial()
        forward.arguments = {name: knobs if name == "knobs" else values[name] for name in inner.parameters}
        return handler(*forward.args, **forward.kwargs)

    call.__signature__ = outer  # type: ignore[attr-defined]
    call.__doc__ = options.doc_with_knobs(handler.__doc__, "knobs")
    return call


def guide_parameter(kind: str) -> str:
    """``/inpaint``'s parameter for ``kind`` strokes, e.g. ``edges_strokes``."""
    return f"{kind}_strokes"


def guide_description(kind: str) -> str:
    """What ``/inpaint``'s ``kind`` strokes parameter is for, naming the models that read it."""
    return (f"optional image of the photo's shape with {kind} strokes (white) that steer the fill of "
            f"{', '.join(options.guide_users(kind))}; the other models ignore it")


def takes_guides(handler: Callable) -> Callable:
    """``handler(..., *guide_files)`` as Gradio calls it: one optional named parameter per :func:`guide_kinds` entry.

    Gradio calls a ``*args`` input ``param_9`` and marks it required, in ``/gradio_api/info`` and in
    the MCP schema alike; a named parameter defaulting to None is optional and has a description
    (written into the ``Args:`` of the docstring here, like :func:`takes_knobs` does for the knobs).
    Applied where the endpoint is built, so its parameters are the guide inputs built with it.
    """
    signature = inspect.signature(handler)
    params = list(signature.parameters.values())
    at = next(i for i, p in enumerate(params) if p.kind is inspect.Parameter.VAR_POSITIONAL)
    names = [guide_parameter(kind) for kind in guide_kinds()]
    guides = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=str | None)
              for name in names]
    outer = signature.replace(parameters=[*params[:at], *guides, *params[at + 1:]])

    @functools.wraps(handler)
    def call(*args: Any, **kwargs: Any) -> Any:
        bound = outer.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        head = [values.pop(p.name) for p in params[:at]]
        files = [values.pop(name) for name in names]
        return handler(*head, *files, **values)

    call.__signature__ = outer  # type: ignore[attr-defined]
    call.__doc__ = options.expand_arg_doc(handler.__doc__, params[at].name,
                                          {guide_parameter(kind): guide_description(kind) for kind in guide_kinds()})
    return call
