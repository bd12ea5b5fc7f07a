"""Disk use is bounded: what a request writes, how long it stays, how much the app keeps at most."""

from __future__ import annotations

import os
import time
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from app import disk
from app.web import canvas, endpoints, handlers, results, serving
from tests.helpers import box_hole, textured


def _file(path: Path, size: int, age: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def test_sweep_deletes_old_files_then_the_oldest_not_in_use_over_the_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(disk, "holds", disk.Holds())
    old = _file(tmp_path / "a" / "old.png", 100, age=7200)
    files = [_file(tmp_path / f"run{i}" / "r.png", 1000, age=1000 - i * 100) for i in range(5)]
    in_use = _file(tmp_path / "photo" / "mine.png", 1000, age=2000)  # the oldest, but a session works on it
    disk.holds.hold("session:x", [in_use])
    young = _file(tmp_path / "upload" / "new.png", 4000, age=1)
    left = disk.sweep(tmp_path, age=3600, cap=6000)
    assert not old.exists() and not (tmp_path / "a").exists(), "old file and its empty folder stay"
    assert [f.exists() for f in files] == [False, False, False, False, True]  # oldest first
    assert in_use.exists() and young.exists()
    assert left == 6000


def test_sweep_never_follows_links_out_of_its_folder(tmp_path):
    outside = _file(tmp_path / "outside" / "keep.png", 10, age=9999)
    root = tmp_path / "cache"
    root.mkdir()
    (root / "link").symlink_to(outside.parent, target_is_directory=True)
    disk.sweep(root, age=1, cap=0)
    assert outside.exists()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    return tmp_path / "gradio"


@pytest.fixture
def gps_photo(tmp_path) -> Path:
    exif = Image.Exif()
    exif[0x8825] = {2: (48.0, 51.0, 24.0), 1: "N"}  # GPSInfo: latitude
    path = tmp_path / "photo.jpg"
    Image.fromarray(textured(120, 160)).save(path, exif=exif, quality=95)
    return path


def _mask(tmp_path: Path) -> str:
    path = tmp_path / "mask.png"
    Image.fromarray(box_hole(120, 160, 40, 60, 40, 70).astype(np.uint8) * 255).save(path)
    return str(path)


def test_api_writes_only_the_results_it_returns(cache, gps_photo, tmp_path):
    files, _ = endpoints.api_inpaint(str(gps_photo), _mask(tmp_path), ["telea"], 1, 0, "crop", 32, 0, 0)
    written = sorted(p for p in cache.rglob("*") if p.is_file())
    assert written == [Path(files[0])]
    assert Image.open(files[0]).getexif().get_ifd(0x8825), "the visitor's own download keeps its EXIF"


def test_slider_original_carries_no_gps(cache, gps_photo):
    value, path, *_ = handlers.on_upload(str(gps_photo))
    layer = np.zeros((120, 160, 4), np.uint8)
    layer[40:60, 40:70] = (*canvas.rgba(canvas.HOLE_COLOUR)[:3], 255)
    editor = {"background": None, "layers": [layer], "composite": None}
    _, (before, after), files, *_ = handlers.on_run(path, None, editor, ["telea"], 1, 0, "crop", 32, 0, 0)
    assert not Image.open(before).getexif().get_ifd(0x8825)
    assert Image.open(files[0]).getexif().get_ifd(0x8825)


def test_results_of_a_session_are_deleted_when_it_ends(cache, gps_photo, tmp_path):
    request = gr.Request(session_hash="visitor-1")
    other = gr.Request(session_hash="visitor-2")
    mine, _ = endpoints.api_inpaint(str(gps_photo), _mask(tmp_path), ["telea"], 1, 0, "crop", 32, 0, 0, request=request)
    theirs, _ = endpoints.api_inpaint(str(gps_photo), _mask(tmp_path), ["telea"], 1, 0, "crop", 32, 0, 0, request=other)
    handlers.on_unload(request)
    assert not Path(mine[0]).exists() and Path(theirs[0]).exists()


def test_each_run_sweeps_the_cache_to_its_cap(cache, gps_photo, tmp_path, monkeypatch):
    stale = _file(cache / "inpaint-old" / "big.png", 4 << 20, age=600)
    monkeypatch.setenv(disk.CAP_ENV, "1")
    files, _ = endpoints.api_inpaint(str(gps_photo), _mask(tmp_path), ["telea"], 1, 0, "crop", 32, 0, 0)
    assert not stale.exists() and Path(files[0]).exists()


def test_the_examples_cached_copies_survive_the_sweep(cache, monkeypatch):
    """The files Gradio writes while the page is built (the examples' thumbnails) are served all day."""
    served = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: served.append(self))
    monkeypatch.setattr(results, "page_files", set())
    serving.launch()
    copies = [Path(p) for p in results.page_files]
    stale = _file(cache / "inpaint-old" / "r.png", 10, age=7200)  # a visitor's, from long ago
    assert len(copies) >= len(canvas.EXAMPLES) and served
    for path in copies:
        os.utime(path, (time.time() - 7200, time.time() - 7200))
    disk.sweep(cache, age=3600, cap=0, keep=results.page_files)
    assert all(p.exists() for p in copies) and not stale.exists()
