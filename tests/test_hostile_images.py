"""Every image the app decodes is size-checked from its header first: photo, mask, guides, editor layers.

A decompression bomb is a few bytes of PNG that declare a huge canvas; decoding it is what
costs memory. Each test makes its bomb itself and asserts the refusal and its message (and,
where it matters, that memory did not grow).
"""

from __future__ import annotations

import io
import os
import resource
import subprocess
import sys
import zlib
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from gradio.data_classes import FileData
from PIL import Image

from app import api, images, masks
from app.errors import BadImageError, BadMaskError
from app.web import canvas, endpoints, handlers
from tests.helpers import box_hole, never_blocking, textured

REPO = Path(__file__).resolve().parents[1]
BOMB_SIDE = 60_000  # 3.6 gigapixels: 14 GB of RGBA once decoded


def bomb_png(path: Path, side: int = BOMB_SIDE) -> Path:
    """A 57-byte PNG declaring ``side`` x ``side`` 1-bit pixels: a header and no pixel data at all.

    Whatever reads its pixels (a decoder that trusts the header) allocates the whole canvas first.
    """
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])  # 1-bit grey, no interlace
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) +
                     chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    return bomb_png(tmp_path_factory.mktemp("bomb") / "bomb.png")


@pytest.fixture
def photo(tmp_path) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(textured(120, 160)).save(path)
    return path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_pillow_guard_stays_on_process_wide():
    """Gradio decodes editor values with Pillow itself: its guard must not be switched off."""
    assert Image.MAX_IMAGE_PIXELS is not None
    assert Image.MAX_IMAGE_PIXELS <= images.max_pixels()


def test_bomb_as_photo_mask_and_guide_is_refused_without_decoding(bomb, photo):
    before = peak_rss_mb()
    with pytest.raises(BadImageError, match="megapixels"):
        images.load_photo(bomb)
    with pytest.raises(BadMaskError, match="megapixels"):
        masks.to_hole(bomb, (160, 120))
    with pytest.raises(BadMaskError, match="edges strokes .*megapixels"):
        masks.to_hole(bomb, (160, 120), "edges strokes")
    with pytest.raises(BadMaskError, match="megapixels"):
        api.inpaint(photo, bomb, ["telea"])
    assert peak_rss_mb() - before < 200, "a bomb was decoded"


def test_mask_over_the_limit_gets_the_same_message_as_a_photo(tmp_path, monkeypatch):
    monkeypatch.setenv(images.MAX_PIXELS_ENV, "10000")
    path = tmp_path / "mask.png"
    Image.new("L", (200, 100)).save(path)
    with pytest.raises(BadMaskError, match=r"200x100 = 0.0 megapixels, over this app's limit of 0.01 MP"):
        masks.to_hole(path, (200, 100))
    with pytest.raises(BadImageError, match=r"200x100 = 0.0 megapixels, over this app's limit of 0.01 MP"):
        images.load_photo(path)


def test_file_over_the_byte_limit_is_not_read(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    path.write_bytes(b"\0" * 2048)
    monkeypatch.setattr(images, "MAX_FILE_BYTES", 1024)
    with pytest.raises(BadImageError, match="over this app's limit of 0 MB per file"):
        images.load_photo(path)


def test_truncated_mask_is_a_message(tmp_path):
    path = tmp_path / "mask.png"
    buffer = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((200, 300)) > 0.5).astype(np.uint8) * 255).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(BadMaskError, match="damaged or truncated"):
        masks.to_hole(path, (300, 200))


def test_not_an_image_as_mask_is_a_message(tmp_path):
    path = tmp_path / "mask.png"
    path.write_bytes(b"GIF89a but not really")
    with pytest.raises(BadMaskError, match="not an image we can read"):
        masks.to_hole(path, (300, 200))


def test_editor_layer_bomb_is_refused_before_gradio_decodes_it(tmp_path):
    """The Erase event's editor value goes through Gradio's preprocess: the guard runs first."""
    layer = bomb_png(tmp_path / "layer.png", side=5_000)  # under the photo limit, over the canvas
    editor = canvas.guard_editor(gr.ImageEditor(type="numpy", image_mode="RGBA"))
    before = peak_rss_mb()
    with pytest.raises(gr.Error, match="painted layer is 5000x5000"):
        editor.convert_and_format_image(FileData(path=str(layer)))
    with pytest.raises(gr.Error, match="painted layer is 5000x5000"):
        editor.convert_and_format_image(layer.read_bytes())
    assert peak_rss_mb() - before < 200


def test_editor_layer_of_the_canvas_size_is_decoded(tmp_path):
    path = tmp_path / "layer.png"
    Image.fromarray(np.zeros((canvas.PREVIEW_SIDE, 700, 4), np.uint8)).save(path)
    editor = canvas.guard_editor(gr.ImageEditor(type="numpy", image_mode="RGBA"))
    assert editor.convert_and_format_image(FileData(path=str(path))).shape == (canvas.PREVIEW_SIDE, 700, 4)


def test_layer_arrays_larger_than_the_canvas_are_refused(photo):
    big = np.zeros((3000, 3000, 4), np.uint8)
    value, path, *_ = handlers.on_upload(str(photo))
    with pytest.raises(gr.Error, match="painted layer is 3000x3000, larger than the canvas"):
        handlers.on_run(path, None, {"background": None, "layers": [big], "composite": None}, ["telea"], 1, 0, "crop",
                  16, 0, 0)


def test_layer_of_another_shape_is_refused_not_stretched(photo):
    layer = np.zeros((100, 100, 4), np.uint8)  # the photo is 160x120
    layer[40:60, 40:60] = (*canvas.rgba(canvas.HOLE_COLOUR)[:3], 255)
    with pytest.raises(gr.Error, match="painted layer is 100x100 but the photo is 160x120"):
        handlers.on_run(str(photo), None, {"background": None, "layers": [layer], "composite": None}, ["telea"], 1, 0,
                  "crop", 16, 0, 0)


def test_api_guide_bomb_is_refused(tmp_path, bomb, photo):
    mask = tmp_path / "mask.png"
    Image.fromarray(box_hole(120, 160, 40, 60, 40, 60).astype(np.uint8) * 255).save(mask)
    with pytest.raises(gr.Error, match="edges strokes declares more than"):
        endpoints.api_inpaint(str(photo), str(mask), ["telea"], 1, 0, "crop", 16, 0, 0, str(bomb))


# ----------------------------------------------------------- files that are not regular files


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "photo.png"
    os.mkfifo(path)
    return path


def test_a_fifo_as_photo_mask_or_guide_is_refused_without_blocking(fifo):
    with pytest.raises(BadImageError, match="photo.png is not a regular file"):
        never_blocking(fifo, lambda: images.load_photo(fifo))
    for what in ("mask", "edges strokes"):
        with pytest.raises(BadMaskError, match=f"The {what} photo.png is not a regular file"):
            never_blocking(fifo, lambda what=what: masks.to_hole(fifo, (8, 8), what))


@pytest.mark.slow  # a Python start-up: over 3 s here (the FIFO and /proc tests cover the same code fast)
@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_a_device_is_refused_before_it_is_read():
    """In a child process with a memory ceiling and a timeout: /dev/zero, read to its end, never ends."""
    code = ("from app import images, masks\n"
            "for call in (lambda: images.load_photo('/dev/zero'), lambda: masks.to_hole('/dev/zero', (8, 8))):\n"
            "    try:\n        call()\n    except Exception as exc:\n        print(type(exc).__name__, exc)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)))
    assert done.returncode == 0, done.stderr
    refused = "zero is not a regular file (a device, pipe or socket), so it was not read; give an image file."
    assert done.stdout.splitlines() == [f"BadImageError The image {refused}", f"BadMaskError The mask {refused}"]


@pytest.mark.skipif(not Path("/proc/self/maps").is_file(), reason="no /proc")
def test_a_file_holding_more_than_its_size_says_is_read_only_to_the_limit(monkeypatch):
    """/proc files are regular files whose st_size is 0: the limit holds on the bytes read, not the size."""
    monkeypatch.setattr(images, "MAX_FILE_BYTES", 100)
    with pytest.raises(BadImageError, match="The image file maps is over this app's limit of 0 MB per file"):
        images.load_photo(Path("/proc/self/maps"))


# ------------------------------------------------------------------ the server's memory, not the file


def test_running_out_of_memory_while_decoding_says_so_not_damaged(tmp_path, monkeypatch):
    """Pillow's decoder failing to allocate (as it does when the server is short of memory) is not a damaged file."""
    path = tmp_path / "photo.png"
    Image.fromarray(textured(32, 48)).save(path)

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(Image, "_getdecoder", no_memory)  # what ImageFile.load calls to decode the pixels
    for call, kind, what in [(lambda: images.load_photo(path), BadImageError, "image"),
                             (lambda: api.inpaint(path, path, "telea"), BadImageError, "image"),
                             (lambda: masks.to_hole(path, (48, 32)), BadMaskError, "mask")]:
        with pytest.raises(kind) as error:
            call()
        message = str(error.value)
        assert message.startswith(f"The server ran out of memory while decoding this {what}.")
        assert "smaller image" in message and "damaged" not in message


def test_opencv_running_out_of_memory_on_a_16_bit_photo_says_so(tmp_path, monkeypatch):
    import cv2

    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), np.full((16, 16, 3), 40000, np.uint16))
    real = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda *args: cv2.resize(np.zeros((1, 1), np.uint8), (1 << 20, 1 << 20)))
    with pytest.raises(BadImageError, match="ran out of memory while decoding this image"):
        images.load_photo(path)  # a real OpenCV allocation failure (1 TB), as imdecode raises it
    monkeypatch.setattr(cv2, "imdecode", real)
    assert images.load_photo(path).pixels.dtype == np.uint16
