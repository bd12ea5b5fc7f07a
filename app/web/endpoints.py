"""The API endpoints side by side: ``/inpaint``, ``/select``, ``/people`` and ``/text`` (gradio_client, MCP, HTTP).

Hidden components make each a plain-file endpoint; its docstring is the tool's documentation.

``/select``, ``/people`` and ``/text`` take the photo as a file through the same hygiene as every upload
(:func:`app.images.load_photo`: size checked from the header, EXIF rotation applied) and return masks as
PNG files of the photo's size (white = selected), written where the results of ``/inpaint`` go (swept by age and
size, deleted with the session). Messages for a visitor never name server folders: the operator's
detail goes to the log. Every number is checked (NaN, infinities, integers too large for a float
included) before any work, and the weights a call needs are fetched before it takes the select
slot (:mod:`app.selection.lane`), so a slow download holds up nobody else.

``points`` and ``box`` are JSON inputs; their declared JSON Schema (:data:`POINTS_SCHEMA`,
:data:`BOX_SCHEMA`) is what ``/gradio_api/info`` and the MCP tools show (Gradio's own for a JSON
input, ``{"type": {}}``, is not valid JSON Schema and made MCP clients refuse every call).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from gradio.context import LocalContext

from app import masks, options, pipeline, registry, workers
from app.errors import InpaintError, ModelUnavailableError, WeightsError
from app.images import load_photo
from app.options import Knob, Options
from app.selection import clicks, lane, people, text
from app.specs import PretrainedSpec
from app.web import results
from app.web.canvas import guide_kinds
from app.web.context import client_left, session_of
from app.web.messages import public_reason, user_error, visitor_message
from app.web.signatures import takes_guides, takes_knobs
from app.weights import availability

log = logging.getLogger(__name__)


@takes_knobs
def api_inpaint(image: str, mask: str, models: list[str], knobs: dict[str, Any], *guide_files: str | None,
                request: gr.Request = None) -> tuple[list[str], list[dict[str, Any]]]:
    """Erase the painted part of a photo: each chosen inpainting model fills it, at the photo's full resolution.

    Args:
        image: the photo, any size up to the server's limit (EXIF rotation, transparency, 16-bit and CMYK are handled)
        mask: an image of the photo's shape; its white (or opaque) part is erased and filled, the rest is kept exactly
        models: ids of the models to run, each giving its own result; empty for the default models
        knobs: one line per knob of app.options, with its help text (written by takes_knobs)
        guide_files: one optional stroke image per guide kind (one line each, written by takes_guides)
        request: the caller's session, filled in by Gradio (not an input)

    Returns:
        the results as lossless full-resolution PNGs, and per result its model, sample, seconds, score and label
    """
    # Gradio's MCP server and API page show this docstring (description, one line per argument,
    # returns) as the ``/inpaint`` tool's documentation: keep it plain text, one line each.
    # Only the results are written: the caller has the original.
    try:
        chosen = Options.of(**knobs)
        model_ids = list(dict.fromkeys(models or registry.DEFAULT_MODELS))
        _fetched_or_raise(model_ids)
        left = client_left()
        with workers.inference_slot(left):
            photo = load_photo(image)
            hole = masks.to_hole(mask, photo.size)
            guides = {kind: masks.to_hole(path, photo.size, f"{kind} strokes")
                      for kind, path in zip(guide_kinds(), guide_files) if path}
            fills = pipeline.run(photo, hole, model_ids, chosen, guides=guides, cancelled=left)
            run = results.present(photo, fills, session=session_of(request), cancelled=left)
        return run["files"], [{"model": r.model.id, "sample": r.sample, "seconds": round(r.seconds, 3),
                               "score": r.score, "label": r.label} for r in fills]
    except Exception as exc:
        raise user_error(exc) from exc


def _fetched_or_raise(model_ids: list[str]) -> None:
    """Download what ``model_ids`` lack before the inference slot is taken; a failed download fails the call."""
    failed = workers.fetch_missing(model_ids)
    for model_id in workers.still_missing(model_ids):  # e.g. a model whose download another call has not finished
        failed.setdefault(model_id, InpaintError(f"{registry.get(model_id).name} has no weights here yet; call again."))
    if failed:
        raise next(iter(failed.values())) if len(failed) == 1 else InpaintError(" ".join(map(str, failed.values())))


def api_input(knob: Knob) -> gr.components.Component:
    """A hidden ``/inpaint`` input named after its knob.

    No minimum or maximum: an out-of-range number reaches :class:`Options`, whose message
    names the knob and its range (Gradio's own check would not).
    """
    if knob.choices:
        return gr.Dropdown(list(knob.choices), value=knob.default, label=knob.name, info=knob.help)
    return gr.Number(knob.default, label=knob.name, info=knob.help)


def declare_inpaint() -> None:
    """Hidden components behind ``/inpaint`` so gradio_client callers send plain files."""
    with gr.Group(visible=False):
        inputs = [gr.File(label="image"), gr.File(label="mask"),
                  gr.Dropdown(registry.ids(), multiselect=True, label="models"),
                  *(api_input(knob) for knob in options.KNOBS),
                  *(gr.File(label=f"{kind} strokes") for kind in guide_kinds())]
        outputs = [gr.File(file_count="multiple", label="images"), gr.JSON(label="results")]
        # Its own group: a call fetching weights holds no inference slot (app.workers takes it later).
        gr.Button(visible=False).click(takes_guides(api_inpaint), inputs, outputs, api_name="inpaint",
                                       concurrency_id="api", concurrency_limit=workers.API_CONCURRENCY)


def api_select(image: str, points: Any, box: Any = None, grow: float = 0, segmenter: str = "auto",
               request: gr.Request = None) -> tuple[str, dict[str, Any]]:
    """Select an object in a photo by clicking on it: positive and negative points and/or a box give its mask.

    Args:
        image: the photo, up to the server's limit; coordinates are of the photo as displayed (EXIF rotation applied)
        points: a list of [x, y, label] in the photo's pixels; label 1 = part of the object, 0 = not part of it
        box: optional [x0, y0, x1, y1] around the object, in the photo's pixel coordinates
        grow: pixels to widen the selection by, to cover the object's soft edge (a whole number from 0 to 64)
        segmenter: "auto" (the segmentation model when it can run, else OpenCV GrabCut), "grabcut", or a segmenter id
        request: the caller's session, filled in by Gradio (not an input)

    Returns:
        the mask as a PNG of the photo's size (white = selected), and how it was made (method, score, seconds, note)
    """
    try:
        method = _method(segmenter)
        radius = options.knob("grow").check(grow)
        prompts, frame = _json(points, "points"), _json(box, "box")
        lane.fetch(_segmenters_for(method), _progress())
        with lane.select_slot(_left()):
            chosen = clicks.select(load_photo(image), prompts, frame, radius, method=method, fetch=False)
        info = chosen.info() | {"note": _public_note(chosen)}
        return _write_mask(chosen.mask, "selection.png", request), info
    except Exception as exc:
        raise _error(exc, "This segmenter", "Segmenter \"auto\" selects with OpenCV GrabCut instead.",
                     _spec_or_none(segmenter)) from exc


def api_people(image: str, grow: float = people.DEFAULT_GROW, threshold: float = people.THRESHOLD,
               request: gr.Request = None) -> tuple[list[str], list[dict[str, Any]], str | None]:
    """Find every person in a photo: one mask per person with its box and score, the subject marked.

    Args:
        image: the photo, any size up to the server's limit (EXIF rotation is applied)
        grow: pixels each person's mask is widened by, to cover the edge halo (a whole number from 0 to 64)
        threshold: least detector score (0 to 1) that counts as a person
        request: the caller's session, filled in by Gradio (not an input)

    Returns:
        a PNG mask per person (white = the person), per person its box, score, subject flag and mask file name,
        and one PNG of everyone but the subject (the photobombers, ready for /inpaint) or none
    """
    try:
        radius, least = options.knob("grow").check(grow), people.check_threshold(threshold)
        failed = lane.fetch([people.detector_spec(), clicks.segmenter_spec()], _progress())
        if people.detector_spec().id in failed:
            raise failed[people.detector_spec().id]
        with lane.select_slot(_left()):
            found = people.find_people(load_photo(image), radius, least, fetch=False)
        files = [_write_mask(p.mask, f"person-{i + 1}.png", request) for i, p in enumerate(found)]
        info = [p.info() | {"mask": Path(f).name} for p, f in zip(found, files)]
        others = [p for p in found if not p.is_subject]
        union = _write_mask(people.photobombers_mask(found), "photobombers.png", request) if others else None
        return files, info, union
    except Exception as exc:
        raise _error(exc, "Finding people needs the person detector, which",
                     "Click on each person to select them instead.", people.detector_spec()) from exc


def api_text(image: str, grow: float = text.DEFAULT_GROW, request: gr.Request = None) -> tuple[str, dict[str, Any]]:
    """Find the text in a photo or comic page (lettering, captions, signs): one mask of all of it, ready for /inpaint.

    Args:
        image: the photo or page, any size up to the server's limit (EXIF rotation is applied)
        grow: pixels the mask is widened by, to take the letters' soft edge and outline (a whole number from 0 to 64)
        request: the caller's session, filled in by Gradio (not an input)

    Returns:
        the mask as a PNG of the photo's size (white = text), and how it was found (method, seconds, grow, pixels)
    """
    try:
        radius = options.knob("grow").check(grow)
        spec = text.finder_spec()
        failed = text.fetch_finder(spec, _progress())
        if failed is not None:
            raise failed
        with lane.select_slot(_left()):
            found = text.find_text(load_photo(image), radius, fetch=False)
        return _write_mask(found.mask, "text.png", request), found.info()
    except Exception as exc:
        raise text_error(exc) from exc


def text_error(exc: Exception) -> gr.Error:
    """What a visitor reads when finding text failed: the segmenter's state without server paths, else the message."""
    if not isinstance(exc, (ModelUnavailableError, WeightsError)):
        return _error(exc)
    log.warning("%s", exc)
    why = availability(text.finder_spec()).public or "its weights could not be loaded"
    return gr.Error(f"Finding text needs the text segmenter, which is not available on this server right now ({why}); "
                    f"the server log says what the operator should do. {text.INSTEAD}", title="Not available",
                    print_exception=False)


def _json(value: Any, what: str) -> Any:
    """Points and boxes as JSON values; JSON text (a client sending a string) is read too."""
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except ValueError as exc:
            raise InpaintError(f"The {what} are not valid JSON ({exc}); send e.g. [[120, 80, 1]].") from exc
    return value


def _method(segmenter: Any) -> str:
    """``auto``, ``grabcut`` or a known segmenter id (an unknown one is the caller's to fix, not unavailable)."""
    method = segmenter or "auto"
    known = ["auto", clicks.GRABCUT, *(spec.id for spec in registry.SEGMENTERS)]
    if method not in known:
        raise InpaintError(f"Unknown segmenter {str(method)[:40]!r}; choose one of {', '.join(known)}.")
    return method


def _segmenters_for(method: str) -> list[PretrainedSpec]:
    """The segmenter whose weights a ``/select`` call with ``method`` would download."""
    return [] if method == clicks.GRABCUT else [clicks.segmenter_spec(None if method == "auto" else method)]


def _spec_or_none(segmenter: Any) -> PretrainedSpec | None:
    """The segmenter a ``/select`` call named (the default for ``auto``), for its message; None if unknown."""
    try:
        return _segmenters_for(_method(segmenter))[0]
    except (InpaintError, IndexError):
        return None


def _progress() -> Any:
    """Download progress for the caller (the event's own tracker; nothing outside an event)."""

    tracker = LocalContext.progress.get(None)
    return (lambda fraction, message: tracker(fraction, desc=message)) if tracker is not None else None


def _left() -> Any:
    """Whether the caller has gone (the wait for the select slot stops then)."""
    return client_left()


def _write_mask(mask: np.ndarray, name: str, request: gr.Request | None) -> str:
    folder = results.output_folder(getattr(request, "session_hash", None) or "")
    return masks.save(mask, folder / name)


def _public_note(chosen: clicks.Selection) -> str:
    """The fallback's reason in a visitor's words (the operator's, with folders and commands, is logged)."""
    if not chosen.note:
        return ""
    log.info("select fell back to GrabCut: %s", chosen.note)
    spec = clicks.segmenter_spec()
    return f"{spec.name} is not available on this server ({public_reason(spec)}); OpenCV GrabCut selected instead."


def _error(exc: Exception, what: str = "This model", instead: str = "",
           spec: PretrainedSpec | None = None) -> gr.Error:
    if isinstance(exc, InpaintError):
        title = "Not available" if isinstance(exc, (ModelUnavailableError, WeightsError)) else "Cannot select"
        return gr.Error(visitor_message(exc, what, instead, spec), title=title, print_exception=False)
    return gr.Error(f"Something went wrong: {type(exc).__name__}: {exc}", title="Unexpected error")


def declare_endpoints() -> None:
    """Hidden components behind ``/select``, ``/people`` and ``/text`` (call inside the Blocks, as ``/inpaint``'s are).

    No Gradio concurrency limit: each call fetches its weights holding nothing, then waits for
    the select slot of :mod:`app.lane` (the queue's size still bounds how many wait).
    """
    with gr.Group(visible=False):
        select_inputs = [gr.File(label="image"), json_input("points", POINTS_SCHEMA, [[120, 80, 1]]),
                         json_input("box", BOX_SCHEMA, None), gr.Number(0, label="grow"),
                         gr.Textbox("auto", label="segmenter")]
        select_outputs = [gr.File(label="mask"), gr.JSON(label="selection")]
        gr.Button(visible=False).click(api_select, select_inputs, select_outputs, api_name="select",
                                       concurrency_id="select", concurrency_limit=None)
        people_inputs = [gr.File(label="image"), gr.Number(people.DEFAULT_GROW, label="grow"),
                         gr.Number(people.THRESHOLD, label="threshold")]
        people_outputs = [gr.File(file_count="multiple", label="masks"), gr.JSON(label="people"),
                          gr.File(label="photobombers")]
        gr.Button(visible=False).click(api_people, people_inputs, people_outputs, api_name="people",
                                       concurrency_id="select", concurrency_limit=None)
        text_inputs = [gr.File(label="image"), gr.Number(text.DEFAULT_GROW, label="grow")]
        gr.Button(visible=False).click(api_text, text_inputs, [gr.File(label="mask"), gr.JSON(label="text")],
                                       api_name="text", concurrency_id="select", concurrency_limit=None)


#: What ``/select`` accepts as ``points`` (JSON text of the same is read too).
POINTS_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "array", "maxItems": clicks.MAX_POINTS,
               "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 3}},
              {"type": "string"}],
}
#: What ``/select`` accepts as ``box``: four numbers, or nothing.
BOX_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
              {"type": "string"}, {"type": "null"}],
}


def json_input(label: str, schema: dict[str, Any], example: Any) -> gr.JSON:
    """A hidden JSON input that declares ``schema`` to the API page and the MCP tools.

    (Set on the instance: a subclass would make Gradio write a ``.pyi`` stub next to this file.)
    """
    component = gr.JSON(label=label)
    component.api_info_as_input = lambda: dict(schema)  # type: ignore[method-assign]
    component.example_payload = lambda: example  # type: ignore[method-assign]
    component.example_value = lambda: example  # type: ignore[method-assign]
    return component
