"""The diffusion remover (RORem, issue 26) end to end on a tiny random-weight SDXL inpainting pipeline.

The registry's own ``rorem`` entry is served by a loopback Hub (its pipeline repo, as diffusers'
``save_pretrained`` writes one, plus files that must never be fetched) and a loopback Google Drive
(its LCM LoRA), so the real download, pinning, loading (diffusers' ``from_pretrained``, LoRA fused)
and the studio's pipeline run unchanged; only the networks are tiny.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import constants

from app import gpu, masks, model_cache, pipeline, registry
from app.errors import ModelUnavailableError, WeightsError
from app.hires import feather_alpha
from app.images import Photo
from app.models.base import Batch
from app.weights import hub, hub_pipeline
from benchmarks import bench_diffusion
from tests import drive_server, tiny_diffusers
from tests.drive_server import DriveServer, drive_id
from tests.helpers import box_hole, textured
from tests.hub_server import HubServer
from tests.tolerances import assert_close

SPEC = registry.get("rorem")
REPO = SPEC.hub_pipeline.repo
LORA_FOLDER, LORA_FILE = SPEC.hub_pipeline.lora.id, drive_id(7)
#: Files of the repo that must stay on the Hub: a pickle, code, a duplicate variant, a folder no component names.
NEVER = {"unet/diffusion_pytorch_model.bin": b"pickle", "scheduler/custom.py": b"import os",
         "unet/diffusion_pytorch_model.fp16.safetensors": b"duplicate", "extra/model.safetensors": b"not a component",
         "README.md": b"# card"}


@pytest.fixture
def servers(tls, monkeypatch, tmp_path, checkpoints) -> Iterator[tuple[HubServer, DriveServer]]:
    """The loopback Hub (RORem's repo) and Drive (its LoRA folder), a fresh HF_HOME, the CPU allowed."""
    drive = DriveServer(tls[0])
    drive_server.use(monkeypatch, drive.proxy, tls[1])
    drive.files[LORA_FILE] = ("pytorch_lora_weights.safetensors", tiny_diffusers.lora_bytes())
    drive.folders[LORA_FOLDER] = ("RORem-LCM", [LORA_FILE])
    with HubServer() as server:
        server.add(REPO, tiny_diffusers.repo_files() | NEVER)
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setenv(hub_pipeline.SLOW_ON_CPU_ENV, "1")
        hub.forget_unreachable()
        model_cache.clear()
        yield server, drive
        model_cache.clear()
        hub.forget_unreachable()
    drive.stop()


def first_use(pins_file: Path) -> dict[str, dict]:
    return json.loads(pins_file.read_text())["rorem"]["first_use"]


@pytest.mark.slow  # ~8 s here: the full run only (README, fast lane)
def test_first_use_fetches_only_safe_files_fuses_the_lora_pins_everything_and_erases(servers, pins_file, monkeypatch):
    server, drive = servers
    assert model_cache.offer(SPEC).state == "download"
    results = pipeline.run(Photo(pixels=textured(300, 420)), hole := box_hole(300, 420, 100, 170, 150, 260),
                           ["rorem"], options := pipeline.Options(samples=2, seed=5, margin=32))

    asked = {path.split("/resolve/", 1)[1].split("/", 1)[1] for method in ("HEAD", "GET")
             for path in server.paths(method) if "/resolve/" in path}
    assert asked <= set(tiny_diffusers.repo_files())  # nothing of NEVER was even asked for
    pinned = first_use(pins_file)
    lora = "pytorch_lora_weights.safetensors"  # Drive files are pinned under their released name
    assert set(pinned) == set(tiny_diffusers.repo_files()) | {lora}  # every component file
    commit = server.repos[REPO].refs["main"]
    for name, data in tiny_diffusers.repo_files().items():
        assert pinned[name] == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                                "from": f"{REPO}@{commit}"}
    assert pinned[lora]["sha256"] == hashlib.sha256(tiny_diffusers.lora_bytes()).hexdigest()

    model = model_cache.get_inpainter(SPEC)
    assert type(model.pipe.scheduler).__name__ == "LCMScheduler" and not model.pipe.get_list_adapters()  # fused
    assert len(results) == 2
    band = feather_alpha(masks.grow(hole, options.grow), options.feather) > 0
    for result in results:
        assert (result.photo.pixels[~band] == textured(300, 420)[~band]).all()  # outside the hole: bit-identical
        assert (result.photo.pixels[hole] != textured(300, 420)[hole]).any()
    assert (results[0].photo.pixels[hole] != results[1].photo.pixels[hole]).any()  # one fill per seed

    model_cache.clear()  # a restart: the cache and the pins serve it, nothing is downloaded again
    asked = len(server.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert hub_pipeline.locate(SPEC).status == "cached"
    model_cache.get_inpainter(SPEC)
    assert len(server.requests) == asked


@pytest.mark.slow  # ~8 s here
def test_sample_k_is_the_same_whatever_the_number_of_samples(servers):
    model = model_cache.get_inpainter(SPEC)
    batch = Batch(textured(64, 64)[None], box_hole(64, 64, 16, 48, 16, 48)[None])
    one = model.inpaint(batch, samples=1, seed=11).samples
    three = model.inpaint(batch, samples=3, seed=11).samples
    assert three.shape == (1, 3, 64, 64, 3) and three.dtype == np.float32
    assert_close("contract.batch", three[:, 0], one[:, 0])
    assert np.abs(three[:, 1] - three[:, 0]).max() > 1e-3
    assert np.abs(model.inpaint(batch, samples=1, seed=12).samples - one).max() > 1e-3


def test_later_bytes_other_than_the_pinned_ones_are_refused_and_deleted(servers, tmp_path, pins_file):
    server, _ = servers
    model_cache.get_inpainter(SPEC)  # first use: pinned
    name = "vae/diffusion_pytorch_model.safetensors"
    commit = server.repos[REPO].refs["main"]
    other = tiny_diffusers.repo_files(seed=3)[name]
    server.repos[REPO].commits[commit][name] = other  # the Hub now serves other bytes at the pinned commit
    for path in (tmp_path / "hf").rglob("diffusion_pytorch_model.safetensors"):
        if "vae" in path.parts:
            path.unlink()
    model_cache.clear()
    with pytest.raises(WeightsError) as caught:
        model_cache.get_inpainter(SPEC)
    message = str(caught.value)
    assert first_use(pins_file)[name]["sha256"] in message and hashlib.sha256(other).hexdigest() in message
    assert "deleted again" in message
    assert not [p for p in (tmp_path / "hf").rglob("*") if p.is_file() and p.read_bytes() == other]


@pytest.mark.parametrize("component", [["evil_library", "Thing"], ["diffusers", "NotAClass"]])
def test_a_model_index_naming_other_classes_is_refused_before_any_weights(servers, pins_file, component):
    server, _ = servers
    files = dict(tiny_diffusers.repo_files())
    index = json.loads(files["model_index.json"])
    index["unet"] = component
    server.add(REPO, files | {"model_index.json": json.dumps(index).encode()})
    with pytest.raises(WeightsError, match="only classes of diffusers and transformers"):
        model_cache.get_inpainter(SPEC)
    assert not [p for p in server.paths() if p.endswith(".safetensors")]
    assert not pins_file.exists()


def test_a_lora_for_nothing_in_the_unet_is_refused_and_not_pinned(servers, pins_file):
    _, drive = servers
    drive.files[LORA_FILE] = ("pytorch_lora_weights.safetensors", tiny_diffusers.lora_for_nothing())
    with pytest.raises(WeightsError):
        model_cache.get_inpainter(SPEC)
    assert not pins_file.exists()


def test_on_a_cpu_it_is_offered_only_when_the_operator_says_so(servers, monkeypatch):
    slow = replace(SPEC, cpu_seconds_512=600.0)
    monkeypatch.setattr(registry, "MODELS", tuple(slow if s.id == "rorem" else s for s in registry.MODELS))
    monkeypatch.delenv(hub_pipeline.SLOW_ON_CPU_ENV)
    state = model_cache.availability(slow)
    assert not state.ok and "needs a GPU" in state.public and "10 min" in state.reason
    monkeypatch.setenv(hub_pipeline.SLOW_ON_CPU_ENV, "1")
    assert model_cache.availability(slow).ok


def test_offline_without_its_files_it_is_unavailable_with_the_reason(servers, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    state = model_cache.availability(SPEC)
    assert not state.ok and "offline" in state.reason
    with pytest.raises(ModelUnavailableError):
        model_cache.get_inpainter(SPEC)


def test_zero_gpu_duration_grows_with_steps_and_size():
    lama = registry.get("lama")
    small = Batch(np.zeros((1, 512, 512, 3), np.uint8), np.zeros((1, 512, 512), bool))
    large = Batch(np.zeros((1, 1024, 1024, 3), np.uint8), np.zeros((1, 1024, 1024), bool))
    assert gpu.gpu_seconds(SPEC, small) > gpu.gpu_seconds(lama, small)
    assert gpu.gpu_seconds(SPEC, large, samples=2) > gpu.gpu_seconds(SPEC, small, samples=2)
    assert gpu.gpu_seconds(SPEC, small, samples=2) > gpu.gpu_seconds(SPEC, small)
    assert SPEC.gpu_seconds_per_crop == pytest.approx(0.35 * SPEC.kwargs["steps"])


def test_the_benchmark_dry_run_times_the_same_classes_and_reports_per_device(capsys):
    bench_diffusion.main(["--tiny", "--rounds", "1", "--size", "64", "--steps", "4", "8"])
    rows = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    for row in rows:  # encode + int(steps * 0.99) UNet passes + decode
        passes = int(row["steps"] * 0.99)
        assert row["seconds_per_fill"] == pytest.approx(row["vae_encode"] + passes * row["unet_step"]
                                                         + row["vae_decode"], abs=5e-3)  # each part rounded
    run = {"command": "c", "machine": bench_diffusion.machine.describe(), "rows": rows}
    text = bench_diffusion.section({"cpu": run})
    assert "GPU (float16)**: not measured" in text and "| 64x64 | 8 |" in text
