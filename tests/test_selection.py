"""Click to select: GrabCut fallback, prompts in photo pixels, grow, and the segmenter fetched from the (loopback) Hub.

The segmenters are real ``transformers`` SAM / SAM 2 models at toy size with random weights
(:mod:`tests.tiny_pretrained`), served by :mod:`tests.hub_server` and pinned in pins.json, so the
app's own fetch, verify and load path runs; their masks mean nothing, so the tests check sizes,
coordinates, caching and messages. Selection quality is checked on GrabCut, on photos whose
object is known by construction.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
import safetensors.torch
import torch
from huggingface_hub import constants
from PIL import Image

from app import model_cache, registry
from app.errors import InpaintError, ModelUnavailableError, WeightsError
from app.images import load_photo
from app.selection import clicks as selection
from app.selection.segmenters import Segmenter, get_segmenter
from app.weights import pretrained, probe
from tests import tiny_pretrained
from tests.helpers import iou, scene


@pytest.fixture
def offline(monkeypatch, checkpoints, tmp_path):
    """No weights anywhere and no Hub: what a fresh offline install has."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    model_cache.clear()
    selection.forget_embeddings()
    yield
    model_cache.clear()
    selection.forget_embeddings()


# ------------------------------------------------------------------------- GrabCut


@pytest.mark.parametrize("prompt", ["point", "box", "point+remove"])
def test_grabcut_selects_a_known_object(offline, prompt):
    rgb, obj = scene()
    ys, xs = np.nonzero(obj)
    centre = [float(xs.mean()), float(ys.mean()), 1]
    points = {"point": [centre], "box": [], "point+remove": [centre, [20, 20, 0]]}[prompt]
    box = [xs.min() - 8, ys.min() - 8, xs.max() + 8, ys.max() + 8] if prompt == "box" else None
    chosen = selection.select(rgb, points, box=box, method="grabcut")
    assert chosen.method == "grabcut" and chosen.mask.shape == obj.shape
    assert iou(chosen.mask, obj) > 0.9


def test_without_weights_clicks_fall_back_to_grabcut_and_say_why(offline):
    rgb, obj = scene()
    chosen = selection.select(rgb, [[180, 100, 1]])
    assert chosen.method == "grabcut" and iou(chosen.mask, obj) > 0.9
    assert "offline" in chosen.note and "SAM 2.1" in chosen.note
    assert selection.segmenter_status()["ready"] is False
    with pytest.raises(ModelUnavailableError, match="offline"):
        selection.select(rgb, [[180, 100, 1]], method="sam2.1-hiera-tiny")


def test_grow_widens_the_selection_by_that_many_pixels(offline):
    rgb, _ = scene()
    tight = selection.select(rgb, [[180, 100, 1]], method="grabcut").mask
    grown = selection.select(rgb, [[180, 100, 1]], grow=6, method="grabcut").mask
    assert (grown | tight).sum() == grown.sum() and grown.sum() > tight.sum()
    distance = cv2.distanceTransform((~tight).astype(np.uint8), cv2.DIST_L2, 5)
    assert distance[grown].max() == pytest.approx(6, abs=1)
    with pytest.raises(InpaintError, match="(?i)grow"):
        selection.select(rgb, [[180, 100, 1]], grow=500, method="grabcut")


def test_points_are_the_photos_pixels_for_an_exif_rotated_photo(offline):
    shown, obj = scene(300, 200)
    stored = np.ascontiguousarray(np.rot90(shown, 1))  # orientation 6: rotate 90° clockwise to display
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.fromarray(stored).save(buffer, "JPEG", quality=95, exif=exif)
    ys, xs = np.nonzero(obj)
    chosen = selection.select(buffer.getvalue(), [[float(xs.mean()), float(ys.mean()), 1]], method="grabcut")
    assert chosen.mask.shape == (200, 300)
    assert iou(chosen.mask, obj) > 0.85


@pytest.mark.parametrize(("points", "box", "message"), [
    ([[400, 10, 1]], None, "outside the photo"),
    ([[float("nan"), 10, 1]], None, "number"),
    ([[10, 10, 2]], None, "label"),
    ([[10, 10, 0]], None, "label 1"),
    ([], None, "label 1"),
    ([[1, 1, 1]] * 65, None, "too many"),
    ("10,10", None, "list"),
    ([[10, 10, 1]], [1, 2, 3], "box"),
    ([], [5, 5, 6, 6], "too small"),
    ([[10, "x", 1]], None, "number"),
])
def test_bad_prompts_get_a_message(offline, points, box, message):
    with pytest.raises(InpaintError, match=message):
        selection.select(scene()[0], points, box=box, method="grabcut")


def test_combine_adds_to_and_subtracts_from_the_painted_hole():
    hole = np.zeros((4, 4), bool)
    hole[0] = True
    chosen = np.zeros((4, 4), bool)
    chosen[:, 0] = True
    assert selection.combine(hole, chosen).sum() == 7
    assert selection.combine(hole, chosen, subtract=True).sum() == 3
    assert selection.combine(None, chosen).sum() == 4


# --------------------------------------------------------- segmenters from the Hub


def test_clicks_run_the_pinned_segmenter_and_encode_each_photo_once(hub_env, pins_file):
    spec = registry.pretrained("sam2.1-hiera-tiny")
    commit = tiny_pretrained.serve(hub_env, spec, pins_file)
    assert selection.segmenter_status()["ready"] is True
    rgb, _ = scene(300, 200)
    first = selection.select(rgb, [[180, 100, 1]])
    assert first.method == "sam2.1-hiera-tiny" and first.mask.shape == (200, 300) and not first.note
    assert f"/test/sam2.1-hiera-tiny/resolve/{commit}/model.safetensors" in hub_env.paths()
    second = selection.select(rgb, [[180, 100, 1], [20, 20, 0]], box=[100, 20, 260, 180])
    assert second.reused_embedding and not first.reused_embedding
    segmenter = get_segmenter(spec)
    assert isinstance(segmenter, Segmenter) and segmenter.encodes == 1
    selection.select(scene(300, 200, seed=1)[0], [[180, 100, 1]])
    assert segmenter.encodes == 2
    assert model_cache.loaded_ids()[-1] == spec.id


def test_the_photo_is_encoded_ahead_only_when_the_weights_are_here(hub_env, pins_file, monkeypatch):
    """Encoding ahead never downloads; once the weights are cached, the first click waits for that
    encode in flight instead of encoding again."""
    spec = registry.pretrained("sam2.1-hiera-tiny")
    tiny_pretrained.serve(hub_env, spec, pins_file)
    photo = load_photo(scene()[0])
    assert selection.prepare(photo) is None and not hub_env.paths("GET")  # remote: a visitor who paints starts nothing
    selection.select(scene(seed=1)[0], [[180, 100, 1]])  # a click downloads the weights
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert selection.prepare(photo) is None  # there the GPU is attached only inside a GPU call
    monkeypatch.delenv("SPACES_ZERO_GPU")
    started, gate, real = threading.Event(), threading.Event(), Segmenter.encode

    def held(self, *args, **kwargs):
        started.set()
        assert gate.wait(30)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Segmenter, "encode", held)
    worker = selection.prepare(photo)
    assert worker is not None and started.wait(30)
    with ThreadPoolExecutor(1) as pool:
        click = pool.submit(selection.select, photo, [[180, 100, 1]])
        gate.set()
        chosen = click.result(timeout=60)
    worker.join(30)
    assert chosen.method == spec.id and chosen.reused_embedding
    assert get_segmenter(spec).encodes == 2  # the first photo, then this one once


def test_no_encode_ahead_offline_without_weights(offline):
    assert selection.prepare(load_photo(scene()[0])) is None  # the click falls back to GrabCut


def test_the_downloaded_segmenter_works_offline_afterwards(hub_env, pins_file, monkeypatch):
    spec = registry.pretrained("sam2.1-hiera-tiny")
    tiny_pretrained.serve(hub_env, spec, pins_file)
    selection.select(scene()[0], [[180, 100, 1]])
    model_cache.clear()
    selection.forget_embeddings()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    hub_env.stop()
    assert selection.select(scene()[0], [[180, 100, 1]]).method == spec.id


def test_sam_pads_a_non_square_photo_and_masks_come_back_at_its_size(hub_env, pins_file):
    spec = registry.pretrained("slimsam-77")
    tiny_pretrained.serve(hub_env, spec, pins_file)
    photo = scene(320, 80)[0]
    chosen = selection.select(photo, [[200, 40, 1]], box=[150, 10, 260, 70], method="slimsam-77")
    assert chosen.method == "slimsam-77" and chosen.mask.shape == (80, 320)
    segmenter = get_segmenter(spec)
    embedding = segmenter.encode(photo)
    assert embedding.scale == (64 / 320, 64 / 320) and embedding.valid == (64, 16)
    logits = torch.full((16, 16), -1.0)
    logits[:2, :8] = 1.0  # the top-left quarter of the photo's part of the padded square (16 x 4 cells)
    mask = segmenter._to_photo(embedding, logits)
    ys, xs = np.nonzero(mask)
    assert abs(xs.max() - 160) <= 12 and abs(ys.max() - 40) <= 12 and xs.min() == 0 and ys.min() == 0


def test_sam2_stretches_the_photo_and_scales_x_and_y_apart(hub_env, pins_file):
    spec = registry.pretrained("sam2.1-hiera-tiny")
    tiny_pretrained.serve(hub_env, spec, pins_file)
    embedding = get_segmenter(spec).encode(scene(320, 80)[0])
    assert embedding.scale == (64 / 320, 64 / 80) and embedding.valid == (64, 64)


def edgetam_on_hub(server, files: dict[str, bytes] | None = None) -> str:
    """EdgeTAM's registry repo (no commit recorded anywhere) on the loopback Hub's main branch; returns the commit."""
    return server.add(registry.pretrained("edgetam").weights.repo_id, files or tiny_pretrained.files_of("edgetam"))


def fresh_cache(monkeypatch, folder) -> None:
    """Another machine: an empty Hugging Face cache, nothing loaded, the same pins.json."""
    monkeypatch.setenv("HF_HOME", str(folder))
    model_cache.clear()
    selection.forget_embeddings()


def test_clicks_prefer_edgetam_wherever_the_hub_has_it_and_its_first_use_pins_the_commit(
        hub_env, pins_file):
    """EdgeTAM ships with no commit: SAM 2.1 serves while the Hub does not have it; once it does, EdgeTAM
    is chosen, its first download is at the commit main is at, and that commit and each file's sha256
    and size are recorded, only after it loaded. SAM 2.1 is never downloaded."""
    sam2, edgetam = registry.pretrained("sam2.1-hiera-tiny"), registry.pretrained("edgetam")
    assert not edgetam.weights.revision
    tiny_pretrained.serve(hub_env, sam2, pins_file)
    assert selection.segmenter_status()["segmenter"] == sam2.id  # the Hub has no EdgeTAM repo
    commit = edgetam_on_hub(hub_env)
    probe.forget()
    status = selection.segmenter_status()
    assert status["segmenter"] == edgetam.id and status["ready"] and "pin that commit" in status["reason"]
    assert not hub_env.paths("GET") and edgetam.id not in json.loads(pins_file.read_text())
    chosen = selection.select(scene(320, 80)[0], [[200, 40, 1]])
    assert chosen.method == edgetam.id and chosen.mask.shape == (80, 320) and not chosen.note
    files = tiny_pretrained.files_of("edgetam")
    assert json.loads(pins_file.read_text())[edgetam.id] == {"first_use": {name: {
        "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "from": f"{edgetam.weights.repo_id}@{commit}"}
        for name, data in files.items()}}
    gets = hub_env.paths("GET")
    assert f"/api/models/{edgetam.weights.repo_id}" in gets
    assert f"/{edgetam.weights.repo_id}/resolve/{commit}/model.safetensors" in gets
    assert not any("/resolve/main/" in path for path in gets)  # every file at the commit, never at the branch
    embedding = get_segmenter(edgetam).encode(scene(320, 80)[0])
    assert embedding.scale == (64 / 320, 64 / 80)  # stretched to the square, as SAM 2
    assert not any(f"/{sam2.id}/" in path for path in gets)
    assert pretrained.locate(edgetam).status == "cached"


def test_with_the_hub_down_an_unpinned_edgetam_is_not_chosen_and_clicks_fall_back(hub_env, pins_file,
                                                                                  monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: refused at once
    status = selection.segmenter_status()
    assert status["segmenter"] == "sam2.1-hiera-tiny" and not status["ready"] and "could not be reached" in status[
        "reason"]
    chosen = selection.select(scene()[0], [[180, 100, 1]])
    assert chosen.method == "grabcut" and "SAM 2.1" in chosen.note
    assert not pins_file.exists()


def test_the_recorded_commit_is_used_when_the_branch_moves(hub_env, pins_file, monkeypatch, tmp_path):
    edgetam = registry.pretrained("edgetam")
    commit = edgetam_on_hub(hub_env)
    pretrained.obtain(edgetam)
    recorded = pins_file.read_text()
    moved = edgetam_on_hub(hub_env, {**tiny_pretrained.files_of("edgetam"), "model.safetensors": other_weights()})
    assert moved != commit
    fresh_cache(monkeypatch, tmp_path / "elsewhere")
    hub_env.requests.clear()
    assert selection.select(scene()[0], [[180, 100, 1]]).method == edgetam.id
    assert f"/{edgetam.weights.repo_id}/resolve/{commit}/model.safetensors" in hub_env.paths("GET")
    assert not any(moved in path or "/api/models/" in path or "/main/" in path for path in hub_env.paths("GET"))
    assert pins_file.read_text() == recorded


def test_two_first_uses_at_once_resolve_download_and_pin_once(hub_env, pins_file):
    edgetam = registry.pretrained("edgetam")
    commit = edgetam_on_hub(hub_env)
    with ThreadPoolExecutor(2) as pool:
        folders = list(pool.map(lambda _: pretrained.obtain(edgetam), range(2)))
    assert folders[0] == folders[1] and folders[0].name == commit
    gets = hub_env.paths("GET")
    assert gets.count(f"/api/models/{edgetam.weights.repo_id}") == 1
    assert gets.count(f"/{edgetam.weights.repo_id}/resolve/{commit}/model.safetensors") == 1


def other_weights() -> bytes:
    """EdgeTAM's tiny weights with one value changed: a valid file of the same shape, other bytes."""
    tensors = safetensors.torch.load(tiny_pretrained.files_of("edgetam")["model.safetensors"])
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] + 1
    return safetensors.torch.save(tensors)


@pytest.mark.parametrize("model_id", ["edgetam", "rtdetr-v2-r18"])
def test_other_bytes_at_the_pinned_commit_are_refused_with_both_hashes_and_not_kept(
        hub_env, pins_file, monkeypatch, tmp_path, model_id):
    """EdgeTAM (no commit recorded) and the person detector (a commit, no sha256) are pinned on first use;
    on another machine the Hub serving other bytes at that commit is refused, and nothing of it is kept."""
    spec = registry.pretrained(model_id)
    if model_id == "edgetam":
        repo, commit = spec.weights.repo_id, edgetam_on_hub(hub_env)
    else:
        repo, commit = f"test/{spec.id}", tiny_pretrained.serve(hub_env, spec, pins_file)
    first = pretrained.obtain(spec) / "model.safetensors"
    pinned = json.loads(pins_file.read_text())[spec.id]["first_use"]["model.safetensors"]
    assert pinned["sha256"] == hashlib.sha256(first.read_bytes()).hexdigest() and pinned["from"] == f"{repo}@{commit}"
    tensors = safetensors.torch.load(hub_env.repos[repo].commits[commit]["model.safetensors"])
    tensors = {name: value + 1 if value.is_floating_point() else value for name, value in tensors.items()}
    hub_env.repos[repo].commits[commit]["model.safetensors"] = tampered = safetensors.torch.save(tensors)
    fresh_cache(monkeypatch, tmp_path / "elsewhere")
    recorded = pins_file.read_text()
    with pytest.raises(WeightsError) as refused:
        pretrained.obtain(spec)
    message = str(refused.value)
    assert f"expected: {pinned['sha256']}" in message and "first use" in message
    assert f"actual:   {hashlib.sha256(tampered).hexdigest()}" in message and "deleted again" in message
    cache = tmp_path / "elsewhere" / "hub"
    assert not [path for path in cache.rglob("*") if path.is_file() and path.parent.name in ("blobs", commit)]
    assert pins_file.read_text() == recorded
    assert pretrained.locate(spec).status == "remote"  # nothing cached: the next use downloads (and checks) again
    if model_id == "edgetam":  # refused bytes count as no answer for a while: SAM 2.1 serves the clicks meanwhile
        tiny_pretrained.serve(hub_env, registry.pretrained("sam2.1-hiera-tiny"), pins_file)
        assert selection.segmenter_status()["segmenter"] == "sam2.1-hiera-tiny"
        probe.forget()
        assert selection.segmenter_status()["segmenter"] == spec.id


def test_a_config_of_another_architecture_is_refused(hub_env, pins_file):
    spec = registry.pretrained("sam2.1-hiera-tiny")
    tiny_pretrained.serve(hub_env, spec, pins_file, model_type="sam")  # SAM files where SAM 2 is expected
    with pytest.raises(WeightsError, match="model_type 'sam'"):
        selection.select(scene()[0], [[180, 100, 1]], method=spec.id)
    fallback = selection.select(scene()[0], [[180, 100, 1]])
    assert fallback.method == "grabcut" and "model_type" in fallback.note


def test_sam21_as_published_loads_and_weights_left_unset_are_refused(hub_env, pins_file):
    """The published config says ``sam2_video`` (one checkpoint for image and video): that loads as
    Sam2Model. A checkpoint lacking some of the image model's weights would load with random values
    in their place; it is refused, naming them."""
    spec = registry.pretrained("sam2.1-hiera-tiny")
    files = tiny_pretrained.files_of("sam2")
    assert json.loads(files["config.json"])["model_type"] == "sam2_video"
    tensors = safetensors.torch.load(files["model.safetensors"])
    dropped = sorted(k for k in tensors if "mask_decoder" in k)[0]
    del tensors[dropped]
    commit = hub_env.add(f"test/{spec.id}", {**files, "model.safetensors": safetensors.torch.save(tensors)})
    pins_file.write_text(json.dumps({spec.id: {"mirror": {"repo_id": f"test/{spec.id}", "revision": commit, "files": {
        "config.json": None, "model.safetensors": None}}}}))
    with pytest.raises(WeightsError, match=f"1 weights of Sam2Model unset.*{dropped}.*Nothing was pinned"):
        selection.select(scene()[0], [[180, 100, 1]], method=spec.id)
    assert "first_use" not in json.loads(pins_file.read_text())[spec.id]
    assert pretrained.locate(spec).status == "remote"  # the download that did not load was deleted again


@pytest.mark.parametrize("args", [{"checkpoint_path": "/etc/passwd"}, {"pretrained_cfg_overlay": {"file": "x.pth"}}])
def test_a_config_that_would_make_timm_read_files_is_refused(hub_env, pins_file, args):
    """EdgeTAM's config.json feeds ``model_args`` to timm.create_model: only its shape may come from there."""
    spec = registry.pretrained("edgetam")
    files = tiny_pretrained.files_of("edgetam")
    config = json.loads(files["config.json"])
    config["vision_config"]["backbone_config"]["model_args"] |= args
    commit = hub_env.add(f"test/{spec.id}", {**files, "config.json": json.dumps(config).encode()})
    pins_file.write_text(json.dumps({spec.id: {"mirror": {"repo_id": f"test/{spec.id}", "revision": commit, "files": {
        "config.json": None, "model.safetensors": None}}}}))
    with pytest.raises(WeightsError, match=f"passes {next(iter(args))} to timm"):
        selection.select(scene()[0], [[180, 100, 1]], method=spec.id)


def test_the_benchmark_report_says_which_candidates_meet_the_goals():
    import json
    from pathlib import Path

    from benchmarks import bench_select

    data = json.loads((Path(__file__).parents[1] / "docs" / "benchmarks" / "select.json").read_text())
    data["segmenters"][0] |= {"encode_s": 1.0, "click_ms": 100.0}  # one that meets both goals, one that does not
    data["segmenters"][1] |= {"encode_s": 1.0, "click_ms": 900.0}
    text = bench_select.section(data)
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == len(data["segmenters"]) and rows[0].endswith("| yes |") and rows[1].endswith("| no |")
    assert bench_select.COMMAND in text and "GrabCut" in text


def test_clicks_prefer_the_segmenter_the_benchmark_chose_then_sam21():
    """The registry's order follows the measurement, and the fallback is the pinned SAM 2.1."""
    import json
    from pathlib import Path

    from benchmarks import bench_select

    data = json.loads((Path(__file__).parents[1] / "docs" / "benchmarks" / "select.json").read_text())
    assert {r["id"] for r in data["segmenters"]} == {s.id for s in registry.SEGMENTERS}
    assert registry.SEGMENTER_PREFERENCE[0] == bench_select.choose(data["segmenters"])["id"] == data["default"]
    assert registry.SEGMENTER_PREFERENCE[-1] == "sam2.1-hiera-tiny"
    assert registry.pretrained("sam2.1-hiera-tiny").weights.revision  # pinned: clicks work out of the box
