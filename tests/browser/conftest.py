"""Headless Chromium (Debian's ``chromium``, driven by Playwright) against the real app.

The app runs as ``python app.py`` with synthetic weights for Pluralistic (diverse
samples) and EdgeConnect, so neural models take part. Screenshots of every step go to
``test-artifacts/browser/<test>/`` (and one named ``failed`` when a test fails).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.server import REPO, AppProcess, running_app
from tests.synthetic import checkpoints_with, copy_checkpoints

CHROMIUM = os.environ.get("INPAINT_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts" / "browser"
NEURAL = ("pic-places2", "edgeconnect-places2")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every browser test starts the app and Chromium: ``slow``, out of the fast lane (-m "not slow")."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.slow)


@dataclass
class Studio:
    """The app under test and the checkpoints folder it reads (a test may remove weights from it)."""

    app: AppProcess
    checkpoints: Path

    @property
    def url(self) -> str:
        return self.app.url


def chromium_executable() -> str:
    """Debian's Chromium (installed by ``.ci/run``), or skip saying what is missing."""
    found = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    if not found:
        pytest.skip(f"no Chromium at {CHROMIUM} (`.ci/run` installs Debian's chromium; or set INPAINT_CHROMIUM)")
    return found


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-test.txt)")
    from scripts.screenshot import CHROMIUM_ARGS

    executable = chromium_executable()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def synthetic_checkpoints(tmp_path_factory) -> Path:
    return checkpoints_with(tmp_path_factory.mktemp("checkpoints"), *NEURAL)


@pytest.fixture
def studio(tmp_path, browser, synthetic_checkpoints, request) -> Iterator[Studio]:
    """The app for one test, with its own copy of the weights (a test may delete some).

    Started afresh for each test (started only when a browser is there to use it): a test
    that leaves the app in a bad state then fails itself, instead of the one after it. When
    the test fails, the end of the app's log is printed (the report shows it beside the failure).
    """
    checkpoints = copy_checkpoints(synthetic_checkpoints, tmp_path / "checkpoints")
    with running_app(tmp_path / "studio", checkpoints) as app:
        yield Studio(app, checkpoints)
        failed = getattr(request.node, "report_call", None)
        if failed is not None and failed.failed:
            print(f"--- the app's log (end) ---\n{app.log_text()[-4000:]}")
        if not app.alive():
            pytest.fail(f"the app died during the test:\n{app.log_text()[-3000:]}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(browser, request):
    """A fresh browser tab (own context, downloads allowed); screenshot ``failed`` when the test fails."""
    context = browser.new_context(viewport={"width": 1400, "height": 1500}, accept_downloads=True)
    context.set_default_timeout(30_000)
    tab = context.new_page()
    yield tab
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        tab.screenshot(path=str(artifact_dir(request.node.name) / "failed.png"), full_page=True)
    context.close()


def artifact_dir(test_name: str) -> Path:
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", test_name)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def shots(request) -> Path:
    """This test's screenshot folder, emptied first so it shows this run only."""
    folder = artifact_dir(request.node.name)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder
