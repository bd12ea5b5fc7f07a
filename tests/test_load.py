"""The short form of the load test (CI): 16 concurrent API clients against the real app.

The long form is ``python scripts/load_test.py --minutes 5`` (see the README).
"""

from __future__ import annotations

import pytest

from scripts.load_test import run_load, workload
from tests.server import running_app

pytestmark = pytest.mark.slow  # starts the app: not in the fast lane (-m "not slow")

CLIENTS = 16


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return workload(tmp_path_factory.mktemp("load-inputs"))


def test_sixteen_clients_two_hundred_requests_all_served_memory_steady(tmp_path, pairs):
    with running_app(tmp_path / "app") as app:
        report = run_load(app, pairs, clients=CLIENTS, requests=200, seconds=600, temp=tmp_path / "app" / "gradio-tmp")
        alive = app.alive()
    print("\n" + report.summary())
    assert alive, "the app died under load"
    assert len(report.outcomes) == 200 and not report.failures(), report.summary()
    assert report.count("ok") == 200, report.summary()  # the default queue (32) holds 16 clients: nobody is turned away
    assert report.rss_windows() is not None and report.memory_steady(), report.summary()


def test_a_full_queue_says_busy_try_again_and_nothing_else_fails(tmp_path, pairs):
    """A queue of 2 for 16 clients: the surplus is told to come back; every other request is served."""
    with running_app(tmp_path / "app", INPAINT_QUEUE_SIZE="2") as app:
        report = run_load(app, pairs, clients=CLIENTS, requests=60, seconds=300)
        alive = app.alive()
    print("\n" + report.summary())
    assert alive
    assert not report.failures(), report.summary()
    assert report.count("busy") > 0 and report.count("ok") > 0, report.summary()
    busy = next(o.error for o in report.outcomes if o.kind == "busy")
    assert "try again" in busy.lower(), busy
