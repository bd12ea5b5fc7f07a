"""Where a model's weights come from right now: decided once, from disk and settings, without network.

First hit wins:

1. ``checkpoints/<model-id>/`` — our ``model.safetensors``, else the authors' release files
   (the user's own files always win; pickles are read safely by :mod:`app.weights.official`);
2. ``$HF_HOME/inpaint-studio/<model-id>/`` — safetensors this app converted from the authors'
   official archive on an earlier first use (:mod:`app.weights.provision`);
3. the configured Hub mirror (:func:`mirror`) in huggingface_hub's cache at its pinned revision;
4. a download (``remote``): from the mirror when one is configured, else the authors' official
   archive on the Hub (downloaded or found preloaded in the cache, then converted), their HTTPS
   file or their Google Drive release (downloaded, converted, pinned on first use), unless
   offline, nothing is configured or the Hub was just unreachable (``missing``, with the
   message that says what to provide).

:func:`locate` returns a :class:`Location` naming the exact files; :func:`app.weights.loader.load_state`
then reads exactly those files and looks nowhere else (the pattern of timm's
``_resolve_pretrained_source`` -> ``load_pretrained``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from app.errors import InpaintError, WeightsError
from app.specs import HUB_NAMESPACE_ENV, HubWeights, ModelSpec, OfficialArchive
from app.weights import hub, pins
from app.weights.official import OfficialFile, find_official
from app.weights.verify import known_sha256

SAFETENSORS_NAME = "model.safetensors"
CHECKPOINTS_ENV = "INPAINT_CHECKPOINTS"

PROVISIONED_DIR = "inpaint-studio"  # under HF_HOME: safetensors converted from official archives

Status = Literal["local", "cached", "remote", "missing"]


@dataclass(frozen=True)
class Entry:
    """One file of a resolved location and how to read it."""

    path: Path
    sha256: str | None = None  # pinned hash to check before use (Hub files)
    official: OfficialFile | None = None  # None = safetensors in our layout; else the authors' file it is

    @property
    def name(self) -> str:
        return self.official.name if self.official else self.path.name


@dataclass(frozen=True)
class Location:
    """Where a model's weights would come from right now, found without any network call.

    ``entries`` are the exact files to read (none for ``remote`` and ``missing``); ``source``
    names them in load errors; ``reason`` is what the UI and CLI show; ``via`` says what a
    ``remote`` location fetches: the Hub mirror's safetensors or the authors' archive.
    """

    status: Status
    reason: str
    entries: tuple[Entry, ...] = ()
    source: str = ""
    via: Literal["mirror", "archive", ""] = ""
    public: str = ""  # the same for a visitor: no server paths, no commands ("" = ready, nothing to say)

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(entry.path for entry in self.entries)


def checkpoints_root() -> Path:
    """``$INPAINT_CHECKPOINTS`` or the repo's ``checkpoints/`` folder."""
    env = os.environ.get(CHECKPOINTS_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "checkpoints"


def local_dir(spec: ModelSpec) -> Path:
    return checkpoints_root() / spec.id


def declared_official_files(spec: ModelSpec) -> tuple[OfficialFile, ...]:
    """The authors' release files the network of ``spec`` declares in its facts."""
    return spec.network().FACTS.official_files


def official_files_if_importable(spec: ModelSpec) -> tuple[OfficialFile, ...]:
    """:func:`declared_official_files`, or () when the network's module cannot be imported yet.

    Listing and messages must work for every registered model, even one whose optional
    dependencies are missing; loading it reports the import error instead.
    """
    try:
        return declared_official_files(spec)
    except ImportError:
        return ()


def find_local(spec: ModelSpec, folder: Path | None = None) -> tuple[Entry, ...]:
    """A complete set of weights in ``folder`` (default ``checkpoints/<id>/``), else ().

    The one place that applies the rule: our ``model.safetensors`` first, then the authors'
    files (each under its name or an alias) when every required one is there.
    """
    folder = local_dir(spec) if folder is None else folder
    if (folder / SAFETENSORS_NAME).is_file():
        return (Entry(folder / SAFETENSORS_NAME),)
    found = find_official(folder, official_files_if_importable(spec))
    return tuple(Entry(path, official=file) for file, path in found or ())


def provisioned_dir(spec: ModelSpec) -> Path:
    """Where safetensors converted from ``spec``'s official archive are kept, in the Hugging Face cache."""
    return Path(hub.settings().home) / PROVISIONED_DIR / spec.id


def mirror(spec: ModelSpec) -> HubWeights | None:
    """The Hub mirror of ``spec``'s safetensors this deployment uses, or None when none is configured.

    A mirror recorded in the pins file wins; the registry's entry counts when it names a full
    repo id or when ``INPAINT_HUB_NAMESPACE`` says whose mirrors to use. Without either, a
    placeholder namespace would only be a failed download at the user's first click.
    """
    recorded = pins.recorded_mirror(spec)
    if recorded is not None or spec.weights is None:
        return recorded
    return spec.weights if "/" in spec.weights.repo or os.environ.get(HUB_NAMESPACE_ENV) else None


def hub_files(spec: ModelSpec) -> dict[str, str | None]:
    """The mirror's files of ``spec`` (name -> pinned sha256, None = not pinned yet); safetensors only.

    A file the mirror does not pin is held to its first-use pin once there is one (pins.json's
    ``first_use``), so every check of a pin (download, cache hit, ``weights verify``) applies to it.
    """
    weights = mirror(spec)
    if weights is None:
        return {}
    unsafe = [name for name in weights.files if not name.endswith(".safetensors")]
    if unsafe:
        raise WeightsError(f"{spec.name}: the registry names {', '.join(unsafe)} on the Hub, but only .safetensors "
                           "files are downloaded (nothing downloaded is ever unpickled).")
    first = pins.first_use(spec) if None in weights.files.values() else {}
    return {name: sha or (first[name].sha256 if name in first else None) for name, sha in weights.files.items()}


def hub_file(spec: ModelSpec, name: str) -> hub.HubFile:
    weights = mirror(spec)
    return hub.HubFile(weights.repo_id, name, weights.revision)


def cached_paths(spec: ModelSpec, settings: hub.HubSettings | None = None) -> dict[str, Path]:
    """Every Hub file of ``spec`` at its pinned revision in the local cache, or {} (no network)."""
    files = hub_files(spec)
    settings = settings or hub.settings()
    found = {}
    for name in files:
        path = hub.cached_file(hub_file(spec, name), settings)
        if path is None:
            return {}
        found[name] = path
    return found


def locate(spec: ModelSpec) -> Location:
    """Local folder -> converted archive -> mirror cache -> download, decided from disk and settings alone."""
    local = find_local(spec)
    if local:
        folder = local_dir(spec)
        return Location("local", f"local weights in {folder}", local, f"weights in {folder}")
    converted = provisioned_dir(spec) / SAFETENSORS_NAME
    if converted.is_file():
        return Location("local", f"converted from {official_name(spec)}", (Entry(converted),),
                        f"weights converted from {official_name(spec)} ({converted})")
    settings = hub.settings()
    cached = cached_paths(spec, settings)
    if cached:
        return _cached_location(spec, cached)
    why = why_no_download(spec, settings)
    if not why:
        return Location("remote", f"will download {approx_size(spec)} from {where(spec)} on first use", via="mirror",
                        public=f"downloads {approx_size(spec)} on first use")
    return _official_location(spec, settings) or Location("missing", missing_message(spec, why),
                                                          public=visitor_reason(settings))


def visitor_reason(settings: hub.HubSettings) -> str:
    """Why weights cannot be had, in words for a visitor of the page (the operator's detail is in the log and CLI)."""
    if settings.offline:
        return "this server is offline and does not have its weights"
    if hub.unreachable_reason(settings.endpoint):
        return "the Hugging Face Hub cannot be reached right now"
    return "its weights are not installed on this server"


def official_name(spec: ModelSpec) -> str:
    """The authors' own file as messages name it: ``repo/file`` on the Hub, ``file from host`` elsewhere."""
    if spec.official_archive:
        return f"{spec.official_archive.repo}/{spec.official_archive.file}"
    if spec.official_download:
        return f"{spec.official_download.file} from {urlsplit(spec.official_download.url).hostname}"
    if spec.official_drive:
        return f"the authors' {spec.official_drive.where}"
    return "nothing"


def _official_location(spec: ModelSpec, settings: hub.HubSettings) -> Location | None:
    """The authors' own file as a source: already in the cache (a preloaded archive), or downloadable now."""
    source = pins.official(spec)
    if source is None:
        return _drive_location(spec, settings)
    if isinstance(source, OfficialArchive):
        if not source.sha256:
            return None
        if hub.cached_file(hub.HubFile(source.repo, source.file, source.revision), settings) is not None:
            return Location("remote", f"will convert {official_name(spec)} (already downloaded) on first use",
                            via="archive", public="prepares its weights on first use")
    hub_down = isinstance(source, OfficialArchive) and hub.unreachable_reason(settings.endpoint)
    if settings.offline or hub_down:  # an HTTPS file's own server is asked by app.weights.probe
        return None
    size = f"~{source.size / 1e6:.0f} MB" if source.size else approx_size(spec)
    size = f"{size} " if size.startswith("~") else ""  # "the weights" says nothing here
    return Location("remote", f"will download {size}{official_name(spec)} and convert it on first use", via="archive",
                    public=f"downloads {size}the authors' weights on first use")


def _drive_location(spec: ModelSpec, settings: hub.HubSettings) -> Location | None:
    """The authors' Google Drive release as a source (asked by app.weights.probe before it counts as ready)."""
    release = spec.official_drive
    if release is None or settings.offline:
        return None
    size = f"~{release.size / 1e6:.0f} MB " if release.size else ""
    return Location("remote", f"will download {size}{official_name(spec)} and convert it on first use", via="archive",
                    public=f"downloads {size}the authors' weights from Google Drive on first use")


def cached_location(spec: ModelSpec, paths: dict[str, Path]) -> Location:
    """The location of Hub files already in the cache (or just downloaded), with their pins."""
    pins = hub_files(spec)
    entries = tuple(Entry(path, sha256=pins[name]) for name, path in paths.items())
    return Location("cached", f"cached from {where(spec)}", entries, f"weights from {where(spec)}")


def _cached_location(spec: ModelSpec, paths: dict[str, Path]) -> Location:
    refused = known_mismatch(spec, paths)
    if refused:
        return Location("missing", refused, public="its downloaded weights failed their checksum")
    return cached_location(spec, paths)


def known_mismatch(spec: ModelSpec, paths: dict[str, Path]) -> str:
    """The refusal message of a cached file already hashed to something else than its pin.

    A memo lookup only (no hashing), so availability() can report a refused file up front.
    """
    pins = hub_files(spec)
    for name, path in paths.items():
        actual = known_sha256(path)
        if pins.get(name) and actual and actual != pins[name].lower():
            return (f"{spec.name}: the cached {name} failed its sha256 check (expected {pins[name].lower()}, "
                    f"got {actual}; {path}). Re-download it with `python -m app weights download --force {spec.id}`.")
    return ""


def why_no_download(spec: ModelSpec, settings: hub.HubSettings) -> str:
    """Why a download cannot even be tried now ("" = it can)."""
    if not hub_files(spec):
        return f"no Hub mirror is configured for it ({HUB_NAMESPACE_ENV} unset, none recorded by `weights push`)"
    if settings.offline:
        return "offline mode is on (HF_HUB_OFFLINE=1) and they are not in the Hugging Face cache"
    return hub.unreachable_reason(settings.endpoint)


def approx_size(spec: ModelSpec) -> str:
    """The network's declared download size, shown before the first download."""
    try:
        mb = spec.network().FACTS.approx_mb
    except (ImportError, AttributeError, InpaintError):  # not installed, or not a network: no size to show
        mb = None
    return f"~{mb} MB" if mb else "the weights"


def where(spec: ModelSpec) -> str:
    weights = mirror(spec)
    return weights.where if weights else "nowhere"


def describe_expected(spec: ModelSpec) -> str:
    """What to put in ``checkpoints/<id>/``: our safetensors or the required official files."""
    official = " + ".join(f.name for f in declared_official_files(spec) if f.required)
    return f"{SAFETENSORS_NAME}" + (f" or the official {official}" if official else "")


def missing_message(spec: ModelSpec, why: str) -> str:
    """The one message UI, CLI and errors use: what is wrong and exactly what to provide.

    One line, so it fits a table cell in the UI as well as a terminal.
    """
    try:
        expected = describe_expected(spec)
    except (ImportError, AttributeError, InpaintError):  # the message is written whatever the entry is
        expected = SAFETENSORS_NAME
    text = f"{spec.name} weights are not available: {why}. Put {expected} in {local_dir(spec)}/"
    if spec.card.weights_source:
        text += f" (official files: {spec.card.weights_source})"
    weights = mirror(spec)
    if weights is not None:
        text += (f", or run `python -m app weights download {spec.id}` while online to fetch "
                 f"{', '.join(weights.files)} from {where(spec)} into {hub.settings().cache_dir}")
    elif spec.weights is not None:
        text += f", or mirror them once with `python -m app weights push {spec.id} --namespace <yours>`"
    if spec.official_archive or spec.official_download or spec.official_drive:
        text += f"; the app converts the official {official_name(spec)} by itself once it can download it"
    return text + "."
