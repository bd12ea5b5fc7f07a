"""``benchmarks/bench_migan.py`` runs, says "not measured" without the official code, and times it when given."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import bench_migan


@pytest.mark.slow  # a few 256 px forwards
def test_without_the_official_code_the_official_column_is_not_measured(tmp_path: Path) -> None:
    out = tmp_path / "migan.json"
    assert bench_migan.main(["--rounds", "1", "--sizes", "256", "--out", str(out)]) == 0
    row = json.loads(out.read_text())["sizes"]["256"]
    assert row["official"] == bench_migan.NOT_MEASURED and row["median_s"]["ours"] > 0
    assert "not measured" in bench_migan.section(json.loads(out.read_text()))


def test_a_folder_without_the_official_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="migan_inference.py not found"):
        bench_migan.import_official(tmp_path)


@pytest.mark.slow
def test_with_a_copy_of_the_official_file_both_are_timed_and_agree(tmp_path: Path) -> None:
    """A stand-in with the official module's interface (the real file is never part of this project)."""
    stand_in = tmp_path / bench_migan.OFFICIAL_FILE
    stand_in.parent.mkdir(parents=True)
    stand_in.write_text("from app.models.migan import MIGAN256, MIGAN512\n\n\n"
                        "def Generator(resolution):\n    return {256: MIGAN256, 512: MIGAN512}[resolution]()\n")
    out = tmp_path / "migan.json"
    assert bench_migan.main(["--rounds", "1", "--sizes", "256", "--official", str(tmp_path), "--out", str(out)]) == 0
    row = json.loads(out.read_text())["sizes"]["256"]
    assert row["ours_vs_official"] > 0 and row["max_abs_difference"] == 0.0
