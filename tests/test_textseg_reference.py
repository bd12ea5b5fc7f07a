"""The comic text segmenter against outputs of the official code, loaded from an official-format ``.pt``.

The fixtures hold what ``yu45020/Text_Segmentation_Image_Inpainting``'s ``Examples/demo_segmentation.py``
computed with ``XceptionTextSegment()`` and synthetic weights (``make_state_dict("textseg_xception", seed)``):
the network's input, its logits (eval mode), the mask at 600 px and at the photo's size, and the demo's
own variant without ``eval()`` (BatchNorm on the page's own statistics, ``*_demo_trainbn``). Our
pre- and post-processing (:mod:`app.selection.text`) runs on the fixture's image; the network is
loaded through the app's only loader.
"""

from __future__ import annotations

import copy
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from app import registry
from app.errors import CropSizeError
from app.models.textseg import XceptionTextSegmenter
from app.selection import text
from app.weights.loader import load_from_folder
from tests.reference import assert_matches_fixture, fixture_params, fixture_tolerances, manifest_entries
from tests.releases.textseg import MANIFEST, official_state, write_release

HULL_AREA = 500  # the demo's draw_bounding_box(..., 500)
HULL_COLOUR = (50, 128, 30)


def demo_outputs(net: XceptionTextSegmenter, case: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The demo's arrays for one image: our input, logits, masks, and the contour picture drawn from our mask."""
    prepared = text.prepare(case["image"])
    pooled = []
    hook = net.feature_pooling.register_forward_hook(lambda _m, _i, out: pooled.append(out))
    try:
        logits = net.logits(prepared.x)
    finally:
        hook.remove()
    net_mask, mask = settled(case, "logits", "", prepared, text.network_mask(logits))
    return {"x": prepared.x[0], "logits": logits[0], "prob": torch.sigmoid(logits)[0], "asp_out": pooled[0][0],
            "mask_net": net_mask, "mask": mask, "mask_L": mask * 255, "contour_uint8": hulls(case["image"], mask * 255)}


def demo_trainbn_outputs(net: XceptionTextSegmenter, case: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The demo as written: no ``eval()``, so every BatchNorm normalises with the padded page's own statistics."""
    demo = copy.deepcopy(net).to(memory_format=torch.contiguous_format).train()  # as the demo's own layout
    prepared = text.prepare(case["image"])
    with torch.no_grad():
        logits = demo(prepared.x)
    net_mask, mask = settled(case, "logits_demo_trainbn", "_demo_trainbn", prepared, text.network_mask(logits))
    return {"logits_demo_trainbn": logits[0], "mask_net_demo_trainbn": net_mask, "mask_demo_trainbn": mask}


def settled(case: dict[str, np.ndarray], logits: str, suffix: str, prepared: text.Prepared,
            net_mask: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Our masks at 600 px and at the photo's size, held exactly to the fixture's except where the official logit
    itself is within its tolerance of 0 (index.json: "a faithful re-implementation may flip" those pixels).

    A pixel may differ only where a logit within the logits' tolerance of 0 reaches it (through the 3x3
    max-pool, then the bilinear resize); there the fixture's value is taken, anywhere else a difference fails.
    """
    near = torch.from_numpy(np.abs(case[logits]) <= fixture_tolerances("textseg")[logits]).float()[None]
    assert near.mean() < 1e-3  # a handful of pixels (4-95 in the fixtures), not a licence to differ anywhere
    uncertain_net = F.max_pool2d(near, 3, stride=1, padding=1)
    uncertain = {"mask_net": uncertain_net[0, 0].numpy() > 0, "mask": text.full_mask(uncertain_net, prepared)}
    ours = {"mask_net": net_mask[0, 0].to(torch.uint8).numpy(),
            "mask": text.full_mask(net_mask, prepared).astype(np.uint8)}
    for name, value in ours.items():
        official = case[name + suffix]
        stray = (value != official) & ~uncertain[name]
        assert not stray.any(), f"{name + suffix}: {int(stray.sum())} pixels differ where no logit is near 0"
        ours[name] = np.where(uncertain[name], official, value)
    return ours["mask_net"], ours["mask"]


def hulls(image: np.ndarray, mask_l: np.ndarray) -> np.ndarray:
    """The demo's ``draw_bounding_box``: convex hulls of contours larger than 500 px filled in on the image."""
    drawn = image.copy()
    contours, _ = cv2.findContours(mask_l, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    for contour in contours:
        if cv2.contourArea(contour) > HULL_AREA:
            cv2.drawContours(drawn, [cv2.convexHull(contour)], 0, HULL_COLOUR, -1)
    return drawn


def _loaded(fixture: Path, checkpoints: Path) -> tuple[XceptionTextSegmenter, dict[str, np.ndarray]]:
    case = dict(np.load(fixture))
    spec = registry.text_finder("textseg-xception")
    net = load_from_folder(spec, write_release(checkpoints / spec.id, official_state(int(case["weight_seed"]))))
    assert type(net) is XceptionTextSegmenter and not net.training
    return net, case


@pytest.mark.parametrize("fixture", fixture_params("textseg"))
def test_textseg_matches_official_outputs(fixture: Path, checkpoints: Path) -> None:
    net, case = _loaded(fixture, checkpoints)
    assert_matches_fixture(fixture, demo_outputs(net, case))


@pytest.mark.slow  # a second forward per fixture, in train mode
@pytest.mark.parametrize("fixture", fixture_params("textseg"))
def test_the_demo_without_eval_is_reproduced_too(fixture: Path, checkpoints: Path) -> None:
    """The ``*_demo_trainbn`` arrays: the app does not use this mode (docs/select.md), but the network can."""
    net, case = _loaded(fixture, checkpoints)
    assert_matches_fixture(fixture, demo_trainbn_outputs(net, case))
    assert not net.training  # the copy was put in train mode, not the loaded network


def test_state_dict_layout_equals_the_release() -> None:
    """Keys, shapes and order exactly as the official ``XceptionTextSegment().state_dict()`` (the manifest)."""
    entries = manifest_entries(MANIFEST)
    ours = XceptionTextSegmenter().state_dict()
    assert list(ours) == [e["key"] for e in entries]
    assert all(list(ours[e["key"]].shape) == e["shape"] for e in entries)


def test_the_registry_sizes_are_the_networks() -> None:
    spec = registry.text_finder()
    facts = XceptionTextSegmenter.FACTS
    assert (spec.native_size, spec.max_size, spec.size_multiple) == (facts.native_size, facts.max_size,
                                                                     facts.size_multiple)
    assert spec.official_drive.id == "1iiWjf-PKBq_nfD9lqKtuyU4bqEbUaq_5" and spec.official_drive.container == "file"
    assert spec.official_drive.files == {"text_seg_model_681epos.pt": "text_seg_model_681epos.pt"}
    assert "GPL-3.0 code is not used" in spec.licence and spec.licence.id == registry.WEIGHTS_LICENCE_NOT_STATED
    assert spec not in registry.MODELS  # a text finder is not an inpainter


def test_sides_off_the_multiple_of_8_are_refused_with_a_message() -> None:
    with pytest.raises(CropSizeError, match="multiples of 8"):
        XceptionTextSegmenter()(torch.zeros(1, 3, 604, 600))


@pytest.mark.parametrize(("size", "expected"), [((640, 480), (600, 448)), ((512, 720), (424, 600)),
                                                ((2480, 3508), (424, 600)), ((4000, 3000), (600, 448)),
                                                ((600, 600), (600, 600))])
def test_the_working_size_is_the_official_one(size: tuple[int, int], expected: tuple[int, int]) -> None:
    """``int(side * 600 / long) // 8 * 8`` per side: any page, however large, is read at 600 px on its long side."""
    assert text.working_size(size) == expected
    prepared = text.prepare(np.zeros((size[1] // 8, size[0] // 8, 3), np.uint8))  # same ratios, smaller
    assert max(prepared.x.shape[-2:]) == 600


@pytest.mark.parametrize("action", ["missing", "renamed", "misshaped"])
def test_strict_load_names_the_key(action: str, checkpoints: Path) -> None:
    """The contract the inpainters keep (test_model_contract.py), for the text finder: no key silently left out."""
    from app.errors import WeightsError

    state = dict(official_state(1))
    key = "feature_pooling.asp.2.1.weight"
    if action == "missing":
        del state[key]
    elif action == "renamed":
        state[key.replace("asp.2", "asp.7")] = state.pop(key)
    else:
        state[key] = state[key][:, :-1]
    spec = registry.text_finder()
    with pytest.raises(WeightsError, match=key.replace(".", r"\.")):
        load_from_folder(spec, write_release(checkpoints / spec.id, state))
