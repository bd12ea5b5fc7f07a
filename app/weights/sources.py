"""Where a model's weights come from, in words: one answer for the page, ``weights list`` and the README.

Three places used to word the source each their own way (the page said "the authors' weights",
the CLI a repo id, the README a prose list), and the README drifted. :func:`describe_source` is
the one description; sizes come only from what is recorded (the registry's and pins' byte counts,
first-use pins, or the size a network declares for its safetensors, marked ``~``), never guessed:
"size unknown" otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.errors import InpaintError
from app.registry import MODELS, TEXT_FINDERS
from app.specs import ModelSpec, OfficialArchive, OfficialDownload
from app.weights import hub_pipeline, pins
from app.weights.resolve import Location, locate, mirror

Kind = Literal["built-in", "disk", "mirror", "hub", "server", "drive", "none"]

#: What each kind of source is called wherever a person reads it.
LABELS: dict[Kind, str] = {
    "built-in": "built in (no weights)",
    "disk": "this server's disk",
    "mirror": "this server's mirror on the Hugging Face Hub",
    "hub": "the Hugging Face Hub",
    "server": "the authors' server",
    "drive": "the authors' Google Drive",
    "none": "nowhere yet: mirror the authors' files with `weights push`",
}


@dataclass(frozen=True)
class Source:
    """One source of weights: its kind, what people read, and the download's size when it is recorded."""

    kind: Kind
    label: str
    size_bytes: int | None = None
    approx: bool = False  # the size a network declares for its converted safetensors, not a recorded byte count

    @property
    def size(self) -> str:
        """"381 MB", "~204 MB" (declared, approximate) or "size unknown" — never a guess."""
        if self.size_bytes is None:
            return "size unknown"
        n = self.size_bytes
        amount = f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{max(1, n // 1000)} kB"
        return ("~" if self.approx else "") + amount


def _source(kind: Kind, size_bytes: int | None = None, approx: bool = False) -> Source:
    return Source(kind, LABELS[kind], size_bytes, approx)


def drive_release(spec: ModelSpec) -> object | None:
    """The authors' Google Drive release of ``spec`` (``ModelSpec.official_drive``), or None."""
    return getattr(spec, "official_drive", None)


def official_source(spec: ModelSpec, pinned: bool = True) -> Source | None:
    """The authors' own release the app fetches by itself, or None: from the registry and, when ``pinned``,
    with the size the deployment's pins file re-pins."""
    pipeline = getattr(spec, "hub_pipeline", None)
    if pipeline is not None:  # a diffusers pipeline: the authors' Hub repo, its size as declared
        return _source("hub", pipeline.approx_mb * 1_000_000, approx=True)
    release = spec.official_archive or spec.official_download
    try:
        release = pins.official(spec) if pinned else release
    except InpaintError:  # a malformed pins file: availability() reports it; the registry still says where
        pass
    if isinstance(release, OfficialArchive):
        return _source("hub", release.size)
    if isinstance(release, OfficialDownload):
        return _source("server", release.size)
    drive = release or drive_release(spec)
    if drive is not None:
        size = getattr(drive, "size", None)  # the registry's approximate figure, for display only
        return _source("drive", size, approx=size is not None)
    return None


def mirror_source(spec: ModelSpec) -> Source | None:
    """This deployment's Hub mirror of ``spec`` (pins.json or ``INPAINT_HUB_NAMESPACE``), or None when none is set."""
    try:
        if mirror(spec) is None:
            return None
        first = pins.first_use(spec)
    except InpaintError:
        return None
    files = mirror(spec).files
    kind = _mirror_kind(spec)  # someone's copy is not our conversion: its size is recorded, else unknown
    if files and all(name in first for name in files):  # each file's size as its first use recorded it
        return _source(kind, sum(first[name].size for name in files))
    return _source(kind, *(_declared_bytes(spec) if kind == "mirror" else (None, False)))


def _mirror_kind(spec: ModelSpec) -> Kind:
    """A repo the registry names in full (MAT's ``Acly/MAT``) is someone's copy on the Hub, not this server's mirror."""
    return "hub" if mirror(spec) is spec.weights and "/" in spec.weights.repo else "mirror"


def _declared_bytes(spec: ModelSpec) -> tuple[int | None, bool]:
    """The network's declared safetensors size (approximate), or (None, False) when it declares none."""
    try:
        mb = spec.network().FACTS.approx_mb
    except (ImportError, AttributeError, InpaintError):
        return None, False
    return (mb * 1_000_000, True) if mb else (None, False)


def describe_source(spec: ModelSpec, location: Location | None = None) -> Source:
    """Where ``spec``'s weights come from on this server now (``location``: :func:`locate`'s answer, if known).

    On disk: the disk, with the files' size. In the Hub cache or to be fetched from it: the mirror.
    To be fetched otherwise, or not obtainable now (offline, a source silent): the mirror when one is
    configured (it comes first), else the authors' release the app would fetch, so ``weights list``
    names it offline too; a model with neither needs a mirror (``weights push``).
    """
    if spec.kind == "classical":
        return _source("built-in")
    if location is None:
        try:
            location = hub_pipeline.locate(spec) if spec.kind == "diffusion" else locate(spec)
        except InpaintError:
            location = None
    if location is not None and location.status == "local":
        return _source("disk", _bytes_of(location))
    if spec.kind == "diffusion":
        return official_source(spec)
    if location is not None and (location.status == "cached" or location.via == "mirror"):
        if location.paths:
            return _source(_mirror_kind(spec), _bytes_of(location))
        return mirror_source(spec) or _source("mirror")
    return mirror_source(spec) or official_source(spec) or _source("none", *_declared_bytes(spec))


def _bytes_of(location: Location) -> int | None:
    try:
        return sum(path.stat().st_size for path in location.paths)
    except OSError:
        return None


def registry_source(spec: ModelSpec) -> Source:
    """Where a fresh deployment (no mirror, no files on disk) gets ``spec``'s weights: the README's answer."""
    if spec.kind == "classical":
        return _source("built-in")
    return official_source(spec, pinned=False) or _source("none", *_declared_bytes(spec))


def first_visit(spec: ModelSpec) -> str:
    """What choosing ``spec`` does on a fresh deployment: ready, a download from its source, or a mirror to push."""
    source = registry_source(spec)
    if source.kind == "built-in":
        return "ready"
    if source.kind == "none":
        return "needs `weights push` (unavailable until then)"
    return download_phrase(source, "")


def download_phrase(source: Source, when: str = " on first use") -> str:
    """E.g. "downloads 381 MB from the Hugging Face Hub on first use" (the size only where it is recorded)."""
    if source.size_bytes is None:
        return f"downloads from {source.label}{when} (size unknown)"
    return f"downloads {source.size} from {source.label}{when}"


def readme_table(specs: tuple[ModelSpec, ...] | None = None) -> str:
    """The README's model table: every model, its source, size, licence and first visit (generated, never edited).

    By default the inpainters, then the text finders (*Find text*), whose weights come the same ways.
    """
    specs = MODELS + TEXT_FINDERS if specs is None else specs
    rows = ["| model | id | weights from | size | licence | first visit |", "|---|---|---|---|---|---|"]
    for spec in specs:
        source = registry_source(spec)
        size = "–" if source.kind == "built-in" else source.size
        rows.append(f"| {spec.name} | `{spec.id}` | {source.label} | {size} | {spec.licence} | "
                    f"{first_visit(spec)} |")
    return "\n".join(rows)
