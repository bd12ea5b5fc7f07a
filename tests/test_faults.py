"""Faults while serving: a model that raises mid-request, a full disk, a client that leaves mid-run.

(A download cut for good is in ``test_weights_hub.py``.) Each time the app stays up,
the uploaded photo is untouched, the message says what happened, and the next request
is served.
"""

from __future__ import annotations

import errno
import hashlib
import os
import time
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
import pytest
from PIL import Image

from app import pipeline
from app.errors import InpaintError
from app.images import load_photo
from app.inpainters.opencv import OpenCVInpainter
from app.web import canvas, handlers
from tests.helpers import textured
from tests.server import running_app
from tests.upload_cases import hires_photo

TELEA, NS = "OpenCV Telea", "OpenCV Navier-Stokes"


@pytest.fixture
def upload(tmp_path) -> Path:
    """A photo as Gradio keeps an upload, with two holes of different sizes (two model batches)."""
    path = tmp_path / "upload.png"
    Image.fromarray(textured(400, 600)).save(path)
    return path


def two_holes(size: tuple[int, int]) -> np.ndarray:
    hole = np.zeros(size[::-1], bool)
    hole[40:80, 40:90] = True
    hole[250:350, 380:560] = True
    return hole


def editor_painting(path: Path, hole: np.ndarray) -> dict:
    """The editor's value with ``hole`` painted in the hole colour (the preview is the photo here)."""
    layer = np.zeros((*hole.shape, 4), np.uint8)
    layer[hole] = (*canvas.rgba(canvas.HOLE_COLOUR)[:3], 255)
    return {"background": np.asarray(Image.open(path)), "layers": [layer], "composite": None}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def telea_breaks_mid_request(monkeypatch) -> list[int]:
    """Telea fills its first batch, then raises: a model that breaks half way through a request."""
    calls: list[int] = []
    original = OpenCVInpainter.inpaint

    def inpaint(self, batch, **kwargs):
        if self.flag != cv2.INPAINT_TELEA:
            return original(self, batch, **kwargs)
        calls.append(len(calls))
        if len(calls) > 1:
            raise RuntimeError("cuDNN error: CUDNN_STATUS_INTERNAL_ERROR")
        return original(self, batch, **kwargs)

    monkeypatch.setattr(OpenCVInpainter, "inpaint", inpaint)
    return calls


def test_a_model_raising_mid_request_is_named(upload, telea_breaks_mid_request):
    photo = load_photo(upload)
    with pytest.raises(InpaintError, match=f"{TELEA} failed while inpainting .RuntimeError: cuDNN error") as failure:
        pipeline.run(photo, two_holes(photo.size), ["telea"], pipeline.Options(grow=0, margin=16))
    assert len(telea_breaks_mid_request) == 2, "it must have failed on its second batch, mid-request"
    assert "choose another model" in str(failure.value)


def test_the_other_models_still_fill_and_the_page_says_which_failed(upload, telea_breaks_mid_request):
    before = digest(upload)
    editor = editor_painting(upload, two_holes(Image.open(upload).size))
    with pytest.warns(UserWarning, match="RuntimeError: cuDNN error"):  # gr.Warning outside a request
        shown = handlers.on_run(str(upload), None, editor, ["telea", "navier-stokes"], 1, 0, "crop", 32, 0, 0)
    files, status = shown.files, shown.status
    assert [label.split(" · ")[0] for label in shown.run["labels"]] == [NS]
    assert len(files) == 1 and f"No result from {TELEA}" in status
    assert digest(upload) == before  # the upload is untouched; the user can run again


def test_a_lone_model_failing_is_an_error_message_and_the_next_run_works(upload, telea_breaks_mid_request,
                                                                          monkeypatch):
    editor = editor_painting(upload, two_holes(Image.open(upload).size))
    with pytest.raises(gr.Error, match=f"{TELEA} failed while inpainting"):
        handlers.on_run(str(upload), None, editor, ["telea"], 1, 0, "crop", 32, 0, 0)
    monkeypatch.undo()  # the model recovers
    files = handlers.on_run(str(upload), None, editor, ["telea"], 1, 0, "crop", 32, 0, 0).files
    assert len(files) == 1


def test_a_full_disk_is_said_and_leaves_no_half_results(upload, monkeypatch):
    """The output folder's disk fills up while results are written (half a PNG reaches it)."""
    editor = editor_painting(upload, two_holes(Image.open(upload).size))
    root = Path(gr.utils.get_upload_folder())
    runs_before = set(root.glob("inpaint-*"))
    before = digest(upload)
    real_write = Path.write_bytes

    def disk_fills_up(self: Path, data: bytes) -> int:
        if self.name.startswith("telea"):
            real_write(self, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", disk_fills_up)
    # The fills are shown first; the PNGs are written after (issue 18), so the downloads say it.
    shown = handlers.on_run(str(upload), None, editor, ["telea"], 1, 0, "crop", 32, 0, 0)
    with pytest.raises(gr.Error, match="The disk is full") as failure:
        handlers.on_downloads(shown.run)
    assert "Nothing you provided was changed" in failure.value.message
    assert not any(Path(f).exists() for f in shown.run["files"]), "a half-written PNG was left behind"
    assert set(root.glob("inpaint-*")) - runs_before == {Path(shown.run["folder"])}  # the previews shown
    assert digest(upload) == before
    monkeypatch.undo()  # space freed
    files = handlers.on_run(str(upload), None, editor, ["telea"], 1, 0, "crop", 32, 0, 0).files
    assert Image.open(files[0]).size == (600, 400)


def _many_holes(tmp_path: Path, w: int, h: int) -> Path:
    """Twenty holes of twenty sizes: twenty PatchMatch windows, each its own batch."""
    hole = np.zeros((h, w), np.uint8)
    for i in range(20):
        x, y = (i % 5) * w // 5 + 40, (i // 5) * h // 4 + 40
        hole[y:y + 30 + 4 * i, x:x + 30 + 4 * i] = 255
    Image.fromarray(hole).save(tmp_path / "holes.png")
    return tmp_path / "holes.png"


def _running_slow_request(url: str, photo: Path, mask: Path):
    """A client and its PatchMatch job over twenty windows, once the server has started it."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    job = client.submit(handle_file(str(photo)), handle_file(str(mask)), ["patchmatch"], 1, 0, "crop", 256,
                        0, 0, None, api_name="/inpaint")
    deadline = time.monotonic() + 120
    while job.status().code.name != "PROCESSING" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job.status().code.name == "PROCESSING"
    return client, job


@pytest.mark.slow  # starts the app
def test_a_client_leaving_mid_run_does_not_hurt_the_app(tmp_path):
    """PatchMatch on twenty wide windows of a 10 MP photo takes seconds: the client disconnects while it runs."""
    from gradio_client import Client, handle_file

    photo = hires_photo()
    w, h = Image.open(photo).size
    mask = _many_holes(tmp_path, w, h)
    with running_app(tmp_path / "app") as app:
        leaving, _ = _running_slow_request(app.url, photo, mask)
        leaving.close()  # the tab is closed: the connection is gone mid-run
        staying = Client(app.url, verbose=False)
        files, info = staying.predict(handle_file(str(photo)), handle_file(str(mask)), ["telea"], 1, 0, "crop", 128,
                                      8, 8, None, api_name="/inpaint")
        assert app.alive() and info[0]["model"] == "telea"
        assert Image.open(files[0]).size == (w, h)
        staying.close()
        log = app.log_text()
    assert "Traceback" not in log, log[-3000:]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@pytest.mark.slow  # starts the app
def test_work_for_a_client_that_left_stops_and_writes_nothing(tmp_path):
    """PatchMatch on twenty wide windows takes half a minute; the caller cancels as soon as it starts."""
    from gradio_client import Client, handle_file

    photo = hires_photo()
    w, h = Image.open(photo).size
    mask = _many_holes(tmp_path, w, h)
    with running_app(tmp_path / "app") as app:
        leaving, job = _running_slow_request(app.url, photo, mask)
        job.cancel()  # the caller gives up (a closed tab is the same to the server: its event is not alive)
        leaving.close()
        staying = Client(app.url, verbose=False)
        files, info = staying.predict(handle_file(str(photo)), handle_file(str(mask)), ["telea"], 1, 0, "crop", 64,
                                      0, 0, None, api_name="/inpaint")
        staying.close()
        time.sleep(1.0)
        busy = _cpu_seconds(app.pid)
        time.sleep(3.0)
        busy = _cpu_seconds(app.pid) - busy
        written = [p.name for p in (tmp_path / "app" / "gradio-tmp").glob("inpaint-*/*.png")]
        log = app.log_text()
    assert info[0]["model"] == "telea" and written == [Path(files[0]).name], written
    assert busy < 1.0, f"the server still worked {busy:.1f} s of CPU in 3 s for a client that left"
    assert "Traceback" not in log, log[-3000:]
