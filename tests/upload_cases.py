"""What people upload besides clean 8-bit RGB photos, made on the fly from one small photo.

Shared by the browser and the API bad-input tests so both face exactly the same files:
odd but valid images (each with what the result must look like) and unusable files
(each with the words the message must contain).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from tests.paths import EVALSET, REPO

LIMIT_MP = 50  # the app's default INPAINT_MAX_PIXELS


def small_photo() -> Path:
    """A 512 px evalset photo (the repo's copy of the same picture without ../shared)."""
    photo = EVALSET / "images" / "p003_skimage_chelsea.png"
    return photo if photo.is_file() else REPO / "assets" / "chelsea.png"


def hires_photo() -> Path:
    """A 10.7 MP evalset photo (the repo's copy without ../shared)."""
    photo = EVALSET / "hires" / "phr_lomiri_Bridge.jpg"
    return photo if photo.is_file() else REPO / "assets" / "bridge.jpg"


@dataclass(frozen=True)
class OddImage:
    """A valid upload in an unusual form, and what a correct result looks like."""

    path: Path
    described: str  # in the app's description of the upload, e.g. "PNG RGBA"
    size: tuple[int, int]  # (w, h) upright, as the user sees it
    channels: int
    dtype: type


def odd_images(folder: Path) -> dict[str, OddImage]:
    """RGBA, 16-bit, palette, CMYK and EXIF-rotated versions of :func:`small_photo`."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = Image.open(small_photo()).convert("RGB")
    w, h = rgb.size
    out = {}
    rgba = rgb.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(rgb.size))
    rgba.save(folder / "rgba.png")
    out["rgba"] = OddImage(folder / "rgba.png", "PNG RGBA", (w, h), 4, np.uint8)
    deep = np.asarray(rgb).astype(np.uint16) * 257 + np.arange(w, dtype=np.uint16)[None, :, None] % 200
    cv2.imwrite(str(folder / "deep16.png"), cv2.cvtColor(deep, cv2.COLOR_RGB2BGR))
    out["16-bit"] = OddImage(folder / "deep16.png", "PNG", (w, h), 3, np.uint16)
    rgb.quantize(64).save(folder / "palette.png")
    out["palette"] = OddImage(folder / "palette.png", "PNG P", (w, h), 3, np.uint8)
    rgb.convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    out["cmyk"] = OddImage(folder / "cmyk.jpg", "JPEG CMYK", (w, h), 3, np.uint8)
    out["exif-rotated"] = _rotated(rgb.crop((0, 0, w, h * 3 // 4)), folder / "rotated.jpg")
    return out


def _rotated(upright: Image.Image, path: Path) -> OddImage:
    """Stored lying on its side with EXIF orientation 6 ("rotate 90° clockwise to view")."""
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # counter-clockwise; the viewer turns it back
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, quality=95, exif=exif.tobytes())
    w, h = upright.size
    return OddImage(path, f"JPEG RGB {h}x{w}, turned upright by its EXIF orientation to {w}x{h}", upright.size, 3,
                    np.uint8)


@dataclass(frozen=True)
class Unusable:
    """A file the app must refuse, and words its message must contain."""

    path: Path
    message: str  # what the server says
    in_browser: str = ""  # what the page says when the browser itself refuses it first

    @property
    def on_page(self) -> str:
        return self.in_browser or self.message


def unusable_files(folder: Path) -> dict[str, Unusable]:
    """A text file (as .png and as .txt), a truncated JPEG and a photo over the pixel limit."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.png").write_text("meeting notes, definitely not a picture\n")
    (folder / "notes.txt").write_text("meeting notes, definitely not a picture\n")
    jpeg = io.BytesIO()
    Image.open(small_photo()).convert("RGB").save(jpeg, format="JPEG", quality=95)
    (folder / "truncated.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) * 2 // 5])
    Image.new("RGB", (8000, 8000), (120, 130, 140)).save(folder / "huge.png")  # 64 MP, a 200 kB file
    return {
        "non-image": Unusable(folder / "notes.png", "not an image we can read"),
        "corrupt": Unusable(folder / "truncated.jpg", "damaged or truncated"),
        "over-limit": Unusable(folder / "huge.png", f"over this app's limit of {LIMIT_MP} MP"),
        "text-file": Unusable(folder / "notes.txt", "not an image we can read", in_browser="Invalid file type"),
    }


def read_result(path: Path) -> np.ndarray:
    """A result PNG as (H, W, C) RGB(A) at its stored bit depth."""
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    code = cv2.COLOR_BGRA2RGBA if array.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(array, code)


def call(client, image: Path, mask: Path, models=("telea",)):
    """``/inpaint`` through gradio_client, with fixed options (one sample, crop mode, 128 px margin)."""
    from gradio_client import handle_file

    return client.predict(handle_file(str(image)), handle_file(str(mask)), list(models), 1, 0, "crop", 128, 8, 8,
                          None, api_name="/inpaint")


def mask_file(folder: Path, size: tuple[int, int], fill: str) -> Path:
    """A mask of ``size``: ``empty``, ``whole`` or a ``box`` in the middle."""
    w, h = size
    hole = np.zeros((h, w), np.uint8)
    if fill == "whole":
        hole[:] = 255
    elif fill == "box":
        hole[h // 3:h // 2, w // 3:w // 2] = 255
    path = folder / f"{fill}-{w}x{h}.png"
    Image.fromarray(hole).save(path)
    return path
