"""What a visitor of the page reads when something fails: no server paths or commands (those go to the log).
"""

from __future__ import annotations

import logging

import gradio as gr

from app import disk, registry
from app.errors import InpaintError, ModelUnavailableError, WeightsError
from app.specs import PretrainedSpec
from app.weights import availability, pretrained

log = logging.getLogger(__name__)


def user_error(exc: Exception) -> gr.Error:
    if isinstance(exc, InpaintError):  # the user's to fix: no traceback in the server log
        return gr.Error(for_visitor(exc), title="Cannot inpaint", print_exception=False)
    return gr.Error(f"Something went wrong: {type(exc).__name__}: {exc}", title="Unexpected error")


def for_visitor(exc: InpaintError, spec: registry.ModelSpec | None = None) -> str:
    """The message a visitor of the page reads: weights problems without server folders and commands.

    Those are the operator's to fix; the full message goes to the server log (and the CLI shows it).
    """
    if not isinstance(exc, (ModelUnavailableError, WeightsError)):
        return str(exc)
    log.warning("%s", exc)
    name = spec.name if spec else "This model"
    why = availability(spec).public if spec else ""
    return f"{name} is not available on this server right now ({why or 'its weights could not be loaded'}); " \
        "choose another model. The server log says what the operator should do."


def expired_photo() -> gr.Error:
    """What a visitor reads when the photo they work on has gone from the server (its age limit)."""
    minutes = disk.max_age() / 60
    return gr.Error(f"Your photo is no longer on the server (photos are kept {minutes:.0f} minutes); please "
                    "upload it again.", title="Photo expired", print_exception=False)


def public_reason(spec: PretrainedSpec) -> str:
    """Why ``spec`` cannot run, in a visitor's words: no server folders or commands (those go to the log)."""
    try:
        location = pretrained.locate(spec)
    except InpaintError:
        return "its weights are misconfigured on this server"
    if location.status == "remote":
        return "its weights could not be downloaded just now"
    return location.public or "its weights could not be loaded"


def visitor_message(exc: InpaintError, what: str = "This model", instead: str = "",
                    spec: PretrainedSpec | None = None) -> str:
    """The message a visitor reads for ``exc``: a weights problem without server paths, else the message itself.

    ``what`` names the model for a sentence ending "... is not available on this server right now
    (why)."; ``instead`` says what still works.
    """
    if not isinstance(exc, (ModelUnavailableError, WeightsError)):
        return str(exc)
    log.warning("%s", exc)
    why = f" ({public_reason(spec)})" if spec is not None else ""
    return f"{what} is not available on this server right now{why}; the server log says what the operator " \
        f"should do. {instead}".strip()
