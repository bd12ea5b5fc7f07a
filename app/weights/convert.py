"""Official release files -> our ``model.safetensors`` + its sha256 + a Hub model card.

The authors publish pickles on Google Drive; the app downloads only safetensors from the
Hub. Converting once (locally, pickles read without running code) and mirroring the
result is what lets a Space start without anyone's Drive. The output is deterministic —
same official files, same bytes, same sha256 — so anyone can re-convert and check a
mirror against the registry's pin.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub import ModelCardData
from safetensors.torch import save_file

from app.errors import WeightsError
from app.registry import MIRROR_REVISION
from app.specs import WEIGHTS_LICENCE_NOT_STATED, ModelSpec
from app.weights.loader import SAFETENSORS_NAME, instantiate
from app.weights.official import read_official
from app.weights.resolve import declared_official_files
from app.weights.verify import sha256_of

CARD_NAME = "README.md"
#: Licence identifiers the Hub knows (others go in as ``other`` + a name).
HUB_LICENCE_IDS = frozenset({"apache-2.0", "mit", "cc-by-nc-4.0", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-sa-4.0",
                             "bsd-3-clause", "gpl-3.0", "openrail"})


@dataclass(frozen=True)
class Converted:
    weights: Path
    card: Path
    sha256: str
    size: int
    tensors: int
    sources: tuple[str, ...]


def save_state(state: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> str:
    """Write ``state`` as safetensors atomically and return its sha256.

    Atomic because a half-written ``model.safetensors`` in ``checkpoints/<id>/`` would take
    precedence over the official files next to it.
    """
    tmp = path.with_name(path.name + ".partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        save_file(_unshared(state), str(tmp), metadata=metadata)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return sha256_of(path, fresh=True)


def _unshared(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors, each with its own storage (safetensors refuses shared memory)."""
    seen: set[int] = set()
    out = {}
    for key, tensor in state.items():
        tensor = tensor.detach().cpu().contiguous()
        ptr = tensor.untyped_storage().data_ptr()
        out[key] = tensor.clone() if ptr in seen and tensor.numel() else tensor
        seen.add(ptr)
    return out


def convert(spec: ModelSpec, src: Path, out: Path | None = None, check: bool = True) -> Converted:
    """Read the official files of ``spec`` in ``src``, write safetensors + model card to ``out``.

    ``check`` strict-loads the result into the network first, so a wrong or incomplete
    download fails here with the offending keys, not later on a user's click.
    """
    files = declared_official_files(spec)
    if not files:
        raise WeightsError(f"{spec.name} declares no official release files to convert.")
    state = read_official(src, files)
    if check:
        instantiate(spec, state, "cpu", source=f"official files in {src}")
    sources = tuple(f.name for f in files if (src / f.name).is_file())
    out = out or src
    weights = out / SAFETENSORS_NAME
    sha = save_state(state, weights, {"format": "pt", "model": spec.id, "converted_from": ", ".join(sources)})
    size = weights.stat().st_size
    card = out / CARD_NAME
    card.write_text(model_card(spec, sha, size, sources), encoding="utf-8")
    return Converted(weights, card, sha, size, len(state), sources)


def hub_licence(spec: ModelSpec) -> dict[str, str]:
    """Model-card licence fields: the registry's Hub licence id, or ``other`` with a name and link."""
    licence = spec.licence.id
    if licence in HUB_LICENCE_IDS:
        return {"license": licence}
    return {"license": "other", "license_name": licence if licence != "other" else "unspecified",
            "license_link": spec.card.source}


def card_metadata(spec: ModelSpec) -> ModelCardData:
    return ModelCardData(library_name="pytorch", pipeline_tag="image-to-image",
                         tags=["image-inpainting", "safetensors", "inpaint-studio"], **hub_licence(spec))


def model_card(spec: ModelSpec, sha256: str, size: int, sources: tuple[str, ...]) -> str:
    """README.md for the Hub repo: YAML front matter (licence) + who made it and where from."""
    card = spec.card
    lines = [
        "---", card_metadata(spec).to_yaml(), "---", "",
        f"# {spec.name} — safetensors mirror", "",
        f"Unmodified weights of **{spec.name}**, converted from the authors' official release "
        "to safetensors (tensors only, no pickled code) for the inpaint-studio app.", "",
        f"- Authors: {card.authors}",
        f"- Paper: {card.paper}",
        f"- Code: {card.source}",
        f"- Official weights: {card.weights_source}",
        f"- Licence: {spec.licence} — the authors' terms apply to these weights unchanged.", "",
        "| file | bytes | sha256 |", "|---|---|---|",
        f"| {SAFETENSORS_NAME} | {size} | `{sha256}` |", "",
        f"Converted from {', '.join(sources)} with `python -m app weights convert {spec.id}`; "
        "the conversion is deterministic, so re-converting the official files gives the same sha256. "
        f"Keys are `<component>.<official key>` with DataParallel/Lightning prefixes stripped.", "",
        f"The app pins this repo at tag `{MIRROR_REVISION}` (or a commit sha) and checks the sha256 above.", "",
    ]
    if spec.licence.id == WEIGHTS_LICENCE_NOT_STATED:
        lines += ["**Licence note:** the authors do not state a licence for the weights. "
                  "Ask them before any use beyond research.", ""]
    return "\n".join(lines)
