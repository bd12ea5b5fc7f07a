"""The real app as a separate process (``python app.py``) on a free loopback port.

One place for starting it, because the end-to-end, browser, bad-input and load tests
(and ``scripts/load_test.py``) all need the same thing: the app exactly as a user runs
it, offline, with its own checkpoints and temp folders, that stops when they are done.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 120.0  # s: importing torch + gradio on a cold, busy CI machine


def free_port() -> int:
    """A port nobody listens on right now (loopback only)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AppProcess:
    """A running ``python app.py``: its URL, process and log file."""

    url: str
    proc: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_mb(self) -> float:
        """Resident memory of the server process (Linux ``/proc``), in MB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS in /proc status")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.is_file() else ""

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGINT)  # lets Gradio shut down cleanly
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def app_env(workdir: Path, port: int, checkpoints: Path | None = None, **extra: str) -> dict[str, str]:
    """Offline, loopback, private checkpoints and temp folders (nothing left in /tmp)."""
    temp = workdir / "gradio-tmp"
    temp.mkdir(parents=True, exist_ok=True)
    env = os.environ | {
        "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1", "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(temp), "TMPDIR": str(temp),
        "INPAINT_CHECKPOINTS": str(checkpoints or workdir / "checkpoints"), "PYTHONUNBUFFERED": "1",
    }
    return env | extra


def start_app(workdir: Path, checkpoints: Path | None = None, timeout: float = START_TIMEOUT,
              **extra_env: str) -> AppProcess:
    """Start the app and wait until it answers HTTP (or raise with its log)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / "app.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                env=app_env(workdir, port, checkpoints, **extra_env))
    app = AppProcess(f"http://127.0.0.1:{port}/", proc, log)
    _wait_until_up(app, timeout)
    return app


def _wait_until_up(app: AppProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not app.alive():
            raise RuntimeError(f"the app exited with {app.proc.returncode}:\n{app.log_text()}")
        try:
            with urllib.request.urlopen(app.url + "config", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    app.stop()
    raise RuntimeError(f"the app did not answer within {timeout:.0f} s:\n{app.log_text()}")


@contextmanager
def running_app(workdir: Path, checkpoints: Path | None = None, **extra_env: str) -> Iterator[AppProcess]:
    """``with running_app(tmp) as app:`` — always stopped afterwards."""
    app = start_app(workdir, checkpoints, **extra_env)
    try:
        yield app
    finally:
        app.stop()
