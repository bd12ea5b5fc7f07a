"""Fetch an author's own distribution from the Hub and unpack its release files.

Used only by ``python -m app weights fetch-official`` (an explicit user action): the
archive is downloaded through huggingface_hub's cache and only the members the registry
names are written to ``checkpoints/<id>/`` under their official names; nothing in it is
executed or unpickled here (conversion afterwards reads them with the restricted unpickler).
An archive of pickles is only opened once it is known to be the authors' file:

* its :class:`~app.registry.OfficialArchive` must pin ``sha256``: an unpinned archive is
  refused before it is even downloaded;
* the download must have the pinned ``size`` (checked first, it is free) and then the
  pinned sha256, else it is refused and left in the cache for the user to look at;
* every named member is checked from its zip header before anything is written: present,
  not encrypted, at most ``max_member_bytes`` unpacked, at most :data:`MAX_RATIO` times its
  packed size when over :data:`RATIO_FLOOR` (zip bombs), and the disk must hold them all;
* members are written into a hidden staging folder inside the target folder, fsynced and
  CRC-checked (zipfile checks the CRC at the end of each read), and only then renamed
  over the official names. On any failure (bad CRC, a member shorter than declared, disk
  full) the staging folder (and any folder this call created) is removed, so the target
  folder is exactly as before: no ``.partial`` file, no earlier member, an existing official
  file untouched. zipfile never reads past a member's declared size.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path

from huggingface_hub import hf_hub_download

from app.errors import ModelUnavailableError, WeightsError
from app.specs import ModelSpec, OfficialArchive
from app.weights import hub, pins
from app.weights.resolve import local_dir
from app.weights.verify import sha256_of

#: A named member may unpack to at most this many times its packed size ...
MAX_RATIO = 100
#: ... once it unpacks to more than this many bytes (tiny files compress oddly).
RATIO_FLOOR = 1 << 20
_CHUNK = 8 << 20


def fetch_archive(spec: ModelSpec, progress: hub.Progress | None = None) -> Path:
    """Download ``spec``'s official archive (cached), check its pins and return its local path."""
    source = spec.official_archive and pins.official(spec)
    if source is None:
        raise ModelUnavailableError(f"{spec.name} has no official distribution on the Hub; see docs/weights.md "
                                    "for where its authors publish the files.")
    require_pin(source)
    settings = hub.settings()
    try:
        path = Path(hub.within_deadline(f"{source.file} from {source.repo}@{source.revision}", lambda: hf_hub_download(
            source.repo, source.file, revision=source.revision, cache_dir=settings.cache_dir,
            endpoint=settings.endpoint, local_files_only=settings.offline,
            tqdm_class=hub.progress_bar(progress, source.file))))
    except WeightsError:  # hub.DownloadTooSlowError: stopped at its deadline, its own message
        raise
    except Exception as exc:  # offline, unreachable, missing repo/file: one clear message
        raise ModelUnavailableError(f"Could not fetch {source.repo}/{source.file}@{source.revision}: {exc}") from exc
    check_pins(source, path)
    return path


def require_pin(source: OfficialArchive) -> None:
    """Refuse an archive without a sha256 pin: it holds pickles, so it must be the authors' exact file."""
    if not source.sha256:
        raise WeightsError(
            f"{source.repo}/{source.file} has no sha256 pin in the registry, so it was not fetched: an archive of "
            f"pickles is only opened once it is known to be the authors' file. To pin it, download {source.file} "
            f"from a source you trust, run `sha256sum {source.file}` and `stat -c %s {source.file}`, and set "
            "sha256=\"...\" and size=... on its OfficialArchive in app/registry.py.")


def check_pins(source: OfficialArchive, path: Path) -> None:
    """The download must have the pinned size (checked first, it is free) and sha256; it is never deleted."""
    require_pin(source)
    size = path.stat().st_size
    if source.size is not None and size != source.size:
        raise WeightsError(f"{source.file} from {source.repo} is {size} bytes, not the pinned {source.size}, so it "
                           f"was not opened. Nothing was deleted: remove {path} and fetch it again.")
    actual = sha256_of(path, fresh=True)
    if actual != source.sha256.lower():
        raise WeightsError(f"{source.file} from {source.repo} does not match its pinned sha256 (expected "
                           f"{source.sha256.lower()}, got {actual}), so it was not opened. Nothing was deleted: "
                           f"remove {path} and fetch it again.")


def extract_members(spec: ModelSpec, archive: Path, folder: Path | None = None) -> list[Path]:
    """Write the registry's members of ``archive`` into ``folder`` (default ``checkpoints/<id>/``), all or none."""
    source = spec.official_archive
    return extract_named(archive, source.members, folder or local_dir(spec), source.max_member_bytes)


def extract_named(archive: Path, members: dict[str, str], folder: Path, max_member_bytes: int) -> list[Path]:
    """Write ``members`` (path inside -> file name) of ``archive`` into ``folder``, all or none, each checked first.

    Shared by the Hub archive (LaMa) and the authors' zips on Google Drive (:mod:`app.weights.gdrive`).
    """
    try:
        with zipfile.ZipFile(archive) as bundle:
            infos = {target: _checked_member(bundle, archive, member, target, max_member_bytes)
                     for member, target in members.items()}
            return _extract_all(bundle, infos, folder, archive)
    except zipfile.BadZipFile as exc:
        raise WeightsError(f"{archive.name} is not a valid zip archive ({exc}); fetch it again.") from exc


def _checked_member(bundle: zipfile.ZipFile, archive: Path, member: str, target: str,
                    max_member_bytes: int) -> zipfile.ZipInfo:
    """The member's ZipInfo, refused before anything is written if it cannot be a sane release file."""
    if not target or Path(target).name != target or target in {".", ".."}:
        raise WeightsError(f"The registry names '{target}' as a file to extract; it must be a plain file name.")
    try:
        info = bundle.getinfo(member)
    except KeyError:
        raise WeightsError(f"{archive.name} has no {member}; is it the official archive?") from None
    refused = f"{archive.name}: {member} was not extracted (nor anything else)"
    if info.flag_bits & 0x1:
        raise WeightsError(f"{refused}: it is encrypted, and official archives are not.")
    if info.file_size > max_member_bytes:
        raise WeightsError(f"{refused}: it would unpack to {info.file_size:,} bytes, more than the "
                           f"{max_member_bytes:,} allowed for one file (max_member_bytes in the registry).")
    if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise WeightsError(f"{refused}: it would unpack to {info.file_size / max(info.compress_size, 1):,.0f} times "
                           f"its packed size (at most {MAX_RATIO} is allowed), which is how a zip bomb looks.")
    return info


def _extract_all(bundle: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], folder: Path, archive: Path) -> list[Path]:
    """Unpack into a staging folder, then rename over the official names; on failure leave ``folder`` as it was."""
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    _check_room(created[-1].parent if created else folder, infos, archive)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        staging = Path(tempfile.mkdtemp(prefix=".extracting-", dir=folder))
        try:
            for target, info in infos.items():
                _copy_member(bundle, info, staging / target, archive)
            for target in infos:
                os.replace(staging / target, folder / target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        for path in created:  # deepest first; only folders this call made, and only if empty
            _remove_empty(path)
        raise
    return [folder / target for target in infos]


def _check_room(existing: Path, infos: dict[str, zipfile.ZipInfo], archive: Path) -> None:
    """Refuse up front when the disk cannot hold the unpacked members."""
    needed = sum(info.file_size for info in infos.values())
    free = shutil.disk_usage(existing).free
    if needed > free:
        raise WeightsError(f"Extracting {archive.name} needs {needed / 1e6:,.0f} MB in {existing}, but only "
                           f"{free / 1e6:,.0f} MB are free; nothing was extracted. Free some space and try again.")


def _copy_member(bundle: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, archive: Path) -> None:
    """Copy one member to ``target`` (a new file): exactly its declared size, CRC checked by zipfile at EOF.

    zipfile stops at the declared size but accepts a shorter stream whose CRC matches what
    it read, so a member cut short is caught here by its length.
    """
    try:
        with bundle.open(info) as src, open(target, "xb") as dst:
            written = 0
            while chunk := src.read(_CHUNK):
                written += len(chunk)
                dst.write(chunk)
            if written != info.file_size:
                raise EOFError(f"{written:,} of its {info.file_size:,} bytes are there")
            dst.flush()
            os.fsync(dst.fileno())
    except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError, RuntimeError) as exc:
        raise WeightsError(f"{archive.name}: {info.filename} is damaged ({exc}); nothing was extracted and the "
                           "files already there are untouched. Fetch the archive again.") from exc
    except OSError as exc:  # disk full, quota, permissions
        raise WeightsError(f"Could not write {info.filename} from {archive.name} into {target.parent.parent} ({exc}); "
                           "nothing was extracted and the files already there are untouched.") from exc


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass
