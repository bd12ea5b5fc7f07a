"""The GPU check (issue 29): one script that measures the GPU path, tested here by its CPU dry run.

No GPU is lent to the test machines, so the dry run (``--device cpu --quick``) goes through every step
the GPU run takes (networks in float32 and their own precision, samples one by one and in one batch,
the page path, the diffusion remover's networks) at tiny sizes; the report must say "not measured"
for the GPU until a real run exists, and render that run's tables when one does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from benchmarks import gpu_check, report
from tests.paths import REPO

MODELS = ["telea", "pic-places2"]  # a classical method and a diverse network: every step but diffusion, fast


def _dry_run(folder: Path, models: list[str]) -> dict:
    out = folder / "gpu-check.json"
    assert gpu_check.main(["--device", "cpu", "--quick", "--models", *models, "--out", str(out)]) == 0
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _dry_run(tmp_path_factory.mktemp("gpu"), MODELS)


def test_the_dry_run_goes_through_every_step(dry_run: dict) -> None:
    steps = dry_run["steps"]
    assert dry_run["quick"] and set(steps) == {"networks", "samples", "breakdown", "diffusion", "aoti"}
    rows = steps["networks"]
    assert [(r["model"], r["batch"], r["precision"]) for r in rows] == [
        ("pic-places2", b, "float32") for b in gpu_check.QUICK["batches"] for _ in (0, 1)]
    assert all(r["median_s"] > 0 for r in rows) and all(r["levels_vs_float32"] is not None for r in rows[1::2])
    orders = {(r["model"], r["samples"], r["order"]) for r in steps["samples"]}
    assert orders == {("pic-places2", k, o) for k in gpu_check.QUICK["samples"] for o in ("one by one", "one batch")}
    assert set(steps["breakdown"]["median_s"]) == set(MODELS)
    assert steps["diffusion"] == "not requested" and steps["aoti"].startswith("skipped")


@pytest.mark.slow  # 5 s on a quiet 2-core machine, 2 min under load: the diffusers import, LaMa
def test_the_dry_run_with_lama_and_the_diffusion_remover(tmp_path: Path) -> None:
    steps = _dry_run(tmp_path, ["lama", "rorem"])["steps"]
    lama = [r for r in steps["networks"] if r["model"] == "lama"]
    assert {r["batch"] for r in lama} == set(gpu_check.QUICK["batches"]) and all(r["median_s"] > 0 for r in lama)
    assert steps["breakdown"]["precision"]["rorem"] == "not measured"  # the stand-in: no model time claimed
    assert {r["steps"] for r in steps["diffusion"]["rows"]} == {4, 8} and steps["diffusion"]["tiny"]


def test_a_quick_or_cpu_run_never_counts_as_gpu_figures(dry_run: dict) -> None:
    assert "**Not measured**" in report.gpu_section(None)
    assert "**Not measured**" in report.gpu_section(dry_run)


def test_a_gpu_run_fills_the_report(dry_run: dict) -> None:
    """The dry run's record dressed as a CUDA run: every table of the section renders from it."""
    run = json.loads(json.dumps(dry_run)) | {"quick": False, "duration_s": 300}
    run["machine"]["device"] = "cuda"
    run["steps"]["aoti"] = [{"model": "lama", "size": 512, "precision": "float16", "eager": {"median_s": 0.02},
                             "aoti": {"median_s": 0.01}, "compile_s": 90.0}]
    section = report.gpu_section(run)
    assert "Not measured" not in section.split("Ahead")[0]
    assert "| `pic-places2` | 1x" in section and "one batch" in section and "| `lama` | 512² | float16 |" in section


def test_the_script_runs_as_is_within_8_minutes() -> None:
    script = (REPO / "benchmarks" / "gpu_check.sh").read_text()
    limit = int(re.search(r"timeout (\d+) python -m benchmarks.gpu_check", script).group(1))
    assert limit <= 8 * 60 and gpu_check.build_parser().parse_args([]).budget_s < limit
    assert Path(REPO / "benchmarks" / "gpu_check.sh").stat().st_mode & 0o111  # executable
