"""DeepFill v2 (Yu et al., ICCV 2019): DeepFill v1's two-stage generator built from gated convolutions.

Our own re-implementation of mmagic's ``DeepFillEncoderDecoder`` with ``conv_type='gated_conv'``
(MODELS.md section 7) that loads ``deepfillv2_256x256_8x2_{places,celeba}_20200619-*.pth``
unmodified. Everything but the convolution block is DeepFill v1's (:mod:`app.models.deepfillv1`,
contextual attention included); the released configuration differs in three ways:

* every conv is gated: one conv with twice the channels, split into a feature half (ELU) and a
  gate half (sigmoid), multiplied; the gate learns per pixel how much of the hole to trust,
  which is what makes free-form masks work (v1 was trained on rectangles);
* every module except the stage-2 decoder is built at 0.75 width (``channel_factor=0.75``);
* both decoders end with tanh instead of clipping.

Same size rule as v1: sides multiples of 8 and at least 72 px, no padding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.models.base import NetworkFacts
from app.models.deepfillv1 import LEAST_SIDE, SIZE_MULTIPLE, ConvBlock, DeepFillV1
from app.specs import OfficialFile

CHANNEL_FACTOR = 0.75


class GatedConvBlock(nn.Module):
    """mmagic's ``SimpleGatedConvModule``: ``ELU(feature) * sigmoid(gate)``, no ELU on the last decoder conv.

    The inner ``ConvBlock`` (reflection-padded conv, key ``<name>.conv.conv.weight``) outputs the
    feature channels first and the gate channels second, as ``torch.split`` reads them.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1,
                 dilation: int = 1, activate: bool = True) -> None:
        super().__init__()
        self.conv = ConvBlock(in_channels, 2 * out_channels, kernel_size, stride=stride, dilation=dilation,
                              activate=False)
        self.activate = activate

    def forward(self, x: Tensor) -> Tensor:
        # In place on the halves of the fresh conv output: one new tensor per block instead of three.
        feature, gate = self.conv(x).chunk(2, dim=1)
        return torch.mul(F.elu_(feature) if self.activate else feature, gate.sigmoid_())


class DeepFillV2(DeepFillV1):
    """mmagic's DeepFill v2 generator: ``[masked BGR, ones, mask]`` in, (coarse, refined) BGR out, tanh."""

    FACTS = NetworkFacts(
        native_size=256, size_multiple=SIZE_MULTIPLE, max_size=512, approx_mb=18, gpu_dtype=torch.float16,
        least_side=LEAST_SIDE,
        official_files=(OfficialFile(
            "deepfillv2_256x256_8x2_places_20200619-10d15793.pth", "", container="state_dict",
            prefix="generator.", only_prefixed=True,
            aliases=("deepfillv2_256x256_8x2_celeba_20200619-c96e5f12.pth",)),),
    )
    NAME = "DeepFill v2"

    def __init__(self) -> None:
        super().__init__(GatedConvBlock, CHANNEL_FACTOR, nn.Tanh)
