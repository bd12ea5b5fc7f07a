"""The contract every registered network keeps, run once per network class (one spec per ``spec.entry``).

Like timm's tests over ``list_models`` or diffusers' ``PipelineTesterMixin``: a new network joins
``registry.NEURAL`` and is held to the same promises without a new test file. The promises are the
ones the pipeline relies on: a batch of crops gives what the crops give one by one (the pipeline
batches windows of different photos), a strict load names the key that is wrong (the only clue a
user has when their download is not the release we support), and a size the architecture cannot
take is refused with a message, or padded away by models that pad. Comparisons with the official
outputs, and checks only one model needs, stay in ``test_<model>_reference.py``, whose writers of the
authors' release files (synthetic weights from ``../shared/reference``) this file reuses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch

from app import registry
from app.errors import WeightsError
from app.models.base import Batch, Prediction
from app.registry import ModelSpec
from app.weights.loader import load_from_folder
from tests import test_edgeconnect_reference as edgeconnect
from tests import test_lama_reference as lama
from tests import test_mat_reference as mat
from tests import test_migan_reference as migan
from tests import test_pic_reference as pic
from tests import test_rfr_reference as rfr
from tests.mmagic_release import GLCIC, PCONV, V1, V2, write_for_contract
from tests.tolerances import assert_close

#: Edits one part (release file or container entry) of the official weights before they are written.
Edit = Callable[[str, dict[str, torch.Tensor]], None]
SIZE = (96, 64)  # non-square (catches transposed reshapes), a multiple of every network's size_multiple
OFF_SIZES = [(94, 64), (96, 59), (94, 59)]  # height off, width off, both off, for every multiple > 1
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
    state = dict(mat._official_state(1))
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
        pytest.fail(f"{spec.entry} has no release writer: add one to RELEASES in {Path(__file__).name}")
    return RELEASES[spec.entry]


NETWORKS = [pytest.param(spec, id=spec.entry.rpartition(":")[2],
                         marks=[pytest.mark.slow] if spec.entry in RELEASES and RELEASES[spec.entry].slow else [])
            for spec in networks()]


@cache
def _loaded(entry: str, folder: Path) -> torch.nn.Module:
    spec = next(s for s in networks() if s.entry == entry)
    folder.mkdir(parents=True, exist_ok=True)
    return load_from_folder(spec, release_of(spec).write(folder / spec.id, None))


@pytest.fixture
def net(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> torch.nn.Module:
    """The network of the test's ``spec``, loaded once per class from its release files."""
    spec: ModelSpec = request.node.callspec.params["spec"]
    return _loaded(spec.entry, tmp_path_factory.getbasetemp() / "contract")


#: Smooth gradients plus noise (edges for Canny, texture for attention), a rectangle and scattered holes.
crops = rfr.random_batch


def run(net: torch.nn.Module, spec: ModelSpec, batch: Batch) -> Prediction:
    """One request the way the pipeline makes it (several samples for diverse models)."""
    return net.inpaint(batch, samples=2 if spec.diverse else 1, seed=7)


def assert_layout(pred: Prediction, spec: ModelSpec, batch: Batch) -> None:
    """What the pipeline reads: float32 samples in [0, 1], one map and score row per crop."""
    n, h, w = batch.holes.shape
    assert pred.samples.shape == (n, 2 if spec.diverse else 1, h, w, 3)
    assert pred.samples.dtype == np.float32
    assert 0.0 <= pred.samples.min() and pred.samples.max() <= 1.0
    assert all(m.shape[:3] == (n, h, w) for m in pred.maps.values())
    assert pred.scores is None or pred.scores.shape == pred.samples.shape[:2]


def assert_same(got: Prediction, want: Prediction, index: int, tolerance: str) -> None:
    """Crop ``index`` of ``got`` against crop 0 of ``want``: samples, every map and the scores."""
    assert_close(tolerance, got.samples[index], want.samples[0])
    for name, value in want.maps.items():
        assert_close(tolerance, got.maps[name][index], value[0], err_msg=name)
    if want.scores is not None:
        assert_close(tolerance, got.scores[index], want.scores[0], err_msg="scores")


# --------------------------------------------------------------------------- batching


@pytest.mark.parametrize("spec", NETWORKS)
def test_batch_equals_one_by_one(spec: ModelSpec, net: torch.nn.Module) -> None:
    """The pipeline batches windows of unrelated photos: no crop may see another, and no call the last."""
    batch = crops(2, *release_of(spec).size, seed=3)
    together = run(net, spec, batch)
    assert_layout(together, spec, batch)
    for i in range(2):
        assert_same(together, run(net, spec, Batch(batch.images[i:i + 1], batch.holes[i:i + 1])), i, "contract.batch")
    np.testing.assert_array_equal(run(net, spec, batch).samples, together.samples)  # no state kept between calls


# --------------------------------------------------------------------------- strict loading


def _remove(key: str) -> Callable[[dict], None]:
    return lambda state: state.pop(key)


def _rename(key: str) -> Callable[[dict], None]:
    return lambda state: state.__setitem__(key + "_renamed", state.pop(key))


def _reshape(key: str, shapes: dict[str, tuple[int, ...]]) -> Callable[[dict], None]:
    """One more column in the last dimension; ``shapes`` records both shapes for the message check."""
    def change(state: dict[str, torch.Tensor]) -> None:
        want = tuple(state[key].shape)
        shapes.update(got=(*want[:-1], want[-1] + 1), want=want)
        state[key] = torch.zeros(shapes["got"])
    return change


def _on(part: str, change: Callable[[dict], None]) -> Edit:
    def edit(name: str, state: dict[str, torch.Tensor]) -> None:
        if name == part:
            change(state)
    return edit


def _lane(k: int, action: str) -> list[pytest.MarkDecorator]:
    return [] if k == 0 and action == "renamed" else [pytest.mark.slow]


def strict_cases() -> list:
    """(spec, action, key index): each action on each key the model's reference test edited.

    Each case writes and reads a whole release (up to 200 MB), so only the first key renamed (a missing
    and an unexpected key at once) is in the fast lane; the rest are ``slow``.
    """
    cases = []
    for spec in networks():
        short, release = spec.entry.rpartition(":")[2], RELEASES.get(spec.entry)
        if release is None:  # fails in the test, by name
            cases.append(pytest.param(spec, "missing", 0, id=f"{short}-no-release"))
        for k in range(len(release.keys) if release else 0):
            cases += [pytest.param(spec, action, k, id=f"{short}-{action}-{k}", marks=_lane(k, action))
                      for action in release.keys[k].actions]
    return cases


@pytest.mark.parametrize(("spec", "action", "k"), strict_cases())
def test_strict_load_names_the_key(spec: ModelSpec, action: str, k: int, tmp_path: Path) -> None:
    """A key removed, renamed or of another shape is refused, and the message says which and how."""
    release = release_of(spec)
    part, key, name, _ = release.keys[k]
    shapes: dict[str, tuple[int, ...]] = {}
    change = _reshape(key, shapes) if action == "misshaped" else {"missing": _remove, "renamed": _rename}[action](key)
    with pytest.raises(WeightsError) as info:
        load_from_folder(spec, release.write(tmp_path / spec.id, _on(part, change)))
    message = str(info.value)
    assert name in message
    if action == "missing":
        assert "missing keys" in message
    if action == "renamed":
        assert "missing keys" in message and "unexpected keys" in message and f"{name}_renamed" in message
    if action == "misshaped":
        assert "shape mismatch" in message
        assert f"{name} {shapes['got']} != {shapes['want']}" in message


@pytest.mark.slow  # the fast lane sees unexpected keys named through the renamed cases
@pytest.mark.parametrize("spec", NETWORKS)
def test_strict_load_names_an_unexpected_key(spec: ModelSpec, tmp_path: Path) -> None:
    """A key the network does not have (another variant's file) is refused, not silently dropped."""
    release = release_of(spec)
    part, key, name, _ = release.extra
    edit = _on(part, lambda state: state.__setitem__(key, torch.ones(3)))
    with pytest.raises(WeightsError, match="unexpected keys") as info:
        load_from_folder(spec, release.write(tmp_path / spec.id, edit))
    assert name in str(info.value)


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("size", [pytest.param(s, id=f"{s[0]}x{s[1]}") for s in OFF_SIZES])
@pytest.mark.parametrize("spec", NETWORKS)
def test_sizes_off_the_multiple(spec: ModelSpec, net: torch.nn.Module, size: tuple[int, int]) -> None:
    """Refused with the multiple named (the pipeline plans windows on ``spec.size_multiple``), or padded."""
    batch = crops(1, *size, seed=5)
    if spec.size_multiple == 1:  # any size is native
        assert_layout(run(net, spec, batch), spec, batch)
        return
    if not release_of(spec).pads:
        with pytest.raises(ValueError, match=rf"multiples of {spec.size_multiple}\b"):
            run(net, spec, batch)
        return
    h, w = size
    pad = ((0, -h % spec.size_multiple), (0, -w % spec.size_multiple))
    padded = Batch(np.pad(batch.images[0], (*pad, (0, 0)), mode="symmetric")[None],
                   np.pad(batch.holes[0], pad, mode="symmetric")[None])
    got, want = run(net, spec, batch), run(net, spec, padded)
    assert_layout(got, spec, batch)
    assert_close("contract.pad", got.samples[0], want.samples[0][:, :h, :w])
