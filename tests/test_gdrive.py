"""The authors' releases on Google Drive (issue 25): gdown against a loopback Drive, converted and pinned on first use.

The real gdown code paths run against :class:`tests.drive_server.DriveServer`, which answers on
Drive's own host names through an HTTPS proxy (gdown always asks https://drive.google.com).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from app import model_cache, registry
from app.errors import ModelUnavailableError, WeightsError
from app.specs import GoogleDriveRelease
from app.weights import hub
from app.weights.gdrive import matches
from app.weights.resolve import locate, provisioned_dir
from tests import drive_server
from tests.drive_server import DriveServer, drive_id
from tests.hub_weights import go_offline, spec_for

TINY, DIS, FOLDER = drive_id(1), drive_id(2), drive_id(3)


def release(value: float = 5.0) -> tuple[bytes, dict[str, torch.Tensor]]:
    """The tiny network's release file in its official container (``{"generator": state}``)."""
    state = {"conv.weight": torch.full((3, 3, 1, 1), value), "conv.bias": torch.arange(3.0)}
    buffer = io.BytesIO()
    torch.save({"iteration": 1, "generator": state}, buffer)
    return buffer.getvalue(), state


def tiny_on_drive(monkeypatch, **fields) -> registry.ModelSpec:
    """The tiny model whose only source is a Drive release (by default: the folder FOLDER, file tiny.pth)."""
    source = GoogleDriveRelease(**({"id": FOLDER, "files": {"tiny.pth": "tiny.pth"}, "container": "folder"} | fields))
    spec = replace(spec_for("tiny"), id="tiny-drive", weights=None, official_drive=source)
    monkeypatch.setattr(registry, "MODELS", registry.MODELS + (spec,))
    return spec


def serve_folder(drive: DriveServer, data: bytes, mode: str = "") -> None:
    """FOLDER holds tiny.pth (TINY) and a discriminator the network does not need (DIS)."""
    drive.files[TINY] = ("tiny.pth", data)
    drive.files[DIS] = ("tiny_dis.pth", b"not needed" * 100)
    drive.folders[FOLDER] = ("tiny release", [TINY, DIS])
    if mode:
        drive.modes[TINY] = mode


def left_behind(spec: registry.ModelSpec, root: Path) -> list[str]:
    """Files under HF_HOME other than the pins (the cache and its staging folders)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_first_use_lists_the_folder_downloads_only_what_is_needed_converts_and_pins(drive, monkeypatch,
                                                                                     tmp_path, pins_file):
    data, state = release()
    serve_folder(drive, data, mode="confirm")  # Drive's virus-scan page first: gdown's confirmation path
    spec = tiny_on_drive(monkeypatch)
    location = locate(spec)
    assert (location.status, location.via) == ("remote", "archive") and "Google Drive folder" in location.reason
    assert model_cache.availability(spec).ok  # Drive answered for the folder: one request, nothing downloaded
    assert drive.requests == [f"GET drive.google.com/embeddedfolderview?id={FOLDER}"]

    model = model_cache.get_inpainter(spec)
    assert torch.equal(model.conv.weight, state["conv.weight"])
    assert left_behind(spec, tmp_path / "hf") == [f"inpaint-studio/{spec.id}/README.md",
                                                   f"inpaint-studio/{spec.id}/model.safetensors"]
    assert not drive.asked("drive.usercontent.google.com/download") == []
    assert all(DIS not in r for r in drive.requests)  # the discriminator stayed on Drive
    confirmed = [r for r in drive.requests if "confirm=t" in r and "uuid=" in r]
    assert len(confirmed) == 1  # through the virus-scan form, as gdown reads it
    pinned = json.loads(pins_file.read_text())[spec.id]["first_use"]["tiny.pth"]
    assert pinned["sha256"] == hashlib.sha256(data).hexdigest() and pinned["size"] == len(data)
    assert FOLDER in pinned["from"]

    model_cache.clear()  # a restart: converted weights are used, Drive is not asked again
    asked = len(drive.requests)
    go_offline(monkeypatch)
    assert locate(spec).status == "local"
    model_cache.get_inpainter(spec)
    assert len(drive.requests) == asked


def test_a_later_download_with_other_bytes_is_refused_naming_both_hashes(drive, monkeypatch, tmp_path, pins_file):
    first, _ = release(5.0)
    pins_file.write_text(json.dumps({"tiny-drive": {"first_use": {"tiny.pth": {
        "sha256": hashlib.sha256(first).hexdigest(), "size": len(first), "from": "an earlier first use"}}}}))
    other, _ = release(6.0)  # the authors (or someone) replaced the file
    serve_folder(drive, other)
    spec = tiny_on_drive(monkeypatch)
    with pytest.raises(WeightsError, match="not the file pinned on its first use") as error:
        model_cache.get_inpainter(spec)
    message = str(error.value)
    assert hashlib.sha256(first).hexdigest() in message and hashlib.sha256(other).hexdigest() in message
    assert str(tmp_path) not in message
    assert left_behind(spec, tmp_path / "hf") == []
    assert json.loads(pins_file.read_text())["tiny-drive"]["first_use"]["tiny.pth"]["from"] == "an earlier first use"
    assert locate(spec).status == "remote"  # the next click tries again (and is refused again)


FAILURES = {  # how Drive fails -> what the visitor reads
    "quota": ("quota", "too many users have viewed or downloaded the file recently"),
    "private": ("private", "gone or no longer shared publicly"),
    "gone": ("gone", "gone or no longer shared publicly"),
    "folder gone": ("folder gone", "gone or no longer shared publicly"),
    "html instead of the file": ("html", "sent a web page instead of the authors' tiny.pth"),
    "larger than the cap": ("", "larger than the 100 bytes allowed"),
    "offline": ("offline", "Google Drive cannot be reached from this server"),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_each_way_drive_fails_has_its_message_and_leaves_nothing(drive, monkeypatch, tmp_path, pins_file, case):
    mode, says = FAILURES[case]
    data, _ = release()
    serve_folder(drive, data, mode=mode if mode in ("quota", "private", "html", "gone") else "")
    spec = tiny_on_drive(monkeypatch, **({"max_bytes": 100} if case == "larger than the cap" else {}))
    if mode == "folder gone":
        del drive.folders[FOLDER]
    elif mode == "offline":
        drive_server.use(monkeypatch, "http://127.0.0.1:9", Path(drive_server.__file__))  # nothing listens there
    with pytest.raises((ModelUnavailableError, WeightsError)) as error:
        model_cache.get_inpainter(spec)
    message = str(error.value)
    print(f"\n{case}: {message}")  # -s shows what a visitor reads
    assert says.lower() in message.lower(), message
    assert str(tmp_path) not in message and "Traceback" not in message
    assert left_behind(spec, tmp_path / "hf") == []  # no download, no .part file, no staging folder
    assert not pins_file.exists()  # nothing pinned


def test_offline_mode_or_no_answer_is_unavailable_with_the_reason(drive, monkeypatch):
    serve_folder(drive, release()[0])
    spec = tiny_on_drive(monkeypatch)
    drive_server.use(monkeypatch, "http://127.0.0.1:9", Path(drive_server.__file__))
    state = model_cache.availability(spec)
    assert not state.ok and "Google Drive could not be reached" in state.reason
    assert state.public == "Google Drive, where the authors publish its weights, cannot be reached right now"
    go_offline(monkeypatch)
    state = model_cache.availability(spec)
    assert not state.ok and "offline" in state.reason and f"Google Drive folder {FOLDER}" in state.reason


def test_a_release_drive_no_longer_has_is_not_offered_as_ready(drive, monkeypatch):
    spec = tiny_on_drive(monkeypatch)  # FOLDER is not on this Drive
    state = model_cache.availability(spec)
    assert not state.ok and "embeddedfolderview" in state.reason and "HTTP 404" in state.reason
    assert state.public == "the authors' weights are not on Google Drive where this server expects them"
    spec = tiny_on_drive(monkeypatch, id=TINY, container="auto")  # neither a folder nor a file there
    assert not model_cache.availability(spec).ok
    assert [r.split("?")[0] for r in drive.requests[-2:]] == ["GET drive.google.com/embeddedfolderview",
                                                             "GET drive.google.com/uc"]


def test_a_dripping_drive_stops_at_the_deadline_and_leaves_nothing(drive, monkeypatch, tmp_path):
    data, _ = release()
    serve_folder(drive, data, mode="drip")
    spec = tiny_on_drive(monkeypatch)
    monkeypatch.setenv(hub.DOWNLOAD_TIMEOUT_ENV, "1")
    start = time.monotonic()
    with pytest.raises(hub.DownloadTooSlowError, match="did not finish within 1 s"):
        model_cache.get_inpainter(spec)
    assert time.monotonic() - start < 10
    time.sleep(0.3)  # the cancelled transfer stops at its next read
    assert left_behind(spec, tmp_path / "hf") == []


@pytest.mark.parametrize("container", ["auto", "zip"])
def test_a_release_that_is_one_zip_is_extracted_by_name(drive, monkeypatch, tmp_path, pins_file, container):
    """PIC's links may be a folder or an archive: ``auto`` finds Drive lists no folder and takes the file."""
    data, state = release()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("release/celeba_random/tiny.pth", data)
        bundle.writestr("release/celeba_random/tiny_dis.pth", b"x" * 10)
    drive.files[TINY] = ("release.zip", buffer.getvalue())
    spec = tiny_on_drive(monkeypatch, id=TINY, container=container)
    assert model_cache.availability(spec).ok
    assert torch.equal(model_cache.get_inpainter(spec).conv.weight, state["conv.weight"])
    assert left_behind(spec, tmp_path / "hf") == [f"inpaint-studio/{spec.id}/README.md",
                                                   f"inpaint-studio/{spec.id}/model.safetensors"]
    assert json.loads(pins_file.read_text())["tiny-drive"]["first_use"]["release.zip"]["size"] == len(buffer.getvalue())


def test_matches_by_name_or_path_end():
    assert matches("EdgeModel_gen.pth", "EdgeModel_gen.pth")
    assert matches("checkpoints/places2/EdgeModel_gen.pth", "places2/EdgeModel_gen.pth")
    assert not matches("checkpoints/celeba/EdgeModel_gen.pth", "places2/EdgeModel_gen.pth")
    assert not matches("MyEdgeModel_gen.pth", "EdgeModel_gen.pth")


def test_every_edgeconnect_rfr_pic_and_migan_model_names_its_drive_source():
    drive_ids = {spec.id: spec.official_drive for spec in registry.NEURAL if spec.official_drive}
    assert sorted(drive_ids) == sorted(s.id for s in registry.NEURAL if s.id.split("-")[0] in {"edgeconnect", "rfr",
                                                                                                 "pic", "migan"})
    assert drive_ids["migan-places2-512"].files == {"migan_512_places2.pt": "migan.pt"}
    assert drive_ids["edgeconnect-places2"].id == "158ch9Psjop0mQEdeIp9DKjrYIGTDsZKN"
    assert drive_ids["rfr-celeba"].files == {"checkpoint_celeba.pth": "checkpoint.pth"}
    assert "latest_net_D.pth" in drive_ids["pic-imagenet"].files  # PIC's discriminator rates the samples
    assert all("_dis" not in name for name in drive_ids["edgeconnect-psv"].files)


@pytest.mark.slow  # ~86 MB of synthetic EdgeConnect weights through TLS: seconds
def test_edgeconnect_comes_from_its_drive_folder_on_first_use(drive, monkeypatch, tmp_path, pins_file):
    """The registry's own entry, its real folder id, the release written as the authors' BaseModel.save does."""
    from tests.releases.edgeconnect import write_release

    folder = write_release(tmp_path / "authors", seed=3)
    spec = registry.get("edgeconnect-places2")
    children = []
    for n, path in enumerate(sorted(folder.glob("*.pth")), start=10):
        drive.files[drive_id(n)] = (path.name, path.read_bytes())
        drive.modes[drive_id(n)] = "confirm"
        children.append(drive_id(n))
    drive.files[drive_id(20)] = ("EdgeModel_dis.pth", b"d" * 1000)
    drive.folders[spec.official_drive.id] = ("places2", [*children, drive_id(20)])
    assert model_cache.availability(spec).ok
    model = model_cache.get_inpainter(spec)
    assert sum(p.numel() for p in model.parameters()) > 20_000_000
    assert all(drive_id(20) not in r for r in drive.requests)
    assert sorted(json.loads(pins_file.read_text())[spec.id]["first_use"]) == ["EdgeModel_gen.pth",
                                                                              "InpaintingModel_gen.pth"]
    assert sorted(p.name for p in provisioned_dir(spec).iterdir()) == ["README.md", "model.safetensors"]


def test_weights_push_mirrors_the_drive_release_in_one_step(drive, server, hf_env, monkeypatch, pins_file,
                                                            capsys):
    """Converted and pinned on first use from Drive; `weights push` uploads that safetensors and records the mirror."""
    from huggingface_hub import constants

    from app import weights_cli as cli

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # the test Hub speaks plain LFS only
    data, _ = release()
    serve_folder(drive, data)
    spec = tiny_on_drive(monkeypatch)
    model_cache.get_inpainter(spec)
    converted = (provisioned_dir(spec) / "model.safetensors").read_bytes()
    assert cli.main(["push", spec.id, "--repo", "pushns/tiny-drive"]) == 0, capsys.readouterr().err
    commit, files, _ = server.resolve("pushns/tiny-drive", "v1")
    assert set(files) == {"model.safetensors", "README.md"} and files["model.safetensors"] == converted
    record = json.loads(pins_file.read_text())[spec.id]
    assert record["mirror"]["repo_id"] == "pushns/tiny-drive" and record["mirror"]["revision"] == commit
    assert "tiny.pth" in record["first_use"]  # the Drive file's pin stays beside the mirror's
