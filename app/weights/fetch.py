"""A model's Hub files on this machine, verified: from the cache, else downloaded.

Only ``.safetensors`` files are fetched from the Hub (nothing downloaded is ever
unpickled). Each one is checked for truncation, and against its sha256 pin after download
*and* on cache hits. A file just downloaded that fails its pin is deleted from the cache again
(nobody's file yet: nothing of a tampered download stays); one found in the cache is refused and
left where it is. A file nothing pins (the registry's mirrors under ``INPAINT_HUB_NAMESPACE``) is
pinned on its first use, once it loads strictly (:func:`pin_first_use`). Hub errors become the
model's own message (:func:`app.weights.resolve.missing_message`): what is wrong and what to provide.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path

from huggingface_hub.errors import (
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from app.errors import ModelUnavailableError, WeightsError
from app.specs import HUB_NAMESPACE_ENV, ModelSpec
from app.weights import hub, pins
from app.weights.resolve import cached_paths, hub_file, hub_files, mirror, missing_message, where, why_no_download
from app.weights.strict import load_strict
from app.weights.verify import read_safetensors_unchecked, sha256_of, verify_file

log = logging.getLogger(__name__)


def fetch(spec: ModelSpec, progress: hub.Progress | None = None, force: bool = False) -> dict[str, Path]:
    """Every Hub file of ``spec``, verified: from the cache, else downloaded (progress shown).

    Raises :class:`ModelUnavailableError` (offline, unreachable, not on the Hub) with
    :func:`missing_message`, or :class:`WeightsError` (checksum, truncation), or
    :class:`~app.weights.hub.DownloadTooSlowError` (deadline, stall). Safe to call from several threads at once.
    """
    files = hub_files(spec)
    settings = hub.settings()
    if not files:
        raise ModelUnavailableError(missing_message(spec, why_no_download(spec, settings)))
    cached = {} if force else cached_paths(spec, settings)
    paths: dict[str, Path] = {}
    downloaded: list[str] = []
    for name, expected in files.items():
        path = cached.get(name)
        if path is None:
            path = _download(spec, name, settings, progress, force)
            downloaded.append(name)
        if progress:
            progress(1.0, f"Verifying {name}")
        if name in downloaded:
            _check_download(spec, name, path, expected)
        else:
            verify_file(spec, name, path, expected)
        paths[name] = path
    pin_first_use(spec, paths, downloaded, progress)
    return paths


def _check_download(spec: ModelSpec, name: str, path: Path, expected: str | None) -> None:
    """A file just downloaded: its pin first, and one that fails it is deleted (no tampered bytes stay cached)."""
    if expected:
        actual = sha256_of(path, fresh=True)
        if actual != expected.lower():
            discard(path)
            raise WeightsError(_not_the_pinned_file(spec, name, expected.lower(), actual))
    verify_file(spec, name, path, expected)


def _not_the_pinned_file(spec: ModelSpec, name: str, expected: str, actual: str) -> str:
    origin, advice = pins.why_pinned(spec, name, expected, "the mirror now serves other bytes than the pinned ones")
    return (f"{spec.name}: {name} downloaded from {where(spec)} failed its sha256 check and was NOT used.\n"
            f"  expected: {expected} ({origin})\n  actual:   {actual}\n"
            f"The download was deleted again and nothing was loaded. {advice}")


def discard(path: Path) -> None:
    """Delete a refused download from huggingface_hub's cache: the snapshot's entry and the blob it points to."""
    blob = path.resolve()
    path.unlink(missing_ok=True)
    blob.unlink(missing_ok=True)


def pin_first_use(spec: ModelSpec, paths: dict[str, Path], downloaded: Collection[str] = (),
                  progress: hub.Progress | None = None) -> None:
    """Pin the files of ``paths`` that nothing pins yet, as they are now, once they load strictly into the network.

    Trust on first use: a mirror named only by ``INPAINT_HUB_NAMESPACE`` has no sha256 anywhere, so
    any later file that parsed as safetensors was accepted. Its first copy that loads strictly is
    recorded in pins.json (sha256 and size) and every later one must match it. A ``downloaded`` file
    that does not load is deleted again, and nothing is pinned.
    """
    files = hub_files(spec)
    unpinned = {name: path for name, path in paths.items() if not files.get(name)}
    if not unpinned:
        return
    if progress:
        progress(1.0, f"Checking {spec.name}'s weights before pinning them")
    try:
        _load_strictly(spec, paths)
    except WeightsError as exc:
        for name in downloaded:
            discard(paths[name])
        gone = " The download was deleted again." if downloaded else ""
        raise WeightsError(f"{exc} Nothing was pinned or loaded.{gone}") from exc
    record_first_use(spec, unpinned)


def record_first_use(spec: ModelSpec, paths: dict[str, Path]) -> None:
    """Write the sha256 and size of ``paths`` (checked by the caller) into pins.json as ``spec``'s first-use pins."""
    source = where(spec)
    pinned = {name: pins.FirstUsePin(sha256_of(path), path.stat().st_size, source) for name, path in paths.items()}
    try:
        written = pins.record_first_use(spec, pinned)
    except OSError as exc:  # a read-only deployment: the file was checked, but later downloads cannot be held to it
        log.warning("%s: could not record the first-use pins of %s in %s (%s); later downloads are not checked "
                    "against them. Pin them with `python -m app weights push` or by hand.", spec.id,
                    ", ".join(paths), pins.pins_path(), exc)
        return
    log.info("%s: pinned %s on first use in %s", spec.id,
             ", ".join(f"{name} (sha256 {pin.sha256})" for name, pin in pinned.items()), written)


def _load_strictly(spec: ModelSpec, paths: dict[str, Path]) -> None:
    """The network of ``spec`` built for these files and loaded strictly on the CPU, then dropped."""
    state: dict = {}
    for path in paths.values():
        state.update(read_safetensors_unchecked(path))  # headers were checked by verify_file
    load_strict(spec.network().for_state(state, **spec.kwargs), state, source=f"{spec.name} weights from "
                f"{where(spec)}")


def _download(spec: ModelSpec, name: str, settings: hub.HubSettings, progress: hub.Progress | None,
              force: bool) -> Path:
    why = why_no_download(spec, settings)
    if why and not (force and not settings.offline):  # an explicit --force retries an unreachable Hub
        raise ModelUnavailableError(missing_message(spec, why))
    try:
        return hub.download_file(hub_file(spec, name), spec.name, settings, progress, force)
    except WeightsError:  # includes DownloadTooSlowError: a slow Hub is not marked unreachable
        raise
    except (RevisionNotFoundError, RemoteEntryNotFoundError, RepositoryNotFoundError) as exc:
        raise ModelUnavailableError(missing_message(spec, _not_on_hub(spec, name, exc))) from exc
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, HfHubHTTPError) as exc:  # down, or a 5xx
        if not settings.offline:
            hub.mark_unreachable(settings.endpoint, exc.__cause__ or exc)
        raise ModelUnavailableError(missing_message(spec, why_no_download(spec, hub.settings()) or str(exc))) from exc
    except OSError as exc:  # size mismatch after a cut connection, disk full...
        raise WeightsError(f"Downloading {name} of {spec.name} from {where(spec)} failed: {exc}") from exc
    except Exception as exc:  # network stack errors (httpx: refused, timeout, DNS)
        hub.mark_unreachable(settings.endpoint, exc)
        raise ModelUnavailableError(missing_message(spec, why_no_download(spec, hub.settings()))) from exc


def _not_on_hub(spec: ModelSpec, name: str, exc: Exception) -> str:
    weights = mirror(spec)  # the pins file's mirror when one is recorded, not only the registry's
    repo, rev = weights.repo_id, weights.revision
    if isinstance(exc, RepositoryNotFoundError):
        return f"the Hub has no repo {repo} (set {HUB_NAMESPACE_ENV} to the namespace of your mirror)"
    if isinstance(exc, RevisionNotFoundError):
        return f"{repo} has no revision '{rev}' (`python -m app weights push` creates it)"
    return f"{repo}@{rev} has no file {name}"
