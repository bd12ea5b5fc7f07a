"""One run's results as the studio shows them: small previews to compare, full-resolution files to download.

:func:`present` writes each result once as a lossless full-resolution PNG named after its label
(what downloads and API callers get) and, for the page, WebP previews: the whole photo at most
:data:`~app.regions.PREVIEW_SIDE` px for the before/after slider, and tiles of the hole regions,
all holes together or one row per hole. The browser never receives a full-resolution image
unless a download is clicked. The run itself is a small JSON-able dict kept in the visitor's
session (:class:`Run`), enough to switch views, merge picks and continue from a result.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from app import disk, pipeline, regions
from app.errors import Cancelled, InpaintError
from app.images import Photo, load_photo, save_png

VIEWS = ("all holes together", "each hole")

#: Files the page itself needs for the server's life (the examples' copies, made while it was built).
page_files: set[str] = set()
_runs_lock = threading.Lock()
_runs: dict[str, list[Path]] = {}  # session -> its run folders, deleted when the session ends

Run = dict[str, Any]  # see present(): the page's state of one run (JSON-able: Gradio keeps it per session)


def present(photo: Photo, results: list[pipeline.Result], changed: np.ndarray | None = None, session: str = "",
            cancelled: Callable[[], bool] | None = None) -> Run:
    """Write every result as a full-resolution PNG and, given ``changed``, what the page shows of them.

    ``changed`` is the paste-back alpha (:func:`app.pipeline.changed_area`); API callers pass none
    and get the files only. Nothing is written for a client that has left, and nothing
    half-written stays behind when writing fails.
    """
    if cancelled is not None and cancelled():
        raise Cancelled("The client left; nothing was saved.")
    folder = output_folder(session)
    try:
        files = [str(save_png(r.photo, folder / f"{r.name}.png")) for r in results]
        run: Run = {"folder": str(folder), "files": files, "labels": [r.label for r in results],
                    "size": list(photo.size)}
        if changed is not None:
            run |= _previews(photo, results, changed, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # e.g. disk full
        raise
    return run


def _previews(photo: Photo, results: list[pipeline.Result], changed: np.ndarray, folder: Path) -> Run:
    labels, found = regions.regions(changed)
    Image.fromarray(labels.astype(np.uint16)).save(folder / "regions.png")  # lossless, for merging
    views = {VIEWS[0]: [regions.together(found, changed.shape)], VIEWS[1]: found}
    everyone = [("original", photo), *((r.label, r.photo) for r in results)]
    tiles = {view: _tiles(everyone, boxes, folder, view == VIEWS[1]) for view, boxes in views.items()}
    slides = [str(regions.save_preview(regions.shrink(Image.fromarray(p.rgb8), regions.PREVIEW_SIDE),
                                       folder / f"preview-{i}")) for i, (_, p) in enumerate(everyone)]
    maps = [item for r in results if r.sample == 0 for item in _map_items(r, folder)]
    return {"slides": slides, "tiles": tiles, "maps": maps, "regions": len(found)}


def _tiles(everyone: list[tuple[str, Photo]], boxes: list[regions.Region], folder: Path,
           numbered: bool) -> list[tuple[str, str]]:
    """(file, caption) per tile: for each region, the original then every result (one gallery row each)."""
    items = []
    for region in boxes:
        for i, (label, photo) in enumerate(everyone):
            path = regions.save_preview(regions.tile(photo, region), folder / f"tile-{region.label}-{i}")
            items.append((str(path), f"hole {region.label} · {label}" if numbered else label))
    return items


def _map_items(result: pipeline.Result, folder: Path) -> list[tuple[str, str]]:
    """Side outputs (e.g. predicted edges) as previews next to the results."""
    items = []
    for name, values in result.maps.items():
        gray = Image.fromarray((np.clip(values, 0, 1) * 255).astype(np.uint8))
        path = regions.save_preview(regions.shrink(gray, regions.PREVIEW_SIDE), folder / f"{result.name}_{name}")
        items.append((str(path), f"{result.model.name} · {name}"))
    return items


def gallery(run: Run | None, view: str) -> tuple[list[tuple[str, str]], int]:
    """The tiles of ``view`` and the gallery's columns (one row per region: original + every result)."""
    if not run or "tiles" not in run:
        return [], 4
    return run["tiles"][view] + (run["maps"] if view == VIEWS[0] else []), len(run["files"]) + 1


def result_at(run: Run | None, view: str, index: int | None) -> int | None:
    """Which result a click on tile ``index`` of ``view`` means (None: an original tile or a side map)."""
    if not run or index is None:
        return None
    columns = len(run["files"]) + 1
    if view == VIEWS[0] and index >= columns:  # the side maps after the one row of tiles
        return None
    return index % columns - 1 if index % columns else None


def before_after(run: Run, result: int) -> tuple[str, str]:
    """The slider's pair: previews of the whole original and of ``result``."""
    return run["slides"][0], run["slides"][result + 1]


def merge(run: Run, photo_path: str, picks: Mapping[int, int]) -> str:
    """A full-resolution PNG with, for each hole region, the pixels of the result picked for it."""
    original = load_photo(photo_path)
    with Image.open(Path(run["folder"]) / "regions.png") as image:
        labels = np.asarray(image).astype(np.int32)
    picked = sorted(set(picks.values()))
    photos = {k: load_photo(run["files"][k]) for k in picked}
    for photo in photos.values():
        if photo.pixels.shape != original.pixels.shape:
            raise InpaintError("These results are of another photo; run again before merging.")
    merged = regions.merge(original, [photos.get(k, original) for k in range(len(run["files"]))], labels, picks)
    return str(save_png(merged, Path(run["folder"]) / "merged.png"))


def output_folder(session: str = "") -> Path:
    """A fresh folder for one run's files inside Gradio's cache, which serves them in place.

    (A folder elsewhere made Gradio copy every file into its cache and left the original
    behind for good.) The whole cache is swept first (:mod:`app.disk`: age and size cap),
    and the folder is deleted with the visitor's session.
    """
    root = Path(gr.utils.get_upload_folder())
    root.mkdir(parents=True, exist_ok=True)
    disk.sweep(root, keep=page_files)
    folder = Path(tempfile.mkdtemp(prefix="inpaint-", dir=root))
    if session:
        with _runs_lock:
            _runs.setdefault(session, []).append(folder)
    return folder


def forget(session: str) -> None:
    """The visitor left: their runs' folders go now rather than at the next sweep."""
    with _runs_lock:
        folders = _runs.pop(session, [])
    disk.remove(folders)
