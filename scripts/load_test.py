"""Bounded load test of the studio's ``/inpaint`` API: concurrent clients, loopback only, stops by itself.

    python scripts/load_test.py                  # 16 clients, 200 requests (what CI runs, about a minute)
    python scripts/load_test.py --minutes 3      # the long form: as many requests as 3 minutes allow
    python scripts/load_test.py --queue-size 4   # a small queue: refused requests must say "busy, try again"

It starts its own app (``python app.py``: offline, on a free 127.0.0.1 port, with private
temp folders it deletes afterwards), sends small evalset photos (512 px, the Telea model,
so it measures the server rather than an inpainter) from every client in a loop, samples
the server's resident memory after each request, and prints throughput, latency
percentiles and memory. Exit status 1 when a request failed for any reason other than an
explicit "queue is full, try again", or when memory kept growing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from tests.server import AppProcess, start_app  # noqa: E402

EVALSET = REPO.parent / "shared" / "evalset"
BUSY = "queue is full"  # gradio_client's QueueError: "Queue is full! Please try again."
STEADY_WINDOW = 50  # requests per window compared for memory growth
STEADY_TOLERANCE_MB = 40.0  # allocator noise; a leak of ~1 MB per request shows well above it


@dataclass
class Outcome:
    """One request as a client saw it."""

    started: float  # s since the test began
    seconds: float
    kind: str  # "ok", "busy" or "failed"
    error: str = ""
    rss_mb: float | None = None  # the server's RSS right after this request


@dataclass
class Report:
    clients: int
    wall_seconds: float
    outcomes: list[Outcome] = field(default_factory=list)
    rss_start_mb: float | None = None
    rss_end_mb: float | None = None
    temp_growth_mb: float | None = None

    def count(self, kind: str) -> int:
        return sum(o.kind == kind for o in self.outcomes)

    @property
    def throughput(self) -> float:
        """Successful requests per second over the whole run."""
        return self.count("ok") / self.wall_seconds if self.wall_seconds else 0.0

    def latency(self, q: float) -> float:
        """The q-quantile (0..1) of successful requests' latency, in seconds."""
        values = sorted(o.seconds for o in self.outcomes if o.kind == "ok")
        if not values:
            return float("nan")
        return values[min(len(values) - 1, round(q * (len(values) - 1)))]

    def rss_series(self) -> list[float]:
        return [o.rss_mb for o in sorted(self.outcomes, key=lambda o: o.started + o.seconds) if o.rss_mb is not None]

    def rss_windows(self) -> tuple[float, float] | None:
        """Median RSS of requests 50-100 (warmed up) and of the last 50, when there are enough."""
        series = self.rss_series()
        if len(series) < 3 * STEADY_WINDOW:
            return None
        return (statistics.median(series[STEADY_WINDOW:2 * STEADY_WINDOW]),
                statistics.median(series[-STEADY_WINDOW:]))

    def memory_steady(self) -> bool:
        windows = self.rss_windows()
        if windows is None:
            return True  # too short to tell; the long form and CI's 200 requests are long enough
        early, late = windows
        return late - early <= max(STEADY_TOLERANCE_MB, 0.05 * early)

    def failures(self) -> list[str]:
        return [o.error for o in self.outcomes if o.kind == "failed"]

    def ok(self) -> bool:
        return not self.failures() and self.memory_steady()

    def summary(self) -> str:
        windows = self.rss_windows()
        peak = max(self.rss_series(), default=None)
        lines = [
            f"clients {self.clients}, {len(self.outcomes)} requests in {self.wall_seconds:.1f} s: "
            f"{self.count('ok')} ok, {self.count('busy')} busy (queue full), {self.count('failed')} failed",
            f"throughput {self.throughput:.2f} req/s; latency p50 {self.latency(0.5):.2f} s, "
            f"p90 {self.latency(0.9):.2f} s, p99 {self.latency(0.99):.2f} s, max {self.latency(1.0):.2f} s",
            f"server RSS: start {_mb(self.rss_start_mb)}, end {_mb(self.rss_end_mb)}, max {_mb(peak)}"
            + (f"; median of requests 50-100 {windows[0]:.0f} MB, of the last 50 {windows[1]:.0f} MB"
               if windows else ""),
        ]
        if self.temp_growth_mb is not None:
            lines.append(f"temp folder grew by {self.temp_growth_mb:.0f} MB "
                         f"({self.temp_growth_mb / max(self.count('ok'), 1):.2f} MB per result, kept 24 h)")
        lines.append("memory steady" if self.memory_steady() else "MEMORY GREW")
        lines += [f"failure: {error}" for error in self.failures()[:10]]
        return "\n".join(lines)


def _mb(value: float | None) -> str:
    return f"{value:.0f} MB" if value is not None else "n/a"


def workload(workdir: Path, count: int = 16) -> list[tuple[Path, Path]]:
    """(photo, mask) pairs: evalset 512 px photos with their medium masks, else synthetic ones."""
    images = sorted((EVALSET / "images").glob("*.png"))[:count]
    pairs = [(image, EVALSET / "masks" / "medium" / image.name) for image in images]
    pairs = [(image, mask) for image, mask in pairs if mask.is_file()]
    return pairs or _synthetic_pairs(workdir, count)


def _synthetic_pairs(workdir: Path, count: int) -> list[tuple[Path, Path]]:
    import numpy as np
    from PIL import Image

    from tests.helpers import box_hole, textured

    folder = workdir / "inputs"
    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for i in range(count):
        Image.fromarray(textured(512, 512, seed=i)).save(folder / f"p{i}.png")
        hole = box_hole(512, 512, 200, 260, 150 + i, 300 + i)
        Image.fromarray(hole.astype(np.uint8) * 255).save(folder / f"m{i}.png")
        pairs.append((folder / f"p{i}.png", folder / f"m{i}.png"))
    return pairs


class Budget:
    """Requests left to send, shared by the clients; ends at a count or a deadline."""

    def __init__(self, requests: int | None, deadline: float) -> None:
        self.left, self.deadline, self.lock = requests, deadline, threading.Lock()
        self.sent = 0

    def take(self) -> int | None:
        """The next request's number, or None when the test is over."""
        with self.lock:
            if time.monotonic() >= self.deadline or (self.left is not None and self.sent >= self.left):
                return None
            self.sent += 1
            return self.sent - 1


def _client_loop(app: AppProcess, pairs: list[tuple[Path, Path]], budget: Budget, model: str, t0: float,
                 outcomes: list[Outcome], lock: threading.Lock) -> None:
    from gradio_client import Client, handle_file

    client = Client(app.url, verbose=False, download_files=False)
    while (number := budget.take()) is not None:
        image, mask = pairs[number % len(pairs)]
        started = time.perf_counter()
        outcome = Outcome(started - t0, 0.0, "ok")
        try:
            files, info = client.predict(handle_file(str(image)), handle_file(str(mask)), [model], 1, 0, "crop", 128,
                                         8, 8, None, api_name="/inpaint")
            if len(files) != 1 or info[0]["model"] != model:
                outcome.kind, outcome.error = "failed", f"unexpected answer: {files!r} {info!r}"
        except Exception as exc:  # noqa: BLE001 - every failure is counted, none may stop the test
            busy = BUSY in str(exc).lower()
            outcome.kind, outcome.error = ("busy" if busy else "failed"), f"{type(exc).__name__}: {exc}"
        outcome.seconds = time.perf_counter() - started
        outcome.rss_mb = _rss(app)
        with lock:
            outcomes.append(outcome)
        if outcome.kind == "busy":
            time.sleep(0.5)  # what a polite client does with "try again"
    client.close()


def _rss(app: AppProcess) -> float | None:
    try:
        return app.rss_mb()
    except (OSError, RuntimeError):
        return None


def _folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def run_load(app: AppProcess, pairs: list[tuple[Path, Path]], clients: int = 16, requests: int | None = 200,
             seconds: float = 600.0, model: str = "telea", temp: Path | None = None) -> Report:
    """Send requests from ``clients`` threads until ``requests`` were sent or ``seconds`` passed."""
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    t0 = time.perf_counter()
    budget = Budget(requests, time.monotonic() + seconds)
    temp_before = _folder_mb(temp) if temp else None
    report = Report(clients, 0.0, outcomes, rss_start_mb=_rss(app))
    threads = [threading.Thread(target=_client_loop, args=(app, pairs, budget, model, t0, outcomes, lock),
                                daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    report.wall_seconds = time.perf_counter() - t0
    report.rss_end_mb = _rss(app)
    if temp is not None:
        report.temp_growth_mb = _folder_mb(temp) - temp_before
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=None, help="stop after this many (default 200)")
    parser.add_argument("--minutes", type=float, default=None, help="stop after this long (the long form)")
    parser.add_argument("--model", default="telea")
    parser.add_argument("--queue-size", type=int, default=None, help="INPAINT_QUEUE_SIZE of the app (default 32)")
    parser.add_argument("--concurrency", type=int, default=None, help="INPAINT_CONCURRENCY of the app (default 1)")
    parser.add_argument("--json", type=Path, default=None, help="also write every request's outcome here")
    args = parser.parse_args(argv)
    requests = args.requests if args.requests is not None else (None if args.minutes else 200)
    seconds = args.minutes * 60 if args.minutes else 600.0
    workdir = Path(tempfile.mkdtemp(prefix="inpaint-load-"))
    settings = {"INPAINT_QUEUE_SIZE": args.queue_size, "INPAINT_CONCURRENCY": args.concurrency}
    env = {k: str(v) for k, v in settings.items() if v is not None}
    try:
        app = start_app(workdir / "app", **env)
        try:
            report = run_load(app, workload(workdir), args.clients, requests, seconds, args.model,
                              temp=workdir / "app" / "gradio-tmp")
        finally:
            app.stop()
        log = app.log_text()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(report.summary())
    if report.failures():
        print("--- end of the server log ---\n" + log[-6000:])
    if args.json:
        args.json.write_text(json.dumps([asdict(o) for o in report.outcomes], indent=1))
    return 0 if report.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
