"""One run's results as the studio shows them: small previews to compare, full-resolution files to download.

:func:`present` makes, for the page, WebP previews first — the whole photo at most
:data:`~app.web.regions.PREVIEW_SIDE` px for the before/after slider, and tiles of the hole regions, all
holes together (a diverse model's samples in a row of their own) or one row per hole — and writes
each result as a lossless full-resolution PNG named after its label (what downloads and API callers
get): for the page in a background writer after the previews, so the fills are on screen a second
per 10 MP result sooner; for the API and the CLI before returning. The browser never receives a
full-resolution image unless a download is clicked. The run itself is a small JSON-able dict kept in
the visitor's session (:class:`Run`), enough to switch views, merge picks and continue from a result.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypedDict

import gradio as gr
import numpy as np
from PIL import Image

from app import disk, pipeline
from app.errors import Cancelled, InpaintError
from app.images import Photo, load_photo, save_png
from app.web import regions

VIEWS = ("all holes together", "each hole")

#: Files the page itself needs for the server's life (the examples' copies, made while it was built).
page_files: set[str] = set()
_runs_lock = threading.Lock()
_runs: dict[str, list[Path]] = {}  # session -> its run folders, deleted when the session ends
#: One thread writes the page's full-resolution PNGs after the previews are shown (run folder -> its job).
_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="png-writer")
_writes: dict[str, Future] = {}
#: Two threads encode the page's previews: OpenCV and libwebp release the GIL, the machines have two cores or more.
_encoders = ThreadPoolExecutor(max_workers=2, thread_name_prefix="previews")

class Run(TypedDict, total=False):
    """The page's state of one run (JSON-able: Gradio keeps it per session). :func:`present` makes it.

    The first four are always there (API callers get only these); the rest when the page shows the run.
    """

    folder: str  # where this run's files live (the session's output folder)
    files: list[str]  # one full-resolution PNG per result, in the results' order
    labels: list[str]  # each result's caption (model, sample)
    size: list[int]  # the photo's (width, height)
    slides: list[str]  # before/after previews: the original first, then one per result
    maps: list[tuple[str, str]]  # side outputs (e.g. EdgeConnect's edges) as (preview, caption)
    tiles: dict[str, list[tuple[str, str]]]  # per view ("all holes together", "each hole"): (tile, caption)
    picks: dict[str, list[int | None]]  # per view: which result each tile shows (None: the original)
    columns: dict[str, int]  # per view: tiles per row
    regions: int  # how many separate holes the run filled
    boxes: dict[str, list[list[int] | None]]  # per view: the photo box (x0, y0, x1, y1) each tile shows


def present(photo: Photo, results: list[pipeline.Result], changed: np.ndarray | None = None, session: str = "",
            cancelled: Callable[[], bool] | None = None, background: bool = False) -> Run:
    """Every result as a full-resolution PNG and, given ``changed``, what the page shows of them.

    ``changed`` is the paste-back alpha (:func:`app.pipeline.changed_area`); API callers pass none
    and get the files only. With ``background`` (the page), the previews are made first and the
    PNGs are written afterwards by a writer thread: the run lists their paths at once, and
    :func:`wait` (or :func:`wait_for` of one path) blocks until they exist. Encoding a 10 MP PNG takes
    about a second, which nobody should wait for before seeing the fills. Nothing is written for a
    client that has left, and nothing half-written stays behind when writing fails.
    """
    if cancelled is not None and cancelled():
        raise Cancelled("The client left; nothing was saved.")
    folder = output_folder(session)
    try:
        files = [str(folder / f"{r.name}.png") for r in results]
        run = Run(folder=str(folder), files=files, labels=[r.label for r in results], size=list(photo.size))
        labels = None
        if changed is not None:
            labels, previews = _previews(photo, results, changed, folder)
            run |= previews
        if background:
            _writes[str(folder)] = _writer.submit(_write_all, results, files, labels, folder)
        else:
            _write_all(results, files, labels, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # e.g. disk full
        raise
    return run


def _write_all(results: list[pipeline.Result], files: list[str], labels: np.ndarray | None,
               folder: Path) -> list[str]:
    """The full-resolution PNGs (:func:`app.images.save_png`) and the region map merging reads.

    On failure none of the PNGs stays.
    """
    try:
        if labels is not None:  # lossless, for merging
            Image.fromarray(labels.astype(np.uint16)).save(folder / "regions.png", compress_level=1)
        for result, path in zip(results, files, strict=True):
            save_png(result.photo, path)
    except BaseException:
        for path in files:
            Path(path).unlink(missing_ok=True)
        raise
    return files


def wait(run: Run) -> list[str]:
    """The run's PNG files once they exist; the writer's error (e.g. disk full) if writing failed."""
    future = _writes.get(run["folder"])
    if future is not None:
        future.result()
        _writes.pop(run["folder"], None)
    return run["files"]


def wait_for(path: str | None) -> str | None:
    """``path`` once it exists, when it is one of a run's PNGs still being written (other paths as they are)."""
    if path:
        future = _writes.get(str(Path(path).parent))
        if future is not None:
            future.result()
    return path


class PendingFiles(list):
    """A run's PNG paths for direct callers of the page's handlers: reading one waits for its writer.

    The page never reads it (its downloads come from a later event, see ``ui.on_downloads``).
    """

    def __init__(self, run: Run) -> None:
        super().__init__(run["files"])
        self._run = run

    def __getitem__(self, index):  # type: ignore[override]
        wait(self._run)
        return super().__getitem__(index)

    def __iter__(self):
        wait(self._run)
        return super().__iter__()


def _previews(photo: Photo, results: list[pipeline.Result], changed: np.ndarray,
              folder: Path) -> tuple[np.ndarray, Run]:
    """The region label map and the page's part of the run: slider previews, tiles and their layout, side maps.

    Every preview is its own job on :data:`_encoders` (OpenCV and libwebp release the GIL): on two
    cores the previews of a 10 MP run take half the time.
    """
    labels, found = regions.regions(changed)
    everyone = [("original", photo), *((r.label, r.photo) for r in results)]
    together = regions.together(found, changed.shape)
    boxes = {(region.box, i): (region, i) for region in [together, *found] for i in range(len(everyone))}
    tiles = {key: _encoders.submit(_save_tile, everyone[i][1], region, i, folder) for key, (region, i) in boxes.items()}
    slides = [_encoders.submit(_save_slide, p, folder / f"preview-{i}") for i, (_, p) in enumerate(everyone)]
    maps = [_encoders.submit(_map_item, r, name, values, folder)
            for r in results if r.sample == 0 for name, values in r.maps.items()]

    def tile(region: regions.Region, i: int) -> tuple[str, str, int | None, list[int] | None]:
        return tiles[region.box, i].result(), everyone[i][0], (i - 1 if i else None), list(region.box)

    rows = [[tile(together, i) for i in row] for row in rows_together(results)]
    columns = max(len(row) for row in rows)
    rows = [row + [_spacer(folder, together)] * (columns - len(row)) for row in rows]
    each = [(path, f"hole {region.label} · {caption}", k, box) for region in found
            for path, caption, k, box in (tile(region, i) for i in range(len(everyone)))]
    layout = {VIEWS[0]: [item for row in rows for item in row], VIEWS[1]: each}
    return labels, {"slides": [f.result() for f in slides], "maps": [f.result() for f in maps],
                    "tiles": {v: [(p, c) for p, c, _, _ in items] for v, items in layout.items()},
                    "picks": {v: [k for _, _, k, _ in items] for v, items in layout.items()},
                    "boxes": {v: [box for _, _, _, box in items] for v, items in layout.items()},
                    "columns": {VIEWS[0]: columns, VIEWS[1]: len(everyone)}, "regions": len(found)}


def _save_tile(photo: Photo, region: regions.Region, i: int, folder: Path) -> str:
    """One tile, written once per box and image (with one hole both views show the same box)."""
    return str(regions.save_preview(regions.tile(photo, region), folder / f"tile-{region.label}-{i}"))


def _save_slide(photo: Photo, path: Path) -> str:
    return str(regions.save_preview(regions.preview(photo, regions.PREVIEW_SIDE), path))


def rows_together(results: list[pipeline.Result]) -> list[list[int]]:
    """The rows of "all holes together", as indices into original (0) + results (1..): the original and
    every model with one result first, then each model's several samples in a row of their own, in sample order."""
    by_model: dict[str, list[int]] = {}
    for i, r in enumerate(results, 1):
        by_model.setdefault(r.model.id, []).append(i)
    single = [i for row in by_model.values() if len(row) == 1 for i in row]
    several = [sorted(row, key=lambda i: results[i - 1].sample) for row in by_model.values() if len(row) > 1]
    return [[0, *single], *several]


def _spacer(folder: Path, region: regions.Region) -> tuple[str, str, None, None]:
    """A blank tile that ends a short row, so the next model's samples start a row of their own."""
    path = folder / "spacer.webp"
    if not path.exists():
        x0, y0, x1, y1 = region.box
        blank = regions.shrink(Image.new("RGB", (max(1, x1 - x0), max(1, y1 - y0)), (245, 245, 245)),
                               regions.TILE_SIDE)
        regions.save_preview(blank, path)
    return str(path), "", None, None


def _map_item(result: pipeline.Result, name: str, values: np.ndarray, folder: Path) -> tuple[str, str]:
    """A side output (e.g. predicted edges) as a preview next to the results."""
    gray = Image.fromarray((np.clip(values, 0, 1) * 255).astype(np.uint8))
    path = regions.save_preview(regions.shrink(gray, regions.PREVIEW_SIDE), folder / f"{result.name}_{name}")
    return str(path), f"{result.model.name} · {name}"


def gallery(run: Run | None, view: str) -> tuple[list[tuple[str, str]], int]:
    """The tiles of ``view`` and the gallery's columns (see :func:`rows_together` and one row per region)."""
    if not run or "tiles" not in run:
        return [], 4
    return run["tiles"][view] + (run["maps"] if view == VIEWS[0] else []), run["columns"][view]


def result_at(run: Run | None, view: str, index: int | None) -> int | None:
    """Which result a click on tile ``index`` of ``view`` means (None: an original tile, a blank or a side map)."""
    if not run or index is None or "picks" not in run:
        return None
    picks = run["picks"][view]
    return picks[index] if 0 <= index < len(picks) else None


def box_at(run: Run | None, view: str, index: int | None) -> tuple[int, int, int, int] | None:
    """The photo box tile ``index`` of ``view`` shows (None: a blank, a side map, or no such tile)."""
    if not run or index is None or "boxes" not in run:
        return None
    boxes = run["boxes"][view]
    box = boxes[index] if 0 <= index < len(boxes) else None
    return tuple(box) if box else None


def before_after(run: Run, result: int) -> tuple[str, str]:
    """The slider's pair: previews of the whole original and of ``result``."""
    return run["slides"][0], run["slides"][result + 1]


def merge(run: Run, photo_path: str, picks: Mapping[int, int]) -> str:
    """A full-resolution PNG with, for each hole region, the pixels of the result picked for it.

    Every hole needs a pick that is one of the run's results: a page out of step with its run (an
    older run's pick boxes) or a hostile call gets a message instead of a merge it did not ask for.
    """
    holes = int(run.get("regions", 0) or 0)
    missing = [hole for hole in range(1, holes + 1) if hole not in picks]
    if missing:
        raise InpaintError(f"Pick one of this run's results for each of its {holes} holes (none for hole "
                           f"{', '.join(map(str, missing[:5]))}): the picks may be out of date, so run again.")
    if any(not isinstance(pick, int) or not 0 <= pick < len(run["files"]) for pick in picks.values()):
        raise InpaintError("A pick is not one of this run's results: run again before merging.")
    original = load_photo(photo_path)
    wait(run)  # a pick made before its PNG was written
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
    behind for good.) The whole cache is swept first (:mod:`app.disk`: age and size cap); a run
    is refused while the cache is still over its cap (everything in it in use). The folder is in
    use (:data:`app.disk.holds`) for its downloads' time and, as its session's latest run (the one
    the page shows, merges and continues from), until the next run or the end of the session;
    it is deleted with the session.
    """
    folder = _new_folder("inpaint-")
    disk.holds.hold(f"run:{folder}", [folder], disk.claim_seconds())
    if session:
        with _runs_lock:
            runs = _runs.setdefault(session, [])
            previous = runs[-1] if runs else None
            runs.append(folder)
        if previous is not None:
            disk.holds.release(session_owner(session), [previous])
        disk.holds.hold(session_owner(session), [folder], disk.max_age())
    return folder


def session_folder(session: str, prefix: str) -> Path:
    """A fresh folder for files a page event makes besides runs (e.g. a mask to download): in use for the
    session's life (at most the age limit), deleted with the session, swept like the runs."""
    folder = _new_folder(prefix)
    disk.holds.hold(session_owner(session) if session else f"run:{folder}", [folder], disk.max_age())
    if session:
        with _runs_lock:
            _runs.setdefault(f"{session}/other", []).append(folder)
    return folder


def _new_folder(prefix: str) -> Path:
    """A new folder in Gradio's cache after a sweep; refused while the cache is over its cap."""
    root = Path(gr.utils.get_upload_folder())
    root.mkdir(parents=True, exist_ok=True)
    if disk.sweep(root, keep=page_files) >= disk.cap_bytes():
        raise InpaintError("The server's disk is full of work in progress right now; please try again in a few "
                           "minutes.")
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root))


def session_owner(session: str) -> str:
    """The owner name of a page session's files in :data:`app.disk.holds`."""
    return f"session:{session}"


def in_use_by(session: str, path: str | None) -> None:
    """``path`` is a photo the session works on (uploaded, continued from, back to by Undo): kept until it ends.

    At most the age limit (a session that never says it ended). Paths outside the cache (the
    examples) need nothing.
    """
    if session and path:
        disk.holds.hold(session_owner(session), [path], disk.max_age())


def release(session: str, path: str | None) -> None:
    """The session no longer works on ``path`` (e.g. the photo was refused)."""
    if session and path:
        disk.holds.release(session_owner(session), [path])


def forget(session: str) -> None:
    """The visitor left: their runs' folders go now rather than at the next sweep; their photos are no longer in use."""
    with _runs_lock:
        folders = _runs.pop(session, []) + _runs.pop(f"{session}/other", [])
    disk.holds.release(session_owner(session))
    disk.remove(folders)
