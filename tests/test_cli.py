"""``python -m app``: one image, a folder, and clear failures with non-zero exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import box_hole, never_blocking, textured

REPO = Path(__file__).resolve().parents[1]


def cli_process(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m app`` as a user runs it: the one smoke test that the entry point starts."""
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})


@pytest.fixture
def cli(capsys, monkeypatch):
    """``python -m app`` in this process (fast), answering like :func:`cli_process`."""
    from app.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
        monkeypatch.chdir(cwd)
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse refuses bad arguments by exiting
            code = exc.code
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, captured.out, captured.err)

    return run


@pytest.fixture
def photos(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(2):
        Image.fromarray(textured(64, 80, seed=i)).save(tmp_path / "images" / f"photo{i}.png")
        hole = box_hole(64, 80, 20, 30, 20, 40).astype(np.uint8) * 255
        Image.fromarray(hole).save(tmp_path / "masks" / f"photo{i}.png")
    return tmp_path


@pytest.mark.slow  # over 3 s here: the full run only (README, fast lane)
def test_single_image(photos):
    out = photos / "out"
    done = cli_process("inpaint", "images/photo0.png", "--mask", "masks/photo0.png", "-m", "telea",
                       "-m", "navier-stokes", "-o", str(out), cwd=photos)
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == ["photo0__navier-stokes.png", "photo0__telea.png"]
    result = np.asarray(Image.open(out / "photo0__telea.png"))
    source = textured(64, 80, seed=0)
    assert result.shape == source.shape and (result[:5] == source[:5]).all()
    assert "photo0.png: " in done.stdout and "photo0__telea.png" in done.stdout  # per-file summary


def test_folder_with_masks_matched_by_name(photos, cli):
    done = cli("inpaint", "images", "--mask", "masks", "-m", "telea", "-o", "out", cwd=photos)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (photos / "out").iterdir()) == ["photo0__telea.png", "photo1__telea.png"]


def test_bad_inputs_exit_non_zero_with_a_message(photos, cli):
    (photos / "images" / "broken.png").write_bytes(b"not really a png")
    (photos / "masks" / "broken.png").write_bytes((photos / "masks" / "photo0.png").read_bytes())
    done = cli("inpaint", "images", "--mask", "masks", "-m", "telea", "-o", "out", cwd=photos)
    assert done.returncode == 1
    assert "broken.png: error: " in done.stderr and "not an image" in done.stderr
    assert (photos / "out" / "photo0__telea.png").exists()  # the good images still ran

    Image.fromarray(np.zeros((64, 80), np.uint8)).save(photos / "empty.png")
    done = cli("inpaint", "images/photo0.png", "--mask", "empty.png", "-m", "telea", cwd=photos)
    assert done.returncode == 1 and "mask is empty" in done.stderr

    done = cli("inpaint", "images", "--mask", "masks/photo0.png", cwd=photos)
    assert done.returncode == 2 and "--mask must be a folder" in done.stderr

    done = cli("inpaint", "images/photo0.png", "--mask", "masks/photo0.png", "-m", "unknown", cwd=photos)
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_weights_list_shows_every_model_of_the_registry(photos, cli):
    from app import registry

    done = cli("weights", "list", cwd=photos)
    assert done.returncode == 0
    assert all(model_id in done.stdout for model_id in registry.ids())
    assert "missing" in done.stdout  # offline, no checkpoints: the neural models are not here


# --- issue 13: the CLI never loses work, never reads its own results, and fails in one line ---


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """``app.cli.main`` in this process (fast); returns exit code, stdout, stderr."""
    from app.cli import main

    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    """Exit 2 with a single ``error: ...`` line that says what is wrong, no traceback."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and all(f in err for f in fragments), err


def test_inputs_sharing_a_stem_each_get_their_own_results(photos, capsys):
    images = photos / "images"
    for i, suffix in enumerate(["png", "jpg", "webp"]):  # photo.png, photo.jpg, photo.webp: different pictures
        Image.fromarray(textured(64, 80, seed=10 + i)).save(images / f"photo.{suffix}")
    Image.open(photos / "masks" / "photo0.png").save(photos / "masks" / "photo.png")
    code, out, err = run_main(capsys, "inpaint", str(images), "--mask", str(photos / "masks"), "-m", "telea",
                              "-o", str(photos / "out"))
    assert code == 0, err
    assert names(photos / "out") == ["photo.jpg__telea.png", "photo.png__telea.png", "photo.webp__telea.png",
                                     "photo0__telea.png", "photo1__telea.png"]  # unique stems keep today's names
    for suffix in ["png", "jpg", "webp"]:  # each file holds its own input's result, not the last one's
        alone = photos / f"alone-{suffix}"
        code, _, err = run_main(capsys, "inpaint", str(images / f"photo.{suffix}"), "--mask",
                                str(photos / "masks" / "photo.png"), "-m", "telea", "-o", str(alone))
        assert code == 0, err
        assert (pixels(photos / "out" / f"photo.{suffix}__telea.png") == pixels(alone / "photo__telea.png")).all()
    results = [pixels(photos / "out" / f"photo.{s}__telea.png") for s in ["png", "jpg", "webp"]]
    assert not (results[0] == results[1]).all() and not (results[1] == results[2]).all()


def test_every_result_name_is_recognised_as_a_result():
    """The skip rule and the naming rule must stay in step, for every model of the registry."""
    from types import SimpleNamespace

    from app import registry
    from app.cli import is_result, output_name, result_stems

    stems = result_stems([Path("a/photo.png"), Path("a/photo.jpg"), Path("a/photo.jpg.png"), Path("a/other.tif")])
    assert stems == {Path("a/photo.png"): "photo.png", Path("a/photo.jpg"): "photo.jpg",
                     Path("a/photo.jpg.png"): "photo.jpg.png", Path("a/other.tif"): "other"}
    assert len(set(stems.values())) == len(stems)
    for model_id in registry.ids():
        model = registry.get(model_id)
        for sample in range(3):
            name = output_name("photo.jpg", SimpleNamespace(model=model, sample=sample))
            assert is_result(Path(name)), name
            assert name.endswith(f"__{model_id}_sample-{sample + 1}.png" if model.diverse else f"__{model_id}.png")
    assert not any(is_result(Path(n)) for n in ["photo.png", "photo_mask.png", "a__b.png", "x__telea.jpg"])


def test_output_in_the_input_folder_twice_reads_no_results(photos, capsys):
    args = ("inpaint", str(photos / "images"), "--mask", str(photos / "masks"), "-m", "telea", "-m", "navier-stokes",
            "-o", str(photos / "images"))
    code, _, err = run_main(capsys, *args)
    assert code == 0, err
    first = names(photos / "images")
    assert first == ["photo0.png", "photo0__navier-stokes.png", "photo0__telea.png",
                     "photo1.png", "photo1__navier-stokes.png", "photo1__telea.png"]
    code, out, err = run_main(capsys, *args)
    assert code == 0, err  # earlier results are neither images (no mask for them) nor inpainted again
    assert names(photos / "images") == first
    assert "__telea__" not in out and "skipped 4 file(s)" in err


def test_masks_in_the_image_folder_are_masks_not_images(photos, capsys):
    both = photos / "both"
    both.mkdir()
    for i in range(2):
        (both / f"photo{i}.png").write_bytes((photos / "images" / f"photo{i}.png").read_bytes())
        (both / f"photo{i}_mask.png").write_bytes((photos / "masks" / f"photo{i}.png").read_bytes())
    for _ in range(2):  # a second run into the same folder changes nothing
        code, _, err = run_main(capsys, "inpaint", str(both), "--mask", str(both), "-m", "telea", "-o", str(both))
        assert code == 0, err
        assert names(both) == ["photo0.png", "photo0__telea.png", "photo0_mask.png",
                               "photo1.png", "photo1__telea.png", "photo1_mask.png"]
    code, _, err = run_main(capsys, "inpaint", str(photos / "images"), "--mask", str(photos / "masks"),
                            "-m", "telea", "-o", str(photos / "out"))
    assert code == 0, err
    for i in range(2):  # each photo was filled with its own mask, not with itself as mask
        assert (pixels(both / f"photo{i}__telea.png") == pixels(photos / "out" / f"photo{i}__telea.png")).all()


def test_an_output_folder_that_cannot_be_created_is_one_error_line(photos, capsys, cli):
    (photos / "file.txt").write_text("a regular file")
    done = cli("inpaint", "images", "--mask", "masks", "-m", "telea", "-o", "file.txt/out", cwd=photos)
    assert_one_line_error(done.returncode, done.stderr, "output folder", "file.txt/out")
    code, _, err = run_main(capsys, "inpaint", str(photos / "images"), "--mask", str(photos / "masks"),
                            "-m", "telea", "-o", str(photos / "file.txt"))
    assert_one_line_error(code, err, "output folder", "file.txt")
    assert (photos / "file.txt").read_text() == "a regular file"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_one_error_line(photos, capsys):
    locked = photos / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code, _, err = run_main(capsys, "inpaint", str(photos / "images"), "--mask", str(photos / "masks"),
                                "-m", "telea", "-o", str(locked))
    finally:
        locked.chmod(0o755)
    assert_one_line_error(code, err, "Cannot write in the output folder")


@pytest.mark.parametrize(("image", "mask", "extra", "fragments"), [
    ("images/nope.png", "masks/photo0.png", [], ["does not exist", "nope.png"]),
    ("nowhere", "masks", [], ["does not exist", "nowhere"]),
    ("images/photo0.png", "masks/nope.png", [], ["--mask", "does not exist"]),
    ("images/photo0.png", "masks", [], ["--mask must be a mask file"]),
    ("images/photo0.png", "masks/photo0.png", ["--edges", "edges.png"], ["--edges", "does not exist"]),
])
def test_bad_paths_are_one_error_line_and_write_nothing(photos, capsys, monkeypatch, image, mask, extra, fragments):
    monkeypatch.chdir(photos)
    code, _, err = run_main(capsys, "inpaint", image, "--mask", mask, "-m", "telea", "-o", "out", *extra)
    assert_one_line_error(code, err, *fragments)
    assert not (photos / "out").exists()


def test_a_result_that_cannot_be_saved_fails_that_image_only(photos, capsys):
    (photos / "out" / "photo0__telea.png").mkdir(parents=True)  # the save of photo0's result fails for real
    code, out, err = run_main(capsys, "inpaint", str(photos / "images"), "--mask", str(photos / "masks"),
                              "-m", "telea", "-o", str(photos / "out"))
    assert code == 1
    assert "photo0.png: error: Could not write" in err and "Traceback" not in err
    assert (photos / "out" / "photo1__telea.png").is_file() and "photo1.png: " in out


def test_an_unreadable_mask_fails_that_image_only(photos, capsys):
    data = (photos / "masks" / "photo0.png").read_bytes()
    (photos / "masks" / "photo0.png").write_bytes(data[: len(data) // 2])  # opens, then fails to decode
    code, _, err = run_main(capsys, "inpaint", str(photos / "images"), "--mask", str(photos / "masks"),
                            "-m", "telea", "-o", str(photos / "out"))
    assert code == 1 and "photo0.png: error: " in err
    assert names(photos / "out") == ["photo1__telea.png"]


def test_an_os_error_while_reading_an_image_fails_that_image_only(photos, capsys, monkeypatch):
    """Decoders can raise a bare OSError (an I/O error mid-file); that is one failed image, not a traceback."""
    import errno

    from app import cli

    def flaky(path, *args, **kwargs):
        if Path(path).name == "photo0.png":
            raise OSError(errno.EIO, "Input/output error")
        return load_photo(path, *args, **kwargs)

    load_photo = cli.load_photo
    monkeypatch.setattr(cli, "load_photo", flaky)
    code, _, err = run_main(capsys, "inpaint", str(photos / "images"), "--mask", str(photos / "masks"),
                            "-m", "telea", "-o", str(photos / "out"))
    assert code == 1 and "photo0.png: error: Input/output error" in err
    assert names(photos / "out") == ["photo1__telea.png"]


def test_a_result_is_never_written_over_an_input(photos, capsys):
    """The only way a result name can meet an input: a mask named like a result, in the output folder."""
    mask = photos / "images" / "photo0__telea.png"
    mask.write_bytes((photos / "masks" / "photo0.png").read_bytes())
    code, _, err = run_main(capsys, "inpaint", str(photos / "images" / "photo0.png"), "--mask", str(mask),
                            "-m", "telea", "-o", str(photos / "images"))
    assert code == 1 and "would overwrite the input" in err
    assert mask.read_bytes() == (photos / "masks" / "photo0.png").read_bytes()


@pytest.mark.parametrize("option", [["--grow", "-1"], ["--samples", "0"], ["--samples", "1000000"],
                                    ["--margin", "-5"], ["--feather", "-1"]])
def test_bad_numbers_are_one_error_line(photos, capsys, option):
    code, _, err = run_main(capsys, "inpaint", str(photos / "images"), "--mask", str(photos / "masks"),
                            "-m", "telea", "-o", str(photos / "out"), *option)
    assert_one_line_error(code, err)
    assert not (photos / "out").exists()


def test_an_error_raised_while_building_options_is_an_argument_error(photos, capsys, monkeypatch):
    """Whatever range check Options gains, the CLI shows its message (exit 2), not a traceback."""
    from app import pipeline
    from app.errors import InpaintError

    def refuse(self) -> None:
        raise InpaintError("Margin is too large for this test.")

    monkeypatch.setattr(pipeline.Options, "__post_init__", refuse)
    code, _, err = run_main(capsys, "inpaint", str(photos / "images"), "--mask", str(photos / "masks"),
                            "-m", "telea", "-o", str(photos / "out"))
    assert_one_line_error(code, err, "Margin is too large for this test.")


def test_a_model_named_twice_is_run_and_written_once(photos, capsys):
    code, out, err = run_main(capsys, "inpaint", str(photos / "images" / "photo0.png"), "--mask",
                              str(photos / "masks" / "photo0.png"), "-m", "telea", "-m", "telea",
                              "-o", str(photos / "out"))
    assert code == 0, err
    assert names(photos / "out") == ["photo0__telea.png"] and out.count("photo0__telea.png") == 1


def test_a_fifo_as_image_mask_or_guide_is_one_error_line_without_blocking(photos, capsys, tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    photo, mask = str(photos / "images" / "photo0.png"), str(photos / "masks" / "photo0.png")
    for args, what in [((str(fifo), "--mask", mask), "The image"), ((photo, "--mask", str(fifo)), "The --mask"),
                       ((photo, "--mask", mask, "--edges", str(fifo)), "The --edges image")]:
        code, _, err = never_blocking(fifo, lambda args=args: run_main(capsys, "inpaint", *args, "-m", "telea",
                                                                        "-o", str(photos / "out")))
        assert_one_line_error(code, err, what, "pipe.png is not a regular file")
    assert not (photos / "out").exists()


@pytest.mark.slow  # two Python start-ups
@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_a_device_or_a_fifo_is_one_error_line_as_a_user_runs_it(photos, tmp_path):
    """``python -m app`` itself, under a timeout: /dev/zero never ends, a FIFO blocks whoever opens it."""
    fifo = tmp_path / "mask.png"
    os.mkfifo(fifo)
    for image, mask in [("/dev/zero", "masks/photo0.png"), ("images/photo0.png", str(fifo))]:
        done = subprocess.run([sys.executable, "-m", "app", "inpaint", image, "--mask", mask, "-m", "telea"],
                              cwd=photos, capture_output=True, text=True, timeout=120,
                              env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
        assert_one_line_error(done.returncode, done.stderr, "is not a regular file")
    assert not (photos / "outputs").exists()


def test_a_1x1_photo_is_too_small_not_an_empty_mask(tmp_path, capsys):
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "dot.png")
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(tmp_path / "dot_mask.png")
    code, _, err = run_main(capsys, "inpaint", str(tmp_path / "dot.png"), "--mask", str(tmp_path / "dot_mask.png"),
                            "-m", "telea", "-o", str(tmp_path / "out"))
    assert code == 1 and "dot.png: error: The photo is 1x1 px, too small to inpaint: the smallest photo this app " \
                         "takes is 2x2 px" in err
    assert "mask" not in err.split("error: ", 1)[1].split("(", 1)[0] and names(tmp_path / "out") == []
