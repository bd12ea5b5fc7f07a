"""An author's release file over plain HTTPS, downloaded into a staging folder and checked before use.

The transfer is huggingface_hub's own ``http_get`` (retries, resume, progress bar) under the same
overall deadline and stall rule as Hub downloads (:func:`app.weights.hub.within_deadline`). Every
request, each redirect included, must be HTTPS to the authors' host or a CDN it is known to use
(:func:`check_hop`); a redirect anywhere else is refused before it connects. The file may not
grow past its declared size or ``max_bytes``; then its size and sha256 (the full pin, else the
prefix the authors put in its name, else the md5 the publisher's own code checks) are checked. A
refused file is the caller's staging folder to delete; nothing is kept.
"""

from __future__ import annotations

import hashlib
import ipaddress
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from huggingface_hub.file_download import http_get

from app.errors import ModelUnavailableError, WeightsError
from app.specs import OfficialDownload
from app.weights import hub
from app.weights.verify import sha256_of

#: Hosts an authors' server may redirect its downloads to (its CDN), by the host of the registry's address.
#: Any other host, and any hop that is not HTTPS, is refused. download.openmmlab.com is served from this
#: Alibaba Cloud bucket (the address OpenMMLab's own issues give for the same files).
CDN_HOSTS: dict[str, frozenset[str]] = {
    "download.openmmlab.com": frozenset({"openmmlab.oss-accelerate.aliyuncs.com"}),
    # GitHub release assets (MAT's weights in IOPaint's release) are served from GitHub's asset hosts.
    "github.com": frozenset({"objects.githubusercontent.com", "release-assets.githubusercontent.com"}),
}


def fetch_download(source: OfficialDownload, folder: Path, progress: hub.Progress | None = None) -> Path:
    """``source`` downloaded to ``folder / source.file``, its size and sha256 checked."""
    check_url(source.url)
    require_pin(source)
    target = folder / source.file
    what = f"{source.file} from {host(source.url)}"
    with open(target, "xb") as out, hub.hop_rule(lambda url: check_hop(source.url, url, source.file)):
        capped = _Capped(out, source.size or source.max_bytes, what)
        try:
            hub.within_deadline(what, lambda: http_get(source.url, capped, expected_size=source.size,
                                                       displayed_filename=source.file,
                                                       tqdm_class=hub.progress_bar(progress, source.file)))
        except WeightsError:
            raise
        except Exception as exc:  # refused, DNS, TLS, 404...: one message that says what was tried
            raise ModelUnavailableError(f"Could not download {source.url}: {type(exc).__name__}: "
                                        f"{str(exc).splitlines()[0][:300] if str(exc) else 'no details'}") from exc
    check_pins(source, target)
    return target


def host(url: str) -> str:
    return urlsplit(url).hostname or url


def check_url(url: str) -> None:
    """HTTPS only (plain HTTP only to a loopback host, where the tests serve their files)."""
    if not _secure(url):
        raise WeightsError(f"{url} is not an https:// address; official files are only downloaded over HTTPS.")


def _secure(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and _loopback(parts.hostname or ""))


def allowed_hosts(url: str) -> frozenset[str]:
    """Where a download from ``url`` may be served from: its own host and the CDN hosts known for it."""
    first = host(url)
    return frozenset({first}) | CDN_HOSTS.get(first, frozenset())


def check_hop(first: str, url: str, file: str) -> None:
    """Every request of a download of ``file`` from ``first``, redirects included: HTTPS to an allowed host.

    Only the registry's address was ever checked before, so a server (or whoever took over its
    name) could send the download anywhere by redirecting it; now each hop is held to the same rule.
    """
    hop, origin = host(url), host(first)
    if hop not in allowed_hosts(first):
        raise WeightsError(f"Downloading {file} was refused: {origin} sent it on to {hop}, which is neither the "
                           f"authors' server nor a CDN it is known to use, so nothing was downloaded from {hop}.")
    if not _secure(url):
        raise WeightsError(f"Downloading {file} was refused: {origin} sent it on to {urlsplit(url).scheme}://{hop}, "
                           "not an https:// address; official files are only downloaded over HTTPS.")


def _loopback(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return name == "localhost"


def require_pin(source: OfficialDownload) -> None:
    if not (source.sha256 or len(source.sha256_prefix) >= 8 or len(source.md5) == 32):
        raise WeightsError(f"{source.file} has neither a sha256, the 8-digit prefix of one, nor an md5 in the "
                           "registry, so it is not downloaded: a pickle is only opened once it is known to be the "
                           "authors' file.")


def check_pins(source: OfficialDownload, path: Path) -> None:
    """The declared size (when known), then the full sha256 pin or the prefix from the release name."""
    size = path.stat().st_size
    if source.size is not None and size != source.size:
        raise WeightsError(f"{source.file} from {host(source.url)} is {size} bytes, not the pinned {source.size}; "
                           "it was not used. Try again.")
    if not (source.sha256 or source.sha256_prefix):  # only the md5 the publisher's own code checks
        kind, actual, expected = "md5", md5_of(path), source.md5.lower()
    else:
        kind, actual, expected = "sha256", sha256_of(path, fresh=True), (source.sha256 or source.sha256_prefix).lower()
    if not actual.startswith(expected):
        raise WeightsError(f"{source.file} from {host(source.url)} does not match its pinned {kind} (expected "
                           f"{expected}{'' if source.sha256 else '...'}, got {actual}); it was not used. Try again, "
                           "or check where the address now leads.")


def md5_of(path: Path) -> str:
    """md5 of ``path``: only ever compared with a publisher's md5 pin, never trusted for anything else."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Capped:
    """A file that refuses to grow past ``limit`` bytes: a server cannot fill the disk."""

    def __init__(self, out: BinaryIO, limit: int, what: str) -> None:
        self._out, self._limit, self._what, self.written = out, limit, what, 0

    def write(self, data: bytes) -> int:
        self.written += len(data)
        if self.written > self._limit:
            raise WeightsError(f"Downloading {self._what} was stopped: the server sent more than the "
                               f"{self._limit:,} bytes expected; nothing of it is used.")
        return self._out.write(data)

    def __getattr__(self, name: str):  # tell, seek, flush...: the real file's
        return getattr(self._out, name)
