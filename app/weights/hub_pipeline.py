"""A diffusers pipeline from its authors' Hub repo (the diffusion remover): found, fetched at a pin, loaded offline.

Where its files come from, decided without network (the order of every other model's weights):

1. ``checkpoints/<id>/`` holding ``model_index.json`` and the component folders (the operator's copy);
2. huggingface_hub's cache at the pinned commit, every pinned file present;
3. a download: ``model_index.json`` first, checked (it must name the registry's pipeline class and
   only diffusers/transformers classes, so ``from_pretrained`` imports nothing else and runs no
   remote code), then exactly the files of the components it names that are JSON, plain text
   (tokenizer vocabularies) or ``.safetensors`` — never a pickle or code. Where a component holds
   the same weights twice (``x.safetensors`` and a ``x.fp16.safetensors`` variant) only the plain
   file is taken.

Trust on first use, as for the segmenters (:mod:`app.weights.pretrained`): a repo with no commit in
the registry is fetched at the commit its default branch is at then; once the pipeline loaded,
that commit and every file's sha256 and size are recorded in pins.json (``first_use``), and every
later use fetches that commit and must match, or the file is refused with both hashes and deleted
from the cache again. A LoRA the pipeline fuses (RORem's LCM LoRA) comes from the authors' Google
Drive through :mod:`app.weights.gdrive` and is pinned the same way.

Disk: the download is the size the registry states (``approx_mb``, about 7 GB for RORem), once per
server, in the Hugging Face cache; nothing is converted or copied.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import torch
from huggingface_hub import HfApi
from huggingface_hub.errors import (
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from app.errors import ModelUnavailableError, WeightsError
from app.specs import HubPipeline, ModelSpec
from app.weights import gdrive, hub, pins, probe
from app.weights.fetch import discard
from app.weights.resolve import Location, checkpoints_root, provisioned_dir
from app.weights.verify import check_safetensors, sha256_of

INDEX = "model_index.json"
#: What may be downloaded: configuration, tokenizer vocabularies, safetensors. Nothing executable or pickled.
SAFE_SUFFIXES = (".json", ".txt", ".safetensors")
#: The libraries ``model_index.json`` may take a component class from (diffusers imports it from there).
LIBRARIES = ("diffusers", "transformers")
#: ``INPAINT_SLOW_ON_CPU=1`` offers a model that needs minutes per fill on a CPU (``ModelSpec.cpu_seconds_512``).
SLOW_ON_CPU_ENV = "INPAINT_SLOW_ON_CPU"
T = TypeVar("T")

log = logging.getLogger(__name__)
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def pipeline_of(spec: ModelSpec) -> HubPipeline:
    if spec.hub_pipeline is None:
        raise ModelUnavailableError(f"{spec.name} names no diffusers pipeline (registry.hub_pipeline).")
    return spec.hub_pipeline


def local_folder(spec: ModelSpec) -> Path:
    return checkpoints_root() / spec.id


def pinned(spec: ModelSpec) -> tuple[str, dict[str, pins.FirstUsePin]]:
    """The commit the pipeline's files were pinned at (registry first, then first use) and those pins."""
    source = pipeline_of(spec)
    first = {name: pin for name, pin in pins.first_use(spec).items() if pin.where.startswith(f"{source.repo}@")}
    commits = {pin.where.rpartition("@")[2] for pin in first.values()}
    commit = source.revision or (commits.pop() if len(commits) == 1 else "")
    return commit, {name: pin for name, pin in first.items() if pin.where == f"{source.repo}@{commit}"}


def cached_folder(spec: ModelSpec, settings: hub.HubSettings | None = None) -> Path | None:
    """The snapshot folder holding every pinned file at the pinned commit, or None (no network)."""
    commit, files = pinned(spec)
    if not commit or INDEX not in files:
        return None
    settings = settings or hub.settings()
    roots = set()
    for name in files:
        path = hub.cached_file(hub.HubFile(pipeline_of(spec).repo, name, commit), settings)
        if path is None:
            return None
        roots.add(path.parents[len(PurePosixPath(name).parts) - 1])
    return roots.pop() if len(roots) == 1 else None


def locate(spec: ModelSpec) -> Location:
    """Where the pipeline's files are, or would come from, right now (no network)."""
    source = pipeline_of(spec)
    folder = local_folder(spec)
    if (folder / INDEX).is_file():
        return Location("local", f"local files in {folder}", source=str(folder))
    settings = hub.settings()
    if cached_folder(spec, settings) is not None and _lora_ready(spec):
        return Location("cached", f"cached from {source.repo}@{pinned(spec)[0]}", source=source.repo)
    why = "offline mode is on (HF_HUB_OFFLINE=1)" if settings.offline else hub.unreachable_reason(settings.endpoint)
    if why:
        public = "this server is offline and does not have its weights" if settings.offline \
            else "the Hugging Face Hub cannot be reached right now"
        return Location("missing", f"{spec.name} is not available: {why}. Put the pipeline's folders and "
                        f"{INDEX} in {folder}/.", public=public)
    commit = pinned(spec)[0]
    at = f"{source.repo}@{commit}" if commit else f"{source.repo} (its default branch's commit, then pinned)"
    return Location("remote", f"will download ~{source.approx_mb} MB from {at} on first use", via="mirror",
                    public=f"downloads ~{source.approx_mb} MB on first use")


def too_slow_here(spec: ModelSpec, device: torch.device) -> str:
    """Why ``spec`` is not offered on ``device`` (a CPU where a fill takes minutes), or ""."""
    if device.type == "cuda" or spec.cpu_seconds_512 is None:
        return ""
    if os.environ.get(SLOW_ON_CPU_ENV, "").strip().lower() in {"1", "true", "yes", "on"}:
        return ""
    return (f"{spec.name} needs a GPU: one 512x512 fill took {spec.cpu_seconds_512 / 60:.0f} min on a 2-core CPU "
            f"(docs/benchmarks/diffusion.json). Set {SLOW_ON_CPU_ENV}=1 to offer it on this CPU anyway.")


def silence(spec: ModelSpec) -> probe.Silence | None:
    """None when the Hub answered (now or recently) for the pipeline's index; else why not."""
    commit = pinned(spec)[0] or "main"
    return probe.hub_silence(spec, [hub.HubFile(pipeline_of(spec).repo, INDEX, commit)])


# ----------------------------------------------------------------------------- fetching


def obtain(spec: ModelSpec, progress: hub.Progress | None = None) -> tuple[Path, Path | None, Callable[[], None]]:
    """(pipeline folder, LoRA file or None, pin step): fetched now where needed, checked against their pins.

    Call the pin step once the pipeline loaded: it records what had no pin yet (trust on first use).
    """
    location = locate(spec)
    if location.status == "missing":
        raise ModelUnavailableError(location.reason)
    with _lock_for(spec.id):
        if location.status == "local":
            return local_folder(spec), _local_lora(spec), _nothing
        folder, pin_files = _from_hub(spec, progress)
        lora, pin_lora = _lora(spec, progress)
        return folder, lora, lambda: (pin_files(), pin_lora())


def _lock_for(model_id: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(model_id, threading.Lock())


def _nothing() -> None:
    """Local files are the operator's: nothing to pin."""


def _from_hub(spec: ModelSpec, progress: hub.Progress | None) -> tuple[Path, Callable[[], None]]:
    source, settings = pipeline_of(spec), hub.settings()
    commit, first = pinned(spec)
    commit = commit or _on_hub(spec, settings, lambda: hub.branch_commit(source.repo, spec.name, settings))
    index = _download(spec, source.repo, INDEX, commit, settings, progress)
    components = check_index(spec, index)
    names = sorted(first) if INDEX in first else [INDEX, *_files_of(spec, source.repo, commit, components, settings)]
    downloaded = [name for name in names if hub.cached_file(hub.HubFile(source.repo, name, commit), settings) is None]
    paths = {name: _download(spec, source.repo, name, commit, settings, progress) for name in names}
    try:
        for name, path in paths.items():
            if name.endswith(".safetensors"):
                check_safetensors(path)
            if name in first and (actual := sha256_of(path, fresh=name in downloaded)) != first[name].sha256:
                raise WeightsError(_refusal(spec, name, first[name], actual))
    except WeightsError as exc:
        for name in downloaded:
            discard(paths[name])
        probe.refused(spec, [hub.HubFile(source.repo, INDEX, commit)], str(exc))
        raise WeightsError(f"{exc} The download was deleted again." if downloaded else str(exc)) from exc
    folder = index.parent
    where = f"{source.repo}@{commit}"

    def pin() -> None:
        fresh = {name: pins.FirstUsePin(sha256_of(path), path.stat().st_size, where)
                 for name, path in paths.items() if name not in first}
        if fresh:
            _record(spec, fresh)
    return folder, pin


def _files_of(spec: ModelSpec, repo: str, commit: str, components: list[str], settings: hub.HubSettings) -> list[str]:
    """The repo's files at ``commit`` inside the named components that are safe to download (see module doc)."""
    listing = _on_hub(spec, settings, lambda: [
        sibling.rfilename for sibling in
        HfApi(endpoint=settings.endpoint).model_info(repo, revision=commit, timeout=hub.PROBE_TIMEOUT).siblings or []])
    wanted = [name for name in listing if PurePosixPath(name).parts[0] in components
              and len(PurePosixPath(name).parts) == 2 and name.endswith(SAFE_SUFFIXES)]
    plain = set(wanted)
    return [name for name in wanted if not _is_variant_of(name, plain)]


def _is_variant_of(name: str, names: set[str]) -> bool:
    """``unet/x.fp16.safetensors`` when ``unet/x.safetensors`` is there too (the same weights, other dtype)."""
    path = PurePosixPath(name)
    stem, dot, variant = path.stem.rpartition(".")
    return bool(dot) and path.suffix == ".safetensors" and str(path.with_name(stem + path.suffix)) in names


def _download(spec: ModelSpec, repo: str, name: str, commit: str, settings: hub.HubSettings,
              progress: hub.Progress | None) -> Path:
    file = hub.HubFile(repo, name, commit)
    cached = hub.cached_file(file, settings)
    if cached is not None:
        return cached
    return _on_hub(spec, settings, lambda: hub.download_file(file, spec.name, settings, progress))


def _on_hub(spec: ModelSpec, settings: hub.HubSettings, call: Callable[[], T]) -> T:
    """``call()``, a Hub request for ``spec``, its errors made ``spec``'s messages."""
    try:
        return call()
    except WeightsError:
        raise
    except (RevisionNotFoundError, RemoteEntryNotFoundError, RepositoryNotFoundError) as exc:
        raise ModelUnavailableError(f"{spec.name} is not available: {pipeline_of(spec).repo} does not have what "
                                    f"was pinned ({type(exc).__name__}).") from exc
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, HfHubHTTPError) as exc:
        if not settings.offline:
            hub.mark_unreachable(settings.endpoint, exc.__cause__ or exc)
        raise ModelUnavailableError(f"{spec.name} is not available: the Hub could not be reached ({exc}).") from exc
    except OSError as exc:
        raise WeightsError(f"Downloading {spec.name}'s files failed: {exc}") from exc


def _refusal(spec: ModelSpec, name: str, pin: pins.FirstUsePin, actual: str) -> str:
    origin, advice = pins.why_pinned(spec, name, pin.sha256, "the Hub serves other bytes than the pinned ones")
    return (f"{spec.name}: {name} of {pin.where} failed its sha256 check and was NOT used.\n"
            f"  expected: {pin.sha256} ({origin})\n  actual:   {actual}\nNothing was loaded. {advice}")


def _record(spec: ModelSpec, fresh: dict[str, pins.FirstUsePin]) -> None:
    try:
        written = pins.record_first_use(spec, fresh)
    except OSError as exc:  # a read-only deployment: used now, pinned again by the next process
        log.warning("%s: could not record first-use pins in %s (%s)", spec.id, pins.pins_path(), exc)
        return
    log.info("%s: pinned %d files on first use in %s", spec.id, len(fresh), written)


# ----------------------------------------------------------------------------- the LoRA


def _lora_path(spec: ModelSpec) -> Path | None:
    source = pipeline_of(spec)
    return provisioned_dir(spec) / source.lora_file if source.lora else None


def _lora_ready(spec: ModelSpec) -> bool:
    path = _lora_path(spec)
    return path is None or path.is_file()


def _local_lora(spec: ModelSpec) -> Path | None:
    source = pipeline_of(spec)
    if source.lora is None:
        return None
    path = local_folder(spec) / source.lora_file
    if not path.is_file():
        raise ModelUnavailableError(f"{spec.name}: {path} is missing (the LoRA it fuses, {source.lora.where}).")
    return path


def _lora(spec: ModelSpec, progress: hub.Progress | None) -> tuple[Path | None, Callable[[], None]]:
    """The LoRA file (downloaded from the authors' Drive on first use, pinned once the pipeline loaded)."""
    path = _lora_path(spec)
    if path is None:
        return None, _nothing
    released = next(name for name, saved in pipeline_of(spec).lora.files.items() if saved == path.name)
    pin = pins.first_use(spec).get(PurePosixPath(released).name)  # Drive files are pinned by their released name
    if path.is_file():
        if pin is not None and sha256_of(path) != pin.sha256:
            raise WeightsError(_refusal(spec, path.name, pin, sha256_of(path)))
        return path, _nothing
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".fetching-{path.name}"
    staging.mkdir(exist_ok=True)
    drive_spec = dataclasses.replace(spec, official_drive=pipeline_of(spec).lora)
    try:
        pin_lora = gdrive.fetch_release(drive_spec, staging, progress)
        check_safetensors(staging / path.name)
        os.replace(staging / path.name, path)
    finally:
        for left in staging.iterdir():
            left.unlink()
        staging.rmdir()
    return path, pin_lora


# ----------------------------------------------------------------------------- loading


def check_index(spec: ModelSpec, path: Path) -> list[str]:
    """The component folders ``model_index.json`` names, once it names the registry's pipeline and only
    diffusers/transformers classes; anything else (a custom pipeline, another library) is refused."""
    source = pipeline_of(spec)
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{spec.name}: {path.name} is not readable JSON ({exc}); nothing was loaded.") from exc
    if not isinstance(index, dict) or index.get("_class_name") != source.pipeline:
        found = index.get("_class_name") if isinstance(index, dict) else None
        raise WeightsError(f"{spec.name}: {path.name} names the pipeline {found!r}, not {source.pipeline!r}; "
                           "nothing was loaded.")
    components = []
    for name, value in index.items():
        if name.startswith("_") or value in (None, [None, None]) or isinstance(value, (bool, int, float, str)):
            continue  # metadata, an absent optional component, or a setting of the pipeline
        if not (isinstance(value, list) and len(value) == 2 and value[0] in LIBRARIES and isinstance(value[1], str)
                and _library_class(value[0], value[1]) and PurePosixPath(name).name == name):
            raise WeightsError(f"{spec.name}: {path.name} takes component {name!r} from {value!r}; only classes of "
                               f"{' and '.join(LIBRARIES)} are loaded, so nothing was.")
        components.append(name)
    return components


def _library_class(library: str, name: str) -> bool:
    import diffusers
    import transformers

    return isinstance(getattr({"diffusers": diffusers, "transformers": transformers}[library], name, None), type)


def load(spec: ModelSpec, folder: Path, lora: Path | None, device: torch.device) -> Any:
    """The pipeline from ``folder`` (offline, safetensors only, float16 on CUDA), its LoRA fused, on ``device``."""
    check_index(spec, folder / INDEX)
    import diffusers

    source = pipeline_of(spec)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    try:
        pipe = getattr(diffusers, source.pipeline).from_pretrained(
            str(folder), dtype=dtype, use_safetensors=True, local_files_only=True)
        if lora is not None:
            pipe.scheduler = diffusers.LCMScheduler.from_config(pipe.scheduler.config)
            pipe.load_lora_weights(str(lora.parent), weight_name=lora.name, adapter_name="lcm")
            if "lcm" not in pipe.get_list_adapters().get("unet", []):
                raise ValueError(f"{lora.name} holds no LoRA for the UNet")
            pipe.fuse_lora()
            pipe.unload_lora_weights()
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise WeightsError(f"{spec.name}: the files in {folder} do not load as {source.pipeline} "
                           f"({str(exc).splitlines()[0][:300]}).") from exc
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
