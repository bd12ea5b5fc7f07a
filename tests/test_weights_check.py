"""``python -m app weights check``: fetch, load, run, compare with Telea, flag bad conversions.

The releases are served by the loopback HTTPS-file server of :mod:`tests.file_server` (the ``files`` fixture)
(as download.openmmlab.com serves mmagic's) and go through the real path: download, sha256 prefix,
restricted unpickler, strict load, safetensors, the pipeline. The network, :class:`FillNet`, fills a
hole sensibly with its released weights (colours diffused from around the hole, then a 1x1 channel
mix that is the identity); the broken releases are the conversion mistakes the check must catch.
"""

from __future__ import annotations

import hashlib
import io

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from app import registry
from app import weights_check as check
from app.models.base import Batch, NetworkFacts, NeuralNetwork, Prediction
from app.specs import HubWeights, Licence, OfficialDownload
from app.weights.official import OfficialFile
from app.weights_cli import main
from benchmarks import common
from tests.file_server import Files
from tests.hub_weights import go_offline
from tests.paths import EVALSET

IDENTITY = torch.eye(3)[:, :, None, None]


class FillNet(NeuralNetwork):
    """Diffuses the colours around each hole into it, then mixes the channels with one 1x1 convolution."""

    FACTS = NetworkFacts(official_files=(OfficialFile("fill.pth", "", container="generator"),))

    def __init__(self) -> None:
        super().__init__()
        self.mix = nn.Conv2d(3, 3, 1)

    def inpaint(self, batch: Batch, *, samples: int = 1, seed: int = 0) -> Prediction:
        filled = np.stack([diffuse(image.astype(np.float32) / 255, ~hole) for image, hole in zip(batch.images,
                                                                                               batch.holes)])
        out = self.mix(torch.from_numpy(filled).permute(0, 3, 1, 2).to(self.device)).clamp(0, 1)
        return Prediction(samples=out.permute(0, 2, 3, 1)[:, None].cpu().numpy())


def diffuse(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Pull-push: masked means at halving resolutions until nothing is unknown, then filled back level by level."""
    h, w = known.shape
    if known.all() or min(h, w) < 2:
        return image
    weight = known.astype(np.float32)
    size = ((w + 1) // 2, (h + 1) // 2)
    num = cv2.resize(image * weight[..., None], size, interpolation=cv2.INTER_AREA)
    den = cv2.resize(weight, size, interpolation=cv2.INTER_AREA)
    coarse = diffuse(num / np.maximum(den, 1e-8)[..., None], den > 0)
    return np.where(known[..., None], image, cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR))


def release(weight: torch.Tensor, bias: torch.Tensor, prefix: str = "") -> bytes:
    """FillNet's release file in its official container (``{"generator": state}``)."""
    buffer = io.BytesIO()
    torch.save({"generator": {f"{prefix}mix.weight": weight, f"{prefix}mix.bias": bias}}, buffer)
    return buffer.getvalue()


RELEASES = {  # model id -> the converted weights it serves
    "fill-good": release(IDENTITY, torch.zeros(3)),
    "fill-swapped": release(IDENTITY.flip(0), torch.zeros(3)),  # RGB read as BGR
    "fill-range": release(2 * IDENTITY, -torch.ones(3)),  # [-1, 1] output taken for [0, 1]
    "fill-prefix": release(IDENTITY, torch.zeros(3), prefix="generator."),  # a prefix the layout does not strip
}


def serve(files: Files, monkeypatch: pytest.MonkeyPatch, ids: list[str]) -> list[registry.ModelSpec]:
    """Register a FillNet model per id whose only source is its release on ``files``; also as ``registry.NEURAL``."""
    specs = []
    for model_id in ids:
        data = RELEASES[model_id]
        prefix = hashlib.sha256(data).hexdigest()[:8]
        files.files[f"/inpainting/{model_id}-{prefix}.pth"] = data
        source = OfficialDownload(url=files.url(f"/inpainting/{model_id}-{prefix}.pth"), file="fill.pth",
                                  sha256_prefix=prefix)
        specs.append(registry.ModelSpec(id=model_id, name=f"Fill ({model_id})", kind="neural",
                                        entry=f"{__name__}:FillNet", licence=Licence("Apache-2.0", "apache-2.0"),
                                        weights=HubWeights(model_id, "v1", {"model.safetensors": None}),
                                        official_download=source))
    monkeypatch.setattr(registry, "NEURAL", tuple(specs))
    monkeypatch.setattr(registry, "MODELS", registry.CLASSICAL + tuple(specs))
    monkeypatch.setattr(registry, "TEXT_FINDERS", ())  # these are the only models with weights (--all)
    monkeypatch.delenv(registry.HUB_NAMESPACE_ENV, raising=False)
    return specs


def lines_of(out: str) -> dict[str, str]:
    """Each model's report (its line and the indented one below it) by model id."""
    found: dict[str, str] = {}
    current = ""
    for line in out.splitlines():
        if line.startswith("  ") and current:
            found[current] += "\n" + line
        elif ": " in line and not line.startswith("Checking"):
            current = line.split(":", 1)[0]
            found[current] = line
    return found


def test_a_good_release_passes_and_swapped_channels_are_flagged(files, hf_env, checkpoints,
                                                                monkeypatch, capsys):
    serve(files, monkeypatch, ["fill-good", "fill-swapped"])
    assert main(["check", "fill-good", "fill-swapped", "--photos", "1"]) == 1  # one is suspect
    out = capsys.readouterr().out
    assert "bundled examples astronaut, bridge, chelsea" in out
    report = lines_of(out)
    assert report["fill-good"].startswith("fill-good: OK")
    for part in ("download", "load", "forward", "per photo", "output finite, not constant"):
        assert part in report["fill-good"]
    assert report["fill-swapped"].startswith("fill-swapped: SUSPECT: check the conversion — colours look swapped")
    if (EVALSET / "masks" / "object").is_dir():
        assert "hole PSNR" in report["fill-good"] and "(Telea " in report["fill-good"]
    assert len(files.gets) == 2  # each release fetched once

    capsys.readouterr()
    assert main(["check", "fill-good", "--photos", "0"]) == 0  # a second check finds the weights here
    assert "weights already here" in capsys.readouterr().out and len(files.gets) == 2


def test_the_benchmarks_measure_what_the_check_fetched(files, hf_env, checkpoints, monkeypatch, capsys):
    serve(files, monkeypatch, ["fill-good"])
    before = common.select_models()
    assert "fill-good" in before.skipped and "weights check fill-good" in before.skipped["fill-good"]
    assert main(["check", "fill-good", "--photos", "0"]) == 0
    after = common.select_models()
    assert "fill-good" in [spec.id for spec in after.models] and "converted from" in after.weights["fill-good"]


def test_all_lists_every_model_a_range_mistake_and_a_failed_strict_load(files, hf_env, checkpoints,
                                                                        monkeypatch, capsys):
    serve(files, monkeypatch, ["fill-range", "fill-prefix"])
    assert main(["check", "--all", "--photos", "1"]) == 1
    report = lines_of(capsys.readouterr().out)
    assert list(report) == ["fill-range", "fill-prefix"]
    assert "SUSPECT: check the conversion" in report["fill-range"]
    assert "levels off Telea's mean colour (darker)" in report["fill-range"]
    assert report["fill-prefix"].startswith("fill-prefix: FAILED") and "generator.mix.weight" in report["fill-prefix"]


def test_offline_it_says_it_needs_the_network(files, hf_env, checkpoints, monkeypatch, capsys):
    serve(files, monkeypatch, ["fill-good", "fill-swapped"])
    go_offline(monkeypatch)
    assert main(["check", "--all"]) == 1
    report = lines_of(capsys.readouterr().out)
    for model_id in ("fill-good", "fill-swapped"):
        assert report[model_id].startswith(f"{model_id}: needs the network") and "HF_HUB_OFFLINE" in report[model_id]
    assert files.gets == []


def test_with_the_authors_server_down_it_says_it_needs_the_network(files, hf_env, checkpoints,
                                                                   monkeypatch, capsys):
    serve(files, monkeypatch, ["fill-good"])
    files.shutdown()
    files.server_close()
    assert main(["check", "fill-good", "--photos", "0"]) == 1
    line = lines_of(capsys.readouterr().out)["fill-good"]
    assert line.startswith("fill-good: needs the network") and "127.0.0.1 could not be reached" in line


def test_classical_fills_pass_and_each_conversion_mistake_is_named():
    """The rule on real fills: Navier-Stokes (another method) passes against Telea; Telea's own fill damaged the
    way conversions damage fills is flagged, each with what looked wrong."""
    cases = check.cases(EVALSET, photos=1)
    telea = [check.fill("telea", case)[0] for case in cases]
    truth = [check.measure(c, t, t, 0.0) for c, t in zip(cases, telea) if c.truth]

    def judged(make) -> list[str]:
        fills = [np.where(c.hole[..., None], make(c, t), c.photo.rgb8).astype(np.uint8) for c, t in zip(cases, telea)]
        return check.judge([check.measure(c, f, t, 0.0) for c, f, t in zip(cases, fills, telea)], truth)

    ns = [check.fill("navier-stokes", case)[0] for case in cases]
    assert check.judge([check.measure(c, f, t, 0.0) for c, f, t in zip(cases, ns, telea)], truth) == []
    assert "colours look swapped" in judged(lambda c, t: t[..., ::-1])[0]
    assert "darker" in judged(lambda c, t: np.clip(2.0 * t - 255, 0, 255))[0]
    assert any("constant fill" in p for p in judged(lambda c, t: np.full_like(t, 128)))
    assert any("the mask was ignored" in p for p in judged(lambda c, t: c.photo.rgb8))
    if truth:  # a blown-out fill: > 6 dB below Telea even on the evaluation set's hardest object hole
        assert any("much worse than Telea: hole PSNR" in p for p in judged(lambda c, t: np.full_like(t, 255)))


@pytest.mark.slow  # draws 51 M synthetic values, converts a 200 MB checkpoint and runs LaMa on the CPU
def test_lama_from_its_hub_archive_is_fetched_run_and_then_benchmarked(server, hf_env, checkpoints,
                                                                       pins_file, tmp_path, capsys):
    """The registry's own LaMa, its big-lama.zip (synthetic weights, the release layout) served by the loopback
    Hub: fetched, converted, loaded and run by the check, then picked by the benchmarks without any download."""
    import json
    import zipfile

    from tests.releases.lama import default_seed, generator_state, write_best_ckpt

    folder = write_best_ckpt(tmp_path / "release" / "models", generator_state(default_seed()))
    with zipfile.ZipFile(tmp_path / "big-lama.zip", "w") as bundle:
        bundle.writestr("big-lama/config.yaml", "generator:\n  kind: ffc_resnet\n")
        bundle.write(folder / "best.ckpt", "big-lama/models/best.ckpt")
    archive = (tmp_path / "big-lama.zip").read_bytes()
    pins_file.write_text(json.dumps({"lama": {"archive": {"sha256": hashlib.sha256(archive).hexdigest(),
                                                          "size": len(archive)}}}))
    server.add("smartywu/big-lama", {"big-lama.zip": archive})
    assert "lama" in common.select_models(["lama"]).skipped
    code = main(["check", "lama", "--photos", "1"])
    line = lines_of(capsys.readouterr().out)["lama"]
    # synthetic weights are no trained LaMa: their fill is far off (72 levels darker than Telea's here), never "OK"
    assert line.startswith("lama: SUSPECT: check the conversion") and code == 1, line
    for part in ("download", "load", "forward", "hole PSNR"):
        assert part in line or part == "hole PSNR" and not (EVALSET / "masks" / "object").is_dir()
    assert [spec.id for spec in common.select_models(["lama"]).models] == ["lama"]
