"""EdgeConnect against the official outputs, loaded the way the app loads it.

Weights are synthetic (``init_weights.make_state_dict``) but written as the authors'
release files, so the test covers the container, the key layout, the strict load and
every intermediate of the official ``test()``: gray, masked Canny, edge net, inpainting
net, composite and uint8 export. Batching, strict loading and sizes are the shared contract
(``test_model_contract.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from app import registry
from app.models.base import Batch
from app.models.edgeconnect import EdgeConnect, SpectralNormConv
from app.weights.loader import load_from_folder
from tests.reference import assert_matches_fixture, fixture_params
from tests.releases.edgeconnect import MODEL_ID, write_release
from tests.tolerances import assert_close


def load(folder: Path) -> EdgeConnect:
    return load_from_folder(registry.get(MODEL_ID), folder)


def read_case(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def scene(seed: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A small image with clear structure (gradient + rectangles) and a central hole."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] / size
    image = np.stack([x, y, 1 - x * y], -1) * 160
    for _ in range(4):
        top, left = rng.integers(0, size - 16, 2)
        image[top:top + 16, left:left + 20] = rng.integers(0, 256, 3)
    hole = np.zeros((size, size), dtype=bool)
    hole[size // 4:3 * size // 4, size // 3:2 * size // 3] = True
    return image.clip(0, 255).astype(np.uint8), hole


def batch_of(*scenes: tuple[np.ndarray, np.ndarray], **guides: np.ndarray) -> Batch:
    return Batch(np.stack([s[0] for s in scenes]), np.stack([s[1] for s in scenes]), guides=guides)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> EdgeConnect:
    """One loaded model (weight seed 1) shared by the behaviour tests."""
    return load(write_release(tmp_path_factory.mktemp("checkpoints") / MODEL_ID, seed=1))


# --------------------------------------------------------------------------- official outputs


@pytest.mark.parametrize("path", fixture_params("edgeconnect"))
def test_matches_official(path: Path, checkpoints: Path) -> None:
    case = read_case(path)
    net = load(write_release(checkpoints / MODEL_ID, seed=int(case["weight_seed"])))
    images, gray, canny, masks = net.prepare(case["image"][None], case["hole"][None].astype(bool))
    # Feed the reference Canny so the networks are tested independently of scikit-image.
    ref_canny = torch.from_numpy(case["edges_canny"].astype(np.float32))[None] if "edges_canny" in case else canny
    edge_pred = net.predict_edges(gray, ref_canny, masks)
    fill = net.inpaint_rgb(images, edge_pred, masks)
    merged = fill * masks + images * (1 - masks)
    ours = {
        "images_gray": gray[0], "edges_canny": canny[0], "masks": masks[0], "edge_pred": edge_pred[0],
        "inpaint_out": fill[0], "outputs_merged": merged[0],
        "outputs_merged_uint8": (merged[0] * 255).int().permute(1, 2, 0),
    }
    assert_matches_fixture(path, ours)


@pytest.mark.parametrize("path", fixture_params("edgeconnect"))
@pytest.mark.slow  # over 3 s here: the full run only (README, fast lane)
def test_inpaint_interface_matches_official(path: Path, model: EdgeConnect) -> None:
    """The Batch path (own Canny) gives the official fill and the composited edge map."""
    case = read_case(path)
    if int(case["weight_seed"]) != 1 or "inpaint_out" not in case:
        pytest.skip("needs weight seed 1 and inpaint_out")
    _, gray, canny, masks = model.prepare(case["image"][None], case["hole"][None].astype(bool))
    if "edges_canny" in case and not np.array_equal(canny[0].numpy(), case["edges_canny"]):
        pytest.skip("this scikit-image's Canny differs from the fixture's")
    pred = model.inpaint(Batch(case["image"][None], case["hole"][None].astype(bool)))
    assert_matches_fixture(path, {"inpaint_out": pred.samples[0, 0].transpose(2, 0, 1)})
    edges = model.predict_edges(gray, canny, masks)
    expected_map = (edges * masks + canny * (1 - masks))[0, 0].numpy()
    assert_close("edgeconnect.edge_map", pred.maps["edges"][0], expected_map)


# --------------------------------------------------------------------------- Inpainter behaviour


def test_without_guides_is_the_official_path(model: EdgeConnect) -> None:
    image, hole = scene(3)
    pred = model.inpaint(batch_of((image, hole)))
    images, gray, canny, masks = model.prepare(image[None], hole[None])
    official = model.inpaint_rgb(images, model.predict_edges(gray, canny, masks), masks)
    np.testing.assert_array_equal(pred.samples[0, 0], official[0].permute(1, 2, 0).numpy())
    # Strokes that are empty or lie outside the hole change nothing.
    for strokes in (np.zeros_like(hole), ~hole):
        guided = model.inpaint(batch_of((image, hole), edges=strokes[None]))
        np.testing.assert_array_equal(guided.samples, pred.samples)
        np.testing.assert_array_equal(guided.maps["edges"], pred.maps["edges"])


def test_guide_strokes_steer_the_fill(model: EdgeConnect) -> None:
    image, hole = scene(4)
    strokes = np.zeros_like(hole)
    strokes[30:34, :] = True  # a horizontal line through the hole (and beyond it)
    plain = model.inpaint(batch_of((image, hole)))
    guided = model.inpaint(batch_of((image, hole), edges=strokes[None]))
    change = np.abs(guided.samples[0, 0] - plain.samples[0, 0]).max(-1)
    assert change[hole].max() > 1e-2, "strokes inside the hole must change the fill there"
    assert np.all(guided.maps["edges"][0][strokes & hole] == 1.0)
    np.testing.assert_array_equal(guided.maps["edges"][0][~hole], plain.maps["edges"][0][~hole])


def test_output_is_float32_on_cpu(model: EdgeConnect) -> None:
    first, second = scene(5), scene(6)
    pred = model.inpaint(batch_of(first, second), samples=3, seed=7)
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert isinstance(pred.samples, np.ndarray) and pred.samples.dtype == np.float32
    assert pred.samples.shape == (2, 1, 64, 64, 3)
    assert 0.0 <= pred.samples.min() and pred.samples.max() <= 1.0
    edges = pred.maps["edges"]
    assert edges.dtype == np.float32 and edges.shape == (2, 64, 64)
    assert 0.0 <= edges.min() and edges.max() <= 1.0


# --------------------------------------------------------------------------- strict loading

# --------------------------------------------------------------------------- spectral norm


@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "deconv"])
def test_spectral_norm_matches_torch_eval(transposed: bool) -> None:
    """Our stored-u/v spectral norm equals torch.nn.utils.spectral_norm in eval mode (dim 1 for deconv)."""
    torch.manual_seed(0)
    if transposed:
        layer = torch.nn.utils.spectral_norm(torch.nn.ConvTranspose2d(8, 6, 4, stride=2, padding=1))
    else:
        layer = torch.nn.utils.spectral_norm(torch.nn.Conv2d(8, 6, 3, padding=1))
    layer(torch.randn(1, 8, 6, 6))  # train-mode step: u, v become non-trivial
    layer.eval()
    ours = SpectralNormConv(8, 6, layer.weight_orig.shape[-1], stride=2 if transposed else 1, padding=1,
                            transposed=transposed)
    ours.load_state_dict(layer.state_dict())
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        assert_close("edgeconnect.spectral_norm", ours(x), layer(x))
