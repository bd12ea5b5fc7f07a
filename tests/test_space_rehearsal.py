"""The studio started as a Hugging Face Space starts it, against the tests' loopback Hub.

``SPACE_ID``, ``SYSTEM=spaces``, ``GRADIO_SERVER_NAME=0.0.0.0``, an empty ``HF_HOME``, the real
``spaces`` package, no mirror configured, and ``HF_ENDPOINT`` at a loopback Hub that serves a
synthetic ``big-lama.zip`` in the release layout (pinned through the pins file, as a deployer
re-pins a re-uploaded archive): the page lists LaMa, the first LaMa request provisions it and
erases, a restart reuses the converted weights without downloading, and the other neural models
are shown unavailable with their reason.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.hub_server import HubServer
from tests.releases.lama import default_seed, generator_state, write_best_ckpt
from tests.server import running_app

pytestmark = pytest.mark.slow  # starts the app twice and converts a 200 MB checkpoint

ARCHIVE_PATH = "/smartywu/big-lama/resolve/main/big-lama.zip"


@pytest.fixture(scope="module")
def big_lama_zip(tmp_path_factory) -> bytes:
    """A big-lama.zip as the authors ship it (config beside the checkpoint), with synthetic weights."""
    folder = write_best_ckpt(tmp_path_factory.mktemp("release") / "models", generator_state(default_seed()))
    path = folder.parent / "big-lama.zip"
    with zipfile.ZipFile(path, "w") as bundle:  # stored, like the release
        bundle.writestr("big-lama/config.yaml", "generator:\n  kind: ffc_resnet\n")
        bundle.write(folder / "best.ckpt", "big-lama/models/best.ckpt")
    return path.read_bytes()


def photo_and_mask(folder: Path) -> tuple[Path, Path, np.ndarray]:
    rng = np.random.default_rng(3)
    pixels = np.clip(rng.normal(128, 40, (300, 400, 3)), 0, 255).astype(np.uint8)
    hole = np.zeros((300, 400), np.uint8)
    hole[100:180, 150:260] = 255
    Image.fromarray(pixels).save(folder / "photo.png")
    Image.fromarray(hole).save(folder / "mask.png")
    return folder / "photo.png", folder / "mask.png", hole > 0


def model_table(url: str) -> str:
    """The page's model table (Markdown in the config), as a visitor reads it."""
    with urllib.request.urlopen(url + "config", timeout=30) as response:
        config = json.load(response)
    texts = [c.get("props", {}).get("value") for c in config["components"]]
    return next(t for t in texts if isinstance(t, str) and "| model |" in t)


def erase_with_lama(url: str, photo: Path, mask: Path) -> tuple[np.ndarray, list[dict]]:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    try:
        files, info = client.predict(handle_file(str(photo)), handle_file(str(mask)), ["lama"], 1, 0, "crop", 128,
                                     8, 8, None, api_name="/inpaint")
    finally:
        client.close()
    item = files[0]
    return np.asarray(Image.open(item["path"] if isinstance(item, dict) else item)), info


def our_tracebacks(log: str) -> int:
    """Tracebacks in the server log, less the ones Python prints (and ignores) when an event loop of the
    Spaces reload server (``spaces.reloading``, started by Gradio whenever ``SYSTEM=spaces``) is collected."""
    ignored = log.count("Exception ignored in: <function BaseEventLoop.__del__")
    return log.count("Traceback") - ignored


#: The authors' Google Drive (EdgeConnect, RFR-Net, PIC) as a Space without a way out would see it: gdown's and the
#: probe's https:// requests go to a port where nothing listens (tests/test_gdrive.py serves a real-looking Drive).
NO_DRIVE = {"HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost"}


def test_a_fresh_space_erases_with_lama_and_a_restart_reuses_the_conversion(tmp_path, big_lama_zip):
    photo, mask, hole = photo_and_mask(tmp_path)
    pins = tmp_path / "pins.json"
    pins.write_text(json.dumps({"lama": {"archive": {"sha256": hashlib.sha256(big_lama_zip).hexdigest(),
                                                     "size": len(big_lama_zip)}}}))
    home = tmp_path / "hf-home"
    with HubServer() as hub:
        hub.add("smartywu/big-lama", {"big-lama.zip": big_lama_zip})
        env = {"SPACE_ID": "someone/inpaint-studio", "SYSTEM": "spaces", "GRADIO_SERVER_NAME": "0.0.0.0",
               "HF_HOME": str(home), "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": hub.url, "INPAINT_PINS": str(pins),
               "INPAINT_HUB_NAMESPACE": "", **NO_DRIVE}
        with running_app(tmp_path / "first", **env) as app:
            table = model_table(app.url)
            first_use = r"\| downloads \d+ [kM]B from the Hugging Face Hub on first use \|"
            assert re.search(r"\*\*LaMa \(big-lama\)\*\*.*" + first_use, table)
            for line in table.splitlines():
                if "EdgeConnect" in line or "RFR-Net" in line or "Pluralistic" in line:
                    assert "unavailable: Google Drive, where the authors publish its weights, cannot be reached" in line
            result, info = erase_with_lama(app.url, photo, mask)
            assert [row["model"] for row in info] == ["lama"]
            original = np.asarray(Image.open(photo))
            assert result.shape == original.shape
            assert np.abs(result[hole].astype(int) - original[hole]).mean() > 2  # filled
            assert hub.paths("GET").count(ARCHIVE_PATH) == 1
            assert app.alive() and not our_tracebacks(app.log_text())
        converted = home / "inpaint-studio" / "lama"
        assert sorted(p.name for p in converted.iterdir()) == ["README.md", "model.safetensors"]

        with running_app(tmp_path / "restart", **env) as app:
            assert re.search(r"\*\*LaMa \(big-lama\)\*\*.*\| ready \|", model_table(app.url))  # on disk now
            again, _ = erase_with_lama(app.url, photo, mask)
            np.testing.assert_array_equal(again, result)
            assert hub.paths("GET").count(ARCHIVE_PATH) == 1  # nothing downloaded again
