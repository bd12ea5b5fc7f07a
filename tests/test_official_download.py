"""The authors' release file over HTTPS (mmagic's download.openmmlab.com), converted on first use.

A loopback HTTP server stands in for the authors' server (plain HTTP is allowed for loopback only).
"""

from __future__ import annotations

import hashlib
import io
import logging

import pytest
import torch

from app import model_cache, registry
from app.errors import ModelUnavailableError, WeightsError
from app.specs import HubWeights, OfficialDownload
from app.weights.download import check_hop, check_url, require_pin
from app.weights.resolve import locate, provisioned_dir
from tests.hub_weights import FILE, go_offline, spec_for


def release() -> tuple[bytes, dict[str, torch.Tensor]]:
    """The tiny network's release file in its official container (``{"generator": state}``)."""
    state = {"conv.weight": torch.full((3, 3, 1, 1), 5.0), "conv.bias": torch.arange(3.0)}
    buffer = io.BytesIO()
    torch.save({"iteration": 1, "generator": state}, buffer)
    return buffer.getvalue(), state


def spec_at(monkeypatch, url: str, data: bytes, **fields) -> registry.ModelSpec:
    """The tiny model whose only source is ``url`` (named like mmagic's releases: sha256 prefix in the name)."""
    prefix = hashlib.sha256(data).hexdigest()[:8]
    source = OfficialDownload(url=url, file="tiny.pth", **({"sha256_prefix": prefix} | fields))
    spec = registry.ModelSpec(**{**spec_for("tiny").__dict__, "id": "tiny-https", "official_download": source,
                                 "weights": HubWeights("tiny", "v1", {FILE: None})})
    monkeypatch.setattr(registry, "MODELS", registry.MODELS + (spec,))
    monkeypatch.delenv(registry.HUB_NAMESPACE_ENV, raising=False)
    return spec


def test_first_use_downloads_checks_converts_and_says_what_to_pin(files, hf_env, checkpoints, monkeypatch,
                                                                  caplog):
    data, state = release()
    files.files["/inpainting/tiny_20200619-abcd.pth"] = data
    spec = spec_at(monkeypatch, files.url("/inpainting/tiny_20200619-abcd.pth"), data)
    location = locate(spec)
    assert (location.status, location.via) == ("remote", "archive") and "tiny.pth from 127.0.0.1" in location.reason
    assert files.gets == []
    assert model_cache.availability(spec).ok and files.heads == ["/inpainting/tiny_20200619-abcd.pth"]
    steps = []
    with caplog.at_level(logging.WARNING):
        model = model_cache.get_inpainter(spec, progress=lambda f, m: steps.append(m))
    assert torch.equal(model.conv.weight, state["conv.weight"])
    assert sorted(p.name for p in provisioned_dir(spec).iterdir()) == ["README.md", "model.safetensors"]
    assert hashlib.sha256(data).hexdigest() in caplog.text  # the full sha256, to pin in pins.json
    assert any("Converting" in s for s in steps)
    model_cache.clear()
    go_offline(monkeypatch)
    assert locate(spec).status == "local"  # kept: a restart does not download again
    model_cache.get_inpainter(spec)
    assert len(files.gets) == 1


def test_ready_only_while_the_authors_server_has_the_file(files, hf_env, checkpoints, monkeypatch):
    data, _ = release()
    spec = spec_at(monkeypatch, files.url("/moved.pth"), data)
    state = model_cache.availability(spec)
    assert not state.ok and "HTTP 404" in state.reason and "127.0.0.1" not in state.public
    files.shutdown()
    files.server_close()
    spec = spec_at(monkeypatch, "http://127.0.0.1:9/tiny.pth", data)
    state = model_cache.availability(spec)
    assert not state.ok and state.public == "the authors' download server cannot be reached right now"


@pytest.mark.parametrize("damage", ["wrong sha256", pytest.param("truncated", marks=pytest.mark.slow),  # retries: 6 s
                                    "longer than pinned"])
def test_a_bad_download_is_refused_and_nothing_is_kept(files, hf_env, checkpoints, monkeypatch, damage):
    data, _ = release()
    path = "/tiny.pth"
    if damage == "wrong sha256":
        files.files[path] = data
        spec = spec_at(monkeypatch, files.url(path), data + b"x")  # the name promises another file
        match = "does not match its pinned sha256"
    elif damage == "truncated":
        files.files[path] = data
        files.cut.add(path)
        spec = spec_at(monkeypatch, files.url(path), data)
        match = "Could not download|is .* bytes|does not match"
    else:
        files.files[path] = data
        spec = spec_at(monkeypatch, files.url(path), data, size=len(data) - 10)
        match = "more than the"
    with pytest.raises((WeightsError, ModelUnavailableError), match=match):
        model_cache.get_inpainter(spec)
    folder = provisioned_dir(spec)
    assert not folder.exists() or list(folder.iterdir()) == []  # no partial download, no staging folder
    assert locate(spec).status == "remote"  # the next click tries again


@pytest.mark.parametrize("right", [True, False])
def test_a_release_pinned_only_by_md5_is_checked_against_it(files, hf_env, checkpoints, monkeypatch, right):
    """MAT's release (IOPaint's GitHub asset) is published with an md5 only: the file must match it."""
    data, state = release()
    files.files["/releases/download/add_mat/tiny.pth"] = data
    md5 = hashlib.md5(data if right else data + b"x", usedforsecurity=False).hexdigest()
    spec = spec_at(monkeypatch, files.url("/releases/download/add_mat/tiny.pth"), data, sha256_prefix="", md5=md5)
    if right:
        assert torch.equal(model_cache.get_inpainter(spec).conv.weight, state["conv.weight"])
    else:
        with pytest.raises(WeightsError, match=f"does not match its pinned md5 \\(expected {md5}"):
            model_cache.get_inpainter(spec)
        assert locate(spec).status == "remote"


def test_a_release_without_any_pin_is_not_downloaded():
    with pytest.raises(WeightsError, match="neither a sha256"):
        require_pin(OfficialDownload(url="https://github.com/x/y/releases/download/t/f.pth", file="f.pth"))


def test_only_https_is_downloaded_except_from_loopback():
    check_url("https://download.openmmlab.com/mmediting/inpainting/x.pth")
    check_url("http://127.0.0.1:8000/x.pth")
    for url in ("http://download.openmmlab.com/x.pth", "ftp://example.com/x.pth", "file:///etc/passwd"):
        with pytest.raises(WeightsError, match="https"):
            check_url(url)


def test_each_hop_must_be_https_to_the_authors_host_or_its_cdn():
    first = "https://download.openmmlab.com/mmediting/inpainting/x.pth"
    check_hop(first, first, "x.pth")
    check_hop(first, "https://openmmlab.oss-accelerate.aliyuncs.com/mmediting/inpainting/x.pth", "x.pth")
    with pytest.raises(WeightsError, match="sent it on to http://download.openmmlab.com, not an https"):
        check_hop(first, "http://download.openmmlab.com/mmediting/inpainting/x.pth", "x.pth")  # a downgrade
    with pytest.raises(WeightsError, match="sent it on to files.example, which is neither"):
        check_hop(first, "https://files.example/x.pth", "x.pth")


def test_a_redirect_on_the_authors_host_is_followed(files, hf_env, checkpoints, monkeypatch):
    data, state = release()
    files.files["/moved/tiny.pth"] = data
    files.redirects["/tiny.pth"] = "/moved/tiny.pth"
    spec = spec_at(monkeypatch, files.url("/tiny.pth"), data)
    assert model_cache.availability(spec).ok
    assert torch.equal(model_cache.get_inpainter(spec).conv.weight, state["conv.weight"])
    assert files.gets == ["/tiny.pth", "/moved/tiny.pth"]


@pytest.mark.parametrize(("target", "named"), [
    ("http://localhost:{port}/elsewhere.pth", "localhost"),  # another host (here: the same server, renamed)
    ("https://weights.example/elsewhere.pth", "weights.example"),  # refused before any connection is tried
    ("ftp://127.0.0.1/elsewhere.pth", "ftp://127.0.0.1"),  # the same host, another scheme
])
def test_a_redirect_to_another_host_or_scheme_is_refused_naming_it(files, hf_env, checkpoints,
                                                                   monkeypatch, target, named):
    data, _ = release()
    files.files["/elsewhere.pth"] = data
    files.redirects["/tiny.pth"] = target.format(port=files.server_address[1])
    spec = spec_at(monkeypatch, files.url("/tiny.pth"), data)
    state = model_cache.availability(spec)  # the HEAD is held to the same rule: not offered as ready
    assert not state.ok and f"sent it on to {named}" in state.reason and "127.0.0.1" not in state.public
    with pytest.raises(WeightsError, match=f"sent it on to {named}") as error:
        model_cache.get_inpainter(spec)
    assert "nothing was downloaded" in str(error.value) or "only downloaded over HTTPS" in str(error.value)
    assert files.gets == ["/tiny.pth"]  # the redirect's target was never asked for the file
    folder = provisioned_dir(spec)
    assert not folder.exists() or list(folder.iterdir()) == []


def test_offline_the_download_is_not_offered(hf_env, checkpoints, monkeypatch):
    data, _ = release()
    spec = spec_at(monkeypatch, "https://download.openmmlab.com/tiny.pth", data)
    go_offline(monkeypatch)
    state = model_cache.availability(spec)
    assert not state.ok and "tiny.pth from download.openmmlab.com" in state.reason


@pytest.mark.slow  # over 1 s here: the full run only (README, fast lane)
def test_an_mmagic_release_comes_from_its_https_source_on_first_use(files, hf_env, checkpoints, monkeypatch):
    """GLCIC's release file in mmagic's container, served as download.openmmlab.com would, named with its
    sha256 prefix: downloaded, checked, converted, loaded; the registry's own entry with the server swapped."""
    from dataclasses import replace

    from tests.mmagic_release import GLCIC, generator_state, write_release

    folder = write_release(GLCIC, checkpoints.parent / "authors", generator_state(GLCIC))
    release = next(folder.glob("*.pth"))
    data = release.read_bytes()
    spec = registry.get("glcic-places2")
    name = release.name.replace("52a040a8", hashlib.sha256(data).hexdigest()[:8])  # the prefix of *this* file
    files.files[f"/mmediting/inpainting/global_local/{name}"] = data
    source = replace(spec.official_download, url=files.url(f"/mmediting/inpainting/global_local/{name}"),
                     sha256_prefix=hashlib.sha256(data).hexdigest()[:8])
    spec = replace(spec, official_download=source)
    monkeypatch.setattr(registry, "MODELS", tuple(spec if s.id == spec.id else s for s in registry.MODELS))
    monkeypatch.delenv(registry.HUB_NAMESPACE_ENV, raising=False)
    assert locate(spec).via == "archive"
    net = model_cache.get_inpainter(spec)
    state = generator_state(GLCIC)
    key = next(iter(state))
    assert torch.equal(net.state_dict()[key], state[key])
    assert sorted(p.name for p in provisioned_dir(spec).iterdir()) == ["README.md", "model.safetensors"]
