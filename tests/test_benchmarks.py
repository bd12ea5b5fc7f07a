"""The benchmark scripts: their metrics (exact on known cases) and one quick run of each.

The smoke runs use the evaluation set in ``$INPAINT_EVALSET`` (default ../shared/evalset) and
skip, saying so, where it is absent.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from app.hires import feather_alpha
from benchmarks import common, metrics
from tests.helpers import box_hole, textured
from tests.paths import EVALSET

needs_evalset = pytest.mark.skipif(not (EVALSET / "images").is_dir(),
                                   reason=f"evaluation set not found at {EVALSET} (set INPAINT_EVALSET)")


def _scene(h: int = 128, w: int = 160):
    original = textured(h, w, seed=3)
    return original, box_hole(h, w, 40, 80, 50, 110)


# ------------------------------------------------------------------------- metrics


def test_identical_images_score_perfectly():
    original, hole = _scene()
    copy = original.copy()
    assert metrics.psnr(original, copy, hole) == math.inf
    assert metrics.ssim(original, copy, hole) == pytest.approx(1.0)
    assert metrics.l1(original, copy, hole) == 0.0
    assert metrics.gmsd(original, copy, hole) == pytest.approx(0.0, abs=1e-7)
    assert metrics.seam(original, copy, hole) == 0.0


def test_known_offset_gives_the_expected_psnr_and_l1():
    original = np.full((64, 64, 3), 100, np.uint8)
    hole = box_hole(64, 64, 20, 40, 20, 40)
    result = original.copy()
    result[hole] = 110  # every hole pixel off by 10 levels
    assert metrics.psnr(original, result, hole) == pytest.approx(20 * math.log10(255 / 10))
    assert metrics.l1(original, result, hole) == pytest.approx(10 / 255)


def test_changes_outside_the_hole_are_ignored():
    original, hole = _scene(256, 256)
    result = original.copy()
    result[hole] = np.clip(result[hole].astype(int) + 25, 0, 255).astype(np.uint8)
    scores = metrics.hole_scores(original, result, hole)
    far = ~metrics.border_band(hole, band=metrics.PAD) & ~hole
    vandalised = result.copy()
    vandalised[far] = 255 - vandalised[far]
    assert metrics.hole_scores(original, vandalised, hole) == pytest.approx(scores)


def test_ssim_on_the_cropped_hole_equals_ssim_on_the_whole_image():
    original, hole = _scene(200, 240)
    rng = np.random.default_rng(1)
    result = np.clip(original + rng.normal(0, 20, original.shape), 0, 255).astype(np.uint8)
    _, full = structural_similarity(original, result, channel_axis=2, data_range=255, gaussian_weights=True,
                                    sigma=1.5, use_sample_covariance=False, full=True)
    assert metrics.ssim(original, result, hole) == pytest.approx(full.mean(axis=2)[hole].mean(), abs=1e-9)


def test_gmsd_grows_with_damage():
    original, hole = _scene()
    rng = np.random.default_rng(2)
    light = np.clip(original + rng.normal(0, 5, original.shape), 0, 255).astype(np.uint8)
    heavy = np.clip(original + rng.normal(0, 40, original.shape), 0, 255).astype(np.uint8)
    assert 0 < metrics.gmsd(original, light, hole) < metrics.gmsd(original, heavy, hole)


def test_seam_scores_a_hard_edge_above_a_feathered_one():
    y, x = np.mgrid[0:160, 0:160]
    original = np.repeat(((x + y) * 0.4 + 40).astype(np.uint8)[..., None], 3, axis=2)  # smooth: no edges of its own
    hole = box_hole(160, 160, 50, 110, 50, 110)
    alpha = feather_alpha(hole, 8)[..., None]
    hard = np.where(hole[..., None], 220, original).astype(np.uint8)
    soft = np.round(original * (1 - alpha) + 220 * alpha).astype(np.uint8)
    assert metrics.seam(original, hard, hole) > metrics.seam(original, soft, hole) > 0


# ----------------------------------------------------------------- model selection


def test_neural_models_count_only_with_weights_on_disk(checkpoints, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    (checkpoints / "lama").mkdir()
    (checkpoints / "lama" / "model.safetensors").write_bytes(b"")  # present: enough to be picked, not loaded
    selection = common.select_models(["telea", "lama", "rfr-psv"])
    assert [s.id for s in selection.models] == ["telea", "lama"]
    assert "local weights" in selection.weights["lama"]
    reason = selection.skipped["rfr-psv"]  # no weights here, and their source (the authors' Drive) does not answer
    assert "never download" in reason or "not available" in reason or "could not be reached" in reason
    assert selection.skipped["patchmatch"].startswith("not requested")


def test_unknown_model_is_refused():
    with pytest.raises(SystemExit, match="Unknown models"):
        common.select_models(["no-such-model"])


def test_missing_evalset_exits_with_a_clear_message(tmp_path):
    from benchmarks import bench_quality

    with pytest.raises(SystemExit, match="INPAINT_EVALSET"):
        bench_quality.main(["--evalset", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])


# ---------------------------------------------------------------------- smoke runs


@pytest.fixture
def cpu(monkeypatch):
    monkeypatch.setenv("INPAINT_DEVICE", "cpu")  # the scripts set it; restored after the test


@pytest.fixture
def small_evalset(tmp_path, monkeypatch):
    """The evaluation set cut to its smallest full-resolution photo (links, no copies), via INPAINT_EVALSET."""
    root = tmp_path / "evalset"
    photo = min((EVALSET / "hires").iterdir(), key=lambda p: p.stat().st_size)
    (root / "hires").mkdir(parents=True)
    (root / "hires" / photo.name).symlink_to(photo)
    (root / "images").symlink_to(EVALSET / "images")
    (root / "masks").symlink_to(EVALSET / "masks")
    monkeypatch.setenv("INPAINT_EVALSET", str(root))
    return root


@needs_evalset
@pytest.mark.slow  # over 1.5 s here: the full run only (README, fast lane)
def test_quality_script_writes_scores_sheets_and_report(tmp_path, cpu):
    from benchmarks import bench_quality, report

    out = tmp_path / "docs"
    assert bench_quality.main(["--limit", "1", "--families", "thin", "object", "--models", "telea", "navier-stokes",
                               "--jobs", "1", "--sheet-rows", "1", "--device", "cpu", "--out", str(out)]) == 0
    lines = (out / "quality.csv").read_text().splitlines()
    assert len(lines) == 1 + 1 * 2 * 2  # header + photos x families x models
    data = json.loads((out / "quality.json").read_text())
    assert {r["family"] for r in data["per_family"]} == {"thin", "object"}
    assert all(0 < r["ssim"] <= 1 and r["psnr"] > 5 for r in data["overall"])
    assert (out / "sheets" / "thin.jpg").is_file() and (out / "quality_by_family.png").is_file()
    text = (out / "README.md").read_text()
    assert "## 1. Quality" in text and "`lama` | neural | **skipped**" in text
    assert "`telea`" in report.headline(report.load(out))


@needs_evalset
@pytest.mark.slow  # over 1.5 s here: the full run only (README, fast lane)
def test_latency_script_times_requests(tmp_path, cpu):
    from benchmarks import bench_pipeline

    out = tmp_path / "docs"
    assert bench_pipeline.main(["--limit", "2", "--repeats", "2", "--sets", "images", "--models", "telea",
                                "--device", "cpu", "--out", str(out)]) == 0
    data = json.loads((out / "latency-cpu.json").read_text())
    (row,) = data["summary"]
    assert (row["model"], row["set"], row["photos"]) == ("telea", "images", 2)
    assert 0 < row["p10_s"] <= row["median_s"] <= row["p90_s"]
    assert "## 2. Speed" in (out / "README.md").read_text()


@needs_evalset
@pytest.mark.slow
def test_hires_script_compares_strategies(tmp_path, cpu, small_evalset):
    from benchmarks import bench_hires

    out = tmp_path / "docs"
    assert bench_hires.main(["--limit", "1", "--families", "object", "--models", "telea", "--strategies", "crop",
                             "--feathers", "0", "8", "--device", "cpu", "--out", str(out)]) == 0
    data = json.loads((out / "hires.json").read_text())
    assert [r["feather"] for r in data["summary"]] == [0, 8]
    assert all(r["seconds"] > 0 and r["seam"] >= 0 for r in data["summary"])
    assert (out / "sheets" / "hires_seams.jpg").is_file() and "## 3. High-resolution" in (out / "README.md").read_text()


@pytest.mark.slow
def test_model_forward_benchmark_runs(capsys):
    from benchmarks import bench_models

    assert bench_models.main(["--models", "edgeconnect-places2", "--sizes", "32", "--repeats", "1",
                              "--devices", "cpu"]) == 0
    assert "| edgeconnect-places2 | cpu | 1x32² |" in capsys.readouterr().out


@pytest.mark.slow  # ~20 s on a busy 2-core machine (imports, one 0.02 MP request)
def test_breakdown_benchmark_times_every_stage(tmp_path, capsys):
    """bench_breakdown at a tiny size: every stage of the page's path, per model, and the totals."""
    from benchmarks import bench_breakdown

    out = tmp_path / "breakdown.json"
    assert bench_breakdown.main(["--models", "telea", "--megapixels", "0.02", "--rounds", "1", "--out", str(out)]) == 0
    (run,) = json.loads(out.read_text())["runs"].values()  # kept per CPU class (issue 29)
    row = run["median_s"]["telea"]
    assert set(bench_breakdown.STAGES) <= set(row) and all(row[s] >= 0 for s in bench_breakdown.STAGES)
    assert row["downloads"] >= row["shown"] >= row["shown_without_model"]
    assert "| `telea` |" in capsys.readouterr().out


@pytest.mark.slow
def test_pic_benchmark_compares_with_the_official_pass(tmp_path):
    from benchmarks import bench_pic

    out = tmp_path / "pic.json"
    assert bench_pic.main(["--rounds", "1", "--size", "64", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert {"one_sample_vs_official", "eight_vs_one"} <= set(report) and report["eight_vs_one"] > 0
