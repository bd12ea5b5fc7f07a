"""Hub weights: download, pinned revision, sha256, cache, offline, missing, truncated.

Real huggingface_hub code paths against :mod:`hub_server` on 127.0.0.1. The app reads
``HF_ENDPOINT``/``HF_HOME``/``HF_HUB_OFFLINE`` per call and passes them to
huggingface_hub explicitly, so in-process tests set the environment with monkeypatch (and
mirror it into ``huggingface_hub.constants``, which the library froze at import). The CLI
tests at the end start fresh processes with the environment set, as a user would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
import torch
from huggingface_hub import constants
from safetensors.torch import save, save_file

from app import model_cache
from app.errors import ModelUnavailableError, WeightsError
from app.specs import HubWeights, ModelSpec
from app.weights.fetch import fetch
from app.weights.loader import load_state
from app.weights.resolve import cached_paths, locate
from app.weights.verify import sha256_of
from tests.hub_weights import FILE, TinyNet, assert_same, go_offline, read, sha, spec_for, tiny_bytes
from tests.paths import REPO

# ------------------------------------------------------------------ download and cache


def test_first_download_uses_pinned_revision_and_reports_progress(server, hf_env, synthetic):
    state1, data1 = synthetic[1]
    _, data2 = synthetic[2]
    server.add("testns/inpaint-gen", {FILE: data1}, refs=("v1",))
    server.add("testns/inpaint-gen", {FILE: data2}, refs=("main",))  # another revision, other weights
    spec = spec_for("testns/inpaint-gen", sha(data1))
    assert locate(spec).status == "remote"
    assert server.requests == []  # deciding that needs no network

    calls = []
    paths = fetch(spec, progress=lambda fraction, message: calls.append((fraction, message)))

    assert paths[FILE].is_relative_to(hf_env)  # HF_HOME decides where the cache is
    assert_same(read(paths[FILE]), state1)
    assert server.paths("GET") == [f"/testns/inpaint-gen/resolve/v1/{FILE}"]
    assert not [p for p in server.paths("HEAD") if "/main/" in p]
    assert any("Downloading" in m for _, m in calls) and max(f for f, _ in calls) == 1.0
    assert locate(spec).status == "cached"


def test_cache_hit_offline_with_server_stopped(server, hf_env, synthetic, monkeypatch):
    state1, data1 = synthetic[1]
    server.add("testns/inpaint-gen", {FILE: data1}, refs=("v1",))
    spec = spec_for("testns/inpaint-gen", sha(data1))
    fetch(spec)
    server.stop()
    go_offline(monkeypatch)

    location = locate(spec)
    assert location.status == "cached" and "testns/inpaint-gen@v1" in location.reason
    state, source = load_state(spec, locate(spec))
    assert_same(state, state1)
    assert "testns/inpaint-gen@v1" in source


def test_cache_hit_makes_no_request_even_online(server, hf_env, synthetic):
    _, data1 = synthetic[1]
    server.add("testns/inpaint-gen", {FILE: data1}, refs=("v1",))
    spec = spec_for("testns/inpaint-gen", sha(data1))
    fetch(spec)
    before = len(server.requests)
    fetch(spec)
    assert len(server.requests) == before


def test_get_inpainter_downloads_once_for_concurrent_first_use(server, hf_env):
    data = tiny_bytes(0.5)
    server.add("testns/tiny", {FILE: data}, refs=("v1",))
    spec = spec_for("testns/tiny", sha(data))
    TinyNet.builds = 0
    barrier = threading.Barrier(6)
    results = []

    def use() -> None:
        barrier.wait()
        results.append(model_cache.get_inpainter(spec))

    threads = [threading.Thread(target=use) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 6 and all(model is results[0] for model in results)
    assert TinyNet.builds == 1
    assert server.paths("GET") == [f"/testns/tiny/resolve/v1/{FILE}"]
    assert torch.all(results[0].conv.weight == 0.5)


@pytest.mark.slow  # over 1.5 s here: the full run only (README, fast lane)
def test_interrupted_download_resumes_with_a_range_request(server, hf_env, synthetic, monkeypatch):
    state1, data1 = synthetic[1]
    server.add("testns/inpaint-gen", {FILE: data1}, refs=("v1",))
    server.cut_once.add(("testns/inpaint-gen", FILE))
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 1 << 16)  # so the first half reaches the disk
    paths = fetch(spec_for("testns/inpaint-gen", sha(data1)))
    assert_same(read(paths[FILE]), state1)
    assert [r.range for r in server.requests if r.method == "GET"][-1].startswith("bytes=")



@pytest.mark.slow
def test_download_cut_for_good_is_a_clear_error_and_the_next_try_works(server, hf_env, synthetic, monkeypatch):
    """The connection drops halfway on every try: a message saying so, nothing loaded, then a clean retry."""
    state1, data1 = synthetic[1]
    server.add("testns/inpaint-gen", {FILE: data1}, refs=("v1",))
    server.cut_always.add(("testns/inpaint-gen", FILE))
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 1 << 16)
    spec = spec_for("testns/inpaint-gen", sha(data1))
    with pytest.raises(WeightsError, match="was interrupted and could not be resumed") as failure:
        fetch(spec)
    assert "nothing was loaded" in str(failure.value) and "Traceback" not in str(failure.value)
    assert not list(hf_env.rglob(FILE)), "no half file may pass for the weights"
    server.cut_always.clear()  # the network is back
    assert_same(read(fetch(spec)[FILE]), state1)


# --------------------------------------------------------------------------- checksum


def test_a_download_that_fails_its_pin_is_refused_and_deleted_again(server, hf_env, synthetic):
    _, data1 = synthetic[1]
    _, data2 = synthetic[2]
    server.add("testns/inpaint-gen", {FILE: data2}, refs=("v1",))  # not what the registry pins
    spec = spec_for("testns/inpaint-gen", sha(data1))

    with pytest.raises(WeightsError) as error:
        fetch(spec)
    message = str(error.value)
    assert sha(data1) in message and sha(data2) in message and FILE in message and "NOT used" in message
    assert "deleted again" in message
    assert not [p for p in hf_env.rglob("*") if p.is_file() and p.stat().st_size == len(data2)]  # no blob kept
    assert cached_paths(spec) == {} and locate(spec).status == "remote"  # the next try downloads again


def test_a_cached_file_that_fails_its_pin_is_refused_reported_and_kept(server, hf_env, synthetic):
    """A file already in the cache (changed there after its download) is not the app's to delete."""
    _, data1 = synthetic[1]
    _, data2 = synthetic[2]
    server.add("testns/inpaint-gen", {FILE: data1}, refs=("v1",))
    spec = spec_for("testns/inpaint-gen", sha(data1))
    cached = fetch(spec)[FILE]
    cached.resolve().write_bytes(data2)
    os.utime(cached.resolve(), ns=(1, 1))

    with pytest.raises(WeightsError) as error:  # the cache hit is checked too
        fetch(spec)
    message = str(error.value)
    assert sha(data1) in message and sha(data2) in message and "Nothing was deleted" in message
    assert cached.is_file() and str(cached) in message  # refused, not deleted
    state = model_cache.availability(spec)  # and reported up front, without hashing again
    assert not state.ok and sha(data2) in state.reason and "--force" in state.reason


# ------------------------------------------------------------------ pinned on first use


def test_an_unpinned_mirror_is_pinned_on_first_use_and_held_to_it(server, hf_env, pins_file, monkeypatch,
                                                                   tmp_path):
    """No sha256 anywhere (a registry mirror under INPAINT_HUB_NAMESPACE): the first download that loads strictly
    is recorded in pins.json; a file the mirror serves later (another machine, a fresh cache) must match it."""
    good, tampered = tiny_bytes(1.0), tiny_bytes(9.0)
    server.add("testns/tiny", {FILE: good}, refs=("v1",))
    spec = spec_for("testns/tiny")
    assert torch.all(model_cache.get_inpainter(spec).conv.weight == 1.0)
    pinned = json.loads(pins_file.read_text())["tiny"]["first_use"]
    assert pinned == {FILE: {"sha256": sha(good), "size": len(good), "from": "testns/tiny@v1"}}

    server.add("testns/tiny", {FILE: tampered}, refs=("v1",))  # the mirror's tag now names other bytes
    fresh = tmp_path / "another-machine"
    monkeypatch.setenv("HF_HOME", str(fresh))
    model_cache.clear()
    with pytest.raises(WeightsError) as error:
        model_cache.get_inpainter(spec)
    message = str(error.value)
    assert sha(good) in message and sha(tampered) in message and "pinned on its first use" in message
    assert "first_use" in message and "deleted again" in message
    assert not [p for p in fresh.rglob("*") if p.is_file() and p.read_bytes() == tampered]  # nothing of it kept
    assert locate(spec).status == "remote"
    assert json.loads(pins_file.read_text())["tiny"]["first_use"][FILE]["sha256"] == sha(good)  # the pin stays


def test_a_first_download_that_does_not_load_strictly_is_neither_pinned_nor_kept(server, hf_env, pins_file):
    server.add("testns/tiny", {FILE: save({"conv.weight": torch.ones(3, 3, 1, 1)})}, refs=("v1",))  # no conv.bias
    with pytest.raises(WeightsError, match="missing keys: conv.bias") as error:
        fetch(spec_for("testns/tiny"))
    assert "Nothing was pinned or loaded. The download was deleted again." in str(error.value)
    assert not pins_file.exists() and not list(hf_env.rglob(FILE))


def test_cached_unpinned_weights_are_pinned_by_their_first_load_or_verify(server, hf_env, pins_file, monkeypatch,
                                                                         capsys):
    """Files put in the cache before (``hf download``, an older version of the app) are pinned where first used."""
    from huggingface_hub import hf_hub_download

    from app import registry
    from app import weights_cli as cli

    data = tiny_bytes(2.0)
    server.add("testns/tiny", {FILE: data}, refs=("v1",))
    spec = spec_for("testns/tiny")
    monkeypatch.setattr(registry, "MODELS", registry.MODELS + (spec,))
    hf_hub_download("testns/tiny", FILE, revision="v1", cache_dir=str(hf_env), endpoint=server.url)
    assert cli.main(["verify", spec.id]) == 0
    assert "not pinned); pinned now in" in capsys.readouterr().out
    assert json.loads(pins_file.read_text())["tiny"]["first_use"][FILE]["sha256"] == sha(data)

    pins_file.unlink()
    assert locate(spec).entries[0].sha256 is None
    assert torch.all(model_cache.get_inpainter(spec).conv.weight == 2.0)  # the app's first load pins it too
    assert json.loads(pins_file.read_text())["tiny"]["first_use"][FILE]["sha256"] == sha(data)
    assert locate(spec).entries[0].sha256 == sha(data)


def test_server_claiming_the_pinned_sha_is_not_trusted(server, hf_env, synthetic):
    _, data1 = synthetic[1]
    _, data2 = synthetic[2]
    server.add("testns/inpaint-gen", {FILE: data2}, refs=("v1",))
    server.lies[("testns/inpaint-gen", FILE)] = sha(data1)  # ETag says "pinned file", bytes differ
    with pytest.raises(WeightsError, match=sha(data2)):
        fetch(spec_for("testns/inpaint-gen", sha(data1)))


def test_changed_file_is_hashed_again(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"one")
    assert sha256_of(path) == sha(b"one")
    path.write_bytes(b"two!")
    os.utime(path, ns=(1, 1))
    assert sha256_of(path) == sha(b"two!")


# ------------------------------------------------------------------------ missing file


def test_missing_file_names_what_to_provide(server, hf_env, checkpoints):
    server.add("testns/tiny", {"README.md": b"no weights here"}, refs=("v1",))
    spec = spec_for("testns/tiny")
    with pytest.raises(ModelUnavailableError) as error:
        fetch(spec)
    message = str(error.value)
    assert "testns/tiny@v1 has no file model.safetensors" in message
    assert str(checkpoints / "tiny") in message and "tiny.pth" in message
    assert "python -m app weights download tiny" in message


@pytest.mark.parametrize(("repo", "revision", "expected"), [
    ("testns/nothing", "v1", "INPAINT_HUB_NAMESPACE"),
    ("testns/tiny", "v9", "has no revision 'v9'"),
])
def test_missing_repo_or_revision(server, hf_env, repo, revision, expected):
    server.add("testns/tiny", {FILE: tiny_bytes(1.0)}, refs=("v1",))
    with pytest.raises(ModelUnavailableError, match=expected):
        fetch(spec_for(repo, revision=revision))


def test_offline_and_not_cached_is_unavailable_without_network(server, hf_env, monkeypatch, checkpoints):
    server.add("testns/tiny", {FILE: tiny_bytes(1.0)}, refs=("v1",))
    go_offline(monkeypatch)
    spec = spec_for("testns/tiny")
    state = model_cache.availability(spec)
    assert not state.ok
    assert "HF_HUB_OFFLINE=1" in state.reason and str(checkpoints / "tiny") in state.reason
    assert "model.safetensors" in state.reason and "tiny.pth" in state.reason
    with pytest.raises(ModelUnavailableError) as error:
        model_cache.get_inpainter(spec)
    assert str(error.value) == state.reason
    assert server.requests == []


def test_unreachable_hub_is_remembered(server, hf_env, monkeypatch):
    server.stop()
    spec = spec_for("testns/tiny")
    state = model_cache.availability(spec)  # ready only if the Hub answered: it refused
    assert not state.ok and "could not be reached" in state.reason
    assert state.public == "the Hugging Face Hub cannot be reached right now"
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError, match="could not be reached"):
        fetch(spec)
    assert time.monotonic() - started < 2  # remembered: no new connection attempts and retries


def test_ready_only_when_the_hub_answered_for_the_pinned_file(server, hf_env, synthetic):
    server.add("testns/tiny", {FILE: synthetic[1][1]}, refs=("v1",))
    assert model_cache.availability(spec_for("testns/tiny")).ok
    assert model_cache.availability(spec_for("testns/tiny")).ok
    assert len(server.paths("HEAD")) == 1 and server.paths("GET") == []  # one question, remembered
    gone = model_cache.availability(spec_for("testns/gone", model_id="gone"))
    assert not gone.ok and "has no" in gone.reason and "not where this server expects" in gone.public


def test_online_not_downloaded_says_it_will_download(server, hf_env):
    spec = spec_for("testns/tiny", entry="app.models.lama:BigLaMa", model_id="lama-like")
    location = locate(spec)
    assert location.status == "remote" and "will download ~204 MB" in location.reason
    assert server.requests == []


def test_only_safetensors_come_from_the_hub(hf_env):
    spec = ModelSpec(id="x", name="X", kind="neural", entry=f"{TinyNet.__module__}:TinyNet", licence="MIT",
                     weights=HubWeights(repo="testns/x", revision="v1", files={"best.ckpt": None}))
    with pytest.raises(WeightsError, match="only .safetensors"):
        fetch(spec)


# -------------------------------------------------------------------- local precedence


def test_local_folder_takes_precedence(server, hf_env, checkpoints):
    folder = checkpoints / "tiny"
    folder.mkdir()
    torch.save({"generator": {"conv.weight": torch.full((3, 3, 1, 1), 2.0), "conv.bias": torch.zeros(3)}},
               folder / "tiny.pth")
    spec = spec_for("testns/tiny")
    assert locate(spec).status == "local"
    model = model_cache.get_inpainter(spec)
    assert torch.all(model.conv.weight == 2.0)
    assert server.requests == []


# ------------------------------------------------------------------ truncated/malformed


def test_truncated_download_is_a_clear_weights_error(server, hf_env, synthetic):
    _, data1 = synthetic[1]
    server.add("testns/inpaint-gen", {FILE: data1[: len(data1) // 3]}, refs=("v1",))
    with pytest.raises(WeightsError, match="is truncated"):
        fetch(spec_for("testns/inpaint-gen"))  # not pinned: the structure check still catches it


@pytest.mark.parametrize("data", [b"", b"\x00" * 3, b"garbage that is not safetensors at all",
                                  (20).to_bytes(8, "little") + b"{not json!!!!!!!!!!}"])
def test_malformed_safetensors_is_a_clear_weights_error(server, hf_env, data):
    server.add("testns/tiny", {FILE: data}, refs=("v1",))
    with pytest.raises(WeightsError, match="not a safetensors file"):
        fetch(spec_for("testns/tiny"))


def test_truncated_local_safetensors(checkpoints, tmp_path):
    folder = checkpoints / "tiny"
    folder.mkdir()
    save_file({"conv.weight": torch.ones(3, 3, 1, 1), "conv.bias": torch.zeros(3)}, folder / FILE)
    data = (folder / FILE).read_bytes()
    (folder / FILE).write_bytes(data[:-5])
    spec = spec_for("testns/tiny")
    with pytest.raises(WeightsError, match="truncated"):
        load_state(spec, locate(spec))


# ----------------------------------------------------------------------------- the CLI


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.weights_cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_cli_download_list_and_offline(server, tmp_path, pins_file):
    data = tiny_bytes(3.0)  # no LaMa: pinned beforehand, as it would not load strictly on its first use
    server.add("clins/big-lama", {FILE: data}, refs=("v1",))
    pins_file.write_text(json.dumps({"lama": {"first_use": {FILE: {"sha256": sha(data), "size": len(data),
                                                                   "from": "clins/big-lama@v1"}}}}))
    env = {**os.environ, "HF_ENDPOINT": server.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0",
           "INPAINT_HUB_NAMESPACE": "clins", "INPAINT_CHECKPOINTS": str(tmp_path / "checkpoints"),
           "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    env.pop("HF_HUB_CACHE", None)

    done = cli("download", "lama", env=env)
    assert done.returncode == 0, done.stderr
    assert str(tmp_path / "hf" / "hub" / "models--clins--big-lama") in done.stdout
    listing = cli("list", env=env).stdout
    lama = next(line for line in listing.splitlines() if line.startswith("lama "))
    assert "cached" in lama and "Apache-2.0" in lama
    assert "built-in" in next(line for line in listing.splitlines() if line.startswith("telea "))

    server.stop()
    env["HF_HUB_OFFLINE"] = "1"
    assert cli("download", "lama", env=env).returncode == 0  # served from the cache
    missing = cli("download", "rfr-psv", env=env)
    assert missing.returncode == 1
    assert "HF_HUB_OFFLINE=1" in missing.stderr and str(tmp_path / "checkpoints" / "rfr-psv") in missing.stderr
    assert "model.safetensors" in missing.stderr


# ---------------------------------------------------------------------------- push


def test_push_converts_uploads_tags_and_records_the_pins_in_one_step(server, hf_env, checkpoints, monkeypatch,
                                                                       capsys, pins_file):
    """Official file only -> `push --namespace` (convert, card, upload, tag v1, pins file) -> a fresh machine
    downloads exactly the recorded commit, checks the recorded sha256 and loads it."""
    from app import registry
    from app import weights_cli as cli

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # the test server speaks plain LFS only
    spec = spec_for("tiny", model_id="tiny-push")  # a repo name only: the namespace is the deployer's
    monkeypatch.setattr(registry, "MODELS", registry.MODELS + (spec,))
    folder = checkpoints / spec.id
    folder.mkdir()
    torch.save({"generator": {"conv.weight": torch.full((3, 3, 1, 1), 7.0), "conv.bias": torch.ones(3)}},
               folder / "tiny.pth")
    assert model_cache.availability(spec).ok  # the official file itself
    assert cli.main(["push", spec.id, "--namespace", "pushns"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    pushed = sha((folder / FILE).read_bytes())
    commit, files, _ = server.resolve("pushns/tiny", "v1")
    assert set(files) == {FILE, "README.md"} and sha(files[FILE]) == pushed  # the .pth stayed home
    assert server.validated[-1]["license"] == "apache-2.0"
    assert json.loads(pins_file.read_text()) == {
        spec.id: {"mirror": {"repo_id": "pushns/tiny", "revision": commit, "files": {FILE: pushed}}}}
    assert commit in out and str(pins_file) in out

    assert cli.main(["push", spec.id, "--namespace", "pushns"]) == 0  # again: a new commit, recorded; tag kept
    second = json.loads(pins_file.read_text())[spec.id]["mirror"]["revision"]
    assert second == server.resolve("pushns/tiny", "main")[0] != server.resolve("pushns/tiny", "v1")[0]

    (folder / FILE).unlink()
    (folder / "tiny.pth").unlink()
    monkeypatch.setenv("HF_HOME", str(checkpoints.parent / "fresh-machine"))
    model = model_cache.get_inpainter(spec)
    assert torch.all(model.conv.weight == 7.0)
    assert f"/pushns/tiny/resolve/{second}/{FILE}" in server.paths("GET")


def test_a_recorded_mirror_is_held_to_its_sha256(server, hf_env, pins_file, synthetic):
    """A pins file naming another sha256 than the files served: refused, nothing loaded."""
    _, data = synthetic[1]
    commit = server.add("pinned/tiny", {FILE: data})
    spec = spec_for("tiny", model_id="tiny-pinned")
    pins_file.write_text(json.dumps({spec.id: {"mirror": {"repo_id": "pinned/tiny", "revision": commit,
                                                          "files": {FILE: "0" * 64}}}}))
    with pytest.raises(WeightsError, match="failed its sha256 check"):
        model_cache.get_inpainter(spec)
    pins_file.write_text("{not json")
    with pytest.raises(WeightsError, match="not valid JSON"):
        locate(spec)


def test_official_file_under_an_alias_counts_as_local(checkpoints, monkeypatch):
    """RFR's release names (checkpoint_paris.pth) are found like the canonical one."""
    from app import registry
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = registry.get("rfr-psv")
    folder = checkpoints / spec.id
    folder.mkdir()
    (folder / "checkpoint_paris.pth").write_bytes(b"placeholder")
    location = locate(spec)
    assert location.status == "local" and location.paths == (folder / "checkpoint_paris.pth",)


# ------------------------------------------------------------------ resolved once, read there


def test_loading_a_local_model_resolves_the_folder_once(checkpoints, monkeypatch):
    """get_inpainter decides where the weights are once; loading reads that decision, not the disk again."""
    from app.weights import resolve

    folder = checkpoints / "tiny"
    folder.mkdir()
    save_file({"conv.weight": torch.full((3, 3, 1, 1), 4.0), "conv.bias": torch.zeros(3)}, folder / FILE)
    calls = []
    original = resolve.find_local
    monkeypatch.setattr(resolve, "find_local", lambda *args: calls.append(args) or original(*args))
    model_cache.clear()
    model = model_cache.get_inpainter(spec_for("testns/tiny"))
    assert torch.all(model.conv.weight == 4.0)
    assert len(calls) == 1
    model_cache.clear()


def test_load_state_reads_exactly_the_files_of_the_location(checkpoints, tmp_path):
    """The location's paths are read even when the model's folder now holds other weights."""
    from app.weights.resolve import Entry, Location

    spec = spec_for("testns/tiny")
    elsewhere = tmp_path / "elsewhere.safetensors"
    save_file({"conv.weight": torch.full((3, 3, 1, 1), 5.0), "conv.bias": torch.zeros(3)}, elsewhere)
    folder = checkpoints / "tiny"
    folder.mkdir()
    save_file({"conv.weight": torch.full((3, 3, 1, 1), 6.0), "conv.bias": torch.zeros(3)}, folder / FILE)
    state, source = load_state(spec, Location("local", "", (Entry(elsewhere),), "weights elsewhere"))
    assert torch.all(state["conv.weight"] == 5.0) and source == "weights elsewhere"
    with pytest.raises(ModelUnavailableError, match="gone"):
        load_state(spec, Location("missing", "gone"))


def test_official_files_are_read_from_their_resolved_paths(checkpoints):
    folder = checkpoints / "tiny"
    folder.mkdir()
    torch.save({"generator": {"conv.weight": torch.full((3, 3, 1, 1), 8.0), "conv.bias": torch.zeros(3)}},
               folder / "tiny.pth")
    spec = spec_for("testns/tiny")
    location = locate(spec)
    assert location.status == "local" and location.paths == (folder / "tiny.pth",)
    assert location.entries[0].official == TinyNet.FACTS.official_files[0]
    state, source = load_state(spec, location)
    assert torch.all(state["conv.weight"] == 8.0) and source == f"weights in {folder}"
