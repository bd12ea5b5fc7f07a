"""The Gradio 6 studio's layout: upload, paint, compare fills — every part wired to its handler.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import gradio as gr
from PIL import Image

from app import disk, options, registry, workers
from app.options import Knob
from app.web import keys, regions, remembered, results, select_panel
from app.web.canvas import ASSETS, EXAMPLES, HOLE_COLOUR, brush_colours, guard_editor, guide_help, load_example
from app.web.endpoints import declare_endpoints, declare_inpaint
from app.web.handlers import (
    clear_results,
    files_later,
    on_clear,
    on_continue,
    on_downloads,
    on_example,
    on_fetch,
    on_merge,
    on_run,
    on_select,
    on_undo,
    on_unload,
    on_upload,
    on_view,
    on_zoom,
)
from app.web.mask_files import on_mask_download, on_mask_upload
from app.web.model_list import model_choices

log = logging.getLogger(__name__)


IMPORTED = time.time()  # files Gradio makes while the page is built are the page's own (serving.launch)


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
                gr.Markdown("Red brush: what should go." + (f" Optional: {guides}." if guides else "")
                            + f"<br><small>{keys.legend(bool(guides))}</small>", elem_id="brushes")
                with gr.Row(elem_id="mask-files"):
                    mask_in = gr.UploadButton("Load a mask", file_types=["image"], size="sm", elem_id="mask-in")
                    mask_out = gr.Button("Download the mask", size="sm", elem_id="mask-out")
                mask_files = gr.File(label="Mask at full resolution (white = hole; the CLI's --mask takes it)",
                                     file_count="multiple", visible=False, elem_id="mask-files-out")
                info = gr.Markdown(elem_id="info")
                picked, people_erased = select_panel.panel(photo_path)
                examples = gr.Gallery(_example_thumbnails(), label="Examples (photo + pre-drawn mask): click one",
                                      columns=3, height="auto", allow_preview=False, object_fit="cover",
                                      elem_id="examples")
            with gr.Column(scale=2, min_width=300):
                models = gr.CheckboxGroup(shown.choices, label="Models", elem_id="models", info=shown.info or None,
                                          value=[m for m in registry.DEFAULT_MODELS if m not in shown.unavailable])
                settings = remembered.browser_state()
                with gr.Accordion(shown.heading or "Unavailable models", open=False, visible=bool(shown.unavailable),
                                  elem_id="unavailable-models") as fold:
                    folded = gr.Markdown(shown.folded, elem_id="unavailable-list")
                controls = {k.name: knob_control(k) for k in options.KNOBS if not k.advanced}
                with gr.Accordion("Advanced", open=False):
                    controls |= {k.name: knob_control(k) for k in options.KNOBS if k.advanced}
                    reset = gr.Button("Reset to defaults", size="sm", elem_id="reset")
                with gr.Row():
                    run = gr.Button("Erase", variant="primary", elem_id="run", min_width=100)
                    cancel = gr.Button("Cancel", variant="stop", visible=False, elem_id="cancel", min_width=100)
                status = gr.Markdown(elem_id="status")
                with gr.Accordion("Models and licences", open=False):
                    models_table = gr.Markdown(shown.table)
        view = gr.Radio(list(results.VIEWS), value=results.VIEWS[0], label="Compare", elem_id="view")
        gallery = gr.Gallery(label="The fills where they differ (click one for the whole photo and a 1:1 view)",
                             columns=4, height="auto", object_fit="contain", allow_preview=False, elem_id="gallery")
        with gr.Column(visible=False, elem_id="zoom-panel") as zoom_panel:
            zoom_box = gr.State(None)  # the photo box of the tile clicked last
            with gr.Row():
                zoom_choice = gr.Radio([], label="At 1:1 (the photo's own pixels)", elem_id="zoom-choice", scale=4)
                zoom_outline = gr.Checkbox(False, label="Hole outline", elem_id="zoom-outline", scale=1)
            zoom_view = gr.Image(type="filepath", interactive=False, show_label=False, elem_id="zoom",
                                 buttons=["download"])
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
        controls_in_order = [controls[n] for n in options.NAMES]
        examples.select(on_example, None, [editor, photo_path, preset, info, upload], api_name=False,
                        show_progress_on=info)
        upload.upload(on_upload, upload, [editor, photo_path, preset, info, upload], api_name=False,
                      show_progress_on=info)
        upload.clear(on_clear, None, start[1:] + shown, api_name=False, queue=False, show_progress="hidden")
        # Erase is locked while a run is in flight; Cancel stops it between window batches.
        lock = run.click(lambda: (gr.update(interactive=False), gr.update(visible=True), gr.update(visible=False)),
                         None, [run, cancel, zoom_panel], api_name=False, queue=False)
        # Downloads and inference queue apart: a visitor waiting for weights holds no inference worker.
        fetch = lock.then(on_fetch, models, None, api_name=False, concurrency_id="downloads",
                          concurrency_limit=workers.DOWNLOAD_CONCURRENCY, show_progress_on=status)
        run_inputs = [photo_path, preset, editor, models, *controls_in_order, view, picked, people_erased]
        work = fetch.success(files_later(on_run), run_inputs,
                             [gallery, slider, downloads, run_state, status, chosen], api_name=False,
                             concurrency_id="inpaint", show_progress_on=status)  # where the visitor looks
        work.success(None, None, None, js=keys.SHOW_RESULTS_JS, api_name=False, queue=False)
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
        gallery.select(on_select, [run_state, view, photo_path, zoom_outline],
                       [slider, chosen, zoom_box, zoom_choice, zoom_view, zoom_panel], api_name=False)
        zoom_inputs = [run_state, photo_path, zoom_box, zoom_choice, zoom_outline]
        for change in (zoom_choice.input, zoom_outline.input):
            change(on_zoom, zoom_inputs, zoom_view, api_name=False)
        mask_in.upload(on_mask_upload, [mask_in, photo_path, preset, editor], [editor, preset, info], api_name=False,
                       show_progress_on=info)
        mask_out.click(on_mask_download, [photo_path, preset, editor, picked, people_erased], mask_files,
                       api_name=False)
        for leave in (upload.upload, upload.clear, examples.select, keep.click, undo.click):
            leave(lambda: gr.update(value=None, visible=False), None, mask_files, api_name=False, queue=False)
        keep.click(on_continue, [chosen, photo_path, history], start, api_name=False, show_progress_on=info).success(
            clear_results, None, shown, api_name=False, queue=False)
        undo.click(on_undo, [photo_path, history], start, api_name=False, show_progress_on=info).success(
            clear_results, None, shown, api_name=False, queue=False)
        demo.unload(on_unload)
        # Asked again per visit (sources' answers are remembered a few minutes): a Hub that was down
        # when the Space started does not leave its models unavailable until a restart.
        demo.load(remembered.on_visit, settings, [models, fold, folded, models_table, *controls_in_order],
                  api_name=False, queue=False)
        gr.on([models.input, *(c.input for c in controls_in_order)], remembered.remember,
              [models, *controls_in_order], settings, api_name=False, queue=False, show_progress="hidden")
        reset.click(remembered.on_reset, None, [models, *controls_in_order, settings], api_name=False, queue=False)
        declare_inpaint()
        declare_endpoints()  # /select and /people (issue 17)
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
#zoom-panel #zoom .image-container, #zoom-panel #zoom .image-frame { overflow: auto; max-height: 80vh;
  justify-content: flex-start; align-items: flex-start; }
#zoom-panel #zoom img { width: auto !important; height: auto !important; max-width: none !important;
  max-height: none !important; object-fit: none !important; image-rendering: pixelated; }
#brushes kbd { font-size: 0.75rem; padding: 0 0.3em; border: 1px solid #bbb; border-radius: 3px; }
#gallery .caption-label, #examples .caption-label { position: static; max-width: none; white-space: normal;
  overflow-wrap: anywhere; font-size: 0.8rem; text-align: center; }
@media (max-width: 640px) {
  #editor { height: 440px !important; }
  #gallery .grid-container { --grid-cols: 2 !important; }
  #models label { padding: 4px 8px; font-size: 0.8rem; }
  #models > div.wrap:not(.default) { max-height: 45vh; overflow-y: auto; }
}
"""


def knob_control(knob: Knob) -> gr.components.Component:
    """The studio's control of a knob, with its declared range, step, default and label."""
    if knob.control == "radio":  # the choices' names alone do not say what they do
        return gr.Radio(list(knob.choices), value=knob.default, label=knob.label, info=knob.help, elem_id=knob.name)
    if knob.control == "number":
        return gr.Number(knob.default, precision=0, label=knob.label, elem_id=knob.name)
    return gr.Slider(knob.low, knob.high, value=knob.default, step=knob.step, label=knob.label, elem_id=knob.name)
