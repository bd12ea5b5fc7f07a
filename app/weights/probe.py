"""Did the source of a model's weights answer? "Ready" means on disk, or the source answered.

:func:`app.weights.resolve.locate` decides from disk and settings alone where weights would come
from; for a ``remote`` location that is only a plan. Before a model is listed as ready the plan's
source is asked once (a HEAD request: the Hub mirror's files, the authors' archive on the Hub,
their HTTPS file or their Google Drive release), and the answer is remembered (:data:`ANSWER_SECONDS`
when it answered, :data:`hub.UNREACHABLE_SECONDS` when it did not), so listing the models on every page costs at most
one short request per source every few minutes. Nothing is downloaded here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from huggingface_hub import get_hf_file_metadata, hf_hub_url
from huggingface_hub.errors import RemoteEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
from huggingface_hub.utils import get_session

from app.errors import WeightsError
from app.specs import ModelSpec, OfficialArchive, PretrainedSpec
from app.weights import gdrive, hub, pins
from app.weights.download import check_hop
from app.weights.resolve import Location, hub_file, hub_files, official_name

ANSWER_SECONDS = 600.0  # an answer stays true this long (a removed file is noticed at download time)
TIMEOUT = 3.0  # seconds: a listing does not wait for a slow source, it says it did not answer
Ask = Callable[[], "Silence | None"]
_NOT_FOUND = (RemoteEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError)


@dataclass(frozen=True)
class Silence:
    """Why a source did not answer: for the operator (``reason``) and for a visitor (``public``)."""

    reason: str
    public: str


_memo: dict[str, tuple[float, Silence | None]] = {}  # url or origin -> (valid until, None = answered)
_memo_lock = threading.Lock()


def silence(spec: ModelSpec, location: Location) -> Silence | None:
    """None when the source of ``location`` (a ``remote`` one) answered now or recently; else why not."""
    return _first_silence(_sources(spec, location))


def hub_silence(spec: ModelSpec | PretrainedSpec, files: Iterable[hub.HubFile]) -> Silence | None:
    """None when every one of ``files`` answered a HEAD now or recently; else why not.

    For a segmenter's or detector's files (:mod:`app.weights.pretrained`), which :func:`silence`'s
    locations do not describe: the click segmenter is chosen by whether its Hub repo answers.
    """
    return _first_silence([_hub_source(file, spec) for file in files])


def _first_silence(sources: list[tuple[str, Ask]]) -> Silence | None:
    for url, ask in sources:
        known, failure = _remembered(url)
        failure = failure if known else _ask(url, ask)
        if failure is not None:
            return failure
    return None


def refused(spec: ModelSpec | PretrainedSpec, files: Iterable[hub.HubFile], reason: str) -> None:
    """``files`` answered with bytes that were refused (a failed sha256 pin, or a first download that did
    not load): for :data:`ANSWER_SECONDS` they count as silent, so :func:`hub_silence` lets the next
    segmenter serve instead of every click downloading and refusing them again."""
    endpoint = hub.settings().endpoint
    failure = Silence(reason, f"the Hugging Face Hub sends {spec.name} weights this server refuses")
    for file in files:
        _remember(hf_hub_url(file.repo_id, file.name, revision=file.revision, endpoint=endpoint), failure,
                  ANSWER_SECONDS)


def forget() -> None:
    """Ask again next time (tests, and a retry after the network came back)."""
    with _memo_lock:
        _memo.clear()


def _sources(spec: ModelSpec, location: Location) -> list[tuple[str, Ask]]:
    """(url, HEAD request) of every file ``location`` would fetch."""
    if location.via == "mirror":
        return [_hub_source(hub_file(spec, name), spec) for name in hub_files(spec)]
    source = pins.official(spec)
    if isinstance(source, OfficialArchive):
        file = hub.HubFile(source.repo, source.file, source.revision)
        return [] if hub.cached_file(file, hub.settings()) else [_hub_source(file, spec)]
    if source is not None:
        return [(source.url, lambda: _head(source.url, official_name(spec)))]
    if spec.official_drive is not None:
        return [(f"{gdrive.DRIVE}/{spec.official_drive.id}", lambda: _drive(spec))]
    return []


def _drive(spec: ModelSpec) -> Silence | None:
    """Drive asked for ``spec``'s release; an unreachable Drive is remembered for every model on it."""
    failure = gdrive.probe(spec)
    if failure is None:
        return None
    silent = Silence(failure.reason, failure.public)
    if failure.unreachable:
        _remember(gdrive.DRIVE, silent, hub.UNREACHABLE_SECONDS)
    return silent


def _hub_source(file: hub.HubFile, spec: ModelSpec | PretrainedSpec) -> tuple[str, Ask]:
    settings = hub.settings()
    url = hf_hub_url(file.repo_id, file.name, revision=file.revision, endpoint=settings.endpoint)

    def ask() -> Silence | None:
        try:
            get_hf_file_metadata(url, timeout=TIMEOUT, endpoint=settings.endpoint)
        except _NOT_FOUND as exc:
            return Silence(f"{spec.name}: {file.where} has no {file.name} ({type(exc).__name__})",
                           "its weights are not where this server expects them on the Hugging Face Hub")
        except Exception as exc:  # refused, DNS, timeout, 5xx: the Hub is down for everyone
            hub.mark_unreachable(settings.endpoint, exc)
            return Silence(f"{spec.name}: {hub.unreachable_reason(settings.endpoint)}",
                           "the Hugging Face Hub cannot be reached right now")
        return None

    return url, ask


def _head(url: str, what: str) -> Silence | None:
    try:
        with hub.hop_rule(lambda hop: check_hop(url, hop, what)):  # a redirect the download would refuse
            response = get_session().head(url, timeout=TIMEOUT, follow_redirects=True)
    except WeightsError as exc:
        return Silence(f"{what}: {exc}", "the authors' download server sends its weights to a server this app "
                                         "does not download from")
    except Exception as exc:  # refused, DNS, TLS, timeout
        failure = Silence(f"{what}: {urlsplit(url).hostname} could not be reached ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:200] if str(exc) else 'no details'})",
                          "the authors' download server cannot be reached right now")
        _remember(_origin(url), failure, hub.UNREACHABLE_SECONDS)
        return failure
    if response.status_code >= 400:
        return Silence(f"{what}: {url} answered HTTP {response.status_code}",
                       "the authors' download server does not have its weights right now")
    return None


def _ask(url: str, ask: Ask) -> Silence | None:
    failure = ask()
    _remember(url, failure, ANSWER_SECONDS if failure is None else hub.UNREACHABLE_SECONDS)
    return failure


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _remembered(url: str) -> tuple[bool, Silence | None]:
    """(known, answer): an unreachable host first, as it speaks for every file on it."""
    now = time.monotonic()
    with _memo_lock:
        host, file = (_memo.get(key, (0.0, None)) for key in (_origin(url), url))
    if host[0] > now and host[1] is not None:
        return True, host[1]
    return file[0] > now, file[1] if file[0] > now else None


def _remember(key: str, failure: Silence | None, seconds: float) -> None:
    with _memo_lock:
        _memo[key] = (time.monotonic() + seconds, failure)
