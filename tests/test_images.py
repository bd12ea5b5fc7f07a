"""Image hygiene: every odd upload becomes correct pixels, or a clear refusal."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from app.errors import BadImageError
from app.images import encode_png, load_photo, to_uint8
from tests.helpers import textured


def _bytes(image: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    return out.getvalue()


def test_exif_orientation_is_applied_and_reset():
    pixels = textured(40, 60)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW when displayed
    photo = load_photo(_bytes(Image.fromarray(pixels), "PNG", exif=exif))
    assert photo.size == (40, 60)
    np.testing.assert_array_equal(photo.pixels, np.rot90(pixels, k=-1))
    assert Image.Exif().load(photo.exif) is None or Image.open(io.BytesIO(encode_png(photo))).getexif()[0x0112] == 1


def test_rgba_keeps_alpha_and_models_see_rgb():
    rgba = np.dstack([textured(20, 30), np.linspace(0, 255, 600).reshape(20, 30).astype(np.uint8)])
    photo = load_photo(_bytes(Image.fromarray(rgba, "RGBA")))
    np.testing.assert_array_equal(photo.pixels, rgba)
    assert photo.rgb8.shape == (20, 30, 3)


@pytest.mark.parametrize("mode", ["L", "LA", "1"])
def test_gray_modes_become_rgb(mode):
    gray = Image.fromarray(textured(20, 30)[..., 0]).convert(mode)
    photo = load_photo(_bytes(gray))
    expected = np.asarray(gray.convert("RGBA" if mode == "LA" else "RGB"))
    np.testing.assert_array_equal(photo.pixels, expected)


def test_palette_with_transparency_keeps_it():
    image = Image.fromarray(textured(20, 30)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    image.info["transparency"] = 0
    photo = load_photo(_bytes(image, transparency=0))
    assert photo.pixels.shape[2] == 4
    assert (photo.pixels[..., 3] == 0).any() and (photo.pixels[..., 3] == 255).any()


def test_16bit_gray_is_scaled_not_clipped():
    values = np.array([[0, 257, 32768, 65535]], np.uint16)
    photo = load_photo(_bytes(Image.fromarray(values)))
    assert photo.pixels.dtype == np.uint16
    np.testing.assert_array_equal(photo.pixels[..., 0], values)
    np.testing.assert_array_equal(photo.rgb8[0, :, 0], [0, 1, 128, 255])  # clipping would give 0, 255, 255, 255


def test_16bit_colour_png_keeps_16_bits():
    import cv2

    rgb = (np.random.default_rng(0).random((10, 12, 3)) * 65535).astype(np.uint16)
    ok, buf = cv2.imencode(".png", rgb[..., ::-1])
    photo = load_photo(buf.tobytes())
    np.testing.assert_array_equal(photo.pixels, rgb)
    np.testing.assert_array_equal(photo.rgb8, to_uint8(rgb))
    decoded = cv2.imdecode(np.frombuffer(encode_png(photo), np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.dtype == np.uint16  # the download stays 16-bit


def test_cmyk_converted_to_rgb():
    cmyk = Image.fromarray(textured(20, 30)).convert("CMYK")
    photo = load_photo(_bytes(cmyk, "JPEG", quality=100))
    reference = np.asarray(Image.open(io.BytesIO(_bytes(cmyk, "JPEG", quality=100))).convert("RGB"))
    assert photo.pixels.shape == (20, 30, 3)
    assert np.abs(photo.pixels.astype(int) - reference).max() <= 2


def test_icc_and_exif_survive_in_the_png_download():
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    photo = load_photo(_bytes(Image.fromarray(textured(10, 10)), "JPEG", icc_profile=icc, exif=exif))
    saved = Image.open(io.BytesIO(encode_png(photo)))
    assert saved.info.get("icc_profile") == icc
    assert saved.getexif()[0x010F] == "TestCam"


def test_pixel_limit_refused_before_decoding(monkeypatch):
    monkeypatch.setenv("INPAINT_MAX_PIXELS", "1000")
    with pytest.raises(BadImageError, match=r"40x30 = 0.0 megapixels, over this app's limit"):
        load_photo(_bytes(Image.fromarray(textured(30, 40))))


def test_decompression_bomb_refused():
    # A 1-bit PNG that declares 12000 x 12000 pixels compresses to a few KB.
    bomb = _bytes(Image.new("1", (12000, 12000)))
    assert len(bomb) < 1_000_000
    with pytest.raises(BadImageError, match="megapixels"):
        load_photo(bomb)


def test_corrupt_and_non_image_files():
    good = _bytes(Image.fromarray(textured(64, 64)), "JPEG")
    with pytest.raises(BadImageError, match="damaged or truncated"):
        load_photo(good[: len(good) // 3])
    with pytest.raises(BadImageError, match="not an image"):
        load_photo(b"%PDF-1.4 definitely not a picture")


def test_float_tiff_in_0_1_is_scaled_not_black():
    values = np.linspace(0, 1, 20 * 30, dtype=np.float32).reshape(20, 30)
    photo = load_photo(_bytes(Image.fromarray(values, "F"), "TIFF"))
    assert photo.pixels.dtype == np.uint16
    np.testing.assert_allclose(photo.pixels[..., 0] / 65535, values, atol=1 / 65535)
    assert photo.rgb8.max() == 255


@pytest.mark.parametrize(("scale", "top"), [(1.0, 1.0), (255.0, 255.0), (4000.0, 65535.0)])
def test_float_and_wide_integer_arrays_are_scaled_by_their_range(scale, top):
    values = np.linspace(0, scale, 12, dtype=np.float32).reshape(3, 4)
    photo = load_photo(values.astype(np.float64))
    np.testing.assert_allclose(photo.pixels[..., 0] / 65535, values / top, atol=1 / 65535)


def test_32_bit_integer_image_with_8_bit_values_keeps_its_brightness():
    values = (np.arange(20 * 30) % 256).astype(np.int32).reshape(20, 30)
    photo = load_photo(_bytes(Image.fromarray(values, "I"), "TIFF"))
    np.testing.assert_array_equal(photo.rgb8[..., 0], values)


def test_result_of_a_photo_with_a_2_mb_colour_profile_reopens():
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    icc = profile + b"\0" * (2_000_000 - len(profile))  # padded: still a valid profile, 2 MB
    photo = load_photo(_bytes(Image.fromarray(textured(16, 16)), "JPEG", icc_profile=icc, quality=95))
    assert photo.icc == icc
    again = load_photo(encode_png(photo))
    np.testing.assert_array_equal(again.pixels, photo.pixels)
    assert again.icc == icc


def test_a_16_bit_result_that_cannot_be_encoded_is_an_error_not_an_empty_file(monkeypatch):
    from app import images
    from app.errors import InpaintError
    from app.images import Photo

    monkeypatch.setattr(images.cv2, "imencode", lambda ext, pixels: (False, None))
    with pytest.raises(InpaintError, match="could not be encoded as PNG"):
        encode_png(Photo(pixels=np.zeros((4, 4, 3), np.uint16)))
