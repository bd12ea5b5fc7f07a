"""The comic text segmenter the studio grew from (yu45020, Text_Segmentation_Image_Inpainting, 2019).

Our own network, written from the facts in ``../shared/reference/MODELS.md`` section 12 (the authors'
code is GPL-3.0 and is not copied), that loads their released ``text_seg_model_681epos.pt`` (a bare
state dict, Google Drive) unmodified and strictly: module names are chosen so that ``state_dict()``
keys, shapes and order equal the release's (``encoder.entry_flow_1.0.weight`` ...
``out_conv.2.bias``). It is not an inpainter: it finds the lettering of a page, which
:mod:`app.selection.text` turns into a hole any inpainter fills.

Architecture (output stride 8, a DeepLab v3+ style decoder). Every convolution is bias-free and
followed by BatchNorm and a LeakyReLU(0.3) unless said otherwise; a *separable* convolution is a
depthwise kxk convolution (+BN+act) then a 1x1 convolution (+BN, + act unless it is the last of its
residual block):

* ``encoder`` (an Xception): ``entry_flow_1`` = conv3x3/2 3->32, conv3x3 32->64, a residual block
  64->128 /2 (its output, at 1/4, is the decoder's skip feature); ``entry_flow_2`` = residual blocks
  128->256 /2 and 256->512 (dilation 2); ``middle_flow`` = 4 residual blocks of dilation 2 and 4 of
  dilation 4; ``exit_flow`` = dilations 2, 2, 1, 1. A residual block is three separable convolutions
  (the last one strided) plus a 1x1 strided convolution + BN on the shortcut when the shape changes,
  summed with no activation after the sum;
* ``feature_pooling`` (atrous spatial pooling): a 3x3 branch and, for r in 3, 5, 9, an r x r average
  pooling (stride 1, zero padding counted) then a 3x3 convolution of dilation r; the four 256-channel
  maps concatenated and mixed by a 1x1 convolution;
* the decoder: the pooled map upsampled bilinearly to 1/4, concatenated with the skip feature
  reduced to 48 channels, two 3x3 convolutions (304->128, then 128->1 *with* bias) and a bilinear
  upsampling to the input's size: one logit per pixel, text where it is above 0.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.errors import CropSizeError
from app.models.base import NetworkFacts, NeuralNetwork
from app.specs import OfficialFile

RELEASED = "text_seg_model_681epos.pt"
LEAK = 0.3
STRIDE = 8  # the encoder's output stride: input sides must be multiples of it
WORK_SIDE = 600  # the official demo's square input (EvaluateSet(resize=600))
SKIP_CHANNELS = 48
POOL_RATES = (3, 5, 9)
#: The official pre-processing's normalisation (EvaluateSet(mean=..., std=...)), RGB in [0, 1].
MEAN = (0.4935, 0.4563, 0.4544)
STD = (0.3769, 0.3615, 0.3566)


def _norm(channels: int, act: bool = True) -> nn.Sequential:
    """BatchNorm (+ the LeakyReLU, in place on BatchNorm's fresh output) as one sequential: the release's
    ``<i>.0.weight`` keys live in it."""
    return nn.Sequential(nn.BatchNorm2d(channels), nn.LeakyReLU(LEAK, inplace=True)) if act else nn.Sequential(
        nn.BatchNorm2d(channels))


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1, groups: int = 1,
          bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride, dilation * (k // 2), dilation, groups, bias)


class Separable(nn.Module):
    """Depthwise kxk (+BN+act), then 1x1 (+BN, + act unless ``last``): the official DSConvBlock."""

    def __init__(self, cin: int, cout: int, stride: int = 1, dilation: int = 1, last: bool = False) -> None:
        super().__init__()
        self.depth_wise_conv = nn.Sequential(_conv(cin, cin, 3, stride, dilation, groups=cin), _norm(cin))
        self.point_wise_conv = nn.Sequential(_conv(cin, cout, 1), _norm(cout, act=not last))

    def forward(self, x: Tensor) -> Tensor:
        return self.point_wise_conv(self.depth_wise_conv(x))


class Residual(nn.Module):
    """Three separable convolutions plus the (projected) input; no activation after the sum."""

    def __init__(self, cin: int, cout: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Sequential(Separable(cin, cout, 1, dilation), Separable(cout, cout, 1, dilation),
                                  Separable(cout, cout, stride, dilation, last=True))
        projected = stride > 1 or cin != cout
        self.residual_conv = nn.Sequential(_conv(cin, cout, 1, stride), _norm(cout, act=False)) if projected \
            else None

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.residual_conv is None else self.residual_conv(x)
        return self.conv(x) + shortcut


class Xception(nn.Module):
    """The encoder: returns the 1/8 features (512 ch) and the 1/4 skip features (128 ch)."""

    def __init__(self) -> None:
        super().__init__()
        self.entry_flow_1 = nn.Sequential(_conv(3, 32, stride=2), _norm(32), _conv(32, 64), _norm(64),
                                          Residual(64, 128, stride=2))
        self.entry_flow_2 = nn.Sequential(Residual(128, 256, stride=2), Residual(256, 512, dilation=2))
        self.middle_flow = nn.Sequential(*(Residual(512, 512, dilation=d) for d in (2,) * 4 + (4,) * 4))
        self.exit_flow = nn.Sequential(*(Residual(512, 512, dilation=d) for d in (2, 2, 1, 1)))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        skip = self.entry_flow_1(x)
        return self.exit_flow(self.middle_flow(self.entry_flow_2(skip))), skip


class AtrousPooling(nn.Module):
    """Four 256-channel views of the 1/8 map (plain, and average-pooled then dilated by 3, 5, 9), mixed by 1x1."""

    def __init__(self, cin: int = 512, cout: int = 256) -> None:
        super().__init__()
        branches = [nn.Sequential(_conv(cin, cout), _norm(cout))]
        branches += [nn.Sequential(nn.AvgPool2d(r, 1, (r - 1) // 2, count_include_pad=True),
                                   _conv(cin, cout, dilation=r), _norm(cout)) for r in POOL_RATES]
        self.asp = nn.Sequential(*branches)
        self.out_conv = nn.Sequential(_conv(cout * len(branches), cout, 1), _norm(cout))

    def forward(self, x: Tensor) -> Tensor:
        return self.out_conv(torch.cat([branch(x) for branch in self.asp], dim=1))


class XceptionTextSegmenter(NeuralNetwork):
    """Text logits for a normalised RGB page whose sides are multiples of 8 (the official demo feeds 600x600).

    ``forward`` returns the raw logits (B, 1, H, W); :mod:`app.selection.text` does the official pre- and
    post-processing (resize to 600, pad, threshold, 3x3 dilation, back to the photo's size). It runs in
    eval mode (BatchNorm with the stored statistics), which is what the fixtures' main arrays hold; the
    official demo never calls ``eval()``, a variant the fixtures keep as ``*_demo_trainbn`` and
    ``tests/test_textseg_reference.py`` reproduces with ``train()``, but that the app does not use (see
    docs/select.md).
    """

    FACTS = NetworkFacts(native_size=WORK_SIDE, max_size=WORK_SIDE, size_multiple=STRIDE, least_side=STRIDE * 4,
                         approx_mb=65, official_files=(OfficialFile(RELEASED, ""),))

    def __init__(self) -> None:
        super().__init__()
        self.encoder = Xception()
        self.feature_pooling = AtrousPooling()
        self.feature_4x_conv = nn.Sequential(_conv(128, SKIP_CHANNELS, 1), _norm(SKIP_CHANNELS))
        self.out_conv = nn.Sequential(_conv(256 + SKIP_CHANNELS, 128), _norm(128), _conv(128, 1, bias=True))
        self.eval()

    def pooled(self, x: Tensor) -> Tensor:
        """The atrous pooling's output (B, 256, H/8, W/8), for inspection (the fixtures' ``asp_out``)."""
        return self.feature_pooling(self.encoder(x)[0])

    def deploy(self, device: str | torch.device, *args: Any, **kwargs: Any) -> XceptionTextSegmenter:
        """As every network, and channels-last: oneDNN's own layout for these convolutions, so none of the 103
        reorders its input (a 600x600 forward 35 % faster on a CPU; the same values within 1e-7)."""
        return super().deploy(device, *args, **kwargs).to(memory_format=torch.channels_last)

    def layout(self) -> torch.memory_format:
        """The memory format the weights are in (channels-last once deployed): the input is given the same."""
        weight = self.encoder.entry_flow_1[0].weight
        return torch.contiguous_format if weight.is_contiguous() else torch.channels_last

    def forward(self, x: Tensor) -> Tensor:
        self.check_size(*x.shape[-2:])
        x = x.contiguous(memory_format=self.layout())
        deep, skip = self.encoder(x)
        pooled = F.interpolate(self.feature_pooling(deep), size=skip.shape[-2:], mode="bilinear",
                               align_corners=False)
        logits = self.out_conv(torch.cat([pooled, self.feature_4x_conv(skip)], dim=1))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False).contiguous()

    @staticmethod
    def check_size(height: int, width: int) -> None:
        """Sides must be multiples of 8 (604 fails in the official code too): say so instead of a shape error."""
        if height % STRIDE or width % STRIDE or min(height, width) < STRIDE * 4:
            raise CropSizeError(f"The text segmenter needs sides that are multiples of {STRIDE} and at least "
                                f"{STRIDE * 4} px, got {height}x{width}.")

    @torch.inference_mode()
    def logits(self, x: Tensor) -> Tensor:
        """:meth:`forward` on the network's own device, under its precision, returned as float32 on the CPU."""
        with self.precision():
            return self(x.to(self.device)).float().cpu()
