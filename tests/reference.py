"""The official outputs as the tests compare against them, and synthetic official weights.

``../shared/reference`` holds fixtures (``fixtures/<model>_*.npz`` with ``index.json``'s tolerances),
weight manifests and ``init_weights.py``, which draws a state_dict of the official layout.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from benchmarks.reference_weights import load_init_weights
from tests import tolerances
from tests.paths import FIXTURES, REFERENCE

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


def init_weights_module():
    """The reference ``init_weights.py``, or a skip saying where it was looked for."""
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
    return init_weights_module().make_state_dict(manifest_entries(name), seed)
