"""The Gradio 6 studio: upload, paint, compare fills — a thin layer over the pipeline.

The original photo stays on the server; the browser paints on a preview of at most
``PREVIEW_SIDE`` px and only the (small) strokes travel back, scaled up to the photo.
Re-encoding a 12 MP canvas on every submit took ~40 s (and hit upload limits).
"""

from __future__ import annotations

import functools
import inspect
import io
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
import numpy as np
from gradio.context import LocalContext
from PIL import Image
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from app import disk, masks, options, pipeline, registry
from app.errors import BadImageError, Cancelled, InpaintError
from app.images import Photo, check_size, decoding, load_photo, preview, save_png
from app.model_cache import availability, download, needs_download
from app.options import Knob, Options

PREVIEW_SIDE = 1024
#: Largest image the editor may send back (its canvas is the preview; a hostile client may send more).
EDITOR_MAX_PIXELS = 4 * PREVIEW_SIDE * PREVIEW_SIDE
DOWNLOAD_CONCURRENCY = 2  # weight downloads at once, apart from the inference worker(s)
ASSETS = Path(__file__).resolve().parents[1] / "assets"
HOLE_COLOUR = "#ff0050"
GUIDE_COLOURS = {"cyan": "#00e5ff", "yellow": "#ffe600", "green": "#7cff00"}  # one per guide kind
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
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


def model_choices() -> tuple[list[tuple[str, str]], str]:
    """(label, id) of the models that can run here, and a Markdown table of all of them."""
    choices, rows = [], ["| model | licence | status |", "|---|---|---|"]
    for spec in registry.MODELS:
        state = availability(spec)
        if state.ok:
            choices.append((spec.name, spec.id))
        status = ("ready" + (f" ({state.reason})" if state.reason else "")) if state.ok else \
            f"unavailable — {state.reason}"
        rows.append(f"| **{spec.name}** — {spec.description} | {spec.licence} | {status} |")
    return choices, "\n".join(rows)


def _user_error(exc: Exception) -> gr.Error:
    if isinstance(exc, InpaintError):  # the user's to fix: no traceback in the server log
        return gr.Error(str(exc), title="Cannot inpaint", print_exception=False)
    return gr.Error(f"Something went wrong: {type(exc).__name__}: {exc}", title="Unexpected error")


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
            try:
                with decoding("painted layer"), Image.open(io.BytesIO(data) if data else file.path) as header:
                    check_size(header.size, EDITOR_MAX_PIXELS, "painted layer")
            except BadImageError as exc:
                raise _user_error(exc) from exc
        return convert(file, flatten_on_white)

    editor.convert_and_format_image = checked
    return editor


def on_upload(path: str | None):
    """Check the photo at once (size limit, readable) and show its preview for painting."""
    if not path:
        return None, None, None, ""
    try:
        photo = load_photo(path)
    except InpaintError as exc:
        raise _user_error(exc) from exc
    return _editor_value(photo), path, None, _describe(photo)


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


def strokes(editor: dict | None, size: tuple[int, int], preset: str | None = None) -> dict[str, np.ndarray]:
    """Painted strokes per brush colour (``hole`` and guides) at the photo's size, plus a preset hole."""
    layers = [layer for layer in (editor or {}).get("layers") or [] if layer is not None]
    colours = brush_colours()
    maps = masks.strokes_by_colour(layers, {name: _rgba(c)[:3] for name, c in colours.items()}, EDITOR_MAX_PIXELS)
    maps = {name: masks.fit(m, size, "painted layer") for name, m in maps.items()}
    if preset:
        maps["hole"] = maps["hole"] | masks.to_hole(preset, size) if "hole" in maps else masks.to_hole(preset, size)
    if "hole" not in maps or not maps["hole"].any():
        raise InpaintError("Paint over what should disappear first (the mask is empty).")
    return maps


def on_fetch(model_ids: list[str], progress=gr.Progress()) -> None:
    """Download the weights of the chosen models that are not here yet, with progress.

    Runs in its own concurrency group, so one visitor's download never holds the worker that
    runs everybody's models; a failed download is reported here and again by :func:`on_run`.
    """
    for model_id in dict.fromkeys(model_ids or []):
        spec = registry.get(model_id)
        if needs_download(spec):
            try:
                download(spec, progress=lambda f, m: progress(f, desc=m))
            except InpaintError as exc:
                gr.Warning(str(exc), duration=None, title=f"{spec.name} could not be downloaded")


class Shown(NamedTuple):
    """What one run shows, in the order of the studio's outputs."""

    gallery: list[tuple[str, str]]  # (file, label) per result, then side outputs such as predicted edges
    before_after: tuple[str, str] | None  # the original and the first result, for the slider
    files: list[str]  # the full-resolution results, for download
    paths: list[str]  # the original (when shown), then every result: what a gallery click indexes
    status: str


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
           knobs: dict[str, Any], progress=gr.Progress(), request: gr.Request = None) -> Shown:
    """Run every chosen model; gallery + slider + downloads at full resolution."""
    if not photo_path:
        raise gr.Error("Upload a photo first.", title="No photo", print_exception=False)
    failed: dict[str, str] = {}  # model name -> why: the others' fills are still shown
    try:
        chosen = Options.of(**knobs)
        ready = _ready(model_ids, failed)
        photo = load_photo(photo_path)
        painted = strokes(editor, photo.size, preset)
        left = client_left()
        results = pipeline.run(photo, painted.pop("hole"), ready, chosen, guides=painted,
                               progress=lambda f, m: progress(f, desc=m),
                               on_failure=lambda spec, exc: failed.update({spec.name: str(exc)}), cancelled=left)
        shown = present(photo, results, _session(request), before=True, cancelled=left)
    except Exception as exc:  # every failure reaches the page as a message
        raise _user_error(exc) from exc
    for name, why in failed.items():
        gr.Warning(why, duration=None, title=f"{name} gave no result")
    if failed:
        shown = shown._replace(status=f"{shown.status} No result from {', '.join(failed)} (see the message).")
    return shown


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


#: Files the page itself needs for the server's life (the examples' cached copies, made while it was built).
_page_files: set[str] = set()
_IMPORTED = time.time()
_runs_lock = threading.Lock()
_runs: dict[str, list[Path]] = {}  # session -> its run folders, deleted when the session ends


def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or ""


def on_unload(request: gr.Request) -> None:
    """The visitor closed the page: their results go now rather than at the next sweep."""
    with _runs_lock:
        folders = _runs.pop(_session(request), [])
    disk.remove(folders)


def present(photo: Photo, results: list[pipeline.Result], session: str = "", before: bool = True,
            cancelled: Callable[[], bool] | None = None) -> Shown:
    """Write full-resolution PNGs once and point every output at them.

    ``before``: also the original for the slider (the UI; API callers have it), without EXIF,
    so no GPS position leaves in a file the visitor did not ask for. Nothing is written for a
    client that has left.
    """
    if cancelled is not None and cancelled():
        raise Cancelled("The client left; nothing was saved.")
    folder = output_folder(session)
    try:
        shown = [str(save_png(replace(photo, exif=None), folder / "original.png"))] if before else []
        items, files = [], []
        for result in results:
            name = f"{result.model.id}_s{result.sample}_{uuid.uuid4().hex[:6]}.png"
            files.append(str(save_png(result.photo, folder / name)))
            items.append((files[-1], result.label))
        if before:
            for result in results:
                if result.sample == 0:
                    items += _map_items(result, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # no half-written results left behind (e.g. disk full)
        raise
    first = (shown[0], files[0]) if files and shown else None
    return Shown(items, first, files, shown + files, f"{len(files)} result(s) at {photo.size[0]}x{photo.size[1]}.")


def output_folder(session: str = "") -> Path:
    """A fresh folder for one run's PNGs inside Gradio's cache, which serves them in place.

    (A folder elsewhere made Gradio copy every PNG into its cache and left the original
    behind for good.) The whole cache is swept first (:mod:`app.disk`: age and size cap),
    and the folder is deleted with the visitor's session.
    """
    root = Path(gr.utils.get_upload_folder())
    root.mkdir(parents=True, exist_ok=True)
    disk.sweep(root, keep=_page_files)
    folder = Path(tempfile.mkdtemp(prefix="inpaint-", dir=root))
    if session:
        with _runs_lock:
            _runs.setdefault(session, []).append(folder)
    return folder


def _map_items(result: pipeline.Result, folder: Path) -> list[tuple[str, str]]:
    """Side outputs (e.g. predicted edges) as gallery items next to the result."""
    items = []
    for name, values in result.maps.items():
        path = folder / f"{result.model.id}_{name}.png"
        gray = np.repeat((np.clip(values, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=2)
        save_png(Photo(pixels=gray), path)
        items.append((str(path), f"{result.model.name} · {name}"))
    return items


def on_select(paths: list[str] | None, event: gr.SelectData):
    """Before/after of the gallery item the user clicked (paths[0] is the original)."""
    if not paths or event.index is None or event.index + 1 >= len(paths):
        return gr.skip()
    return paths[0], paths[event.index + 1]


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
        photo = load_photo(image)
        hole = masks.to_hole(mask, photo.size)
        guides = {kind: masks.to_hole(path, photo.size, f"{kind} strokes")
                  for kind, path in zip(guide_kinds(), guide_files) if path}
        left = client_left()
        results = pipeline.run(photo, hole, models or list(registry.DEFAULT_MODELS), chosen, guides=guides,
                               cancelled=left)
        files = present(photo, results, _session(request), before=False, cancelled=left).files
        return files, [{"model": r.model.id, "sample": r.sample, "seconds": round(r.seconds, 3), "score": r.score,
                        "label": r.label} for r in results]
    except Exception as exc:
        raise _user_error(exc) from exc


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
    choices, table = model_choices()
    colours = brush_colours()
    guides = guide_help()
    # Gradio forgets uploads after the age of app.disk too (the sweep also caps their size).
    with gr.Blocks(title="Inpainting studio", delete_cache=(600, int(disk.max_age()))) as demo:
        gr.Markdown("# Inpainting studio\nUpload a photo, paint over what should go, compare the fills of "
                    "several models side by side and download the result at full resolution.")
        photo_path = gr.State(None)
        preset = gr.State(None)  # mask file of a chosen example
        paths = gr.State([])
        with gr.Row():
            with gr.Column(scale=3):
                upload = gr.File(label="Photo (any size up to the limit; EXIF rotation, RGBA, 16-bit, CMYK ok)",
                                 file_types=["image"], type="filepath", elem_id="photo")
                editor = guard_editor(gr.ImageEditor(
                    label="Paint over what should disappear (red brush)" + (f"; {guides}" if guides else ""),
                    type="numpy", image_mode="RGBA", sources=(), transforms=(), layers=False, format="png",
                    brush=gr.Brush(colors=list(colours.values()), default_color=HOLE_COLOUR, color_mode="fixed"),
                    height=560, elem_id="editor",
                ))
                info = gr.Markdown(elem_id="info")
            with gr.Column(scale=2):
                models = gr.CheckboxGroup(choices, value=[m for m in registry.DEFAULT_MODELS
                                                          if m in dict((v, k) for k, v in choices)],
                                          label="Models", elem_id="models")
                controls = {k.name: knob_control(k) for k in options.KNOBS if not k.advanced}
                with gr.Accordion("Advanced", open=False):
                    controls |= {k.name: knob_control(k) for k in options.KNOBS if k.advanced}
                run = gr.Button("Erase", variant="primary", elem_id="run")
                with gr.Accordion("Models and licences", open=False):
                    gr.Markdown(table)
        gallery = gr.Gallery(label="Results (click one to compare)", columns=3, format="png", object_fit="contain",
                             height=420, elem_id="gallery")
        with gr.Row():
            slider = gr.ImageSlider(label="Before / after", type="filepath", format="png", max_height=700,
                                    elem_id="before-after")
            downloads = gr.File(label="Full-resolution downloads", file_count="multiple", elem_id="downloads")
        status = gr.Markdown(elem_id="status")
        example_mask = gr.File(visible=False)
        examples = gr.Examples([[str(ASSETS / p), str(ASSETS / m)] for p, m in EXAMPLES], inputs=[upload, example_mask],
                               api_name=False, cache_examples=False, label="Examples (photo + pre-drawn mask)",
                               elem_id="examples")
        # Progress shows on the description only: Gradio 6 can leave its timer stuck over an
        # editor that had been painted on, hiding the new photo.
        examples.load_input_event.then(load_example, [upload, example_mask], [editor, photo_path, preset, info],
                                       api_name=False, show_progress_on=info)
        upload.upload(on_upload, upload, [editor, photo_path, preset, info], api_name=False, show_progress_on=info)
        # Downloads and inference queue apart: a visitor waiting for weights holds no inference worker.
        run.click(on_fetch, models, None, api_name=False, concurrency_id="downloads",
                  concurrency_limit=DOWNLOAD_CONCURRENCY, show_progress_on=status).success(
            on_run, [photo_path, preset, editor, models, *(controls[name] for name in options.NAMES)],
            [gallery, slider, downloads, paths, status], api_name=False, concurrency_id="inpaint")
        demo.unload(on_unload)
        gallery.select(on_select, paths, slider, api_name=False)
        _api_endpoint()
    return demo


def _api_endpoint() -> None:
    """Hidden components behind ``/inpaint`` so gradio_client callers send plain files."""
    with gr.Group(visible=False):
        inputs = [gr.File(label="image"), gr.File(label="mask"),
                  gr.Dropdown(registry.ids(), multiselect=True, label="models"),
                  *(api_input(knob) for knob in options.KNOBS),
                  *(gr.File(label=f"{kind} strokes") for kind in guide_kinds())]
        outputs = [gr.File(file_count="multiple", label="images"), gr.JSON(label="results")]
        gr.Button(visible=False).click(takes_guides(api_inpaint), inputs, outputs, api_name="inpaint",
                                       concurrency_id="inpaint")


def theme() -> gr.themes.Base:
    """Default look with system fonts: nothing is fetched from a font CDN."""
    return gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS)


def mcp_enabled() -> bool:
    """Whether ``/inpaint`` is also served as an MCP tool: yes unless ``INPAINT_MCP`` says 0/false/no/off."""
    return os.environ.get("INPAINT_MCP", "1").strip().lower() not in ("0", "false", "no", "off")


#: Operator routes Gradio answers for anyone: traffic statistics (the summary is open whenever monitoring
#: is, and the dashboard mounts on first use), the endless change stream of ``gradio app.py`` reloading,
#: and the screen-recording converter (runs ffmpeg on any uploaded video; the page never records).
BACK_OFFICE = ("/monitoring", "/gradio_api/dev/reload", "/gradio_api/process_recording")


def closed_routes(demo: gr.Blocks) -> tuple[str, ...]:
    """The :data:`BACK_OFFICE` paths to close; the reload stream stays for ``gradio app.py`` (its page uses it)."""
    return tuple(path for path in BACK_OFFICE if not (demo.dev_mode and path.endswith("/dev/reload")))


class ClosedRoutes:
    """ASGI middleware: a plain 404 for ``paths`` and everything under them, before any route runs.

    Passed to ``launch`` through ``app_kwargs`` so it is in place from the first request (routes
    removed after ``launch`` would be open until then), and it needs nothing from Gradio's routes.
    """

    def __init__(self, app: ASGIApp, paths: tuple[str, ...]) -> None:
        self.app, self.paths = app, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        path = path[len(root):] if root and path.startswith(root) else path
        if scope["type"] == "http" and any(path == p or path.startswith(p + "/") for p in self.paths):
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def public_settings(demo: gr.Blocks, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``launch`` keyword arguments for an app facing the public: the MCP tool on, the back office closed.

    Monitoring and run history are off through Gradio's own settings (the run-history page would
    list results the sweep has deleted, and its bucket routes call the Hub for visitors);
    :class:`ClosedRoutes` answers 404 for the rest. Callers' own values win, except the closed routes.
    """
    kwargs = {"mcp_server": mcp_enabled(), "enable_monitoring": False, "run_history": False} | kwargs
    app_kwargs = dict(kwargs.get("app_kwargs") or {})
    app_kwargs["middleware"] = [*app_kwargs.get("middleware", []), Middleware(ClosedRoutes, paths=closed_routes(demo))]
    return kwargs | {"app_kwargs": app_kwargs}


def launch(demo: gr.Blocks | None = None, **kwargs) -> None:
    """Queue with bounded concurrency and size, then serve (offline-safe; see :func:`public_settings`)."""
    demo = demo or build()
    root = Path(gr.utils.get_upload_folder())
    _page_files.update(disk.made_since(root, _IMPORTED - 1))  # made while the page was built
    disk.sweep(root, keep=_page_files)  # what an earlier run of the server left
    demo.queue(default_concurrency_limit=int(os.environ.get("INPAINT_CONCURRENCY", "1")),
               max_size=int(os.environ.get("INPAINT_QUEUE_SIZE", "32")))
    kwargs.setdefault("server_name", os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    kwargs.setdefault("server_port", int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    demo.launch(theme=theme(), max_file_size="200mb", **public_settings(demo, kwargs))
