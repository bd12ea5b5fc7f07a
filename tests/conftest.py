"""Shared test fixtures: locations of ../shared material, synthetic official weights."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INPAINT_SHARED", REPO.parent / "shared"))
REFERENCE = Path(os.environ.get("INPAINT_REFERENCE", SHARED / "reference"))
FIXTURES = Path(os.environ.get("INPAINT_REFERENCE_FIXTURES", REFERENCE / "fixtures"))
EVALSET = Path(os.environ.get("INPAINT_EVALSET", SHARED / "evalset"))


def fixture_files(model: str) -> list[Path]:
    """Every ``<model>_*.npz`` of the fixture folder (any further fixture set works too)."""
    return sorted(FIXTURES.glob(f"{model}_*.npz")) if FIXTURES.is_dir() else []


def fixture_params(model: str) -> list:
    """pytest params over the fixtures of ``model``, or one skip saying why there are none."""
    files = fixture_files(model)
    if files:
        return [pytest.param(f, id=f.stem) for f in files]
    return [pytest.param(None, marks=pytest.mark.skip(reason=f"no {model}_*.npz fixtures in {FIXTURES}"))]


def fixture_tolerances(model: str) -> dict[str, float]:
    """atol per array from the fixture folder's index.json."""
    index = json.loads((FIXTURES / "index.json").read_text())
    return {k: float(v["atol"]) for k, v in index[model]["arrays"].items() if "atol" in v}


def _init_weights_module():
    path = REFERENCE / "init_weights.py"
    if not path.is_file():
        pytest.skip(f"shared reference material not found at {REFERENCE} (set INPAINT_REFERENCE)")
    spec = importlib.util.spec_from_file_location("reference_init_weights", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def manifest_entries(name: str) -> list[dict]:
    """Entries of ``manifests/<name>.json`` (e.g. ``edgeconnect_EdgeModel_gen``)."""
    path = REFERENCE / "manifests" / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"manifest {path} not found (set INPAINT_REFERENCE)")
    return json.loads(path.read_text())["entries"]


def make_state_dict(name: str, seed: int = 1):
    """Synthetic official-layout state_dict for manifest ``name`` (reference init_weights.py)."""
    return _init_weights_module().make_state_dict(manifest_entries(name), seed)


@pytest.fixture
def checkpoints(tmp_path, monkeypatch) -> Path:
    """An empty ``checkpoints/`` root the app's loader reads from."""
    root = tmp_path / "checkpoints"
    root.mkdir()
    monkeypatch.setenv("INPAINT_CHECKPOINTS", str(root))
    return root
