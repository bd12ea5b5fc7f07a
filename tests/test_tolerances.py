"""The tolerances of the numeric tests keep their margin over the worst error measured, on every CPU class."""

from __future__ import annotations

import pytest

from benchmarks import tolerance_sweep
from tests.tolerances import MARGIN, TOLERANCES, assert_close


@pytest.mark.parametrize("name", sorted(TOLERANCES))
def test_every_tolerance_keeps_its_margin_over_the_worst_measured(name: str) -> None:
    tol = TOLERANCES[name]
    assert tol.atol >= MARGIN * tol.worst, f"{name}: {tol.atol:g} is under {MARGIN:g} x the worst seen ({tol.worst:g})"


def test_a_difference_over_the_tolerance_fails_and_names_it() -> None:
    atol = TOLERANCES["contract.batch"].atol
    assert assert_close("contract.batch", [0.0, 1.0], [0.0, 1.0 + atol / 2]) == pytest.approx(atol / 2)
    with pytest.raises(AssertionError, match=r"contract.batch: 1 of 2 values off by up to"):
        assert_close("contract.batch", [0.0, 1.0], [0.0, 1.0 + 2 * atol])


@pytest.mark.parametrize(("own", "other"), [("AVX512", "avx2"), ("AVX2", "default"), ("DEFAULT", "default")])
def test_ci_checks_a_kernel_level_below_the_machines_own(monkeypatch, own: str, other: str) -> None:
    monkeypatch.setattr(tolerance_sweep, "capability", lambda env: own)
    assert tolerance_sweep.other_level() == other
    assert tolerance_sweep.level_env(other, 1)["ATEN_CPU_CAPABILITY"] == other


def test_the_sweep_keeps_the_worst_run_per_tolerance() -> None:
    runs = [{"level": "avx2", "capability": "AVX2", "threads": 1, "worst": {"contract.batch": 2e-6}},
            {"level": "default", "capability": "DEFAULT", "threads": 2, "worst": {"contract.batch": 5e-6}}]
    row = tolerance_sweep.summarise(runs)["contract.batch"]
    assert row["worst"] == 5e-6 and row["at"].startswith("default") and row["margin"] == pytest.approx(1e-4 / 5e-6)
