"""Fills on screen before their full-resolution PNGs exist; the PNGs the same bytes as ever (issue 18)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from app import images
from app.web import handlers, results
from tests.editor import editor_with, pixels, write_photo

HOLES = [(200, 320, 250, 400), (800, 900, 1200, 1420)]


@pytest.fixture
def photo(tmp_path):
    """The compare view's photo, with EXIF and ICC."""
    return write_photo(tmp_path)


@pytest.fixture
def held(monkeypatch):
    """The PNG writer held until the test releases it: the page's moment before the files exist."""
    release = threading.Event()
    write = results._write_all

    def slow(*args, **kwargs):
        assert release.wait(30), "the test never released the writer"
        return write(*args, **kwargs)

    monkeypatch.setattr(results, "_write_all", slow)
    yield release
    release.set()


def run(photo_path) -> handlers.Shown:
    return handlers.on_run(str(photo_path), None, editor_with(HOLES), ["telea", "navier-stokes"], 1, 0, "crop", 64, 4,
                           4)


def test_previews_are_shown_before_the_pngs_exist_and_downloads_follow(photo, held):
    shown = run(photo)
    paths = shown.run["files"]
    assert not any(Path(p).exists() for p in paths)  # the fills are on screen, the files still to come
    tiles, _ = results.gallery(shown.run, results.VIEWS[0])
    assert tiles and all(Path(path).exists() for path, _ in tiles)
    assert all(Path(p).exists() for p in shown.before_after)
    erase = handlers.files_later(handlers.on_run)
    page = erase(str(photo), None, editor_with(HOLES), ["telea"], 1, 0, "crop", 64, 4, 4)
    assert page.files is None  # the page's event leaves the downloads to on_downloads
    held.set()
    assert handlers.on_downloads(shown.run) == paths and all(Path(p).exists() for p in paths)


@pytest.mark.slow  # ~5 s here: the full run only (README, fast lane)
def test_merge_and_continue_clicked_before_the_pngs_exist_wait_for_them(photo, held):
    shown = run(photo)
    telea, ns = shown.run["labels"]
    threading.Timer(0.5, held.set).start()
    slider, merged, chosen = handlers.on_merge(shown.run, str(photo), telea, ns)
    assert Path(merged).exists()
    assert (pixels(merged)[200:320, 250:400] == pixels(shown.files[0])[200:320, 250:400]).all()
    editor, path, *_ = handlers.on_continue(shown.chosen, str(photo), [])
    assert path == shown.run["files"][0] and Path(path).exists()


@pytest.mark.slow  # ~4 s here
def test_continue_waits_for_the_writer_too(photo, held):
    shown = run(photo)
    threading.Timer(0.5, held.set).start()
    _, path, *_ = handlers.on_continue(shown.chosen, str(photo), [])
    assert Path(path).exists()


def test_pngs_are_byte_identical_to_the_synchronous_encoding(photo, monkeypatch):
    """The writer thread writes exactly what the synchronous path (API, CLI, earlier versions) writes."""
    seen = []
    write = results._write_all
    monkeypatch.setattr(results, "_write_all", lambda fills, *a: seen.extend(fills) or write(fills, *a))
    shown = run(photo)
    paths = list(shown.files)
    assert len(seen) == len(paths) == 2
    for fill, path in zip(seen, paths, strict=True):
        assert Path(path).read_bytes() == images.encode_png(fill.photo)  # what save_png wrote before
    monkeypatch.setattr(results, "_write_all", write)
    again = results.present(seen[0].photo, seen)  # the API's path: written before it returns
    assert [Path(p).read_bytes() for p in again["files"]] == [Path(p).read_bytes() for p in paths]
