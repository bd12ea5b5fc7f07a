"""A ``transformers`` model's files (segmenter, person detector): found, fetched at its pin, loaded offline.

The same order as the inpainters' weights (:mod:`app.weights.resolve`), decided without network:

1. ``checkpoints/<id>/`` holding ``config.json`` and ``model.safetensors`` (the operator's own copy);
2. huggingface_hub's cache at the pinned revision (pins.json's record first, then the registry's);
3. a download of exactly the spec's files at that revision (same deadline, stall rule and
   progress bar as every other download: :func:`app.weights.hub.download_file`), each
   safetensors file checked for truncation and against its sha256 when one is pinned.

Loading names the class from the registry, reads ``config.json``'s ``model_type`` first (a repo
that now holds another architecture is refused), and calls ``from_pretrained`` on the local
folder only: ``local_files_only=True``, ``use_safetensors=True``, never ``trust_remote_code``.
``transformers`` is imported here, on first load, not when the app starts (it takes ~5 s).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
from app.registry import HubWeights, PretrainedSpec
from app.weights import hub, pins
from app.weights.resolve import Location, checkpoints_root
from app.weights.verify import verify_file

CONFIG = "config.json"
WEIGHTS = "model.safetensors"


def weights_of(spec: PretrainedSpec) -> HubWeights:
    """The repo, revision and files to use: pins.json's record for ``spec.id`` wins over the registry."""
    recorded = pins.recorded_mirror(spec)  # type: ignore[arg-type] - only .id is read
    weights = recorded or spec.weights
    unsafe = [name for name in weights.files if not (name.endswith(".safetensors") or name == CONFIG)]
    if unsafe:
        raise WeightsError(f"{spec.name}: {', '.join(unsafe)} would be downloaded, but only config.json and "
                           ".safetensors files are (nothing downloaded is ever unpickled).")
    return weights


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
    why = _why_not(weights, settings)
    if why:
        return Location("missing", f"{spec.name} is not available: {why}. Put {CONFIG} and {WEIGHTS} in {folder}/.",
                        public=_public(why))
    return Location("remote", f"will download ~{spec.approx_mb} MB from {weights.where} on first use",
                    via="mirror", public=f"downloads ~{spec.approx_mb} MB on first use")


def _why_not(weights: HubWeights, settings: hub.HubSettings) -> str:
    if not weights.revision:
        return (f"no commit of {weights.repo_id} is pinned (record one in pins.json; a moving branch is never "
                "downloaded)")
    if settings.offline:
        return "offline mode is on (HF_HUB_OFFLINE=1) and its files are not in the Hugging Face cache"
    return hub.unreachable_reason(settings.endpoint)


def _public(why: str) -> str:
    if "offline" in why:
        return "this server is offline and does not have its weights"
    if "pinned" in why:
        return "its weights are not configured on this server"
    return "the Hugging Face Hub cannot be reached right now"


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
    """The folder of ``spec``'s verified files: local, cached, or downloaded now."""
    location = locate(spec)
    if location.status == "missing":
        raise ModelUnavailableError(location.reason)
    if location.status == "local":
        folder = local_folder(spec)
        verify_file(spec, WEIGHTS, folder / WEIGHTS, None)  # type: ignore[arg-type]
        return folder
    weights = weights_of(spec)
    settings = hub.settings()
    folder = cached_folder(spec, weights, settings)
    if folder is None:
        for name in weights.files:
            _download(spec, weights, name, settings, progress)
        folder = cached_folder(spec, weights, settings)
    if folder is None:
        raise WeightsError(f"{spec.name}: the files of {weights.where} were downloaded but are not in the cache.")
    for name, sha in weights.files.items():
        if name.endswith(".safetensors"):
            verify_file(spec, name, folder / name, sha)  # type: ignore[arg-type]
    return folder


def _download(spec: PretrainedSpec, weights: HubWeights, name: str, settings: hub.HubSettings,
              progress: hub.Progress | None) -> Path:
    file = hub.HubFile(weights.repo_id, name, weights.revision)
    try:
        return hub.download_file(file, spec.name, settings, progress)
    except WeightsError:
        raise
    except (RevisionNotFoundError, RemoteEntryNotFoundError, RepositoryNotFoundError) as exc:
        raise ModelUnavailableError(f"{spec.name} is not available: {weights.where} has no {name} "
                                    f"({type(exc).__name__}); check the pinned commit in pins.json.") from exc
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, HfHubHTTPError) as exc:
        if not settings.offline:
            hub.mark_unreachable(settings.endpoint, exc.__cause__ or exc)
        raise ModelUnavailableError(f"{spec.name} is not available: {_why_not(weights, hub.settings()) or exc}.") \
            from exc
    except OSError as exc:
        raise WeightsError(f"Downloading {name} of {spec.name} from {weights.where} failed: {exc}") from exc
    except Exception as exc:  # network stack errors (refused, DNS, timeout)
        hub.mark_unreachable(settings.endpoint, exc)
        raise ModelUnavailableError(f"{spec.name} is not available: {_why_not(weights, hub.settings())}.") from exc


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
