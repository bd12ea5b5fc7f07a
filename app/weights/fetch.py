"""A model's Hub files on this machine, verified: from the cache, else downloaded.

Only ``.safetensors`` files are fetched from the Hub (nothing downloaded is ever
unpickled). Each one is checked for truncation, and against the registry's sha256 pin
when there is one, after download *and* on cache hits. Hub errors become the model's own
message (:func:`app.weights.resolve.missing_message`): what is wrong and what to provide.
"""

from __future__ import annotations

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
from app.registry import HUB_NAMESPACE_ENV, ModelSpec
from app.weights import hub
from app.weights.resolve import cached_paths, hub_file, hub_files, mirror, missing_message, where, why_no_download
from app.weights.verify import verify_file


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
    paths = {}
    for name, expected in files.items():
        path = cached.get(name) or _download(spec, name, settings, progress, force)
        if progress:
            progress(1.0, f"Verifying {name}")
        verify_file(spec, name, path, expected)
        paths[name] = path
    return paths


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
