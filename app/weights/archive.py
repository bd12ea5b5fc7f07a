"""Fetch an author's own distribution from the Hub and unpack its release files.

Used only by ``python -m app weights fetch-official`` (an explicit user action): the
archive is downloaded through huggingface_hub's cache, checked against its pinned
sha256 when there is one, and only the members the registry names are written to
``checkpoints/<id>/`` under their official names; nothing in it is executed or unpickled
here (conversion afterwards reads them with the restricted unpickler).
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from huggingface_hub import hf_hub_download

from app.errors import ModelUnavailableError, WeightsError
from app.registry import ModelSpec
from app.weights import hub
from app.weights.loader import local_dir


def fetch_archive(spec: ModelSpec, progress: hub.Progress | None = None) -> Path:
    """Download ``spec.official_archive`` (cached) and return its local path."""
    source = spec.official_archive
    if source is None:
        raise ModelUnavailableError(f"{spec.name} has no official distribution on the Hub; see the README "
                                    "for where its authors publish the files.")
    settings = hub.settings()
    try:
        path = Path(hf_hub_download(source.repo, source.file, revision=source.revision, cache_dir=settings.cache_dir,
                                    endpoint=settings.endpoint, local_files_only=settings.offline,
                                    tqdm_class=hub.progress_bar(progress, source.file) if progress else None))
    except Exception as exc:  # offline, unreachable, missing repo/file: one clear message
        raise ModelUnavailableError(f"Could not fetch {source.repo}/{source.file}@{source.revision}: {exc}") from exc
    if source.sha256 and hub.sha256_of(path) != source.sha256:
        raise WeightsError(f"{source.file} from {source.repo} does not match its pinned sha256; it was not used.")
    return path


def extract_members(spec: ModelSpec, archive: Path, folder: Path | None = None) -> list[Path]:
    """Write the registry's members of ``archive`` into ``folder`` (default ``checkpoints/<id>/``)."""
    folder = folder or local_dir(spec)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        with zipfile.ZipFile(archive) as bundle:
            names = set(bundle.namelist())
            for member, target in spec.official_archive.members.items():
                if member not in names:
                    raise WeightsError(f"{archive.name} has no {member}; is it the official archive?")
                partial = folder / f".{target}.partial"
                with bundle.open(member) as src, open(partial, "wb") as dst:
                    shutil.copyfileobj(src, dst, 8 << 20)
                partial.replace(folder / target)  # never leave a half-written official file
                written.append(folder / target)
    except zipfile.BadZipFile as exc:
        raise WeightsError(f"{archive.name} is not a valid zip archive ({exc}); fetch it again.") from exc
    return written
