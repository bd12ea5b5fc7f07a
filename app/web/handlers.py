"""The page's event handlers: upload, Erase, the comparison's views, merge, continue and undo.

Each is a thin layer over :mod:`app.pipeline` and :mod:`app.web.results`; failures reach the page as messages.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
from PIL import Image

from app import pipeline, registry, workers
from app.errors import InpaintError
from app.images import load_photo
from app.options import Options
from app.web import regions, results, select_panel, zoom
from app.web.canvas import ASSETS, EXAMPLES, describe, editor_value, load_example, strokes
from app.web.context import client_left, session_of
from app.web.messages import expired_photo, for_visitor, user_error
from app.web.signatures import takes_knobs
from app.weights import needs_download

log = logging.getLogger(__name__)


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
        results.release(session_of(request), path)
        gr.Warning(str(exc), title="Photo refused", duration=None)
        return None, None, None, f"Photo refused: {exc}", None
    return editor_value(photo), path, None, describe(photo), gr.skip()


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


@takes_knobs
def on_run(photo_path: str | None, preset: str | None, editor: dict | None, model_ids: list[str],
           knobs: dict[str, Any], view: str = results.VIEWS[0], picked: select_panel.Picked | None = None,
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
            painted = strokes(editor, photo.size, preset, select_panel.hole_of(picked, photo_path, people_erased))
            hole = painted.pop("hole")
            fills = pipeline.run(photo, hole, ready, chosen, guides=painted,
                                 progress=lambda f, m: progress(f, desc=m),
                                 on_failure=lambda spec, exc: failed.update({spec.name: for_visitor(exc, spec)}),
                                 cancelled=left)
            progress(1.0, desc="Preparing the comparison")
            changed = fills[0].changed
            changed = pipeline.changed_area(photo, hole, chosen) if changed is None else changed
            run = results.present(photo, fills, changed, session_of(request), cancelled=left, background=True)
    except Exception as exc:  # every failure reaches the page as a message
        if failed and isinstance(exc, InpaintError):  # no model gave a result: why, model by model
            raise gr.Error(" ".join(failed.values()), title="Cannot inpaint", print_exception=False) from exc
        raise user_error(exc) from exc
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
        raise user_error(exc) from exc


def on_view(run: results.Run | None, view: str):
    """All holes in one row of tiles, or one row per hole."""
    items, columns = results.gallery(run, view)
    return gr.Gallery(value=items, columns=columns)


def on_select(run: results.Run | None, view: str, photo_path: str | None, outline: bool, event: gr.SelectData):
    """The clicked tile's result: its whole photo in the slider ("Continue" would take it) and its region at 1:1.

    Outputs: slider, chosen, the tile's box, the 1:1 view's choice and image, and its panel shown.
    """
    result = results.result_at(run, view, event.index)
    box = zoom.tile_box(run, view, event.index)
    if box is None or not photo_path:  # a blank or a side map
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
    choice = zoom.ORIGINAL if result is None else run["labels"][result]
    try:
        image = zoom.view_file(run, photo_path, box, choice, outline)
    except Exception as exc:
        raise user_error(exc) from exc
    slider, chosen = (gr.skip(), gr.skip()) if result is None else (results.before_after(run, result),
                                                                     run["files"][result])
    return (slider, chosen, list(box), gr.update(choices=zoom.choices(run), value=choice), image,
            gr.update(visible=True))


def on_zoom(run: results.Run | None, photo_path: str | None, box: list[int] | None, choice: str | None,
            outline: bool):
    """The 1:1 view switched to another result (or the original), or its outline toggled."""
    if not run or not photo_path or not box or choice not in zoom.choices(run):
        return gr.skip()
    try:
        return zoom.view_file(run, photo_path, tuple(box), choice, outline)
    except Exception as exc:
        raise user_error(exc) from exc


def on_merge(run: results.Run | None, photo_path: str | None, *picks: str):
    """One full-resolution photo with the result picked for each hole; shown, offered and ready to continue."""
    if not run or not photo_path:
        raise gr.Error("Run the models first.", print_exception=False)
    try:
        chosen = {hole: run["labels"].index(label) for hole, label in enumerate(picks, 1) if label in run["labels"]}
        merged = results.merge(run, photo_path, chosen)
    except InpaintError as exc:
        raise user_error(exc) from exc
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
        raise user_error(exc) from exc
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
        raise user_error(exc) from exc
    return editor_value(photo), photo_path, None, f"{describe(photo)} {note}", history


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


def on_unload(request: gr.Request) -> None:
    """The visitor closed the page: their results go now rather than at the next sweep, their photos are free."""
    results.forget(session_of(request))


def in_use(path: str, request: gr.Request | None) -> None:
    """``path``, the photo a page event works on, is in use for the visitor's session from now on
    (:func:`app.results.in_use_by`): the disk's cap never deletes it. Gone already: :func:`expired_photo`."""
    results.in_use_by(session_of(request), path)
    if not Path(path).is_file():
        results.release(session_of(request), path)
        raise expired_photo()


def on_example(event: gr.SelectData):
    """The clicked example with its pre-drawn mask, ready to run."""
    photo_name, mask_name = EXAMPLES[event.index]
    return (*load_example(str(ASSETS / photo_name), str(ASSETS / mask_name)), str(ASSETS / photo_name))
