"""Every Hub download has an overall deadline and a stall rule, and a stopped one frees its caller (issue 13).

The real huggingface_hub download path against the loopback Hub of :mod:`tests.hub_server`, made
to drip (a few bytes every fraction of a second: never silent long enough for huggingface_hub's
per-read timeout, and minutes or hours from done) or to stall (half the file, then silence).
``INPAINT_DOWNLOAD_TIMEOUT``/``INPAINT_DOWNLOAD_STALL`` are set to seconds; every test prints what
it measured (``-s`` shows it) and asserts an upper bound with slack for a slow machine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.errors import ModelUnavailableError, WeightsError
from app.weights import hub
from app.weights.archive import fetch_archive
from app.weights.fetch import fetch
from app.weights.resolve import locate
from tests.archives import official_tiny, zip_of
from tests.helpers import wait_until
from tests.hub_weights import FILE, assert_same, read, sha, spec_for, tiny_bytes
from tests.paths import REPO

pytestmark = pytest.mark.slow  # each waits out real deadlines and stalls (seconds): full run only

SLOW = "testns/slow"
DRIP = (64, 0.1)  # 640 bytes/s: 43 MB would take 19 hours; far below the stall threshold in 30 s too
SLACK = 15.0  # upper bound for "promptly" on a slow CI machine (the limits below are 2-3 s)


def timed(call: Callable[[], object], give_up: float = SLACK + 5) -> tuple[BaseException | None, float]:
    """(the exception ``call`` raised or None, seconds it took).

    Waits at most ``give_up`` seconds (then: a TimeoutError), so a broken deadline fails the test
    instead of hanging it for the hours a drip takes.
    """
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            outcome.append(None)
        except Exception as exc:
            outcome.append(exc)

    start = time.monotonic()
    caller = threading.Thread(target=run, name="test caller", daemon=True)
    caller.start()
    caller.join(give_up)
    seconds = time.monotonic() - start
    return (outcome[0] if outcome else TimeoutError(f"still running after {give_up:g} s")), seconds


def download_threads(repo: str) -> list[threading.Thread]:
    """Worker threads of :func:`hub.within_deadline` still downloading from ``repo``."""
    return [t for t in threading.enumerate() if t.name.startswith("download ") and f" from {repo}@" in t.name]




@pytest.fixture
def limits(monkeypatch) -> Callable[..., None]:
    """Set the two limits (seconds) for this test."""

    def set_limits(timeout: float = 900, stall: float = 30) -> None:
        monkeypatch.setenv(hub.DOWNLOAD_TIMEOUT_ENV, str(timeout))
        monkeypatch.setenv(hub.DOWNLOAD_STALL_ENV, str(stall))

    return set_limits


@pytest.fixture
def silent_hub(monkeypatch) -> Iterator[str]:
    """An endpoint that accepts connections and never answers a byte (not even headers)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{listener.getsockname()[1]}")
    yield os.environ["HF_ENDPOINT"]
    listener.close()


# ------------------------------------------------------------------------- deadline


def test_dripping_hub_hits_the_deadline_then_a_healthy_one_works(server, hf_env, synthetic, limits):
    state1, data1 = synthetic[1]
    server.add(SLOW, {FILE: data1}, refs=("v1",))
    server.drip[(SLOW, FILE)] = DRIP
    spec = spec_for(SLOW, sha(data1))
    limits(timeout=3)

    error, seconds = timed(lambda: fetch(spec))
    print(f"\ndrip: stopped after {seconds:.2f} s (deadline 3 s)")
    assert isinstance(error, hub.DownloadTooSlowError), error
    assert 2.9 <= seconds < SLACK
    message = str(error)
    assert f"{FILE} of {spec.name} from {SLOW}@v1 did not finish within 3 s (INPAINT_DOWNLOAD_TIMEOUT)" in message
    assert "arrived in 3 s" in message and "nothing of it is used" in message and "Traceback" not in message
    assert wait_until(lambda: not download_threads(SLOW), 2.0), "the abandoned transfer must stop at its next chunk"
    assert server.paths("GET") == [f"/{SLOW}/resolve/v1/{FILE}"], "no retries or resumes after the deadline"
    assert not list(hf_env.rglob(FILE)), "no partial file may pass for the weights"
    assert not list(hf_env.rglob("*.incomplete")), "the stopped transfer's temporary file is gone"
    assert locate(spec).status == "remote"  # a slow Hub is not remembered as unreachable

    del server.drip[(SLOW, FILE)]  # the Hub is healthy again
    error, seconds = timed(lambda: assert_same(read(fetch(spec)[FILE]), state1))
    print(f"drip: then a healthy download in {seconds:.2f} s")
    assert error is None


def test_silent_hub_is_covered_from_the_first_request(hf_env, silent_hub, limits):
    """No byte ever arrives (the probe's HEAD hangs): the caller's own wait enforces the deadline."""
    limits(timeout=2)
    error, seconds = timed(lambda: fetch(spec_for("testns/silent")))
    print(f"\nsilent Hub: stopped after {seconds:.2f} s (deadline 2 s; the probe's own timeout is 10 s)")
    assert isinstance(error, hub.DownloadTooSlowError), error
    assert 1.9 <= seconds < min(SLACK, hub.PROBE_TIMEOUT)
    assert "0 bytes arrived in 2 s" in str(error)


# ---------------------------------------------------------------------------- stall


def test_stalled_download_is_stopped_then_the_next_try_starts_clean(server, hf_env, synthetic, limits):
    state1, data1 = synthetic[1]
    server.add(SLOW, {FILE: data1}, refs=("v1",))
    server.stall.add((SLOW, FILE))  # half the file, then silence
    spec = spec_for(SLOW, sha(data1))
    limits(timeout=600, stall=2)

    error, seconds = timed(lambda: fetch(spec))
    print(f"\nstall: stopped after {seconds:.2f} s (stall window 2 s, deadline 600 s)")
    assert isinstance(error, hub.DownloadTooSlowError), error
    assert 2.0 <= seconds < SLACK
    message = str(error)
    assert f"{FILE} of {spec.name} from {SLOW}@v1 stalled: {len(data1) // 2 / 1e6:.1f} MB arrived in" in message
    assert "less than 64 KB of it in the last 2 s (INPAINT_DOWNLOAD_STALL)" in message
    assert not list(hf_env.rglob(FILE))

    server.stall.clear()  # the network is back; the stalled connection is closed
    error, seconds = timed(lambda: assert_same(read(fetch(spec)[FILE]), state1))
    print(f"stall: then a clean download in {seconds:.2f} s")
    assert error is None
    assert server.requests[-1].range is None, "the retry starts clean, from byte 0"


def test_a_steady_fast_download_is_not_mistaken_for_a_stall(server, hf_env, synthetic, limits):
    """Tight limits, a healthy Hub: the 43 MB file arrives, verified, with progress reported."""
    state1, data1 = synthetic[1]
    server.add(SLOW, {FILE: data1}, refs=("v1",))
    limits(timeout=60, stall=1)
    calls: list[tuple[float, str]] = []
    error, seconds = timed(lambda: assert_same(
        read(fetch(spec_for(SLOW, sha(data1)), lambda f, m: calls.append((f, m)))[FILE]), state1))
    print(f"\nhealthy: 43 MB in {seconds:.2f} s under a 1 s stall window")
    assert error is None
    assert any(m.startswith(f"Downloading {FILE}: ") for _, m in calls) and max(f for f, _ in calls) == 1.0


# ------------------------------------------------------------- other visitors, Xet


@pytest.mark.slow
def test_a_dripping_download_does_not_block_another_thread(server, hf_env, synthetic, limits):
    """The library half of "the UI stays responsive": one visitor's slow model, another's quick one."""
    _, data1 = synthetic[1]
    server.add(SLOW, {FILE: data1}, refs=("v1",))
    server.drip[(SLOW, FILE)] = DRIP
    quick = tiny_bytes(0.25)
    server.add("testns/quick", {FILE: quick}, refs=("v1",))
    limits(timeout=6)
    slow_result: list[BaseException | None] = []
    visitor = threading.Thread(target=lambda: slow_result.append(timed(lambda: fetch(spec_for(SLOW)))[0]))
    visitor.start()
    assert wait_until(lambda: f"/{SLOW}/resolve/v1/{FILE}" in server.paths("GET"), 5.0)

    error, seconds = timed(lambda: fetch(spec_for("testns/quick", sha(quick), model_id="quick")))
    print(f"\nanother visitor's download took {seconds:.2f} s while the first one was dripping")
    assert error is None and seconds < 2.0
    assert visitor.is_alive(), "the dripping download was still going meanwhile"
    visitor.join(SLACK)
    assert isinstance(slow_result[0], hub.DownloadTooSlowError)


def test_progress_bar_enforces_the_budget_where_httpx_is_not_involved(limits):
    """Xet transfers report through the progress bar only; it stops them once the budget is spent."""
    limits(timeout=2)
    updates = {"after_stop": 0}
    stopped = threading.Event()

    def xet_like_transfer() -> Path:
        bar = hub.progress_bar(None, "model.safetensors")(total=10**9, disable=True)
        try:
            while True:
                bar.update_transfer(1000)
                updates["after_stop"] += stopped.is_set()
                time.sleep(0.05)
        finally:
            stopped.set()

    error, seconds = timed(lambda: hub.within_deadline("model.safetensors (Xet)", xet_like_transfer))
    print(f"\nXet-like transfer: caller freed after {seconds:.2f} s (deadline 2 s)")
    assert isinstance(error, hub.DownloadTooSlowError) and 1.9 <= seconds < SLACK
    assert stopped.wait(1.0), "the transfer stops at its next progress update"
    assert updates["after_stop"] == 0


# ------------------------------------------------------------- archive, CLI, settings


@pytest.mark.slow
def test_official_archive_has_the_same_deadline(server, hf_env, tiny_spec, limits):
    data, _ = official_tiny()
    archive = zip_of({"tiny/models/tiny.pth": data})
    server.add("authors/tiny", {"tiny.zip": archive})
    server.drip[("authors/tiny", "tiny.zip")] = (1, 0.1)  # minutes for this small zip
    limits(timeout=3)

    error, seconds = timed(lambda: fetch_archive(tiny_spec))
    print(f"\narchive: stopped after {seconds:.2f} s (deadline 3 s)")
    assert isinstance(error, (WeightsError, ModelUnavailableError)) and 2.9 <= seconds < SLACK
    assert "tiny.zip from authors/tiny@main did not finish within 3 s (INPAINT_DOWNLOAD_TIMEOUT)" in str(error)

    del server.drip[("authors/tiny", "tiny.zip")]
    assert fetch_archive(tiny_spec).read_bytes() == archive


@pytest.mark.slow
def test_cli_download_exits_nonzero_with_the_message(server, tmp_path):
    server.add("clins/big-lama", {FILE: tiny_bytes(3.0)}, refs=("v1",))
    server.drip[("clins/big-lama", FILE)] = (1, 0.5)
    env = {**os.environ, "HF_ENDPOINT": server.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0",
           "INPAINT_HUB_NAMESPACE": "clins", "INPAINT_CHECKPOINTS": str(tmp_path / "checkpoints"),
           "HF_HUB_DISABLE_PROGRESS_BARS": "1", hub.DOWNLOAD_TIMEOUT_ENV: "3"}
    env.pop("HF_HUB_CACHE", None)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "app", "weights", "download", "lama"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    seconds = time.monotonic() - start
    print(f"\nCLI: exited {done.returncode} after {seconds:.2f} s, Python start-up included (deadline 3 s)")
    assert done.returncode == 1
    assert "error: Downloading model.safetensors of LaMa (big-lama) from clins/big-lama@v1 did not finish " \
           "within 3 s" in done.stderr
    assert "Traceback" not in done.stderr and seconds < 60


def test_a_bad_setting_is_named(hf_env, monkeypatch):
    monkeypatch.setenv(hub.DOWNLOAD_STALL_ENV, "soon")
    with pytest.raises(WeightsError, match="INPAINT_DOWNLOAD_STALL='soon' is not a number of seconds above 0"):
        fetch(spec_for(SLOW))
