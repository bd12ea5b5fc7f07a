"""Conversion: every official container -> safetensors with identical tensors; model card; CLI.

Synthetic release files are written in each authors' container format from the reference
manifests (the first entries of the SN-heavy ones: the container is what is under test).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from torch import nn

from app import model_cache, registry
from app import weights_cli as cli
from app.errors import WeightsError
from app.models.base import NetworkFacts, NeuralNetwork
from app.specs import Card, Licence, ModelSpec
from app.weights.convert import convert, model_card, save_state
from app.weights.official import OfficialFile, read_official
from app.weights.verify import sha256_of
from tests.reference import init_weights_module, manifest_entries


def synthetic(manifest: str, seed: int = 1, first: int | None = None) -> dict[str, torch.Tensor]:
    """A synthetic official state_dict from ``manifest`` (optionally its first entries only)."""
    return dict(init_weights_module().make_state_dict(manifest_entries(manifest)[:first], seed))


def _touch_marker(path: str) -> None:
    """What a malicious pickle would call; the restricted unpickler must not."""
    Path(path).write_text("code ran")


class Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return _touch_marker, (self.marker,)


def _lightning(state: dict[str, torch.Tensor], marker: Path) -> dict:
    """big-lama's best.ckpt: Lightning metadata, other networks' keys, and a pickled object."""
    return {
        "epoch": 40, "global_step": 1000, "pytorch-lightning_version": "1.2.9",
        "state_dict": {**{f"generator.{k}": v for k, v in state.items()},
                       "discriminator.model0.0.weight": torch.ones(2, 2),
                       "loss_resnet_pl.impl.conv1.weight": torch.ones(1)},
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-3}]}],
        "hyper_parameters": Evil(marker),
    }


def _adam_state() -> dict:
    param = nn.Parameter(torch.ones(3))
    optimizer = torch.optim.Adam([param])
    param.sum().backward()
    optimizer.step()
    return optimizer.state_dict()


# (name, official files to write, OfficialFile specs, our expected key -> tensor)
def _edgeconnect(tmp: Path) -> tuple:
    edge, inpaint = synthetic("edgeconnect_EdgeModel_gen", first=20), synthetic("edgeconnect_InpaintingModel_gen")
    torch.save({"iteration": 5, "generator": edge}, tmp / "EdgeModel_gen.pth")
    torch.save({"iteration": 5, "generator": inpaint}, tmp / "InpaintingModel_gen.pth")
    files = (OfficialFile("EdgeModel_gen.pth", "edge", container="generator"),
             OfficialFile("InpaintingModel_gen.pth", "inpaint", container="generator"))
    return files, {**{f"edge.{k}": v for k, v in edge.items()}, **{f"inpaint.{k}": v for k, v in inpaint.items()}}


def _rfr(tmp: Path) -> tuple:
    state = synthetic("rfr_G", first=60)
    torch.save({"n_iter": 450000, "generator": state, "optimizer_G": _adam_state()}, tmp / "checkpoint_paris.pth")
    return (OfficialFile("checkpoint_paris.pth", "", container="generator"),), state


def _pic(tmp: Path) -> tuple:
    state = synthetic("pic_net_G", first=40)  # includes aliased duplicates
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp / "latest_net_G.pth")
    return (OfficialFile("latest_net_G.pth", "generator", prefix="module."),), {f"generator.{k}": v
                                                                                for k, v in state.items()}


def _lama(tmp: Path) -> tuple:
    state = synthetic("lama_generator", first=80)
    torch.save(_lightning(state, tmp / "marker"), tmp / "best.ckpt")
    return (OfficialFile("best.ckpt", "", container="state_dict", prefix="generator.", only_prefixed=True),), state


@pytest.mark.parametrize("container", [_edgeconnect, _rfr, _pic, _lama], ids=["edgeconnect", "rfr", "pic", "lama"])
@pytest.mark.slow  # over 3 s here: the full run only (README, fast lane)
def test_official_container_round_trips_to_identical_tensors(tmp_path, container):
    files, expected = container(tmp_path)
    state = read_official(tmp_path, files)
    sha = save_state(state, tmp_path / "out" / "model.safetensors", {"format": "pt"})
    back = load_file(tmp_path / "out" / "model.safetensors")
    assert set(back) == set(expected)
    for key, tensor in expected.items():
        assert back[key].dtype == tensor.dtype and torch.equal(back[key], tensor), key
    assert sha256_of(tmp_path / "out" / "model.safetensors", fresh=True) == sha
    assert not (tmp_path / "marker").exists()  # nothing pickled in a release file was executed


def test_conversion_is_deterministic(tmp_path):
    files, _ = _rfr(tmp_path)
    state = read_official(tmp_path, files)
    assert save_state(state, tmp_path / "a.safetensors") == save_state(dict(state), tmp_path / "b.safetensors")


def test_shared_tensors_are_saved(tmp_path):
    weight = torch.randn(4, 4)
    save_state({"a.weight": weight, "b.weight": weight, "c.row": weight[1]}, tmp_path / "m.safetensors")
    back = load_file(tmp_path / "m.safetensors")
    assert torch.equal(back["b.weight"], weight) and torch.equal(back["c.row"], weight[1])


# ------------------------------------------------------------------------ model card


@pytest.mark.parametrize(("model_id", "licence"), [
    ("edgeconnect-places2", "cc-by-nc-4.0"), ("pic-places2", "cc-by-nc-4.0"),
    ("lama", "apache-2.0"), ("rfr-psv", "other"),
])
def test_model_card_front_matter_is_what_the_hub_reads(model_id, licence):
    spec = registry.get(model_id)
    text = model_card(spec, "ab" * 32, 1234, ("x.pth",))
    card = ModelCard(text)
    assert card.data.license == licence
    for fact in (spec.card.authors, spec.card.paper, spec.card.source, spec.card.weights_source, "ab" * 32,
                 spec.licence, "v1"):
        assert fact in text
    if licence == "other":
        assert card.data.license_link == spec.card.source and "do not state a licence" in text


# --------------------------------------------------------- convert() with a network


class TinyNet(NeuralNetwork):
    FACTS = NetworkFacts(official_files=(OfficialFile("tiny_gen.pth", "", container="generator"),))

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)


TINY = ModelSpec(id="tiny-convert", name="Tiny convert", kind="neural", entry=f"{__name__}:TinyNet",
                 licence=Licence("CC BY-NC 4.0 (non-commercial)", "cc-by-nc-4.0"),
                 card=Card(authors="A. Author", paper="Tiny (2024)", source="https://example.org/tiny",
                           weights_source="https://example.org/drive"))


def _official_tiny(folder: Path, extra: bool = False) -> dict[str, torch.Tensor]:
    folder.mkdir(parents=True, exist_ok=True)
    state = {"conv.weight": torch.randn(3, 3, 1, 1), "conv.bias": torch.randn(3)}
    if extra:
        state["conv.extra"] = torch.ones(1)
    torch.save({"iteration": 1, "generator": state}, folder / "tiny_gen.pth")
    return state


def test_convert_writes_weights_card_and_loads(checkpoints, monkeypatch):
    folder = checkpoints / TINY.id
    state = _official_tiny(folder)
    done = convert(TINY, folder)
    assert done.weights == folder / "model.safetensors" and done.card == folder / "README.md"
    assert ModelCard(done.card.read_text()).data.license == "cc-by-nc-4.0"
    assert done.sha256 in done.card.read_text() and "tiny_gen.pth" in done.card.read_text()
    model_cache.clear()
    model = model_cache.get_inpainter(TINY)  # the safetensors now takes precedence
    assert torch.equal(model.conv.weight, state["conv.weight"])
    model_cache.clear()


def test_convert_refuses_files_that_do_not_fit(checkpoints):
    folder = checkpoints / TINY.id
    _official_tiny(folder, extra=True)
    with pytest.raises(WeightsError, match="unexpected keys: conv.extra"):
        convert(TINY, folder)
    assert not (folder / "model.safetensors").exists()


def test_cli_convert_and_verify(checkpoints, monkeypatch, capsys):
    monkeypatch.setattr(registry, "MODELS", registry.MODELS + (TINY,))
    monkeypatch.setattr(registry, "NEURAL", (TINY,))
    _official_tiny(checkpoints / TINY.id)
    assert cli.main(["convert", TINY.id]) == 0
    out = capsys.readouterr().out
    sha = sha256_of(checkpoints / TINY.id / "model.safetensors", fresh=True)
    assert f'"model.safetensors": "{sha}"' in out
    assert cli.main(["verify"]) == 0
    assert f"sha256 {sha}" in capsys.readouterr().out
    path = checkpoints / TINY.id / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-4])
    os.utime(path, ns=(1, 1))
    assert cli.main(["verify", TINY.id]) == 1
    assert "truncated" in capsys.readouterr().err


def test_cli_convert_missing_files_exits_non_zero(checkpoints, monkeypatch, capsys):
    monkeypatch.setattr(registry, "MODELS", registry.MODELS + (TINY,))
    assert cli.main(["convert", TINY.id]) == 1
    assert "tiny_gen.pth" in capsys.readouterr().err
