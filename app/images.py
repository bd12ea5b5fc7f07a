"""Image hygiene: whatever the user uploads becomes clean RGB(A) pixels, losslessly.

Models only ever see 8-bit RGB; the :class:`Photo` keeps the pixels at their
original precision (8 or 16 bit) and alpha, so that pasting the fill back leaves
everything outside the hole exactly as uploaded.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms, ImageOps, PngImagePlugin, UnidentifiedImageError

from app.errors import BadImageError, InpaintError

MAX_PIXELS_ENV = "INPAINT_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 50_000_000  # 50 MP: a 12 MP phone photo passes, a 20k x 20k scan does not
#: Bytes read from one file before anything is decoded (a 50 MP 16-bit TIFF is ~300 MB).
MAX_FILE_BYTES = 512 << 20
#: Largest colour profile kept: libpng's default chunk limit, so every result reopens elsewhere too.
MAX_ICC_BYTES = 8_000_000


def max_pixels() -> int:
    """The configured pixel limit (``INPAINT_MAX_PIXELS``)."""
    return int(os.environ.get(MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS))


# Pillow's own guard stays on for every decode in the process (Gradio's included): it warns
# over the limit and refuses at twice it. Our header check below refuses first, with a clearer message.
Image.MAX_IMAGE_PIXELS = max_pixels()
# Pillow reads colour profiles in PNGs only up to 1 MB by default; our results carry the photo's
# profile (up to MAX_ICC_BYTES), and must reopen.
PngImagePlugin.MAX_TEXT_CHUNK = max(PngImagePlugin.MAX_TEXT_CHUNK, MAX_ICC_BYTES)


@dataclass
class Photo:
    """An uploaded photo after hygiene, at full resolution."""

    pixels: np.ndarray  # (H, W, 3|4) uint8 or uint16, RGB(A), orientation applied
    exif: bytes | None = None  # EXIF with orientation reset, written back on save
    icc: bytes | None = None  # colour profile the pixels are in, written back on save
    source: str = ""  # what was uploaded, e.g. "JPEG RGB 4032x3024", for messages

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) like PIL."""
        return self.pixels.shape[1], self.pixels.shape[0]

    @property
    def rgb8(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB: what the models see."""
        rgb = self.pixels[..., :3]
        return to_uint8(rgb) if rgb.dtype == np.uint16 else np.ascontiguousarray(rgb)

    @property
    def alpha(self) -> np.ndarray | None:
        return self.pixels[..., 3] if self.pixels.shape[2] == 4 else None

    def with_pixels(self, pixels: np.ndarray) -> Photo:
        return replace(self, pixels=pixels)


def to_uint8(values: np.ndarray) -> np.ndarray:
    """16-bit -> 8-bit by scaling (65535 -> 255), never by clipping."""
    return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def load_photo(source: str | Path | bytes | Image.Image | np.ndarray, limit: int | None = None) -> Photo:
    """Open and normalise an upload; raise :class:`BadImageError` with a human message."""
    if isinstance(source, np.ndarray):
        return _from_array(source, limit)
    if isinstance(source, Image.Image):
        return _from_pil(source, data=None, limit=limit)
    data = source if isinstance(source, bytes) else read_file(Path(source))
    with decoding("image"):
        return _from_pil(open_header(data, limit), data=data, limit=limit)


def read_file(path: Path, what: str = "image") -> bytes:
    """The bytes of ``path``, a regular file of at most :data:`MAX_FILE_BYTES`; anything else is refused.

    ``st_size`` alone is not trusted: ``/dev/zero`` reports 0 and never ends (3 GB read in 3 s), a FIFO
    reports 0 and blocks whoever opens it, and files under ``/proc`` report 0 for what they hold. So a
    non-regular file is refused before it is opened, the file is opened without blocking and checked
    again on the open descriptor (it may have been swapped meanwhile), and at most the limit + 1 byte
    is ever read.
    """
    try:
        _check_regular(path, os.stat(path).st_mode, what)  # opening a FIFO would block, a device may act
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as file:
            status = os.fstat(file.fileno())
            _check_regular(path, status.st_mode, what)
            if status.st_size > MAX_FILE_BYTES:
                raise _too_large(path, what, status.st_size)
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise BadImageError(f"Cannot read {path.name}: {exc.strerror or exc}.") from exc
    if len(data) > MAX_FILE_BYTES:
        raise _too_large(path, what)  # more than its st_size said: /proc, or a file still growing
    return data


def _check_regular(path: Path, mode: int, what: str) -> None:
    if not stat.S_ISREG(mode):
        raise BadImageError(f"The {what} {path.name} is not a regular file (a device, pipe or socket), so it was "
                            "not read; give an image file.")


def _too_large(path: Path, what: str, size: int | None = None) -> BadImageError:
    how = f"is {size / 1e6:.0f} MB," if size is not None else "is"
    return BadImageError(f"The {what} file {path.name} {how} over this app's limit of "
                         f"{MAX_FILE_BYTES / 1e6:.0f} MB per file.")


def open_header(data: bytes, limit: int | None = None, what: str = "image") -> Image.Image:
    """Parse only the header and refuse by pixel count: nothing is decoded yet."""
    image = Image.open(io.BytesIO(data))
    check_size(image.size, limit, what)
    return image


def open_image(source: str | Path | bytes, limit: int | None = None, what: str = "image") -> Image.Image:
    """Every image the app reads besides the photo (masks, guides, editor layers): size-checked, then decoded."""
    data = source if isinstance(source, bytes) else read_file(Path(source), what)
    with decoding(what):
        image = open_header(data, limit, what)
        image.load()
        return image


@contextlib.contextmanager
def decoding(what: str) -> Iterator[None]:
    """Turn whatever a damaged or hostile file makes Pillow raise into one clear :class:`BadImageError`."""
    try:
        yield
    except BadImageError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise BadImageError(f"The {what} declares more than {Image.MAX_IMAGE_PIXELS * 2 / 1e6:g} megapixels, far "
                            f"over this app's limit of {max_pixels() / 1e6:g} MP; it was refused before decoding "
                            "(a decompression bomb).") from exc
    except UnidentifiedImageError as exc:
        raise BadImageError(f"This {what} file is not an image we can read (PNG, JPEG, WebP, TIFF, BMP...).") from exc
    except MemoryError as exc:  # the server's shortage, not the file's fault: say so, and what may help
        raise BadImageError(f"The server ran out of memory while decoding this {what}. Try a smaller image, or "
                            "try again later when the server is less busy.") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise BadImageError(f"The {what} file is damaged or truncated and cannot be read ({exc}).") from exc


def check_size(size: tuple[int, int], limit: int | None = None, what: str = "image") -> None:
    """Refuse images over the pixel limit before decoding them."""
    limit = limit or max_pixels()
    w, h = size
    if w < 1 or h < 1:
        raise BadImageError(f"The {what} is empty (0 pixels).")
    if w * h > limit:
        raise BadImageError(
            f"The {what} is {w}x{h} = {w * h / 1e6:.1f} megapixels, over this app's limit of "
            f"{limit / 1e6:g} MP. Please downscale it (or raise {MAX_PIXELS_ENV} when running it yourself)."
        )


def _from_pil(image: Image.Image, data: bytes | None, limit: int | None) -> Photo:
    check_size(image.size, limit)
    source = f"{image.format or 'image'} {image.mode} {image.width}x{image.height}"
    deep = data is not None and _is_16bit_colour(image)  # before anything loads the pixels
    exif = image.getexif()
    orientation = exif.get(0x0112, 1)
    icc = image.info.get("icc_profile")
    if deep:
        pixels = _orient(_decode_16bit(data), orientation)
    else:
        image.load()
        image = ImageOps.exif_transpose(image)
        pixels, icc = _pil_pixels(image, icc)
    if 0x0112 in exif:
        exif[0x0112] = 1  # pixels are upright now; viewers must not rotate again
    if orientation != 1:
        source += f", turned upright by its EXIF orientation to {pixels.shape[1]}x{pixels.shape[0]}"
    return Photo(pixels=pixels, exif=exif.tobytes() if len(exif) else None, icc=icc, source=source)


def _is_16bit_colour(image: Image.Image) -> bool:
    """Pillow opens 48/64-bit colour files as 8-bit RGB; we decode those ourselves."""
    args = image.tile[0].args if image.tile else ""
    rawmode = str(args[0] if isinstance(args, tuple) and args else args)
    return image.mode in {"RGB", "RGBA"} and ";16" in rawmode


def _decode_16bit(data: bytes) -> np.ndarray:
    try:
        array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # OpenCV reports a failed allocation as its own error: the same shortage
        if exc.code == cv2.Error.StsNoMem:
            raise MemoryError(str(exc)) from exc
        raise BadImageError(f"This 16-bit image could not be decoded ({exc.err or exc}).") from exc
    if array is None or array.ndim != 3:
        raise BadImageError("This 16-bit image could not be decoded.")
    code = cv2.COLOR_BGRA2RGBA if array.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(array, code)


def _orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an array, as ImageOps.exif_transpose does to images."""
    ops = {2: "f", 3: "rr", 4: "rrf", 5: "rf", 6: "rrr", 7: "rrrf", 8: "r"}
    for op in ops.get(orientation, ""):
        pixels = np.rot90(pixels) if op == "r" else pixels[:, ::-1]
    return np.ascontiguousarray(pixels)


def _pil_pixels(image: Image.Image, icc: bytes | None) -> tuple[np.ndarray, bytes | None]:
    """Convert any Pillow mode to RGB(A) pixels at the original bit depth."""
    mode = image.mode
    if mode in {"I;16", "I;16B", "I;16L", "I;16N"}:
        return _gray(np.asarray(image).astype(np.uint16)), icc
    if mode in {"I", "F"}:  # 32-bit integer or float samples: scaled by their range, never clipped to black
        return _gray(scale_by_range(np.asarray(image))), icc
    if mode == "CMYK":
        return np.asarray(_cmyk_to_srgb(image, icc)), None
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in {"LA", "PA", "RGBa", "La"}:
        image = image.convert("RGBA")
    elif mode not in {"RGB", "RGBA"}:
        image = image.convert("RGB")  # L, 1, YCbCr, LAB, HSV
    return _fit_profile(np.asarray(image).copy(), icc)


def _gray(values: np.ndarray) -> np.ndarray:
    return np.repeat(values[..., None], 3, axis=2)


def scale_by_range(values: np.ndarray) -> np.ndarray:
    """Float or wide-integer samples -> uint8/uint16, scaled by the range they use.

    Floats in [0, 1] (the usual convention) or [0, 255], and integers up to 65535, keep their
    meaning; anything wider is scaled by its maximum. Negative and non-finite values become black.
    """
    floating = np.issubdtype(values.dtype, np.floating)
    values = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(values.max(initial=0.0))
    if not floating and top <= 255:
        return np.clip(values, 0, 255).astype(np.uint8)
    scale = 1.0 if floating and top <= 1.0 else 255.0 if top <= 255 else 65535.0 if top <= 65535 else top
    return np.round(np.clip(values / scale, 0, 1) * 65535).astype(np.uint16)


def _fit_profile(pixels: np.ndarray, icc: bytes | None) -> tuple[np.ndarray, bytes | None]:
    """Keep the colour profile unless it is too large for a PNG to carry: then the pixels go to sRGB."""
    if not icc or len(icc) <= MAX_ICC_BYTES:
        return pixels, icc
    mode = "RGBA" if pixels.shape[2] == 4 else "RGB"
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        image = ImageCms.profileToProfile(Image.fromarray(pixels, mode), source, ImageCms.createProfile("sRGB"),
                                          outputMode=mode)
        return np.asarray(image).copy(), None
    except (ImageCms.PyCMSError, OSError, ValueError):
        return pixels, None  # an unreadable profile this large is not a colour space anyone can use


def _cmyk_to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """CMYK through its embedded profile when there is one (Pillow's naive formula otherwise)."""
    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(image, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError):
            pass
    return image.convert("RGB")


def _from_array(array: np.ndarray, limit: int | None = None) -> Photo:
    if array.ndim == 2:
        array = _gray(array)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise BadImageError(f"Expected an (H, W, 3|4) image array, got shape {array.shape}.")
    check_size((array.shape[1], array.shape[0]), limit)
    if array.dtype not in (np.uint8, np.uint16):
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            raise BadImageError(f"Expected integer or float pixels, got {array.dtype}.")
        array = scale_by_range(array)
    return Photo(pixels=np.ascontiguousarray(array), source=f"array {array.shape}")


def preview(photo: Photo, max_side: int = 1024) -> Image.Image:
    """A small RGB copy for painting in the browser; the mask is scaled back up later."""
    image = Image.fromarray(photo.rgb8)
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image


def encode_png(photo: Photo) -> bytes:
    """Lossless PNG with EXIF and ICC kept (16-bit photos are written as 16-bit PNG)."""
    if photo.pixels.dtype == np.uint16:
        code = cv2.COLOR_RGBA2BGRA if photo.pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR
        ok, buf = cv2.imencode(".png", cv2.cvtColor(photo.pixels, code))
        if not ok:
            raise InpaintError(f"The 16-bit result ({photo.size[0]}x{photo.size[1]}) could not be encoded as PNG.")
        return buf.tobytes()
    out = io.BytesIO()
    extra = {k: v for k, v in {"exif": photo.exif, "icc_profile": photo.icc}.items() if v}
    Image.fromarray(photo.pixels).save(out, format="PNG", compress_level=1, **extra)
    return out.getvalue()


def save_png(photo: Photo, path: str | Path) -> Path:
    """Write :func:`encode_png` to ``path`` (a full disk becomes a clear error, and no partial file)."""
    path = Path(path)
    data = encode_png(photo)
    try:
        path.write_bytes(data)
    except OSError as exc:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InpaintError(f"The disk is full: {path.name} ({len(data) / 1e6:.1f} MB) could not be saved in "
                               f"{path.parent}. Nothing you provided was changed; free some space (or try again "
                               "later) and run again.") from exc
        raise BadImageError(f"Could not write {path}: {exc.strerror or exc}.") from exc
    return path
