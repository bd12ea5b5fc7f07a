"""The authors' releases on Google Drive (EdgeConnect, RFR-Net, PIC), downloaded with gdown into a staging folder.

A :class:`~app.registry.GoogleDriveRelease` names what the authors' README links to: a folder
(listed with ``gdown.download_folder(skip_download=True)``: only the files the network needs are
downloaded), a zip (only the named members are extracted, each checked first as for LaMa's Hub
archive) or the release file itself; ``auto`` asks Drive whether it lists the id as a folder.
Drive's confirmation pages are gdown's business, not ours. Every transfer runs under the overall
deadline and stall rule of :func:`app.weights.hub.within_deadline` (gdown's progress callback feeds
the budget; its ``cancel`` event stops an abandoned transfer) and may not grow past ``max_bytes``.

Drive publishes no hash. A file that has no pin yet is pinned on first use: once the release
converted and loaded strictly, :func:`fetch_release`'s returned step records its sha256 and size in
pins.json (``first_use``, keyed by the file's name on Drive); from then on every download must have
exactly that size and sha256 or it is refused, naming both hashes, before anything reads it. The
caller (:mod:`app.weights.provision`) owns the staging folder and deletes it whatever happens, so a
failure leaves nothing behind.

gdown talks to ``https://drive.google.com`` and Google's download host with ``requests``, which
honours the standard ``HTTPS_PROXY`` and ``REQUESTS_CA_BUNDLE`` settings: that is how the tests put
their loopback Drive in front of the real gdown code paths, and how a server behind a proxy reaches
Drive. Cookies are neither read from nor written to the user's home (``use_cookies=False``).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import gdown
import requests
from gdown.exceptions import DownloadError, FileURLRetrievalError

from app.errors import ModelUnavailableError, WeightsError
from app.specs import GoogleDriveRelease, ModelSpec
from app.weights import hub, pins
from app.weights.archive import extract_named
from app.weights.verify import sha256_of

log = logging.getLogger(__name__)

DRIVE = "https://drive.google.com"
#: gdown's own wait for one read (connect, read); the overall deadline and the stall rule are hub's.
READ_TIMEOUT = (10.0, 60.0)
PROBE_TIMEOUT = 3.0  # seconds: a listing of the models does not wait for a slow Drive
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body")
Pinning = Callable[[], None]


@dataclass(frozen=True)
class DriveFile:
    """One file to download: its Drive id and the name Drive lists it under ("" = Drive names it on download)."""

    id: str
    name: str = ""


def fetch_release(spec: ModelSpec, staging: Path, progress: hub.Progress | None = None) -> Pinning:
    """The release files of ``spec`` in ``staging`` under their official names; returns the first-use pinning step.

    Call the step once the files converted and loaded strictly: it pins every downloaded file that
    had no pin yet. A file that has a pin was already checked against it here.
    """
    release = spec.official_drive
    if hub.settings().offline:
        raise ModelUnavailableError(f"{spec.name}: the server is offline (HF_HUB_OFFLINE=1), so the authors' "
                                    f"files on {release.where} cannot be downloaded.")
    fresh: dict[str, pins.FirstUsePin] = {}
    for file in plan(spec, release):
        path = _download(spec, release, file, staging, progress)
        pin = _checked(spec, release, file, path)
        if pin is not None:
            fresh[path.name] = pin
        _place(spec, release, path, staging)
    return lambda: _record(spec, fresh)


def plan(spec: ModelSpec, release: GoogleDriveRelease) -> list[DriveFile]:
    """The Drive files to download: the needed ones of a folder (or its one zip), else the id itself."""
    if release.container in ("folder", "auto"):
        listing = _list_folder(spec, release)
        if listing:
            return _pick(spec, release, listing)
        if release.container == "folder":
            raise ModelUnavailableError(_gone(spec, release))
    return [DriveFile(release.id)]


def _list_folder(spec: ModelSpec, release: GoogleDriveRelease) -> list[DriveFile] | None:
    """The files of the folder ``release.id`` as gdown lists them; None when Drive lists no such folder."""
    def listing() -> list:
        return gdown.download_folder(id=release.id, skip_download=True, quiet=True, use_cookies=False,
                                     timeout=READ_TIMEOUT)
    try:
        entries = hub.within_deadline(f"the file list of {release.where}", listing)
    except WeightsError:
        raise
    except DownloadError as exc:  # the folder view answered, but not with a folder (gone, private, or a file)
        log.info("%s: %s is not listed as a folder (%s)", spec.id, release.id, str(exc).splitlines()[0])
        return None
    except Exception as exc:
        raise ModelUnavailableError(_failure(spec, release, exc)) from exc
    return [DriveFile(entry.id, entry.path) for entry in entries]


def _pick(spec: ModelSpec, release: GoogleDriveRelease, listing: list[DriveFile]) -> list[DriveFile]:
    """The listed files the network needs (discriminators and the rest stay on Drive), or the folder's one zip."""
    chosen = {wanted: [f for f in listing if matches(f.name, wanted)] for wanted in release.files}
    if all(len(hits) == 1 for hits in chosen.values()):
        return [hits[0] for hits in chosen.values()]
    zips = [f for f in listing if f.name.lower().endswith(".zip")]
    if len(zips) == 1:
        return zips
    missing = [wanted for wanted, hits in chosen.items() if len(hits) != 1]
    raise ModelUnavailableError(f"{spec.name}: the authors' {release.where} no longer holds exactly one "
                                f"{' and one '.join(missing)}, so nothing was downloaded.")


def matches(path: str, wanted: str) -> bool:
    """``path`` (inside a folder or zip) is the released file ``wanted`` (a name or the end of a path)."""
    parts, end = PurePosixPath(path.replace("\\", "/")).parts, PurePosixPath(wanted).parts
    return len(parts) >= len(end) and parts[len(parts) - len(end):] == end


def _download(spec: ModelSpec, release: GoogleDriveRelease, file: DriveFile, staging: Path,
              progress: hub.Progress | None) -> Path:
    """One Drive file through gdown into a fresh folder of ``staging``, under the deadline, capped at ``max_bytes``."""
    label = PurePosixPath(file.name).name or f"file {file.id}"
    folder = Path(tempfile.mkdtemp(prefix=".drive-", dir=staging))
    cancel = threading.Event()

    def transfer() -> str:
        bar = hub.progress_bar(progress, label)(total=None, unit="B", unit_scale=True, desc=label)
        seen = [0]

        def step(done: int, total: int | None) -> None:
            if max(done, total or 0) > release.max_bytes:
                raise WeightsError(f"{spec.name}: {label} from {release.where} is larger than the "
                                   f"{release.max_bytes:,} bytes allowed for one file, so it was not downloaded.")
            bar.total = total
            bar.update(done - seen[0])
            seen[0] = done

        try:
            return gdown.download(id=file.id, output=str(folder) + os.sep, quiet=True, use_cookies=False,
                                  progress=step, timeout=READ_TIMEOUT, cancel=cancel)
        finally:
            bar.close()

    try:
        path = Path(hub.within_deadline(f"{label} from {release.where}", transfer))
    except WeightsError:
        raise
    except Exception as exc:  # gdown's and requests' errors: one message per way Drive fails
        raise ModelUnavailableError(_failure(spec, release, exc)) from exc
    finally:
        cancel.set()  # an abandoned transfer stops at its next read
    _refuse_html(spec, release, path)
    return path


def _refuse_html(spec: ModelSpec, release: GoogleDriveRelease, path: Path) -> None:
    """A web page saved as the file (a sign-in or error page Drive served with a file name) is not opened."""
    with open(path, "rb") as head:
        start = head.read(512).lstrip().lower()
    if start.startswith(_HTML_STARTS):
        raise WeightsError(f"{spec.name}: Google Drive sent a web page instead of the authors' {path.name} "
                           f"({release.where}); it was not used and nothing was kept. The file may have been moved, "
                           "or Drive wants a sign-in; try again later.")


def _checked(spec: ModelSpec, release: GoogleDriveRelease, file: DriveFile, path: Path) -> pins.FirstUsePin | None:
    """None when ``path`` matches its first-use pin; its pin-to-be when it has none; refused when it differs."""
    size, actual = path.stat().st_size, sha256_of(path, fresh=True)
    pinned = pins.first_use(spec).get(path.name)
    if pinned is None:
        return pins.FirstUsePin(actual, size, f"{release.where} (Drive file {file.id})")
    if (actual, size) != (pinned.sha256, pinned.size):
        raise WeightsError(
            f"{spec.name}: {path.name} from {release.where} is not the file pinned on its first use, so it was NOT "
            f"used and nothing was kept.\n  expected: {pinned.sha256} ({pinned.size:,} bytes, pinned in pins.json)\n"
            f"  actual:   {actual} ({size:,} bytes)\nIf the authors replaced it on purpose, delete the \"first_use\" "
            f"record of {path.name} for {spec.id} in pins.json to accept the new file.")
    return None


def _place(spec: ModelSpec, release: GoogleDriveRelease, path: Path, staging: Path) -> None:
    """Put the needed files of one download into ``staging`` under their official names; the download goes."""
    try:
        if path.name.lower().endswith(".zip"):
            extract_named(path, _members(spec, release, path), staging, release.max_member_bytes)
        else:
            os.replace(path, staging / _official_name(spec, release, path.name))
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)


def _members(spec: ModelSpec, release: GoogleDriveRelease, archive: Path) -> dict[str, str]:
    """Zip member -> official name for every needed file; refused unless each is there exactly once."""
    import zipfile

    try:
        with zipfile.ZipFile(archive) as bundle:
            names = [info.filename for info in bundle.infolist() if not info.is_dir()]
    except zipfile.BadZipFile as exc:
        raise WeightsError(f"{spec.name}: {archive.name} from {release.where} is not a valid zip ({exc}); nothing "
                           "was kept. Try again.") from exc
    members = {}
    for wanted, official in release.files.items():
        hits = [name for name in names if matches(name, wanted)]
        if len(hits) != 1:
            raise WeightsError(f"{spec.name}: {archive.name} from {release.where} holds {len(hits)} files named "
                               f"{wanted}, not one; nothing was extracted.")
        members[hits[0]] = official
    return members


def _official_name(spec: ModelSpec, release: GoogleDriveRelease, name: str) -> str:
    """The official name a downloaded release file is saved under (a one-file release takes any name)."""
    for wanted, official in release.files.items():
        if matches(name, wanted):
            return official
    if len(release.files) == 1:
        return next(iter(release.files.values()))
    raise WeightsError(f"{spec.name}: {release.where} served {name}, which is none of the files the network needs "
                       f"({', '.join(release.files)}); nothing was kept.")


def _record(spec: ModelSpec, fresh: dict[str, pins.FirstUsePin]) -> None:
    """Pin the files downloaded for the first time (called once they converted and loaded strictly)."""
    if not fresh:
        return
    try:
        written = pins.record_first_use(spec, fresh)
    except OSError as exc:  # a read-only deployment: converted and used, but later downloads are not held to it
        log.warning("%s: could not pin %s in %s (%s); later downloads are not checked against it.", spec.id,
                    ", ".join(fresh), pins.pins_path(), exc)
        return
    log.info("%s: pinned %s on first use in %s", spec.id,
             ", ".join(f"{name} (sha256 {pin.sha256}, {pin.size} bytes)" for name, pin in fresh.items()), written)


# ---------------------------------------------------------------------------- messages


def _failure(spec: ModelSpec, release: GoogleDriveRelease, exc: BaseException) -> str:
    """The one message for the way Drive failed: quota, gone or private, unreachable, or what it answered."""
    text = " ".join(str(exc).split())
    if isinstance(exc, FileURLRetrievalError) and "too many users" in text.lower():
        return (f"{spec.name}: Google Drive will not serve the authors' weights right now: too many users have viewed "
                f"or downloaded the file recently (Drive's download quota for {release.where}). Nothing was kept; "
                "try again in a few hours.")
    if isinstance(exc, FileURLRetrievalError):
        return _gone(spec, release)
    network = (requests.ConnectionError, requests.Timeout)
    if isinstance(exc, network) or isinstance(exc.__cause__, network):
        return (f"{spec.name}: Google Drive cannot be reached from this server right now, so the authors' weights "
                f"({release.where}) could not be downloaded. Nothing was kept; try again later.")
    if isinstance(exc, requests.HTTPError) and exc.response is not None and exc.response.status_code in (403, 404):
        return _gone(spec, release)
    return (f"{spec.name}: downloading the authors' weights from {release.where} failed "
            f"({type(exc).__name__}: {text[:200] or 'no details'}). Nothing was kept; try again later.")


def _gone(spec: ModelSpec, release: GoogleDriveRelease) -> str:
    return (f"{spec.name}: the authors' {release.where} is gone or no longer shared publicly, so its weights cannot "
            "be downloaded. Nothing was kept.")


# ---------------------------------------------------------------------------- probe


@dataclass(frozen=True)
class NoAnswer:
    """Why Drive did not answer for a release: for the operator, for a visitor, and whether Drive is down."""

    reason: str
    public: str
    unreachable: bool


def probe(spec: ModelSpec) -> NoAnswer | None:
    """None when Drive answers for ``spec``'s release now; else why not.

    Nothing is downloaded: a GET of the folder view (a few kB) for a folder, of gdown's first address
    for a file (Drive answers it with a redirect, which is not followed); ``auto`` asks both. A GET,
    not a HEAD: these are pages, and only their GET is what gdown relies on.
    """
    release = spec.official_drive
    views = {"folder": ("embeddedfolderview",), "auto": ("embeddedfolderview", "uc")}.get(release.container, ("uc",))
    status, url = 0, ""
    for view in views:
        url = f"{DRIVE}/{view}?id={release.id}"
        try:
            with requests.get(url, timeout=PROBE_TIMEOUT, allow_redirects=False, stream=True) as response:
                status = response.status_code
        except requests.RequestException as exc:
            return NoAnswer(f"{spec.name}: Google Drive could not be reached ({type(exc).__name__})",
                            "Google Drive, where the authors publish its weights, cannot be reached right now", True)
        if status < 400:
            return None
    return NoAnswer(f"{spec.name}: {url} answered HTTP {status}",
                    "the authors' weights are not on Google Drive where this server expects them", False)
