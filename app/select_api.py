"""The ``/select`` and ``/people`` API endpoints (gradio_client, MCP), declared next to ``/inpaint``.

Both take the photo as a file through the same hygiene as every upload (:func:`app.images.load_photo`:
size checked from the header, EXIF rotation applied) and return masks as PNG files of the
photo's size (white = selected), written where the results of ``/inpaint`` go (swept by age and
size, deleted with the session). Messages for a visitor never name server folders: the operator's
detail goes to the log.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from app import people, results, selection
from app.errors import InpaintError, ModelUnavailableError, WeightsError
from app.images import load_photo
from app.weights import pretrained

log = logging.getLogger(__name__)


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
        photo = load_photo(image)
        chosen = selection.select(photo, _json(points, "points"), _json(box, "box"), int(_number(grow, "grow")),
                                  method=segmenter or "auto")
        info = chosen.info() | {"note": _public_note(chosen)}
        return _write_mask(chosen.mask, "selection.png", request), info
    except Exception as exc:
        raise _error(exc) from exc


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
        photo = load_photo(image)
        found = people.find_people(photo, int(_number(grow, "grow")), _number(threshold, "threshold"))
        files = [_write_mask(p.mask, f"person-{i + 1}.png", request) for i, p in enumerate(found)]
        info = [p.info() | {"mask": Path(f).name} for p, f in zip(found, files)]
        others = [p for p in found if not p.is_subject]
        union = _write_mask(people.photobombers_mask(found), "photobombers.png", request) if others else None
        return files, info, union
    except Exception as exc:
        raise _error(exc) from exc


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


def _number(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise InpaintError(f"{what} must be a number, not {value!r}.") from exc


def _write_mask(mask: np.ndarray, name: str, request: gr.Request | None) -> str:
    folder = results.output_folder(getattr(request, "session_hash", None) or "")
    path = folder / name
    Image.fromarray(mask.astype(np.uint8) * 255, "L").save(path, optimize=False, compress_level=1)
    return str(path)


def _public_note(chosen: selection.Selection) -> str:
    """The fallback's reason in a visitor's words (the operator's, with folders and commands, is logged)."""
    if not chosen.note:
        return ""
    log.info("select fell back to GrabCut: %s", chosen.note)
    spec = selection.segmenter_spec()
    try:
        why = pretrained.locate(spec).public or "it could not be loaded"
    except InpaintError:
        why = "its weights are misconfigured on this server"
    return f"{spec.name} is not available on this server ({why}); OpenCV GrabCut selected instead."


def _error(exc: Exception) -> gr.Error:
    if isinstance(exc, (ModelUnavailableError, WeightsError)):
        log.warning("%s", exc)
        return gr.Error("This model is not available on this server right now; the server log says what the "
                        "operator should do. Clicking to select still works (OpenCV GrabCut).",
                        title="Not available", print_exception=False)
    if isinstance(exc, InpaintError):
        return gr.Error(str(exc), title="Cannot select", print_exception=False)
    return gr.Error(f"Something went wrong: {type(exc).__name__}: {exc}", title="Unexpected error")


def declare_endpoints() -> None:
    """Hidden components behind ``/select`` and ``/people`` (call inside the Blocks, as ``/inpaint``'s are)."""
    with gr.Group(visible=False):
        select_inputs = [gr.File(label="image"), gr.JSON(label="points"), gr.JSON(label="box"),
                         gr.Number(0, label="grow"), gr.Textbox("auto", label="segmenter")]
        select_outputs = [gr.File(label="mask"), gr.JSON(label="selection")]
        gr.Button(visible=False).click(api_select, select_inputs, select_outputs, api_name="select",
                                       concurrency_id="select")
        people_inputs = [gr.File(label="image"), gr.Number(people.DEFAULT_GROW, label="grow"),
                         gr.Number(people.THRESHOLD, label="threshold")]
        people_outputs = [gr.File(file_count="multiple", label="masks"), gr.JSON(label="people"),
                          gr.File(label="photobombers")]
        gr.Button(visible=False).click(api_people, people_inputs, people_outputs, api_name="people",
                                       concurrency_id="select")
