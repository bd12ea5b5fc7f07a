"""The Hugging Face Hub's I/O and nothing else: settings, one file's download, its deadline and progress.

Which weights a model uses is decided in :mod:`app.weights.resolve` (no network); getting
a model's Hub files (cache or download, verified) is :mod:`app.weights.fetch`; checking
them is :mod:`app.weights.verify`. This module only talks to the Hub:

- :func:`settings` reads ``HF_ENDPOINT``/``HF_HOME``/``HF_HUB_OFFLINE`` per call;
- :func:`cached_file` looks a file up in huggingface_hub's cache (no network call at all);
- :func:`download_file` probes, then downloads one file with :func:`huggingface_hub.hf_hub_download`
  (its cache, ``HF_HOME``, ``HF_ENDPOINT``), reporting to a :func:`progress_bar`;
- the unreachable memo: after a failed connection the Hub counts as unreachable for a while.

Every download (the probe and the file here, the authors' archives of :mod:`app.weights.archive`)
runs through :func:`within_deadline`, because huggingface_hub's own timeouts are per read and a Hub
that drips a byte every few seconds never trips them. Two settings, read at each download:

- ``INPAINT_DOWNLOAD_TIMEOUT`` (seconds, default 900): the overall deadline of one file. LaMa's
  official archive (381 MB, the largest download) fits at 0.42 MB/s (3.4 Mbit/s); a Space
  downloads it in well under a minute. Raise it on a slower line (``inf`` = no deadline).
- ``INPAINT_DOWNLOAD_STALL`` (seconds, default 30): a download that received less than 64 KB in
  that long is stalled (at that rate even the smallest model would take hours).

When either trips the caller gets :class:`DownloadTooSlowError` at once, the transfer is stopped at
its next chunk, and nothing partial is used (huggingface_hub discards its temporary file).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import httpx2
from huggingface_hub import (
    HfApi,
    constants,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    set_client_factory,
    try_to_load_from_cache,
)
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled
from huggingface_hub.utils import tqdm as hf_tqdm
from huggingface_hub.utils._http import default_client_factory  # not re-exported; we extend, not replace, it
from tqdm.auto import tqdm

from app.errors import WeightsError
from app.specs import Progress as Progress  # the one progress type, also read as hub.Progress

T = TypeVar("T")

#: After a failed connection, availability() says "unreachable" for this long instead of
#: letting every click wait for a timeout.
UNREACHABLE_SECONDS = 60.0
PROBE_TIMEOUT = 10.0  # seconds for the first answer of the Hub
DOWNLOAD_TIMEOUT_ENV = "INPAINT_DOWNLOAD_TIMEOUT"
DOWNLOAD_STALL_ENV = "INPAINT_DOWNLOAD_STALL"
DEFAULT_DOWNLOAD_TIMEOUT = 900.0  # seconds per file; see the module docstring
DEFAULT_DOWNLOAD_STALL = 30.0  # seconds
STALL_MIN_BYTES = 64 << 10  # fewer bytes than this within INPAINT_DOWNLOAD_STALL seconds = stalled
_POLL_SECONDS = 0.1  # how often the waiting caller looks at the budget


@dataclass(frozen=True)
class HubSettings:
    endpoint: str
    cache_dir: str
    offline: bool
    home: str = constants.HF_HOME  # HF_HOME: what the app converts itself lives beside the hub cache


@dataclass(frozen=True)
class HubFile:
    """One file of a Hub repo at a revision: what the cache lookup and the download take."""

    repo_id: str
    name: str
    revision: str

    @property
    def where(self) -> str:
        return f"{self.repo_id}@{self.revision}"


def _truthy(value: str) -> bool:
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def settings() -> HubSettings:
    """The ``HF_*`` settings, read now rather than at import time.

    ``huggingface_hub.constants`` freezes the environment when the library is imported;
    we read it per call and hand ``endpoint``/``cache_dir``/``local_files_only`` to
    huggingface_hub explicitly, so a process that changes them later (a notebook, the
    tests) gets exactly what it asked for. Unset variables fall back to the constants.
    """
    env = os.environ
    home = env.get("HF_HOME")
    cache = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    cache = cache or (os.path.join(home, "hub") if home else constants.HF_HUB_CACHE)
    offline = env.get("HF_HUB_OFFLINE")
    return HubSettings(
        endpoint=(env.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/"),
        cache_dir=os.path.expanduser(os.path.expandvars(cache)),
        offline=_truthy(offline) if offline is not None else constants.is_offline_mode(),
        home=os.path.expanduser(os.path.expandvars(home or constants.HF_HOME)),
    )


# ------------------------------------------------------------------- unreachable memo

_unreachable: dict[str, tuple[float, str]] = {}
_unreachable_lock = threading.Lock()


def mark_unreachable(endpoint: str, error: BaseException) -> None:
    with _unreachable_lock:
        _unreachable[endpoint] = (time.monotonic() + UNREACHABLE_SECONDS, f"{type(error).__name__}: {error}")


def unreachable_reason(endpoint: str) -> str:
    with _unreachable_lock:
        until, error = _unreachable.get(endpoint, (0.0, ""))
    if time.monotonic() >= until:
        return ""
    return f"the Hub ({endpoint}) could not be reached ({error.splitlines()[0][:200]})"


def forget_unreachable() -> None:
    """Let the next availability check assume the Hub is back (e.g. after a retry button)."""
    with _unreachable_lock:
        _unreachable.clear()


# --------------------------------------------------------------------------- deadline


class DownloadTooSlowError(WeightsError):
    """A download ran past its overall deadline or stalled; it was stopped and nothing of it is used."""


class _BudgetSpent(httpx2.ReadError):
    """Raised in the download's own thread to stop it at its next request or chunk.

    A read *error* on purpose, not ``ReadTimeout``: huggingface_hub's ``http_get`` resumes a
    ``TimeoutException`` five times (1 s apart, holding the file's cache lock), whereas a read
    error ends ``hf_hub_download`` at once and it deletes its temporary file.
    """


class DownloadBudget:
    """The overall deadline and the stall rule of one file's download, shared by caller and worker.

    The first reason it is spent sticks (``failure``): the caller reports it, and every later
    request, chunk or progress update of the worker sees it and stops (the cancel flag).
    """

    def __init__(self, what: str, timeout: float, stall: float) -> None:
        self.what, self.timeout, self.stall = what, timeout, stall
        self.started = time.monotonic()
        self.network = 0  # body bytes seen by the client hooks (every response, resumes included)
        self.reported = 0  # bytes the progress bar was told of (Xet transfers bypass httpx2)
        self.failure = ""  # "", "deadline", "stall" or "cancelled"
        self.spent_at = (0.0, 0)  # (seconds, bytes) when it was spent, for the message
        self._window = (self.started, 0)  # start of the current stall window, bytes received then
        self._lock = threading.Lock()

    @property
    def received(self) -> int:
        return max(self.network, self.reported)

    def add(self, n: int) -> None:
        """``n`` more bytes came off the network; stop here if the budget is spent."""
        with self._lock:
            self.network += n
        self.check()

    def report(self, total: int) -> None:
        """The progress bar's count so far; stop here if the budget is spent."""
        with self._lock:
            self.reported = max(self.reported, total)
        self.check()

    def check(self) -> None:
        if self.verdict():
            raise _BudgetSpent(f"download stopped: {self.failure}")

    def verdict(self) -> str:
        """"" while within budget, else why not."""
        with self._lock:
            if not self.failure:
                self._spend(self._judge(time.monotonic()))
            return self.failure

    def cancel(self) -> None:
        """The caller no longer waits (it gave up, or was interrupted): the worker stops too."""
        with self._lock:
            if not self.failure:
                self._spend("cancelled")

    def _judge(self, now: float) -> str:
        if now - self.started > self.timeout:
            return "deadline"
        since, base = self._window
        if self.received - base >= STALL_MIN_BYTES:
            self._window = (now, self.received)
        elif now - since > self.stall:
            return "stall"
        return ""

    def _spend(self, failure: str) -> None:
        if failure:
            self.failure, self.spent_at = failure, (time.monotonic() - self.started, self.received)

    def message(self) -> str:
        seconds, received = self.spent_at
        got = f"{_amount(received)} arrived in {seconds:.0f} s"
        if self.failure == "stall":
            return (f"Downloading {self.what} stalled: {got}, less than {STALL_MIN_BYTES >> 10} KB of it in the last "
                    f"{self.stall:g} s ({DOWNLOAD_STALL_ENV}). The download was stopped and nothing of it is used. "
                    "Check the connection (or the Hub's status) and try again.")
        return (f"Downloading {self.what} did not finish within {self.timeout:g} s ({DOWNLOAD_TIMEOUT_ENV}): {got}. "
                "The download was stopped and nothing of it is used. Try again later or on a faster connection, "
                f"or allow more time with {DOWNLOAD_TIMEOUT_ENV}=<seconds>.")


def _amount(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n} bytes"


def _seconds(name: str, default: float) -> float:
    """A positive number of seconds from the environment, read per download (tests and users change it)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise WeightsError(f"{name}={raw!r} is not a number of seconds above 0; unset it for the default "
                           f"({default:g} s).")
    return value


_current: contextvars.ContextVar[DownloadBudget | None] = contextvars.ContextVar("download_budget", default=None)
#: A check every request of this context must pass, redirects included (see :func:`hop_rule`).
_hop_rule: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar("hop_rule", default=None)
_hooks_installed = False
_hooks_lock = threading.Lock()


def within_deadline(what: str, download: Callable[[], T]) -> T:
    """``download()`` (huggingface_hub calls for one file) under an overall deadline and a stall rule.

    It runs in a worker thread whose requests, response bodies and progress bars check a
    :class:`DownloadBudget`; the caller waits at most until the budget is spent and then gets
    :class:`DownloadTooSlowError` at once (``what`` names the file in it), without waiting for
    huggingface_hub's retries. Other threads' downloads have budgets of their own.
    """
    _install_client_hooks()
    budget = DownloadBudget(what, _seconds(DOWNLOAD_TIMEOUT_ENV, DEFAULT_DOWNLOAD_TIMEOUT),
                            _seconds(DOWNLOAD_STALL_ENV, DEFAULT_DOWNLOAD_STALL))
    future: Future[T] = Future()
    # The caller's context goes along: a Gradio progress bar finds its event through it.
    context = contextvars.copy_context()
    threading.Thread(target=context.run, args=(_run_budgeted, budget, download, future), name=f"download {what}",
                     daemon=True).start()
    try:
        return _wait(budget, future)
    except DownloadTooSlowError:
        raise
    except Exception as exc:  # the worker may notice the spent budget first: same message
        if budget.failure in ("deadline", "stall"):
            raise DownloadTooSlowError(budget.message()) from exc
        raise
    finally:
        budget.cancel()  # an abandoned worker stops at its next chunk (no-op once it finished)


def _wait(budget: DownloadBudget, future: Future[T]) -> T:
    while not wait_for([future], timeout=_POLL_SECONDS).done:
        if budget.verdict():  # also catches a read blocked on a silent socket, which no chunk would
            raise DownloadTooSlowError(budget.message())
    return future.result()


def _run_budgeted(budget: DownloadBudget, download: Callable[[], T], future: Future[T]) -> None:
    """The worker: ``budget`` is current for every request and progress bar made in this thread."""
    _current.set(budget)  # a copy of the caller's context, private to this thread: nothing to reset
    try:
        future.set_result(download())
    except BaseException as exc:
        future.set_exception(exc)


def _install_client_hooks() -> None:
    """Give huggingface_hub's shared httpx2 client the budget hooks (once per process)."""
    global _hooks_installed
    with _hooks_lock:
        if not _hooks_installed:
            set_client_factory(_budgeted_client)
            _hooks_installed = True


def _budgeted_client() -> httpx2.Client:
    """huggingface_hub's default client plus two hooks that do nothing outside :func:`within_deadline`."""
    client = default_client_factory()
    hooks = client.event_hooks
    client.event_hooks = {"request": [*hooks["request"], _check_request],
                          "response": [*hooks["response"], _watch_response]}
    return client


def _check_request(request: httpx2.Request) -> None:
    """A spent budget stops huggingface_hub's retries and resumes before they connect; a hop rule sees every URL.

    httpx2 calls request hooks before each request it sends, the redirects it follows included, so
    a rule raising here stops a redirect before anything connects to its target.
    """
    budget = _current.get()
    if budget is not None:
        budget.check()
    rule = _hop_rule.get()
    if rule is not None:
        rule(str(request.url))


@contextlib.contextmanager
def hop_rule(rule: Callable[[str], None]) -> Iterator[None]:
    """Every request made in this context (and in :func:`within_deadline` workers started in it) is shown to ``rule``.

    ``rule(url)`` raises to refuse a request: the first one and, above all, each redirect, which
    huggingface_hub's client follows by itself. Used for the authors' HTTPS files, whose server
    must not send a download to another host or scheme.
    """
    _install_client_hooks()
    token = _hop_rule.set(rule)
    try:
        yield
    finally:
        _hop_rule.reset(token)


def _watch_response(response: httpx2.Response) -> None:
    """A budgeted download's body is checked at every raw chunk the socket delivers."""
    budget = _current.get()
    if budget is not None:
        response.stream = _WatchedStream(response.stream, budget)


class _WatchedStream(httpx2.SyncByteStream):
    """A response body that counts each raw chunk against its budget (and stops once it is spent)."""

    def __init__(self, stream: httpx2.SyncByteStream, budget: DownloadBudget) -> None:
        self._stream, self._budget = stream, budget

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._stream:
            self._budget.add(len(chunk))
            yield chunk

    def close(self) -> None:
        self._stream.close()

    @property
    def elapsed(self) -> timedelta | None:  # httpx2's Response.elapsed reads it from its stream
        return getattr(self._stream, "elapsed", None)


# --------------------------------------------------------------------------- download


def progress_bar(progress: Progress | None, label: str) -> type[tqdm]:
    """A tqdm class for huggingface_hub's ``tqdm_class`` that reports to ``progress`` and checks the budget.

    huggingface_hub makes one bar per file and calls ``update(n_bytes)`` (plain HTTP and
    Xet alike); we turn that into ``progress(fraction, "Downloading ... 12/86 MB")`` for
    gr.Progress or any callback (without one, huggingface_hub's usual terminal bar is drawn).
    ``update_transfer`` makes the Xet path use this single bar for network bytes too (the fraction
    counts bytes on disk). Xet bytes never pass through httpx2, so the bar is where a Xet download
    meets the :class:`DownloadBudget` of the thread that created it.
    """

    class CallbackBar(hf_tqdm):
        def __init__(self, *args, **kwargs) -> None:
            if progress is not None:
                kwargs["disable"] = True  # silent: the callback is the display
            super().__init__(*args, **kwargs)
            self.done = kwargs.get("initial") or 0
            self.sent = 0
            self.budget = _current.get()  # Xet may call update() from threads of its own

        def update(self, n: float | None = 1) -> bool | None:
            self.done += n or 0
            self._account()
            if progress is not None:
                size = self.total or 0  # Xet may learn the size after creating the bar
                fraction = min(self.done / size, 1.0) if size else 0.0
                progress(fraction, f"Downloading {label}: {self.done / 1e6:.0f}"
                         + (f"/{size / 1e6:.0f}" if size else "") + " MB")
            return super().update(n)

        def update_transfer(self, n: float | None = 1) -> None:
            self.sent += n or 0
            self._account()

        def set_transfer_postfix_str(self, postfix: str, refresh: bool = False) -> None:
            pass

        def _account(self) -> None:
            if self.budget is not None:
                self.budget.report(int(max(self.done, self.sent)))

    return CallbackBar



def cached_file(file: HubFile, hub: HubSettings) -> Path | None:
    """``file`` in huggingface_hub's cache at its revision, or None (no network call)."""
    path = try_to_load_from_cache(file.repo_id, file.name, cache_dir=hub.cache_dir, revision=file.revision)
    return Path(path) if isinstance(path, str) else None


def download_file(file: HubFile, label: str, hub: HubSettings, progress: Progress | None = None,
                  force: bool = False) -> Path:
    """Probe, then download ``file`` under one deadline (per file, whatever step is slow).

    ``label`` names the model in messages. huggingface_hub's errors pass through (the caller
    knows what they mean for its model); a transfer cut for good is a :class:`WeightsError`.
    """
    return within_deadline(f"{file.name} of {label} from {file.where}",
                           lambda: _probe_then_transfer(file, label, hub, progress, force))


def _probe_then_transfer(file: HubFile, label: str, hub: HubSettings, progress: Progress | None,
                         force: bool) -> Path:
    _probe(file, hub)
    return _transfer(file, label, hub, progress, force)


def _transfer(file: HubFile, label: str, hub: HubSettings, progress: Progress | None, force: bool) -> Path:
    """hf_hub_download of one file, once the Hub has answered the probe.

    huggingface_hub resumes a cut transfer by itself a few times; when the connection stays
    broken it discards the partial file and raises a bare network error. Say that the download
    was interrupted (the Hub was there a moment ago) instead of calling the Hub unreachable.
    """
    try:
        return Path(hf_hub_download(
            file.repo_id, file.name, revision=file.revision, cache_dir=hub.cache_dir,
            endpoint=hub.endpoint, local_files_only=hub.offline, force_download=force,
            tqdm_class=progress_bar(progress, file.name)))
    except (HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled):
        raise
    except Exception as exc:  # connection lost mid-file (httpx), or a size mismatch after one (OSError)
        raise WeightsError(
            f"Downloading {file.name} of {label} from {file.where} was interrupted and could not be resumed "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else 'connection lost'}). "
            "The partial file was discarded and nothing was loaded; check the connection and run again.") from exc


def branch_commit(repo_id: str, label: str, hub: HubSettings) -> str:
    """The commit ``repo_id``'s default branch is at now (one API call, under the download deadline).

    A repo whose commit nobody recorded is pinned to this on its first download: every file is then
    fetched at that commit, never at the branch (which may move between two files, or later).
    huggingface_hub's errors pass through, as :func:`download_file`'s do.
    """
    def ask() -> str:
        sha = HfApi(endpoint=hub.endpoint).model_info(repo_id, timeout=PROBE_TIMEOUT).sha or ""
        if not re.fullmatch(r"[0-9a-f]{40}", sha):
            raise WeightsError(f"The Hub ({hub.endpoint}) named no commit for {repo_id}'s default branch "
                               f"({sha!r}); {label} was not downloaded.")
        return sha

    return within_deadline(f"the current commit of {repo_id} for {label}", ask)


def _probe(file: HubFile, hub: HubSettings) -> None:
    """One HEAD without retries before the download.

    hf_hub_download retries a refused connection for ~25 s before giving up; a user who
    clicked "Inpaint" without network should hear about it in a second instead.
    """
    url = hf_hub_url(file.repo_id, file.name, revision=file.revision, endpoint=hub.endpoint)
    get_hf_file_metadata(url, timeout=PROBE_TIMEOUT, endpoint=hub.endpoint)

