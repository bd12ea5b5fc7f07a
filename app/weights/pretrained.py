"""A ``transformers`` model's files (segmenter, person detector): found, fetched at its pin, loaded offline.

The same order as the inpainters' weights (:mod:`app.weights.resolve`), decided without network:

1. ``checkpoints/<id>/`` holding ``config.json`` and ``model.safetensors`` (the operator's own copy);
2. huggingface_hub's cache at the pinned revision (pins.json's record first, then the registry's);
3. a download of exactly the spec's files at that revision (same deadline, stall rule and
   progress bar as every other download: :func:`app.weights.hub.download_file`), each
   safetensors file checked for truncation, and every file against its sha256 when one is pinned.

Trust on first use (pins.json's ``first_use``, :mod:`app.weights.pins`): a repo with no recorded
commit (EdgeTAM, SlimSAM as shipped) is pinned to the commit its default branch is at on the first
download; every file is fetched at that commit, loaded strictly, and only then is each file's
sha256 and size recorded with ``from: <repo>@<commit>``, which is the commit every later use
fetches, whatever the branch does. A file with a commit but no sha256 (SAM 2.1, RT-DETRv2) is
pinned the same way. Later downloads and cache hits must match, or are refused with both hashes;
a download refused or not loading is deleted from the cache again, and nothing is pinned.

Loading names the class from the registry, reads ``config.json``'s ``model_type`` first (a repo
that now holds another architecture is refused), and calls ``from_pretrained`` on the local
folder only: ``local_files_only=True``, ``use_safetensors=True``, never ``trust_remote_code``.
``transformers`` is imported here, on first load, not when the app starts (it takes ~5 s).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import torch
from huggingface_hub.errors import (
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from app.errors import ModelUnavailableError, WeightsError
from app.specs import HubWeights, PretrainedSpec
from app.weights import hub, pins, probe
from app.weights.fetch import discard
from app.weights.resolve import Location, checkpoints_root
from app.weights.verify import check_safetensors, sha256_of, verify_file

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
T = TypeVar("T")

log = logging.getLogger(__name__)
_locks: dict[str, threading.Lock] = {}
_locks_lock = threading.Lock()


def weights_of(spec: PretrainedSpec) -> HubWeights:
    """The repo, revision and files to use: pins.json's record for ``spec.id`` wins over the registry,
    and a commit or sha256 neither names is the one pinned on first use here, once there is one."""
    recorded = pins.recorded_mirror(spec)  # type: ignore[arg-type] - only .id is read
    weights = recorded or spec.weights
    unsafe = [name for name in weights.files if not (name.endswith(".safetensors") or name == CONFIG)]
    if unsafe:
        raise WeightsError(f"{spec.name}: {', '.join(unsafe)} would be downloaded, but only config.json and "
                           ".safetensors files are (nothing downloaded is ever unpickled).")
    return _with_first_use(weights, pins.first_use(spec))  # type: ignore[arg-type] - only .id is read


def _with_first_use(weights: HubWeights, first: dict[str, pins.FirstUsePin]) -> HubWeights:
    """``weights`` completed by their first-use pins: the commit (when none is recorded), each file's sha256.

    A first-use pin holds only for the repo and commit it came from (its ``from``): a commit the
    operator records later is other files, pinned afresh on their own first use.
    """
    revision = weights.revision or _first_use_commit(weights, first)
    source = f"{weights.repo_id}@{revision}"
    files = {name: sha or (first[name].sha256 if name in first and first[name].where == source else None)
             for name, sha in weights.files.items()}
    return replace(weights, revision=revision, files=files)


def _first_use_commit(weights: HubWeights, first: dict[str, pins.FirstUsePin]) -> str:
    """The commit every file of ``weights`` was pinned at on its first use here, or "" (not used yet)."""
    sources = {first[name].where if name in first else "" for name in weights.files}
    if len(sources) != 1:
        return ""
    repo, _, commit = sources.pop().rpartition("@")
    return commit if repo == weights.repo_id else ""


def local_folder(spec: PretrainedSpec) -> Path:
    return checkpoints_root() / spec.id


def locate(spec: PretrainedSpec) -> Location:
    """Where ``spec``'s files are (or would come from) right now, without network."""
    folder = local_folder(spec)
    if (folder / CONFIG).is_file() and (folder / WEIGHTS).is_file():
        return Location("local", f"local files in {folder}", source=str(folder))
    weights = weights_of(spec)
    settings = hub.settings()
    if cached_folder(spec, weights, settings):
        return Location("cached", f"cached from {weights.where}", source=weights.where)
    why = _why_not(settings)
    if why:
        return Location("missing", f"{spec.name} is not available: {why}. Put {CONFIG} and {WEIGHTS} in {folder}/.",
                        public=_public(why))
    if not weights.revision:
        return Location("remote", f"will download ~{spec.approx_mb} MB from {weights.repo_id} on first use, at the "
                        "commit its default branch is at then, and pin that commit in pins.json", via="mirror",
                        public=f"downloads ~{spec.approx_mb} MB on first use")
    return Location("remote", f"will download ~{spec.approx_mb} MB from {weights.where} on first use",
                    via="mirror", public=f"downloads ~{spec.approx_mb} MB on first use")


def _why_not(settings: hub.HubSettings) -> str:
    if settings.offline:
        return "offline mode is on (HF_HUB_OFFLINE=1) and its files are not in the Hugging Face cache"
    return hub.unreachable_reason(settings.endpoint)


def _public(why: str) -> str:
    if "offline" in why:
        return "this server is offline and does not have its weights"
    return "the Hugging Face Hub cannot be reached right now"


def silence(spec: PretrainedSpec) -> probe.Silence | None:
    """None when the Hub answered (now or recently, :mod:`app.weights.probe`) for every file ``spec`` would
    download; else why not. A repo with no commit yet is asked at ``main``, where its first use pins one."""
    weights = weights_of(spec)
    revision = weights.revision or "main"
    return probe.hub_silence(spec, [hub.HubFile(weights.repo_id, name, revision) for name in weights.files])


def cached_folder(spec: PretrainedSpec, weights: HubWeights | None = None,
                  settings: hub.HubSettings | None = None) -> Path | None:
    """The snapshot folder holding every file of ``spec`` at its revision, or None (no network)."""
    weights = weights or weights_of(spec)
    if not weights.revision:
        return None
    settings = settings or hub.settings()
    paths = [hub.cached_file(hub.HubFile(weights.repo_id, name, weights.revision), settings) for name in weights.files]
    if any(path is None for path in paths) or len({path.parent for path in paths}) != 1:
        return None
    return paths[0].parent


def obtain(spec: PretrainedSpec, progress: hub.Progress | None = None) -> Path:
    """The folder of ``spec``'s verified files: local, cached, or downloaded now (pinned on first use)."""
    location = locate(spec)
    if location.status == "missing":
        raise ModelUnavailableError(location.reason)
    if location.status == "local":
        folder = local_folder(spec)
        verify_file(spec, WEIGHTS, folder / WEIGHTS, None)  # type: ignore[arg-type]
        return folder
    with _lock_for(spec.id):  # two first uses at once would resolve, download and pin twice
        return _from_hub(spec, progress)


def _lock_for(model_id: str) -> threading.Lock:
    with _locks_lock:
        return _locks.setdefault(model_id, threading.Lock())


def _from_hub(spec: PretrainedSpec, progress: hub.Progress | None) -> Path:
    """The cached or downloaded files of ``spec``, checked against their pins, the unpinned ones pinned now."""
    weights = weights_of(spec)  # read under the lock: another request may have pinned it meanwhile
    settings = hub.settings()
    asked = [hub.HubFile(weights.repo_id, name, weights.revision or "main") for name in weights.files]  # by silence()
    if not weights.revision:
        commit = _on_hub(spec, f"the Hub has no repo {weights.repo_id}", settings,
                         lambda: hub.branch_commit(weights.repo_id, spec.name, settings))
        weights = _with_first_use(replace(weights, revision=commit), pins.first_use(spec))  # type: ignore[arg-type]
    files = {name: hub.HubFile(weights.repo_id, name, weights.revision) for name in weights.files}
    downloaded = [name for name, file in files.items() if hub.cached_file(file, settings) is None]
    for name in downloaded:
        _on_hub(spec, f"{weights.where} has no {name} (check the pinned commit: pins.json, else the registry)",
                settings, lambda file=files[name]: hub.download_file(file, spec.name, settings, progress))
    folder = cached_folder(spec, weights, settings)
    if folder is None:
        raise WeightsError(f"{spec.name}: the files of {weights.where} were downloaded but are not in the cache.")
    try:
        _check_pins(spec, weights, folder, downloaded)
        unpinned = [name for name, sha in weights.files.items() if not sha]
        if unpinned:
            _pin_first_use(spec, weights, folder, unpinned, downloaded, progress)
    except WeightsError as exc:  # the Hub answers with bytes refused: the next segmenter serves for a while
        probe.refused(spec, asked, str(exc))
        raise
    return folder


def _on_hub(spec: PretrainedSpec, absent: str, settings: hub.HubSettings, call: Callable[[], T]) -> T:
    """``call()``, a Hub request for ``spec``, its errors made ``spec``'s messages (``absent``: what a 404 means)."""
    try:
        return call()
    except WeightsError:
        raise
    except (RevisionNotFoundError, RemoteEntryNotFoundError, RepositoryNotFoundError) as exc:
        raise ModelUnavailableError(f"{spec.name} is not available: {absent}; {type(exc).__name__}.") from exc
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, HfHubHTTPError) as exc:
        if not settings.offline:
            hub.mark_unreachable(settings.endpoint, exc.__cause__ or exc)
        raise ModelUnavailableError(f"{spec.name} is not available: {_why_not(hub.settings()) or exc}.") from exc
    except OSError as exc:
        raise WeightsError(f"Downloading {spec.name}'s files from {settings.endpoint} failed: {exc}") from exc
    except Exception as exc:  # network stack errors (refused, DNS, timeout)
        hub.mark_unreachable(settings.endpoint, exc)
        raise ModelUnavailableError(f"{spec.name} is not available: {_why_not(hub.settings())}.") from exc


def _check_pins(spec: PretrainedSpec, weights: HubWeights, folder: Path, downloaded: Collection[str]) -> None:
    """Every file against its sha256 pin (safetensors also for truncation). On a failure the files
    just ``downloaded`` are deleted from the cache again: nothing of a refused download stays."""
    for name, expected in weights.files.items():
        path = folder / name
        try:
            if name.endswith(".safetensors"):
                check_safetensors(path)
            if expected and (actual := sha256_of(path, fresh=name in downloaded)) != expected.lower():
                raise WeightsError(_refusal(spec, weights, name, expected.lower(), actual))
        except WeightsError as exc:
            raise WeightsError(f"{exc}{_discard_all(folder, downloaded)}") from exc


def _refusal(spec: PretrainedSpec, weights: HubWeights, name: str, expected: str, actual: str) -> str:
    origin, advice = pins.why_pinned(spec, name, expected,  # type: ignore[arg-type] - only .id is read
                                     "the Hub serves other bytes than the pinned ones")
    return (f"{spec.name}: {name} of {weights.where} failed its sha256 check and was NOT used.\n"
            f"  expected: {expected} ({origin})\n  actual:   {actual}\nNothing was loaded. {advice}")


def _discard_all(folder: Path, downloaded: Collection[str]) -> str:
    """Delete the files just downloaded into ``folder`` (snapshot entry and blob); says so, or ""."""
    for name in downloaded:
        discard(folder / name)
    return " The download was deleted again." if downloaded else ""


def _pin_first_use(spec: PretrainedSpec, weights: HubWeights, folder: Path, names: list[str],
                   downloaded: Collection[str], progress: hub.Progress | None) -> None:
    """Record ``names`` (sha256, size, ``repo@commit``) in pins.json once ``folder`` loads strictly.

    Trust on first use: nothing pins these files, so any bytes the Hub sent would be accepted. The
    first copy that loads as the declared class with every weight set is recorded, and every later
    download and cache hit is held to it (and, for a repo with no recorded commit, to its commit).
    """
    if progress:
        progress(1.0, f"Checking {spec.name}'s weights before pinning them")
    try:
        load(spec, folder, "cpu")
    except WeightsError as exc:
        raise WeightsError(f"{exc} Nothing was pinned.{_discard_all(folder, downloaded)}") from exc
    pinned = {name: pins.FirstUsePin(sha256_of(folder / name), (folder / name).stat().st_size, weights.where)
              for name in names}
    try:
        written = pins.record_first_use(spec, pinned)  # type: ignore[arg-type] - only .id is read
    except OSError as exc:  # a read-only deployment: used now, but the next process resolves the branch again
        log.warning("%s: could not record the first-use pins of %s in %s (%s); record them by hand: %s", spec.id,
                    weights.where, pins.pins_path(), exc, {n: p.sha256 for n, p in pinned.items()})
        return
    log.info("%s: pinned %s on first use in %s", spec.id, ", ".join(
        f"{name} (sha256 {pin.sha256})" for name, pin in pinned.items()) + f" of {weights.where}", written)


def load(spec: PretrainedSpec, folder: Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """``spec``'s network from ``folder`` (offline, safetensors only, its declared class), eval, on ``device``."""
    check_config(spec, folder / CONFIG)
    import transformers  # ~5 s: only once a segmenter or detector is first needed

    cls = getattr(transformers, spec.architecture)
    try:
        model, info = cls.from_pretrained(str(folder), local_files_only=True, use_safetensors=True,
                                          trust_remote_code=False, output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{spec.name}: the files in {folder} do not load as {spec.architecture} "
                           f"({str(exc).splitlines()[0][:300]}).") from exc
    missing = sorted(info.get("missing_keys") or []) + sorted(info.get("mismatched_keys") or [])
    if missing:  # transformers would fill them with random values: masks of noise, without a word
        raise WeightsError(f"{spec.name}: the files in {folder} leave {len(missing)} weights of "
                           f"{spec.architecture} unset (e.g. {', '.join(map(str, missing[:3]))}); it was not loaded.")
    return model.eval().to(device)


def check_config(spec: PretrainedSpec, path: Path) -> None:
    """``config.json`` must be JSON declaring the architecture the registry names."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{spec.name}: {path} is not a readable config.json ({exc}).") from exc
    found = config.get("model_type") if isinstance(config, dict) else None
    if found != spec.model_type and found not in spec.published_types:
        raise WeightsError(f"{spec.name}: {path} declares model_type {found!r}, not {spec.model_type!r}; "
                           "it was not loaded.")
    extra = sorted(set().union(*(args.keys() for args in _timm_args(config))) - TIMM_ARGS)
    if extra:
        raise WeightsError(f"{spec.name}: {path} passes {', '.join(extra)} to timm (only "
                           f"{', '.join(sorted(TIMM_ARGS))} are accepted); it was not loaded.")


#: What a config.json may pass to ``timm.create_model`` (EdgeTAM's backbone): the model's shape only.
#: Anything else (``checkpoint_path``, ``pretrained_cfg_overlay``...) would make timm read or fetch files.
TIMM_ARGS = {"in_chans", "features_only", "out_indices"}


def _timm_args(node: Any) -> list[dict]:
    """Every ``model_args`` dict in a config, at any depth (a timm backbone sits inside the vision config)."""
    if isinstance(node, list):
        return [found for item in node for found in _timm_args(item)]
    if not isinstance(node, dict):
        return []
    here = [node["model_args"]] if isinstance(node.get("model_args"), dict) else []
    return here + [found for value in node.values() for found in _timm_args(value)]
