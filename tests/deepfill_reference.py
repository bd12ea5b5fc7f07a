"""What the DeepFill v1 and v2 reference tests share: running a case, the official steps.

A case runs through :meth:`inpaint` (the app's path) while hooks record the intermediates the
fixtures store, so the official arrays are rebuilt from one forward. The release files are
written by :mod:`tests.mmagic_release` (``V1`` and ``V2`` are re-exported for the two tests).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from app.models.base import Batch, Prediction
from app.models.deepfillv1 import DeepFillV1
from app.models.mmagic import to_pixels
from tests.mmagic_release import V1, V2

__all__ = ["V1", "V2", "fill_from_reference", "loop_attention", "official_arrays", "run_case"]

# --------------------------------------------------------------------------- a case through inpaint()


def run_case(net: DeepFillV1, image: np.ndarray, hole: np.ndarray) -> tuple[dict[str, Tensor], Prediction]:
    """``inpaint`` on one crop, with the generator input, both stages and the attention output recorded."""
    seen: dict[str, object] = {}
    attention = net.stage2.contextual_attention_neck.contextual_attention
    hooks = [
        net.register_forward_pre_hook(lambda _m, args: seen.__setitem__("x", args[0])),
        net.register_forward_hook(lambda _m, _a, out: seen.__setitem__("stages", out)),
        attention.register_forward_hook(lambda _m, _a, out: seen.__setitem__("ca", out)),
    ]
    try:
        prediction = net.inpaint(Batch(image[None], hole[None]))
    finally:
        for hook in hooks:
            hook.remove()
    x, (coarse, refined) = seen["x"], seen["stages"]
    return {"x": x[0], "coarse": coarse[0], "refined": refined[0], "ca": seen["ca"][0]}, prediction


def official_arrays(run: dict[str, Tensor]) -> dict[str, Tensor]:
    """The fixture's arrays from our tensors, by the official formulas (fixtures/README.md)."""
    masked, mask = run["x"][:3], run["x"][-1:]
    pred_img = to_pixels(run["refined"] * mask + masked * (1 - mask))  # forward_test + destruct
    exported = torch.round(torch.clamp(pred_img / 255, 0, 1) * 255)  # tensor2img (half-even)
    return {
        "masked_img": masked, "stage1_fake_res": run["coarse"], "ca_out": run["ca"],
        "stage2_fake_res": run["refined"], "pred_img": pred_img,
        "pred_img_uint8_rgb": exported.flip(0).permute(1, 2, 0),
    }


def fill_from_reference(stage2: np.ndarray) -> np.ndarray:
    """What ``inpaint`` must return for the fixture's raw stage-2 output: RGB, HxWx3, in [0, 1]."""
    return (np.clip(stage2.astype(np.float64) * 127.5 + 127.5, 0, 255) / 255)[::-1].transpose(1, 2, 0)


# --------------------------------------------------------------------------- contextual attention, spelled out


def loop_attention(x: Tensor, mask: Tensor, fuse: Tensor, scale: float = 10.0) -> Tensor:
    """Contextual attention one crop at a time, step by step as MODELS.md section 6 describes the official code.

    Correlation by convolving with the normalised candidate patches, the fuse as two convolutions of
    the (query, candidate) matrix with the reshapes between row-major and column-major order, the
    copy as a transposed convolution: the operations our batched version replaces.
    """
    outputs = []
    for feature, hole in zip(x.split(1), mask.split(1)):
        c = feature.shape[1]
        raw = F.unfold(feature, 4, stride=2, padding=1).transpose(1, 2).reshape(-1, c, 4, 4)
        small = F.interpolate(feature, scale_factor=0.5)
        h, w = small.shape[-2:]
        cols = F.unfold(small, 3, padding=1)
        cols = cols / torch.max(torch.sqrt((cols**2).sum(1, keepdim=True)), torch.tensor(1e-4))
        corr = F.conv2d(small, cols.transpose(1, 2).reshape(-1, c, 3, 3), padding=1)  # (1, L, h, w)
        matrix = corr.permute(0, 2, 3, 1).reshape(1, 1, h * w, h * w)  # rows: queries, columns: candidates
        matrix = F.conv2d(matrix, fuse, padding=1)
        matrix = matrix.view(1, h, w, h, w).permute(0, 2, 1, 4, 3).reshape(1, 1, h * w, h * w)
        matrix = F.conv2d(matrix, fuse, padding=1)
        corr = matrix.view(1, w, h, w, h).permute(0, 4, 3, 2, 1).reshape(1, h * w, h, w)
        invalid = F.unfold(F.interpolate(hole, scale_factor=0.5), 3, padding=1).sum(1) > 0
        corr = corr + torch.where(invalid, float("-inf"), 0.0)[..., None, None]
        score = torch.softmax(corr * scale, dim=1)
        out = F.conv_transpose2d(score, raw, stride=2, padding=1)
        overlap = F.conv_transpose2d(torch.ones(1, 1, h, w), torch.ones(1, 1, 4, 4), stride=2, padding=1)
        outputs.append(out / overlap)
    return torch.cat(outputs)
