"""The real app, started on 127.0.0.1 and called through gradio_client's named endpoint."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app import masks
from app.hires import feather_alpha
from tests.conftest import EVALSET

REPO = Path(__file__).resolve().parents[1]


def _photo_and_mask() -> tuple[Path, Path]:
    """A full-resolution evalset photo with its object mask (the repo's copy if ../shared is absent)."""
    photo = EVALSET / "hires" / "phr_lomiri_Bridge.jpg"
    mask = EVALSET / "masks" / "object" / "phr_lomiri_Bridge.png"
    if photo.is_file() and mask.is_file():
        return photo, mask
    return REPO / "assets" / "bridge.jpg", REPO / "assets" / "bridge_mask.png"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    env = os.environ | {"GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1", "HF_HUB_OFFLINE": "1",
                        "INPAINT_CHECKPOINTS": str(tmp_path_factory.mktemp("checkpoints"))}
    log = tmp_path_factory.mktemp("log") / "app.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError as exc:
            if proc.poll() is not None:
                raise RuntimeError(f"app exited: {log.read_text()}") from exc
            time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


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


def test_endpoint_reports_bad_input_as_a_message(server, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    bogus = tmp_path / "notes.png"
    bogus.write_text("this is not an image")
    _, mask_path = _photo_and_mask()
    client = Client(server, verbose=False)
    with pytest.raises(AppError, match="not an image we can read"):
        client.predict(handle_file(str(bogus)), handle_file(str(mask_path)), ["telea"], 1, 0, "crop", 128, 8, 8, None,
                       api_name="/inpaint")
    # and the server keeps serving
    photo_path, _ = _photo_and_mask()
    files, _ = client.predict(handle_file(str(photo_path)), handle_file(str(mask_path)), ["telea"], 1, 0, "crop",
                              128, 8, 8, None, api_name="/inpaint")
    assert len(files) == 1
