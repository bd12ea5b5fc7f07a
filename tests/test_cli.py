"""``python -m app``: one image, a folder, and clear failures with non-zero exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import box_hole, textured

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})


@pytest.fixture
def photos(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(2):
        Image.fromarray(textured(64, 80, seed=i)).save(tmp_path / "images" / f"photo{i}.png")
        hole = box_hole(64, 80, 20, 30, 20, 40).astype(np.uint8) * 255
        Image.fromarray(hole).save(tmp_path / "masks" / f"photo{i}.png")
    return tmp_path


def test_single_image(photos):
    out = photos / "out"
    done = cli("inpaint", "images/photo0.png", "--mask", "masks/photo0.png", "-m", "telea", "-m", "navier-stokes",
               "-o", str(out), cwd=photos)
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == ["photo0__navier-stokes.png", "photo0__telea.png"]
    result = np.asarray(Image.open(out / "photo0__telea.png"))
    source = textured(64, 80, seed=0)
    assert result.shape == source.shape and (result[:5] == source[:5]).all()
    assert "photo0.png: " in done.stdout and "photo0__telea.png" in done.stdout  # per-file summary


def test_folder_with_masks_matched_by_name(photos):
    done = cli("inpaint", "images", "--mask", "masks", "-m", "telea", "-o", "out", cwd=photos)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (photos / "out").iterdir()) == ["photo0__telea.png", "photo1__telea.png"]


def test_bad_inputs_exit_non_zero_with_a_message(photos):
    (photos / "images" / "broken.png").write_bytes(b"not really a png")
    (photos / "masks" / "broken.png").write_bytes((photos / "masks" / "photo0.png").read_bytes())
    done = cli("inpaint", "images", "--mask", "masks", "-m", "telea", "-o", "out", cwd=photos)
    assert done.returncode == 1
    assert "broken.png: error: This file is not an image" in done.stderr
    assert (photos / "out" / "photo0__telea.png").exists()  # the good images still ran

    Image.fromarray(np.zeros((64, 80), np.uint8)).save(photos / "empty.png")
    done = cli("inpaint", "images/photo0.png", "--mask", "empty.png", "-m", "telea", cwd=photos)
    assert done.returncode == 1 and "mask is empty" in done.stderr

    done = cli("inpaint", "images", "--mask", "masks/photo0.png", cwd=photos)
    assert done.returncode == 2 and "--mask must be a folder" in done.stderr

    done = cli("inpaint", "images/photo0.png", "--mask", "masks/photo0.png", "-m", "unknown", cwd=photos)
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_weights_list_shows_every_model_of_the_registry(photos):
    from app import registry

    done = cli("weights", "list", cwd=photos)
    assert done.returncode == 0
    assert all(model_id in done.stdout for model_id in registry.ids())
    assert "missing" in done.stdout  # offline, no checkpoints: the neural models are not here
