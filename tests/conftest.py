"""Shared test fixtures: locations of ../shared material, synthetic official weights."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from benchmarks.reference_weights import load_init_weights
from tests import tolerances

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INPAINT_SHARED", REPO.parent / "shared"))
REFERENCE = Path(os.environ.get("INPAINT_REFERENCE", SHARED / "reference"))
FIXTURES = Path(os.environ.get("INPAINT_REFERENCE_FIXTURES", REFERENCE / "fixtures"))
EVALSET = Path(os.environ.get("INPAINT_EVALSET", SHARED / "evalset"))
RTOL = {"rfr": 1e-4}  # RFR's raw output is unbounded (|x| ~ 25): check_fixture.py adds an rtol for it
FIDELITY: list[tuple[str, str, float, float]] = []  # (fixture, array, max abs error, atol): the end-of-run table


def fixture_files(model: str) -> list[Path]:
    """Every ``<model>_*.npz`` of the fixture folder (any further fixture set works too)."""
    return sorted(FIXTURES.glob(f"{model}_*.npz")) if FIXTURES.is_dir() else []


def fixture_params(model: str) -> list:
    """pytest params over the fixtures of ``model``, or one skip saying why there are none.

    The fast lane compares the first fixture of each model; the full run compares them all.
    """
    files = fixture_files(model)
    if files:
        return [pytest.param(f, id=f.stem, marks=pytest.mark.slow if i else ()) for i, f in enumerate(files)]
    return [pytest.param(None, marks=pytest.mark.skip(reason=f"no {model}_*.npz fixtures in {FIXTURES}"))]


def fixture_tolerances(model: str) -> dict[str, float]:
    """atol per array from the fixture folder's index.json."""
    index = json.loads((FIXTURES / "index.json").read_text())
    return {k: float(v["atol"]) for k, v in index[model]["arrays"].items() if "atol" in v}


def fixture_rtols(model: str) -> dict[str, float]:
    """rtol per array where index.json gives one (PConv's unbounded outputs), as check_fixture.py reads it."""
    index = json.loads((FIXTURES / "index.json").read_text())
    return {k: float(v["rtol"]) for k, v in index[model]["arrays"].items() if "rtol" in v}


def assert_matches_fixture(path: Path, ours: Mapping[str, Any],
                           expected: Mapping[str, np.ndarray] | None = None) -> dict[str, float]:
    """Every array of ``ours`` against the fixture's array of that name (or ``expected``'s).

    The rule of ../shared/reference/check_fixture.py: atol from index.json, plus an rtol for RFR's
    floats and for arrays whose index entry gives one (PConv's unbounded outputs), plus, for arrays
    stored as float16, each element's own storage rounding (half a unit in its last place: up to
    2**-11 of the value, 1.95e-3 for DeepFill's ``ca_out`` near 4). The storage part is the same on
    every CPU, so what :mod:`tests.tolerances` records is the rest: the error of our computation
    as a fraction of the tolerance. Returns the max abs errors, which the run also lists at its end
    (``pytest_terminal_summary``).
    """
    model = path.stem.split("_")[0]
    reference = dict(np.load(path)) | dict(expected or {})
    atols, rtols = fixture_tolerances(model), fixture_rtols(model)
    errors, bad = {}, {}
    for name, value in ours.items():
        if name not in reference:
            continue
        got = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        ref = reference[name]
        assert got.shape == ref.shape, f"{path.name} {name}: shape {got.shape} != {ref.shape}"
        atol = atols.get(name, 1e-4)
        rtol = 0.0 if ref.dtype == np.uint8 else rtols.get(name, RTOL.get(model, 0.0))
        err = np.abs(got.astype(np.float64) - ref.astype(np.float64))
        errors[name] = float(err.max())
        FIDELITY.append((path.stem, name, errors[name], atol))
        storage = np.spacing(np.abs(ref)).astype(np.float64) / 2 if ref.dtype == np.float16 else 0.0
        computed = np.maximum(err - storage, 0.0)  # what is left once the fixture's own rounding is taken off
        allowed = atol + rtol * np.abs(ref.astype(np.float64))
        if ref.dtype != np.uint8:  # 8-bit outputs may differ by the one rounding level their tolerance allows
            used = np.divide(computed, allowed, out=np.where(computed > 0, np.inf, 0.0), where=allowed > 0)
            tolerances.record(f"fixture {model}.{name} (fraction of its tolerance)", float(used.max()))
        if (computed > allowed).any():
            bad[name] = (errors[name], atol)
    assert errors, f"{path.name} holds none of {sorted(ours)}"
    assert not bad, f"{path.name}: max abs error above tolerance: {bad} (all: {errors})"
    return errors


def pytest_terminal_summary(terminalreporter) -> None:
    """How close to the official outputs: the largest error per fixture array, with its tolerance."""
    worst: dict[tuple[str, str], tuple[float, float]] = {}
    for fixture, name, err, atol in FIDELITY:
        worst[fixture, name] = max(worst.get((fixture, name), (0.0, atol)), (err, atol))
    if worst:
        terminalreporter.section("faithfulness: max abs error against the official outputs")
        for (fixture, name), (err, atol) in sorted(worst.items()):
            terminalreporter.write_line(f"{fixture:<17} {name:<22} {err:9.2e}   (tolerance {atol:.2g})")


def pytest_sessionfinish(session) -> None:
    """The worst error per tolerance, for ``benchmarks.tolerance_sweep`` (only when it asks)."""
    tolerances.write_log()


def _init_weights_module():
    try:
        return load_init_weights(REFERENCE)  # the loader bench_precision uses too
    except FileNotFoundError:
        pytest.skip(f"shared reference material not found at {REFERENCE} (set INPAINT_REFERENCE)")


def manifest_entries(name: str) -> list[dict]:
    """Entries of ``manifests/<name>.json`` (e.g. ``edgeconnect_EdgeModel_gen``)."""
    path = REFERENCE / "manifests" / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"manifest {path} not found (set INPAINT_REFERENCE)")
    return json.loads(path.read_text())["entries"]


def make_state_dict(name: str, seed: int = 1):
    """Synthetic official-layout state_dict for manifest ``name`` (reference init_weights.py)."""
    return _init_weights_module().make_state_dict(manifest_entries(name), seed)


@pytest.fixture(autouse=True)
def pins_file(tmp_path, monkeypatch) -> Path:
    """Every test gets its own (absent) weight pins file: ``weights push`` never writes the project's.

    And its own memory of which weight sources answered: each test brings its own servers.
    """
    from app.weights import probe

    probe.forget()
    path = tmp_path / "pins.json"
    monkeypatch.setenv("INPAINT_PINS", str(path))
    return path


@pytest.fixture(autouse=True)
def no_real_google_drive(monkeypatch) -> None:
    """No test reaches the real Google Drive, online or not: https:// requests go to a port where nothing listens.

    EdgeConnect, RFR-Net and PIC come from the authors' Drive, so listing the models asks Drive whether
    it answers; every test's own servers are plain http:// on loopback, which this leaves direct.
    tests/test_gdrive.py points the same settings at its loopback Drive.
    """
    for name in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


@pytest.fixture
def checkpoints(tmp_path, monkeypatch) -> Path:
    """An empty ``checkpoints/`` root the app's loader reads from."""
    root = tmp_path / "checkpoints"
    root.mkdir()
    monkeypatch.setenv("INPAINT_CHECKPOINTS", str(root))
    return root
