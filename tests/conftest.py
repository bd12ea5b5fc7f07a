"""Hooks and fixtures for every test; helpers live in modules of their own (tests/reference.py, tests/paths.py, ...)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import tolerances
from tests.reference import FIDELITY

#: The suite's references and tolerances are float32 (official outputs, numeric tolerances): the networks run
#: float32 on every CPU class, bf16-capable or not, unless a test asks otherwise (tests/test_cpu_precision.py).
#: Set here, before any fixture, so servers and workers started by the tests inherit it.
os.environ.setdefault("INPAINT_CPU_BF16", "off")

#: Fixtures shared across test files, used by name (no test module imports another):
#: the loopback servers (Hub, Drive, an authors' file server) and tiny models on disk.
pytest_plugins = ["tests.plugins.loopback", "tests.plugins.tiny_models"]


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
