"""The contract every registered network keeps, run once per network class (one spec per ``spec.entry``).

Like timm's tests over ``list_models`` or diffusers' ``PipelineTesterMixin``: a new network joins
``registry.NEURAL`` and is held to the same promises without a new test file. The promises are the
ones the pipeline relies on: a batch of crops gives what the crops give one by one (the pipeline
batches windows of different photos), a strict load names the key that is wrong (the only clue a
user has when their download is not the release we support), and a size the architecture cannot
take is refused with a message, or padded away by models that pad. Comparisons with the official
outputs, and checks only one model needs, stay in ``test_<model>_reference.py``; the writers of the
authors' release files (synthetic weights from ``../shared/reference``) are shared from ``tests/releases/``
and the table of them, one per network class, is ``tests/contract.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from app.errors import WeightsError
from app.models.base import Batch, Prediction
from app.specs import ModelSpec
from app.weights.loader import load_from_folder
from tests.contract import NETWORKS, RELEASES, Edit, loaded, networks, release_of
from tests.helpers import random_batch
from tests.tolerances import assert_close

OFF_SIZES = [(94, 64), (96, 59), (94, 59)]  # height off, width off, both off, for every multiple > 1


@pytest.fixture
def net(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> torch.nn.Module:
    """The network of the test's ``spec``, loaded once per class from its release files."""
    spec: ModelSpec = request.node.callspec.params["spec"]
    return loaded(spec.entry, tmp_path_factory.getbasetemp() / "contract")


#: Smooth gradients plus noise (edges for Canny, texture for attention), a rectangle and scattered holes.
crops = random_batch


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
