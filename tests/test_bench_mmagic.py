"""The mmagic speed benchmark runs at a tiny size and writes every network, in its files and in the report.

It builds each network with the fixtures' synthetic weights (../shared/reference) and skips without
them. The official columns stay empty here: mmagic is not importable in the project's environment.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import bench_mmagic, report
from tests.paths import REFERENCE

needs_reference = pytest.mark.skipif(not (REFERENCE / "init_weights.py").is_file(),
                                     reason=f"no shared reference material at {REFERENCE} (set INPAINT_REFERENCE)")


@pytest.mark.slow  # four networks built from synthetic weights (PConv: 51.6 M values): ~30 s here
@needs_reference
def test_the_benchmark_writes_every_network_at_a_tiny_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INPAINT_REFERENCE", str(REFERENCE))
    assert bench_mmagic.main(["--size", "128", "--batches", "1", "2", "--rounds", "1", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / bench_mmagic.JSON).read_text())
    rows = {(r["model"], r["batch"]): r for r in data["rows"]}
    assert rows.keys() == {(m, b) for m in bench_mmagic.NETWORKS for b in (1, 2)}
    assert all(r["median_s"] > 0 and r["official_doc_s"] is None for r in rows.values())  # MODELS.md: 256² only
    markdown = (tmp_path / bench_mmagic.MARKDOWN).read_text()
    report = (tmp_path / "README.md").read_text()
    for network in bench_mmagic.NETWORKS.values():
        assert f"| {network.label} | 1x128² |" in markdown and f"| {network.label} | 2x128² |" in report
    assert "python -m benchmarks.bench_mmagic --size 128" in markdown
    (tmp_path / bench_mmagic.MARKDOWN).unlink()
    assert bench_mmagic.main(["--render-only", "--out", str(tmp_path)]) == 0  # from the JSON, nothing measured
    assert (tmp_path / bench_mmagic.MARKDOWN).read_text() == markdown


def test_the_official_timings_are_compared_at_their_own_size() -> None:
    """At 256² batch 1 each row carries MODELS.md's median and the ratio to it."""
    times = {(m, 1, "ours"): [2 * n.official_s] for m, n in bench_mmagic.NETWORKS.items()}
    rows = bench_mmagic.summary(times, 256, {})
    assert [r["official_doc_s"] for r in rows] == [n.official_s for n in bench_mmagic.NETWORKS.values()]
    data = {"size": 256, "rows": rows, "official": None, "official_reason": "not asked for", "rounds": 1,
            "command": "python -m benchmarks.bench_mmagic", "duration_s": 60.0,
            "machine": {"cpu": "x", "cpu_count": 2, "ram_gib": 1, "gpu": "none", "device": "cpu", "os": "linux",
                        "python": "3", "code": "c", "date": "d",
                        "versions": {k: "1" for k in ("torch", "numpy", "opencv-python-headless", "pypatchmatch",
                                                      "scikit-image")}}}
    assert report.mmagic_section(data).count("| 2.00 |") == len(bench_mmagic.NETWORKS)
