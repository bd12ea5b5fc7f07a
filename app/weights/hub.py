"""Weights from the Hugging Face Hub: find, download, verify — and never unpickle.

Where a neural model's weights come from, first hit wins:

1. ``checkpoints/<model-id>/`` — our safetensors or the authors' release files (the user's
   own files always win; they are read by :mod:`app.weights.loader`, pickles safely).
2. huggingface_hub's cache at the registry's pinned revision (no network call at all).
3. a download with :func:`huggingface_hub.hf_hub_download` (its cache, ``HF_HOME``,
   ``HF_ENDPOINT``), unless offline (``HF_HUB_OFFLINE=1``) or the Hub was just unreachable.

Only ``.safetensors`` files are fetched from the Hub. Each one is checked for truncation,
and against the registry's sha256 pin when there is one, after download *and* on cache
hits (memoised by path/size/mtime so a warm start does not re-hash hundreds of MB).
A file that fails is refused, never deleted: it may be the user's, and the message says
exactly which file, which hashes and what to do.

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

import contextvars
import functools
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal, TypeVar

import httpx2
import torch
from huggingface_hub import (
    constants,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    set_client_factory,
    try_to_load_from_cache,
)
from huggingface_hub.errors import (
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import tqdm as hf_tqdm
from huggingface_hub.utils._http import default_client_factory  # not re-exported; we extend, not replace, it
from tqdm.auto import tqdm

from app.errors import ModelUnavailableError, WeightsError
from app.registry import HUB_NAMESPACE_ENV, ModelSpec
from app.weights.loader import SAFETENSORS_NAME, describe_expected, local_dir, official_files, read_folder
from app.weights.loader import read_safetensors as _read_safetensors
from app.weights.official import has_official

Progress = Callable[[float, str], None]
Status = Literal["local", "cached", "remote", "missing"]
T = TypeVar("T")

#: Approximate download sizes (float32 tensors counted from the reference manifests), shown
#: before the first download, when the exact size is only known to the Hub.
APPROX_MB: dict[str, int] = {
    "app.models.edgeconnect:EdgeConnect": 86,
    "app.models.rfr:RFRNet": 125,
    "app.models.pic:Pluralistic": 31,
    "app.models.lama:BigLaMa": 204,
}
#: After a failed connection, availability() says "unreachable" for this long instead of
#: letting every click wait for a timeout.
UNREACHABLE_SECONDS = 60.0
PROBE_TIMEOUT = 10.0  # seconds for the first answer of the Hub
_HASH_CHUNK = 8 << 20
_MAX_HEADER = 100 << 20  # safetensors caps its JSON header at 100 MB
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


@dataclass(frozen=True)
class Location:
    """Where a model's weights would come from right now, found without any network call."""

    status: Status
    reason: str
    paths: tuple[Path, ...] = ()


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
    )


# ----------------------------------------------------------------------------- locate


def hub_files(spec: ModelSpec) -> dict[str, str | None]:
    """The registry's Hub files of ``spec`` (name -> pinned sha256); safetensors only."""
    if spec.weights is None:
        return {}
    unsafe = [name for name in spec.weights.files if not name.endswith(".safetensors")]
    if unsafe:
        raise WeightsError(f"{spec.name}: the registry names {', '.join(unsafe)} on the Hub, but only .safetensors "
                           "files are downloaded (nothing downloaded is ever unpickled).")
    return dict(spec.weights.files)


def safe_official_files(spec: ModelSpec) -> tuple:
    """``official_files`` that tolerates a network module that cannot be imported yet."""
    try:
        return official_files(spec)
    except ImportError:
        return ()


def local_paths(spec: ModelSpec) -> tuple[Path, ...]:
    """Files in ``checkpoints/<id>/`` that make a complete set of weights, else ()."""
    folder = local_dir(spec)
    if (folder / SAFETENSORS_NAME).is_file():
        return (folder / SAFETENSORS_NAME,)
    files = safe_official_files(spec)
    if files and has_official(folder, files):
        return tuple(path for f in files if (path := f.find(folder)) is not None)
    return ()


def cached_paths(spec: ModelSpec, hub: HubSettings | None = None) -> dict[str, Path]:
    """Every Hub file of ``spec`` at its pinned revision in the local cache, or {} (no network)."""
    files = hub_files(spec)
    if not files:
        return {}
    hub = hub or settings()
    found = {}
    for name in files:
        path = try_to_load_from_cache(spec.weights.repo_id, name, cache_dir=hub.cache_dir,
                                      revision=spec.weights.revision)
        if not isinstance(path, str):
            return {}
        found[name] = Path(path)
    return found


def locate(spec: ModelSpec) -> Location:
    """Local folder -> Hub cache -> download, decided from disk and settings alone."""
    local = local_paths(spec)
    if local:
        return Location("local", f"local weights in {local_dir(spec)}", local)
    hub = settings()
    cached = cached_paths(spec, hub)
    if cached:
        refused = _known_mismatch(spec, cached)
        if refused:
            return Location("missing", refused)
        return Location("cached", f"cached from {_where(spec)}", tuple(cached.values()))
    why = why_no_download(spec, hub)
    if why:
        return Location("missing", missing_message(spec, why))
    return Location("remote", f"will download {approx_size(spec)} from {_where(spec)} on first use")


def why_no_download(spec: ModelSpec, hub: HubSettings) -> str:
    """Why a download cannot even be tried now ("" = it can)."""
    if not hub_files(spec):
        return "no Hub mirror is registered for it"
    if hub.offline:
        return "offline mode is on (HF_HUB_OFFLINE=1) and they are not in the Hugging Face cache"
    return _unreachable_reason(hub.endpoint)


def approx_size(spec: ModelSpec) -> str:
    mb = APPROX_MB.get(spec.entry)
    return f"~{mb} MB" if mb else "the weights"


def _where(spec: ModelSpec) -> str:
    return f"{spec.weights.repo_id}@{spec.weights.revision}" if spec.weights else "nowhere"


def missing_message(spec: ModelSpec, why: str) -> str:
    """The one message UI, CLI and errors use: what is wrong and exactly what to provide.

    One line, so it fits a table cell in the UI as well as a terminal.
    """
    try:
        expected = describe_expected(spec)
    except ImportError:
        expected = SAFETENSORS_NAME
    text = f"{spec.name} weights are not available: {why}. Put {expected} in {local_dir(spec)}/"
    if spec.card.weights_source:
        text += f" (official files: {spec.card.weights_source})"
    if spec.weights is not None:
        text += (f", or run `python -m app weights download {spec.id}` while online to fetch "
                 f"{', '.join(spec.weights.files)} from {_where(spec)} into {settings().cache_dir} "
                 f"(namespace from {HUB_NAMESPACE_ENV})")
    return text + "."


# ------------------------------------------------------------------- unreachable memo

_unreachable: dict[str, tuple[float, str]] = {}
_unreachable_lock = threading.Lock()


def _mark_unreachable(endpoint: str, error: BaseException) -> None:
    with _unreachable_lock:
        _unreachable[endpoint] = (time.monotonic() + UNREACHABLE_SECONDS, f"{type(error).__name__}: {error}")


def _unreachable_reason(endpoint: str) -> str:
    with _unreachable_lock:
        until, error = _unreachable.get(endpoint, (0.0, ""))
    if time.monotonic() >= until:
        return ""
    return f"the Hub ({endpoint}) could not be reached ({error.splitlines()[0][:200]})"


def forget_unreachable() -> None:
    """Let the next availability check assume the Hub is back (e.g. after a retry button)."""
    with _unreachable_lock:
        _unreachable.clear()


# ----------------------------------------------------------------------------- verify

_hashes: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


def sha256_of(path: Path, fresh: bool = False) -> str:
    """sha256 of ``path``, memoised on (real path, size, mtime) — a changed file is re-hashed."""
    real, key = _memo_key(path)
    with _hash_lock:
        if not fresh and key in _hashes:
            return _hashes[key]
    digest = hashlib.sha256()
    with open(real, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    with _hash_lock:
        _hashes[key] = digest.hexdigest()
    return _hashes[key]


def _memo_key(path: Path) -> tuple[Path, tuple[str, int, int]]:
    real = Path(os.path.realpath(path))
    stat = real.stat()
    return real, (str(real), stat.st_size, stat.st_mtime_ns)


def _known_mismatch(spec: ModelSpec, paths: dict[str, Path]) -> str:
    """The refusal message of a cached file already hashed to something else than its pin.

    A memo lookup only (no hashing), so availability() can report a refused file up front.
    """
    pins = hub_files(spec)
    for name, path in paths.items():
        with _hash_lock:
            actual = _hashes.get(_memo_key(path)[1])
        if pins.get(name) and actual and actual != pins[name].lower():
            return (f"{spec.name}: the cached {name} failed its sha256 check (expected {pins[name].lower()}, "
                    f"got {actual}; {path}). Re-download it with `python -m app weights download --force {spec.id}`.")
    return ""


def check_safetensors(path: Path) -> None:
    """Refuse a truncated or malformed safetensors file by reading its header only (cheap)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if not 0 < length <= min(_MAX_HEADER, size - 8):
            raise WeightsError(f"{path} is not a safetensors file (no valid header; {size} bytes). "
                               "Delete it and download or convert it again.")
        header = _parse_header(path, f.read(length))
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    expected = 8 + length + max(ends, default=0)
    if expected != size:
        state = "truncated" if size < expected else "longer than its header says"
        raise WeightsError(f"{path} is {state}: {size} bytes, its header describes {expected}. "
                           "Delete it and download or convert it again.")


def _parse_header(path: Path, raw: bytes) -> dict:
    try:
        header = json.loads(raw)
        for key, entry in header.items():
            if key != "__metadata__":
                int(entry["data_offsets"][1])
        return header
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise WeightsError(f"{path} is not a safetensors file (malformed header: {exc}). "
                           "Delete it and download or convert it again.") from exc


def verify_file(spec: ModelSpec, name: str, path: Path, expected: str | None, fresh: bool = False) -> str:
    """Structure check, then the sha256 pin if there is one; returns the sha256 (or "")."""
    check_safetensors(path)
    if not expected and not fresh:
        return ""
    actual = sha256_of(path, fresh=fresh)
    if expected and actual != expected.lower():
        raise WeightsError(
            f"{spec.name}: {name} failed its sha256 check and was NOT used.\n  file:     {path}\n"
            f"  expected: {expected.lower()} (pinned in the registry for {_where(spec)})\n  actual:   {actual}\n"
            f"Nothing was deleted. Re-download it with `python -m app weights download --force {spec.id}`, "
            "or delete that file if you put it there yourself.")
    return actual


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file, after the cheap truncation check (clearer message)."""
    check_safetensors(path)
    return _read_safetensors(path)


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
    """A spent budget stops huggingface_hub's retries and resumes before they connect."""
    budget = _current.get()
    if budget is not None:
        budget.check()


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


def fetch(spec: ModelSpec, progress: Progress | None = None, force: bool = False) -> dict[str, Path]:
    """Every Hub file of ``spec``, verified: from the cache, else downloaded (progress shown).

    Raises :class:`ModelUnavailableError` (offline, unreachable, not on the Hub) with
    :func:`missing_message`, or :class:`WeightsError` (checksum, truncation), or
    :class:`DownloadTooSlowError` (deadline, stall). Safe to call from several threads at once.
    """
    files = hub_files(spec)
    hub = settings()
    if not files:
        raise ModelUnavailableError(missing_message(spec, why_no_download(spec, hub)))
    cached = {} if force else cached_paths(spec, hub)
    paths = {}
    for name, expected in files.items():
        path = cached.get(name) or _download(spec, name, hub, progress, force)
        if progress:
            progress(1.0, f"Verifying {name}")
        verify_file(spec, name, path, expected)
        paths[name] = path
    return paths


def _download(spec: ModelSpec, name: str, hub: HubSettings, progress: Progress | None, force: bool) -> Path:
    why = why_no_download(spec, hub)
    if why and not (force and not hub.offline):  # an explicit --force retries an unreachable Hub
        raise ModelUnavailableError(missing_message(spec, why))
    try:
        return within_deadline(f"{name} of {spec.name} from {_where(spec)}",
                               functools.partial(_probe_then_transfer, spec, name, hub, progress, force))
    except WeightsError:  # includes DownloadTooSlowError: a slow Hub is not marked unreachable
        raise
    except (RevisionNotFoundError, RemoteEntryNotFoundError, RepositoryNotFoundError) as exc:
        raise ModelUnavailableError(missing_message(spec, _not_on_hub(spec, name, exc))) from exc
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, HfHubHTTPError) as exc:  # down, or a 5xx
        if not hub.offline:
            _mark_unreachable(hub.endpoint, exc.__cause__ or exc)
        raise ModelUnavailableError(missing_message(spec, why_no_download(spec, settings()) or str(exc))) from exc
    except OSError as exc:  # size mismatch after a cut connection, disk full...
        raise WeightsError(f"Downloading {name} of {spec.name} from {_where(spec)} failed: {exc}") from exc
    except Exception as exc:  # network stack errors (httpx: refused, timeout, DNS)
        _mark_unreachable(hub.endpoint, exc)
        raise ModelUnavailableError(missing_message(spec, why_no_download(spec, settings()))) from exc


def _probe_then_transfer(spec: ModelSpec, name: str, hub: HubSettings, progress: Progress | None,
                         force: bool) -> Path:
    """Probe and file under one budget: the deadline is per file, whatever step is slow."""
    _probe(spec, name, hub)
    return _transfer(spec, name, hub, progress, force)


def _transfer(spec: ModelSpec, name: str, hub: HubSettings, progress: Progress | None, force: bool) -> Path:
    """hf_hub_download of one file, once the Hub has answered the probe.

    huggingface_hub resumes a cut transfer by itself a few times; when the connection stays
    broken it discards the partial file and raises a bare network error. Say that the download
    was interrupted (the Hub was there a moment ago) instead of calling the Hub unreachable.
    """
    try:
        return Path(hf_hub_download(
            spec.weights.repo_id, name, revision=spec.weights.revision, cache_dir=hub.cache_dir,
            endpoint=hub.endpoint, local_files_only=hub.offline, force_download=force,
            tqdm_class=progress_bar(progress, name)))
    except (HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled):
        raise
    except Exception as exc:  # connection lost mid-file (httpx), or a size mismatch after one (OSError)
        raise WeightsError(
            f"Downloading {name} of {spec.name} from {_where(spec)} was interrupted and could not be resumed "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else 'connection lost'}). "
            "The partial file was discarded and nothing was loaded; check the connection and run again.") from exc


def _probe(spec: ModelSpec, name: str, hub: HubSettings) -> None:
    """One HEAD without retries before the download.

    hf_hub_download retries a refused connection for ~25 s before giving up; a user who
    clicked "Inpaint" without network should hear about it in a second instead.
    """
    url = hf_hub_url(spec.weights.repo_id, name, revision=spec.weights.revision, endpoint=hub.endpoint)
    get_hf_file_metadata(url, timeout=PROBE_TIMEOUT, endpoint=hub.endpoint)


def _not_on_hub(spec: ModelSpec, name: str, exc: Exception) -> str:
    repo, rev = spec.weights.repo_id, spec.weights.revision
    if isinstance(exc, RepositoryNotFoundError):
        return f"the Hub has no repo {repo} (set {HUB_NAMESPACE_ENV} to the namespace of your mirror)"
    if isinstance(exc, RevisionNotFoundError):
        return f"{repo} has no revision '{rev}' (`python -m app weights push` creates it)"
    return f"{repo}@{rev} has no file {name}"


# ------------------------------------------------------------------------------- load


def load_state(spec: ModelSpec, progress: Progress | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """The flat state_dict of ``spec`` from the first source that has it, and its description."""
    location = locate(spec)
    if location.status == "missing":
        raise ModelUnavailableError(location.reason)
    if location.status == "local":
        folder = local_dir(spec)
        if (folder / SAFETENSORS_NAME).is_file():
            check_safetensors(folder / SAFETENSORS_NAME)
        return read_folder(spec, folder), f"weights in {folder}"
    state: dict[str, torch.Tensor] = {}
    for path in fetch(spec, progress).values():
        state.update(_read_safetensors(path))
    return state, f"weights from {_where(spec)}"
