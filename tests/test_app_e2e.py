"""The real app, started on 127.0.0.1 and called through gradio_client's named endpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app import masks
from app.hires import feather_alpha
from tests.paths import EVALSET
from tests.server import running_app
from tests.upload_cases import call, mask_file, odd_images, read_result, small_photo, unusable_files

pytestmark = pytest.mark.slow  # starts the app: not in the fast lane (-m "not slow")

REPO = Path(__file__).resolve().parents[1]


def _photo_and_mask() -> tuple[Path, Path]:
    """A full-resolution evalset photo with its object mask (the repo's copy if ../shared is absent)."""
    photo = EVALSET / "hires" / "phr_lomiri_Bridge.jpg"
    mask = EVALSET / "masks" / "object" / "phr_lomiri_Bridge.png"
    if photo.is_file() and mask.is_file():
        return photo, mask
    return REPO / "assets" / "bridge.jpg", REPO / "assets" / "bridge_mask.png"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``python app.py`` with no weights at all (the neural models are unavailable).

    Every failure in this module is the caller's to fix: it must leave a message, not a
    traceback, in the server log.
    """
    with running_app(tmp_path_factory.mktemp("app")) as app:
        yield app.url
        log = app.log_text()
        assert app.alive(), log[-3000:]
        assert "Traceback" not in log, log[-3000:]


def test_inpaint_endpoint_full_resolution(server):
    from gradio_client import Client, handle_file

    photo_path, mask_path = _photo_and_mask()
    client = Client(server, verbose=False)
    files, info = client.predict(handle_file(str(photo_path)), handle_file(str(mask_path)), ["telea", "navier-stokes"],
                                 1, 0, "crop", 128, 8, 8, None, api_name="/inpaint")
    assert [row["model"] for row in info] == ["telea", "navier-stokes"]
    original = np.asarray(Image.open(photo_path).convert("RGB"))
    hole = masks.to_hole(mask_path, (original.shape[1], original.shape[0]))
    outside = ~(feather_alpha(masks.grow(hole, 8), 8) > 0)
    for item in files:
        result = np.asarray(Image.open(item["path"] if isinstance(item, dict) else item))
        assert result.shape == original.shape  # full resolution, 4352x2448
        assert (result[outside] == original[outside]).all()  # lossless outside the painted area
        assert np.abs(result[hole].astype(int) - original[hole]).mean() > 2  # the object is gone


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    client = Client(server, verbose=False)
    yield client
    client.close()


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uploads")
    return unusable_files(folder / "bad"), odd_images(folder / "odd")


def assert_still_serving(client, tmp_path: Path) -> None:
    photo = small_photo()
    files, info = call(client, photo, mask_file(tmp_path, Image.open(photo).size, "box"))
    assert len(files) == 1 and info[0]["model"] == "telea"


@pytest.mark.parametrize("kind", ["non-image", "corrupt", "over-limit", "text-file"])
def test_unusable_files_get_a_message_and_the_app_serves_on(client, cases, kind, tmp_path):
    from gradio_client.exceptions import AppError

    bad = cases[0][kind]
    with pytest.raises(AppError, match=bad.message):
        call(client, bad.path, mask_file(tmp_path, (512, 512), "box"))
    assert_still_serving(client, tmp_path)


@pytest.mark.parametrize("fill, message", [("empty", "mask is empty"), ("whole", "covers the whole image")])
def test_empty_and_whole_masks_get_a_message(client, fill, message, tmp_path):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=message):
        call(client, small_photo(), mask_file(tmp_path, Image.open(small_photo()).size, fill))
    assert_still_serving(client, tmp_path)


def test_a_model_without_weights_says_so_without_server_paths(client, tmp_path):
    """The caller learns the model cannot run here; the folders and files to provide are the operator's
    (server log, CLI), not a public visitor's."""
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="not available on this server") as failure:
        call(client, small_photo(), mask_file(tmp_path, Image.open(small_photo()).size, "box"),
             models=("edgeconnect-places2",))
    assert "checkpoints" not in str(failure.value) and "python -m app" not in str(failure.value)
    assert_still_serving(client, tmp_path)


@pytest.mark.parametrize("kind", ["rgba", "16-bit", "palette", "cmyk", "exif-rotated"])
def test_odd_modes_come_back_upright_full_size_and_untouched_outside_the_hole(client, cases, kind, tmp_path):
    from app.images import load_photo

    odd = cases[1][kind]
    expected = load_photo(odd.path).pixels  # upright, original depth and alpha
    files, _ = call(client, odd.path, mask_file(tmp_path, odd.size, "box"))
    result = read_result(Path(files[0]))
    assert (result.shape[1], result.shape[0]) == odd.size and result.shape[2] == odd.channels
    assert result.dtype == odd.dtype
    changed = (result != expected).any(axis=2)
    w, h = odd.size
    assert changed[h // 3 + 12:h // 2 - 12, w // 3 + 12:w // 2 - 12].any()  # filled in the box
    outside = np.ones_like(changed)
    outside[h // 3 - 20:h // 2 + 20, w // 3 - 20:w // 2 + 20] = False  # box + growth + feather
    assert not changed[outside].any()


def raw_call(server: str, photo: Path, mask: Path, numbers: str) -> str:
    """``/inpaint`` over plain HTTP with ``numbers`` spliced into the JSON as written (NaN, Infinity...).

    gradio_client refuses to encode NaN; a hostile caller just writes it. Returns the event stream.
    """
    import httpx

    with httpx.Client(base_url=server, timeout=120) as http:
        paths = http.post("/gradio_api/upload", files=[("files", photo.open("rb")), ("files", mask.open("rb"))]).json()
        files = ", ".join(f'{{"path": "{path}", "meta": {{"_type": "gradio.FileData"}}}}' for path in paths)
        body = f'{{"data": [{files}, ["telea"], {numbers}, null]}}'
        event = http.post("/gradio_api/call/inpaint", content=body, headers={"content-type": "application/json"})
        return http.get(f"/gradio_api/call/inpaint/{event.json()['event_id']}").text


@pytest.mark.parametrize(("numbers", "words"), [('1, 0, "crop", NaN, 8, 8', "Margin"),
                                                ('1, 0, "crop", 128, Infinity, 8', "Grow"),
                                                ('1, 0, "crop", 128, 400, 8', "Grow"),
                                                ('1e9, 0, "crop", 128, 8, 8', "Samples"),
                                                ('1, -Infinity, "crop", 128, 8, 8', "Seed")])
def test_out_of_range_and_non_finite_numbers_over_json_get_a_message(server, client, numbers, words, tmp_path):
    """Raw JSON NaN/Infinity and a 400 px grow: a message, never "Something went wrong", no traceback."""
    photo = small_photo()
    stream = raw_call(server, photo, mask_file(tmp_path, Image.open(photo).size, "box"), numbers)
    assert "event: error" in stream and f"{words} must be a number from" in stream, stream[-500:]
    assert "Something went wrong" not in stream
    assert_still_serving(client, tmp_path)
