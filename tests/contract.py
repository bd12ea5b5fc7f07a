"""What the shared contract (``test_model_contract.py``) holds every network class to, and how it gets one.

One release writer per network class (the authors' files with synthetic weights, from :mod:`tests.releases`
and :mod:`tests.mmagic_release`), the keys its strict-load cases edit, the crop size it takes, and the
network loaded once per class: the contract and the half-precision tests share them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import NamedTuple

import pytest
import torch

from app import registry
from app.registry import ModelSpec
from app.weights.loader import load_from_folder
from tests.mmagic_release import GLCIC, PCONV, V1, V2, write_for_contract
from tests.releases import edgeconnect, lama, mat, migan, pic, rfr

#: Edits one part (release file or container entry) of the official weights before they are written.
Edit = Callable[[str, dict[str, torch.Tensor]], None]
SIZE = (96, 64)  # non-square (catches transposed reshapes), a multiple of every network's size_multiple
DEEPFILL_SIZE = (96, 80)  # DeepFill needs sides >= 72; 12x10 at H/8 keeps the attention maps non-square
PCONV_SIZE = (128, 256)  # partial convolution: multiples of 128; a 1x2 bottleneck keeps it non-square


ACTIONS = ("missing", "renamed", "misshaped")


class Key(NamedTuple):
    """A key the strict-load cases edit: its part, its name in the file and in the error, what is done to it."""

    part: str
    key: str
    name: str
    actions: tuple[str, ...] = ACTIONS


@dataclass(frozen=True)
class Release:
    """How the authors release one network, and which of its keys the strict-load cases edit."""

    write: Callable[[Path, Edit | None], Path]  # (model folder, edit) -> the folder, release files written
    keys: tuple[Key, ...]
    extra: Key  # a key the network does not have
    pads: bool = False  # True: any size is handled by padding; False: sizes off the multiple are refused
    size: tuple[int, int] = SIZE  # of the batched crops; another where the architecture needs larger sides
    slow: bool = False  # True: the per-network tests (seconds per forward) run in the full suite only


def _write_rfr(folder: Path, edit: Edit | None) -> Path:
    state = rfr.official_state(1)
    if edit:
        edit("generator", state)
    return rfr.write_official(folder.parent, state)


def _write_edgeconnect(folder: Path, edit: Edit | None) -> Path:
    edits = {file: (lambda state, f=file: edit(f, state)) for file in edgeconnect.RELEASE} if edit else None
    return edgeconnect.write_release(folder, seed=1, edit=edits)


def _write_pic(folder: Path, edit: Edit | None) -> Path:
    return pic.write_release(folder, edit=edit)


def _write_lama(folder: Path, edit: Edit | None) -> Path:
    generator = dict(lama.generator_state(lama.default_seed()))
    if edit:
        edit("generator", generator)
    return lama.write_best_ckpt(folder, generator)


def _write_migan(prefix: str, folder: Path, edit: Edit | None) -> Path:
    variant = migan.VARIANTS[prefix]
    state = dict(migan.official_state(variant.manifest, migan.default_seed(prefix)))
    if edit:
        edit("generator", state)
    return migan.write_release(folder, state)


def _write_mat(folder: Path, edit: Edit | None) -> Path:
    state = dict(mat.official_state(1))
    if edit:
        edit("generator", state)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / mat.RELEASED)
    return folder


def _ec(file: str, key: str) -> Key:
    return Key(file, key, f"{edgeconnect.RELEASE[file][1]}.{key}")


def _pic(net: str, key: str, actions: tuple[str, ...] = ACTIONS) -> Key:
    return Key(net, key, f"{pic.COMPONENTS[net]}.{key}", actions)


def _generator(key: str) -> Key:
    """A key of a single-generator release whose keys are ours once the prefix is stripped (mmagic)."""
    return Key("generator", key, key)


#: One release writer per network class. The keys are those the reference tests edited before the
#: contract existed, so every model is still checked on them.
RELEASES: dict[str, Release] = {
    "app.models.rfr:RFRNet": Release(
        _write_rfr, (Key("generator", "RFRModule.att.att.ratio", "RFRModule.att.att.ratio"),
                     Key("generator", "Pconv21.weight", "Pconv21.weight")),
        extra=Key("generator", "Pconv1.weight_maskUpdater", "Pconv1.weight_maskUpdater")),
    "app.models.edgeconnect:EdgeConnect": Release(
        _write_edgeconnect, tuple(_ec(file, key) for file, key in edgeconnect.EDITS),
        extra=_ec("InpaintingModel_gen.pth", "encoder.9.weight")),
    "app.models.pic:Pluralistic": Release(
        # weight_bar is aliased in the file: another shape is caught as a differing alias (test_pic_reference)
        _write_pic, (_pic("pic_net_G", "decoder3.model.3.weight"),
                     _pic("pic_net_E", "prior.conv2.module.weight_bar", ("missing", "renamed"))),
        extra=_pic("pic_net_E", "extra.weight")),
    "app.models.lama:BigLaMa": Release(
        _write_lama, (Key("generator", "model.12.conv2.ffc.convg2g.fu.bn.running_var",
                          "model.12.conv2.ffc.convg2g.fu.bn.running_var"),),
        extra=Key("generator", "model.99.weight", "model.99.weight"), pads=True),
    "app.models.deepfillv1:DeepFillV1": Release(
        partial(write_for_contract, V1),
        (_generator("stage2.contextual_attention_neck.contextual_attention.fuse_kernel"),
         _generator("stage1.decoder.dec7.conv.weight")),
        extra=_generator("stage2.decoder.dec8.conv.weight"), size=DEEPFILL_SIZE),
    "app.models.deepfillv2:DeepFillV2": Release(
        partial(write_for_contract, V2),
        (_generator("stage2.contextual_attention_neck.contextual_attention.fuse_kernel"),
         _generator("stage2.encoder_attention.enc4.conv.conv.bias")),
        extra=_generator("stage2.decoder.dec8.conv.conv.weight"), size=DEEPFILL_SIZE),
    "app.models.pconv:PartialConvNet": Release(
        partial(write_for_contract, PCONV),
        # the all-ones mask kernels are buffers of the release: a strict load needs them too
        (_generator("encoder.enc3.conv.weight_mask_updater"), _generator("decoder.dec1.conv.bias")),
        extra=_generator("decoder.dec8.conv.weight"), size=PCONV_SIZE),
    "app.models.glcic:GlobalLocalNet": Release(
        partial(write_for_contract, GLCIC),
        (_generator("dilation_neck.dilation_convs.3.bn.running_var"), _generator("decoder.dec3.conv.weight")),
        extra=_generator("decoder.dec7.bn.weight")),
    "app.models.migan:MIGAN256": Release(
        partial(_write_migan, "migan"),
        # the fixed noise is a buffer of the release: a strict load needs it too
        (_generator("synthesis.b64.conv2.noise_const"), _generator("encoder.b128.conv2.conv2.weight")),
        extra=_generator("synthesis.b512.torgb.weight"), size=(256, 256)),
    "app.models.migan:MIGAN512": Release(
        partial(_write_migan, "migan512"),
        (_generator("synthesis.b512.conv1.upsample.filter_const"), _generator("encoder.b512.fromrgb.weight")),
        extra=_generator("synthesis.b1024.torgb.weight"), size=(512, 512),
        slow=True),  # six 512 px forwards (~1.5 s each on 2 cores); the 256 px class keeps the fast lane
    "app.models.mat:MAT": Release(
        _write_mat,
        # the shifted-window masks and w_avg are buffers of the release: a strict load needs them too
        (_generator("synthesis.first_stage.tran.1.blocks.1.attn_mask"), _generator("mapping.w_avg"),
         _generator("synthesis.dec.Dec_64x64.conv0.conv.weight")),
        # the official partial conv keeps its all-ones kernel as a plain attribute, never in the state dict
        extra=_generator("synthesis.first_stage.conv_first.weight_maskUpdater"), size=(512, 512),
        slow=True),  # a 512 px forward is seconds on a CPU: batching and sizes run in the full suite
}


def networks() -> list[ModelSpec]:
    """The first registered spec of each network class: the contract is about code, not datasets."""
    first: dict[str, ModelSpec] = {}
    for spec in registry.NEURAL:
        first.setdefault(spec.entry, spec)
    return list(first.values())


def release_of(spec: ModelSpec) -> Release:
    """The writer for ``spec``'s class; a network registered without one fails here, by name."""
    if spec.entry not in RELEASES:
        pytest.fail(f"{spec.entry} has no release writer: add one to RELEASES in tests/{Path(__file__).name}")
    return RELEASES[spec.entry]


NETWORKS = [pytest.param(spec, id=spec.entry.rpartition(":")[2],
                         marks=[pytest.mark.slow] if spec.entry in RELEASES and RELEASES[spec.entry].slow else [])
            for spec in networks()]


@cache
def loaded(entry: str, folder: Path) -> torch.nn.Module:
    """The network of class ``entry`` loaded from its release files under ``folder`` (once per class)."""
    spec = next(s for s in networks() if s.entry == entry)
    folder.mkdir(parents=True, exist_ok=True)
    return load_from_folder(spec, release_of(spec).write(folder / spec.id, None))
