"""The Gradio 6 studio: upload, paint, compare fills — a thin layer over the pipeline.

The original photo stays on the server; the browser paints on a preview of at most
``PREVIEW_SIDE`` px and only the (small) strokes travel back, scaled up to the photo.
Re-encoding a 12 MP canvas on every submit took ~40 s (and hit upload limits).
"""

from __future__ import annotations

import functools
import inspect
import io
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
import numpy as np
from gradio.context import LocalContext
from PIL import Image

from app import disk, masks, options, pipeline, regions, registry, results, select_ui, workers
from app.errors import BadImageError, InpaintError, ModelUnavailableError, WeightsError
from app.images import Photo, check_size, decoding, load_photo, preview
from app.model_cache import availability, needs_download, offer
from app.options import Knob, Options
from app.weights.sources import Source

log = logging.getLogger(__name__)

PREVIEW_SIDE = 1024
#: Largest image the editor may send back (its canvas is the preview; a hostile client may send more).
EDITOR_MAX_PIXELS = 4 * PREVIEW_SIDE * PREVIEW_SIDE
ASSETS = Path(__file__).resolve().parents[1] / "assets"
HOLE_COLOUR = "#ff0050"
GUIDE_COLOURS = {"cyan": "#00e5ff", "yellow": "#ffe600", "green": "#7cff00"}  # one per guide kind
EXAMPLES = [("bridge.jpg", "bridge_mask.png"), ("astronaut.png", "astronaut_mask.png"),
            ("chelsea.png", "chelsea_mask.png")]


def guide_kinds() -> list[str]:
    """Every guide any registered model accepts, as far as there are brush colours to draw them."""
    return options.guide_kinds()[: len(GUIDE_COLOURS)]


def brush_colours() -> dict[str, str]:
    """Brush colour per stroke kind: the hole, then every guide."""
    return {"hole": HOLE_COLOUR} | dict(zip(guide_kinds(), GUIDE_COLOURS.values()))


def guide_help() -> str:
    """E.g. 'cyan brush = edges (EdgeConnect (Places2), ...)' for the editor label."""
    parts = []
    for (colour, _), kind in zip(GUIDE_COLOURS.items(), guide_kinds()):
        parts.append(f"{colour} brush = {kind} for {', '.join(options.guide_users(kind))}")
    return "; ".join(parts)


class ModelList(NamedTuple):
    """The model list as one visit shows it: what can be ticked, and the rest folded away with why."""

    choices: list[tuple[str, str]]  # (label, id) of the ready models and those that download on first use
    info: str  # under the list's label: what the downloads' mark means, with their sizes and sources
    unavailable: list[str]  # ids of the models that cannot run here: not in ``choices``, listed in ``folded``
    heading: str  # the fold's one line: how many, and why ("" when every model can run)
    folded: str  # Markdown: each unavailable model with its reason, for a visitor
    table: str  # Markdown: every model with its licence and state


#: Marks a tick whose model downloads its weights on first use (:func:`download_info` says from where).
DOWNLOAD_MARK = "↓"


def model_choices() -> ModelList:
    """Every model in one of three states: ready, downloads on first use (size and source), or unavailable.

    Only the first two are ticks: 18 greyed-out boxes made the list three screens long on a phone
    and pushed Erase far below the photo. A download's tick is its name and a mark, one line on a
    phone; the list's info gives sizes and sources per source. The unavailable ones are folded
    behind one line, each with a reason written for a visitor; the operator's detail (folders,
    commands) is in the CLI and the server log.
    """
    choices, downloads, unavailable, reasons, folded = [], [], [], [], []
    rows = ["| model | licence | status |", "|---|---|---|"]
    for spec in registry.MODELS:
        shown = offer(spec)
        if shown.state == "unavailable":
            unavailable.append(spec.id)
            reasons.append(shown.public)
            folded.append(f"- **{spec.name}**: {shown.public}")
            log.info("%s unavailable: %s", spec.id, shown.reason)
        elif shown.state == "download":
            downloads.append((spec.name, shown.source))
            choices.append((f"{spec.name} {DOWNLOAD_MARK}", spec.id))
        else:
            choices.append((spec.name, spec.id))
        status = {"ready": "ready" + (f" ({shown.public})" if shown.public else ""),
                  "download": shown.public, "unavailable": f"unavailable: {shown.public}"}[shown.state]
        rows.append(f"| **{spec.name}** — {spec.description} | {spec.licence} | {status} |")
    return ModelList(choices, download_info(downloads), unavailable, fold_heading(reasons), "\n".join(folded),
                     "\n".join(rows))


def download_info(downloads: list[tuple[str, Source]]) -> str:
    """E.g. "↓ downloads its weights when first chosen: LaMa (big-lama), 381 MB, from the Hugging Face Hub;
    8 models from the authors' server (size unknown)" — one clause per source ("" when nothing downloads)."""
    by_source: dict[str, list[tuple[str, Source]]] = {}
    for name, source in downloads:
        by_source.setdefault(source.label, []).append((name, source))
    clauses = []
    for label, group in by_source.items():
        sizes = {source.size for _, source in group}
        size = sizes.pop() if len(sizes) == 1 else "sizes under Models and licences"
        who = group[0][0] if len(group) == 1 else f"{len(group)} models"
        each = " each" if len(group) > 1 and size.endswith("B") else ""
        clauses.append(f"{who} from {label} ({size}{each})")
    return f"{DOWNLOAD_MARK} downloads its weights when first chosen: {'; '.join(clauses)}." if clauses else ""


def fold_heading(reasons: list[str]) -> str:
    """The fold's one line for the unavailable models' ``reasons``: how many, and the reason when all share one."""
    if not reasons:
        return ""
    count = f"{len(reasons)} more model{'s' if len(reasons) > 1 else ''} unavailable"
    if len(set(reasons)) > 1:
        return f"{count} on this server — why"
    return f"{count}: {_plural(reasons[0]) if len(reasons) > 1 else reasons[0]}"


def _plural(reason: str) -> str:
    """A visitor reason written for one model, said of several ("its weights" -> "their weights")."""
    return reason.replace("its weights", "their weights").replace("it is ", "they are ")


def on_load() -> tuple[dict, dict, str, str]:
    """The model list, its fold and the table as they stand for this visit.

    The ticks stay (the defaults need no weights); a Hub that came back makes its models tickable.
    """
    shown = model_choices()
    return (gr.update(choices=shown.choices, info=shown.info or None),
            gr.update(label=shown.heading or "Unavailable models", visible=bool(shown.unavailable)),
            shown.folded, shown.table)


def _user_error(exc: Exception) -> gr.Error:
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


def guard_editor(editor: gr.ImageEditor) -> gr.ImageEditor:
    """Size-check, from its header, every image the editor receives before Gradio decodes it.

    Gradio decodes the background, the layers and the composite itself; a 48 kB layer declaring
    60000x60000 pixels took the server to 17 GB before this check. (Wrapped on the instance: a
    subclass would make Gradio write a ``.pyi`` stub next to this file on every import.)
    """
    convert = editor.convert_and_format_image

    def checked(file, flatten_on_white: bool = False):
        if file is not None:
            data = bytes(file) if isinstance(file, (bytes, bytearray, memoryview)) else None
            if data is None and not Path(file.path).is_file():  # the age limit took it: no path, no "layer"
                raise expired_photo()
            try:
                with decoding("painted layer"), Image.open(io.BytesIO(data) if data else file.path) as header:
                    check_size(header.size, EDITOR_MAX_PIXELS, "painted layer")
            except BadImageError as exc:
                raise _user_error(exc) from exc
        return convert(file, flatten_on_white)

    editor.convert_and_format_image = checked
    return editor


def on_upload(path: str | None, request: gr.Request = None):
    """Check the photo at once (size limit, readable) and show its preview for painting.

    A refused file is cleared from the field (with the message), so nothing runs on it. An
    accepted one is in use for the visitor's session (:func:`in_use`) until the page closes.
    """
    if not path:
        return None, None, None, "", gr.skip()
    try:
        in_use(path, request)
        photo = load_photo(path)
        pipeline.check_photo(photo)  # a 1x1 photo is refused here, not later as an "empty mask"
    except InpaintError as exc:
        results.release(_session(request), path)
        gr.Warning(str(exc), title="Photo refused", duration=None)
        return None, None, None, f"Photo refused: {exc}", None
    return _editor_value(photo), path, None, _describe(photo), gr.skip()


def _editor_value(photo: Photo, hole: np.ndarray | None = None) -> dict:
    """The preview to paint on; a preset hole is shown tinted into the background.

    (Gradio's editor draws layers handed to it from Python offset on its canvas, so a
    preset mask travels in a state instead and is only shown here.)
    """
    small = preview(photo, PREVIEW_SIDE)
    if hole is not None:
        small = small.convert("RGBA")
        small.alpha_composite(masks.hole_preview(hole, small.size, colour=_rgba(HOLE_COLOUR, 160)))
        small = small.convert("RGB")
    return {"background": small, "layers": [], "composite": None}


def _rgba(colour: str, alpha: int = 255) -> tuple[int, int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16), alpha


def _describe(photo: Photo) -> str:
    w, h = photo.size
    return f"{photo.source} — {w * h / 1e6:.1f} MP. Paint over what should disappear."


def load_example(photo_path: str, mask_path: str):
    """An example photo with its pre-drawn mask (kept as the preset), ready to run."""
    photo = load_photo(photo_path)
    hole = masks.to_hole(mask_path, photo.size)
    return _editor_value(photo, hole), photo_path, mask_path, _describe(photo) + " (the example's mask is preset)"


def strokes(editor: dict | None, size: tuple[int, int], preset: str | None = None,
            selected: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Painted strokes per brush colour (``hole`` and guides) at the photo's size, plus a preset hole
    and what was selected by clicking (:mod:`app.select_ui`)."""
    layers = [layer for layer in (editor or {}).get("layers") or [] if layer is not None]
    colours = brush_colours()
    maps = masks.strokes_by_colour(layers, {name: _rgba(c)[:3] for name, c in colours.items()}, EDITOR_MAX_PIXELS)
    maps = {name: masks.fit(m, size, "painted layer") for name, m in maps.items()}
    for extra in (masks.to_hole(preset, size) if preset else None, selected):
        if extra is not None:
            maps["hole"] = maps["hole"] | extra if "hole" in maps else extra
    if "hole" in maps:  # a guide drawn across the hole must not punch a strip of the object back into it
        maps["hole"] = masks.absorb_guides(maps["hole"], [m for name, m in maps.items() if name != "hole"])
    if "hole" not in maps or not maps["hole"].any():
        raise InpaintError("Paint over what should disappear first, or click on it under \"Select by clicking\" "
                          "(the mask is empty).")
    return maps


def on_fetch(model_ids: list[str], progress=gr.Progress()) -> None:
    """Download the weights of the chosen models that are not here yet, with progress.

    Runs in its own concurrency group, so one visitor's download never holds the worker that
    runs everybody's models; a failed download is reported here and again by :func:`on_run`.
    """
    for model_id, exc in workers.fetch_missing(model_ids or [], lambda f, m: progress(f, desc=m)).items():
        gr.Warning(str(exc), duration=None, title=f"{registry.get(model_id).name} could not be downloaded")


class Shown(NamedTuple):
    """What one run shows, in the order of the studio's outputs."""

    gallery: Any  # the tiles of the chosen view (a gr.Gallery update with its columns)
    before_after: tuple[str, str] | None  # previews of the original and the first result, for the slider
    files: list[str]  # the full-resolution PNGs (written after the previews: reading one waits; see on_downloads)
    run: results.Run  # the run's state in the session: views, previews, files, regions
    status: str
    chosen: str | None  # the result "Continue" would take: the first, until another is clicked


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


@takes_knobs
def on_run(photo_path: str | None, preset: str | None, editor: dict | None, model_ids: list[str],
           knobs: dict[str, Any], view: str = results.VIEWS[0], picked: select_ui.Picked | None = None,
           people_erased: list[str] | None = None, progress=gr.Progress(),
           request: gr.Request = None) -> Shown:
    """Run every chosen model; the comparison tiles and slider previews at once, the full-resolution PNGs after.

    The PNGs are written by a background writer (``results.present(background=True)``): the page
    shows the fills first and :func:`on_downloads`, the next event, offers the files once written.
    """
    if not photo_path:
        raise gr.Error("Upload a photo first.", title="No photo", print_exception=False)
    in_use(photo_path, request)
    failed: dict[str, str] = {}  # model name -> why: the others' fills are still shown
    try:
        chosen = Options.of(**knobs)
        ready = _ready(model_ids, failed)
        left = client_left()
        with workers.inference_slot(left):
            photo = load_photo(photo_path)
            pipeline.check_photo(photo)  # before the strokes are judged (an API caller skips the upload check)
            painted = strokes(editor, photo.size, preset, select_ui.hole_of(picked, photo_path, people_erased))
            hole = painted.pop("hole")
            fills = pipeline.run(photo, hole, ready, chosen, guides=painted,
                                 progress=lambda f, m: progress(f, desc=m),
                                 on_failure=lambda spec, exc: failed.update({spec.name: for_visitor(exc, spec)}),
                                 cancelled=left)
            progress(1.0, desc="Preparing the comparison")
            changed = fills[0].changed
            changed = pipeline.changed_area(photo, hole, chosen) if changed is None else changed
            run = results.present(photo, fills, changed, _session(request), cancelled=left, background=True)
    except Exception as exc:  # every failure reaches the page as a message
        if failed and isinstance(exc, InpaintError):  # no model gave a result: why, model by model
            raise gr.Error(" ".join(failed.values()), title="Cannot inpaint", print_exception=False) from exc
        raise _user_error(exc) from exc
    for name, why in failed.items():
        gr.Warning(why, duration=None, title=f"{name} gave no result")
    status = f"{len(fills)} result(s) at {photo.size[0]}x{photo.size[1]}; downloads are full resolution."
    if failed:
        status += f" No result from {', '.join(failed)} (see the message)."
    return _shown(run, view, status)


def _shown(run: results.Run, view: str, status: str) -> Shown:
    items, columns = results.gallery(run, view)
    return Shown(gr.Gallery(value=items, columns=columns), results.before_after(run, 0), results.PendingFiles(run),
                 run, status, run["files"][0])


def files_later(handler: Callable[..., Shown]) -> Callable[..., Shown]:
    """``handler`` as the page's Erase event calls it: the downloads emptied (no stale files of the last run).

    Gradio would read the files to serve them, waiting for the PNG writer; :func:`on_downloads`
    (chained after) fills the downloads instead, so the fills show while the PNGs are written.
    """

    @functools.wraps(handler)
    def call(*args: Any, **kwargs: Any) -> Shown:
        return handler(*args, **kwargs)._replace(files=None)

    return call


def on_downloads(run: results.Run | None):
    """The full-resolution PNGs of the run just shown, once its writer has written them."""
    if not run:
        return gr.skip()
    try:
        return results.wait(run)
    except Exception as exc:
        raise _user_error(exc) from exc


def on_view(run: results.Run | None, view: str):
    """All holes in one row of tiles, or one row per hole."""
    items, columns = results.gallery(run, view)
    return gr.Gallery(value=items, columns=columns)


def on_select(run: results.Run | None, view: str, event: gr.SelectData):
    """The whole photo of the clicked tile's result in the slider; "Continue" would take it."""
    result = results.result_at(run, view, event.index)
    if result is None:
        return gr.skip(), gr.skip()
    return results.before_after(run, result), run["files"][result]


def on_merge(run: results.Run | None, photo_path: str | None, *picks: str):
    """One full-resolution photo with the result picked for each hole; shown, offered and ready to continue."""
    if not run or not photo_path:
        raise gr.Error("Run the models first.", print_exception=False)
    try:
        chosen = {hole: run["labels"].index(label) for hole, label in enumerate(picks, 1) if label in run["labels"]}
        merged = results.merge(run, photo_path, chosen)
    except InpaintError as exc:
        raise _user_error(exc) from exc
    preview_path = regions.save_preview(regions.shrink(Image.open(merged).convert("RGB"), regions.PREVIEW_SIDE),
                                        Path(merged).with_name("preview-merged"))
    return (run["slides"][0], str(preview_path)), merged, merged


def on_continue(chosen: str | None, photo_path: str | None, history: list[str]):
    """The chosen (or merged) result becomes the photo to erase from; the strokes and results are cleared."""
    if not chosen or not photo_path:
        raise gr.Error("Run the models and pick a result first.", print_exception=False)
    try:
        results.wait_for(chosen)  # clicked before its PNG was written
    except Exception as exc:
        raise _user_error(exc) from exc
    return _start(chosen, [*history, photo_path], "Continuing from the chosen result.")


def on_undo(photo_path: str | None, history: list[str]):
    """Back to the photo before the last "Continue"."""
    if not history:
        raise gr.Error("Nothing to undo.", print_exception=False)
    return _start(history[-1], history[:-1], "Back to the previous photo.")


def on_clear():
    """The photo field was emptied: no result, pick or stored path of the old photo stays, so Erase cannot run on it.

    The editor keeps the old preview until the next photo replaces it (nothing runs on it: the
    stored photo is gone).
    """
    return None, None, "Upload a photo to start.", [], *clear_results()


def clear_results():
    """Outputs ``RESULTS``: no tiles, slider, downloads, run, chosen result or status."""
    return [], None, None, None, None, ""


def _start(photo_path: str, history: list[str], note: str):
    """Editor, stored photo, preset, description and undo stack for a new photo to paint on (EXIF, ICC and
    bit depth kept in its file); :func:`clear_results` follows as its own event."""
    if not Path(photo_path).is_file():
        raise expired_photo()
    try:
        photo = load_photo(photo_path)
    except InpaintError as exc:
        raise _user_error(exc) from exc
    return _editor_value(photo), photo_path, None, f"{_describe(photo)} {note}", history


def _ready(model_ids: list[str] | None, failed: dict[str, str]) -> list[str]:
    """The chosen models that can run now; those still waiting for weights go to ``failed``."""
    ready = []
    for model_id in dict.fromkeys(model_ids or []):
        spec = registry.get(model_id)
        if needs_download(spec):
            failed[spec.name] = f"{spec.name} has no weights here yet (its download did not finish); run again."
        else:
            ready.append(model_id)
    if not ready and not failed:
        raise InpaintError("Choose at least one model.")
    if not ready:
        raise InpaintError(" ".join(failed.values()))
    return ready


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


IMPORTED = time.time()  # files Gradio makes while the page is built are the page's own (serving.launch)


def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or ""


def on_unload(request: gr.Request) -> None:
    """The visitor closed the page: their results go now rather than at the next sweep, their photos are free."""
    results.forget(_session(request))


def expired_photo() -> gr.Error:
    """What a visitor reads when the photo they work on has gone from the server (its age limit)."""
    minutes = disk.max_age() / 60
    return gr.Error(f"Your photo is no longer on the server (photos are kept {minutes:.0f} minutes); please "
                    "upload it again.", title="Photo expired", print_exception=False)


def in_use(path: str, request: gr.Request | None) -> None:
    """``path``, the photo a page event works on, is in use for the visitor's session from now on
    (:func:`app.results.in_use_by`): the disk's cap never deletes it. Gone already: :func:`expired_photo`."""
    results.in_use_by(_session(request), path)
    if not Path(path).is_file():
        results.release(_session(request), path)
        raise expired_photo()


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
            run = results.present(photo, fills, session=_session(request), cancelled=left)
        return run["files"], [{"model": r.model.id, "sample": r.sample, "seconds": round(r.seconds, 3),
                               "score": r.score, "label": r.label} for r in fills]
    except Exception as exc:
        raise _user_error(exc) from exc


def _fetched_or_raise(model_ids: list[str]) -> None:
    """Download what ``model_ids`` lack before the inference slot is taken; a failed download fails the call."""
    failed = workers.fetch_missing(model_ids)
    for model_id in workers.still_missing(model_ids):  # e.g. a model whose download another call has not finished
        failed.setdefault(model_id, InpaintError(f"{registry.get(model_id).name} has no weights here yet; call again."))
    if failed:
        raise next(iter(failed.values())) if len(failed) == 1 else InpaintError(" ".join(map(str, failed.values())))


def knob_control(knob: Knob) -> gr.components.Component:
    """The studio's control of a knob, with its declared range, step, default and label."""
    if knob.control == "radio":  # the choices' names alone do not say what they do
        return gr.Radio(list(knob.choices), value=knob.default, label=knob.label, info=knob.help, elem_id=knob.name)
    if knob.control == "number":
        return gr.Number(knob.default, precision=0, label=knob.label, elem_id=knob.name)
    return gr.Slider(knob.low, knob.high, value=knob.default, step=knob.step, label=knob.label, elem_id=knob.name)


def api_input(knob: Knob) -> gr.components.Component:
    """A hidden ``/inpaint`` input named after its knob.

    No minimum or maximum: an out-of-range number reaches :class:`Options`, whose message
    names the knob and its range (Gradio's own check would not).
    """
    if knob.choices:
        return gr.Dropdown(list(knob.choices), value=knob.default, label=knob.name, info=knob.help)
    return gr.Number(knob.default, label=knob.name, info=knob.help)


def build() -> gr.Blocks:
    """The whole studio as a Blocks app (launch it with :func:`launch`)."""
    shown = model_choices()
    colours = brush_colours()
    guides = guide_help()
    # Gradio forgets uploads after the age of app.disk too (the sweep also caps their size).
    with gr.Blocks(title="Inpainting studio", delete_cache=(600, int(disk.max_age()))) as demo:
        gr.Markdown("# Inpainting studio\nUpload a photo, paint over what should go, compare the fills of "
                    "several models side by side and download the result at full resolution.")
        photo_path = gr.State(None)
        preset = gr.State(None)  # mask file of a chosen example
        run_state = gr.State(None)
        chosen = gr.State(None)  # the result file "Continue" takes
        history = gr.State([])  # earlier photos, for "Undo"
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                upload = gr.File(label="Photo (any size up to the limit; EXIF rotation, RGBA, 16-bit, CMYK ok)",
                                 file_types=["image"], type="filepath", elem_id="photo")
                editor = guard_editor(gr.ImageEditor(
                    label="Paint what should go", show_label=False,  # its toolbar covers a label on phones
                    type="numpy", image_mode="RGBA", sources=(), transforms=(), layers=False, format="png",
                    brush=gr.Brush(colors=list(colours.values()), default_color=HOLE_COLOUR, color_mode="fixed"),
                    height=560, elem_id="editor",
                ))
                gr.Markdown("Red brush: what should go." + (f" Optional: {guides}." if guides else ""),
                            elem_id="brushes")
                info = gr.Markdown(elem_id="info")
                picked, people_erased = select_ui.panel(photo_path)
                examples = gr.Gallery(_example_thumbnails(), label="Examples (photo + pre-drawn mask): click one",
                                      columns=3, height="auto", allow_preview=False, object_fit="cover",
                                      elem_id="examples")
            with gr.Column(scale=2, min_width=300):
                models = gr.CheckboxGroup(shown.choices, label="Models", elem_id="models", info=shown.info or None,
                                          value=[m for m in registry.DEFAULT_MODELS if m not in shown.unavailable])
                with gr.Accordion(shown.heading or "Unavailable models", open=False, visible=bool(shown.unavailable),
                                  elem_id="unavailable-models") as fold:
                    folded = gr.Markdown(shown.folded, elem_id="unavailable-list")
                controls = {k.name: knob_control(k) for k in options.KNOBS if not k.advanced}
                with gr.Accordion("Advanced", open=False):
                    controls |= {k.name: knob_control(k) for k in options.KNOBS if k.advanced}
                with gr.Row():
                    run = gr.Button("Erase", variant="primary", elem_id="run")
                    cancel = gr.Button("Cancel", variant="stop", visible=False, elem_id="cancel")
                status = gr.Markdown(elem_id="status")
                with gr.Accordion("Models and licences", open=False):
                    models_table = gr.Markdown(shown.table)
        view = gr.Radio(list(results.VIEWS), value=results.VIEWS[0], label="Compare", elem_id="view")
        gallery = gr.Gallery(label="The fills where they differ (click one for the whole photo)", columns=4,
                             height="auto", object_fit="contain", allow_preview=False, elem_id="gallery")
        slider = gr.ImageSlider(label="Before / after (preview; downloads are full resolution)", type="filepath",
                                max_height=700, elem_id="before-after")
        with gr.Row():
            keep = gr.Button("Continue from this result", elem_id="continue")
            undo = gr.Button("Undo", elem_id="undo")
        _pick_per_hole(run_state, photo_path, slider, chosen)
        downloads = gr.File(label="Full-resolution downloads", file_count="multiple", elem_id="downloads")
        # The editor and the result outputs change in separate events: in one event together, Gradio's
        # editor kept its progress overlay after the update (seen in Chromium) and refused strokes.
        start = [editor, photo_path, preset, info, history]
        shown = [gallery, slider, downloads, run_state, chosen, status]
        examples.select(on_example, None, [editor, photo_path, preset, info, upload], api_name=False,
                        show_progress_on=info)
        upload.upload(on_upload, upload, [editor, photo_path, preset, info, upload], api_name=False,
                      show_progress_on=info)
        upload.clear(on_clear, None, start[1:] + shown, api_name=False, queue=False, show_progress="hidden")
        # Erase is locked while a run is in flight; Cancel stops it between window batches.
        lock = run.click(lambda: (gr.update(interactive=False), gr.update(visible=True)), None, [run, cancel],
                         api_name=False, queue=False)
        # Downloads and inference queue apart: a visitor waiting for weights holds no inference worker.
        fetch = lock.then(on_fetch, models, None, api_name=False, concurrency_id="downloads",
                          concurrency_limit=workers.DOWNLOAD_CONCURRENCY, show_progress_on=status)
        run_inputs = [photo_path, preset, editor, models, *(controls[n] for n in options.NAMES), view, picked,
                      people_erased]
        work = fetch.success(files_later(on_run), run_inputs,
                             [gallery, slider, downloads, run_state, status, chosen], api_name=False,
                             concurrency_id="inpaint")
        unlock = (lambda: (gr.update(interactive=True), gr.update(visible=False)), None, [run, cancel])
        work.then(*unlock, api_name=False, queue=False)
        # The PNGs are written while the fills are on screen; waiting for them holds no inference worker.
        ready = work.success(on_downloads, run_state, downloads, api_name=False, concurrency_limit=None)
        # Results cleared (photo removed, continue, undo) before the PNGs were written: no stale downloads after.
        for leave in (upload.clear, keep.click, undo.click):
            leave(None, None, None, api_name=False, queue=False, cancels=[ready])
        work.failure(*unlock, api_name=False, queue=False)  # an error ends the chain: unlock all the same
        cancel.click(*unlock, api_name=False, queue=False, cancels=[fetch, work, ready])
        view.change(on_view, [run_state, view], gallery, api_name=False, queue=False)
        gallery.select(on_select, [run_state, view], [slider, chosen], api_name=False)
        keep.click(on_continue, [chosen, photo_path, history], start, api_name=False, show_progress_on=info).success(
            clear_results, None, shown, api_name=False, queue=False)
        undo.click(on_undo, [photo_path, history], start, api_name=False, show_progress_on=info).success(
            clear_results, None, shown, api_name=False, queue=False)
        demo.unload(on_unload)
        # Asked again per visit (sources' answers are remembered a few minutes): a Hub that was down
        # when the Space started does not leave its models unavailable until a restart.
        demo.load(on_load, None, [models, fold, folded, models_table], api_name=False, queue=False)
        _api_endpoint()
        from app.select_api import declare_endpoints  # /select and /people (issue 17)

        declare_endpoints()
    return demo


def _pick_per_hole(run_state: gr.State, photo_path: gr.State, slider: gr.ImageSlider, chosen: gr.State) -> None:
    """With several holes: a choice of result per hole, and a button that merges them at full resolution."""

    @gr.render(inputs=run_state)
    def picks(run: results.Run | None) -> None:
        if not run or run.get("regions", 0) < 2:
            return
        with gr.Row(elem_id="picks"):
            choices = [gr.Dropdown(run["labels"], value=run["labels"][0], label=f"Hole {k}", min_width=160,
                                   interactive=True, elem_id=f"pick-{k}") for k in range(1, run["regions"] + 1)]
            merge = gr.Button("Merge the picks", elem_id="merge")
        merged_files = gr.File(label="Merged (full resolution)", elem_id="merged", visible=False)
        merge.click(on_merge, [run_state, photo_path, *choices], [slider, merged_files, chosen], api_name=False) \
            .then(lambda: gr.update(visible=True), None, merged_files, api_name=False, queue=False)


def _example_thumbnails() -> list[tuple[Image.Image, str]]:
    """Each example as a small picture with its preset mask tinted in, captioned with its name."""
    items = []
    for photo_name, mask_name in EXAMPLES:
        value = load_example(str(ASSETS / photo_name), str(ASSETS / mask_name))[0]
        items.append((regions.shrink(value["background"], 320), Path(photo_name).stem))
    return items


def on_example(event: gr.SelectData):
    """The clicked example with its pre-drawn mask, ready to run."""
    photo_name, mask_name = EXAMPLES[event.index]
    return (*load_example(str(ASSETS / photo_name), str(ASSETS / mask_name)), str(ASSETS / photo_name))


#: Captions under the tiles rather than over them; on phone-sized screens two tiles a row. The examples
#: take their thumbnails' height (Gradio's 320 px minimum left ~190 px empty, Erase further down on phones);
#: the unavailable models' one line reads from the left, like the list above it. On a phone the model
#: list scrolls past 45% of the screen, so Erase stays near the photo however many models can download.
CSS = """
#examples .grid-wrap { min-height: 0 !important; }
#unavailable-models .label-wrap { text-align: left; gap: 0.5rem; }
#unavailable-models .label-wrap .icon { flex-shrink: 0; align-self: center; height: auto; }
#gallery .thumbnail-item, #examples .thumbnail-item { display: flex; flex-direction: column; height: auto; }
#gallery, #gallery .grid-wrap, #examples, #examples .grid-wrap { height: auto !important; max-height: none !important; }
#gallery .caption-label, #examples .caption-label { position: static; max-width: none; white-space: normal;
  overflow-wrap: anywhere; font-size: 0.8rem; text-align: center; }
@media (max-width: 640px) {
  #editor { height: 440px !important; }
  #gallery .grid-container { --grid-cols: 2 !important; }
  #models label { padding: 4px 8px; font-size: 0.8rem; }
  #models > div.wrap:not(.default) { max-height: 45vh; overflow-y: auto; }
}
"""


def _api_endpoint() -> None:
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
