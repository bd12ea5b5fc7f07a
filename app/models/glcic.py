"""Globally and Locally Consistent Image Completion (Iizuka et al., SIGGRAPH 2017), mmagic release.

Our own re-implementation of mmagic's ``GLEncoderDecoder`` (MODELS.md section 9) that loads
``gl_256x256_8x12_{places,celeba}_20200619-*.pth`` unmodified: module names mirror the official
keys (``encoder.enc1.conv.weight``, ``dilation_neck.dilation_convs.0.bn.running_var``,
``decoder.dec7.conv.bias``), so only the ``generator.`` prefix is stripped and the
discriminators the release also holds (``disc.*``) are ignored.

A plain fully convolutional net: six convs down to H/4, four dilated convs (2, 4, 8, 16) that
widen the view over the hole, two transposed convs back up, every layer conv -> BN -> ReLU with
zero padding. The last conv maps to BGR and is clipped to [-1, 1]. Two stride-2 stages, so crop
sides must be multiples of 4. As the model-zoo README says, no Poisson blending is applied.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.models.base import NetworkFacts, NeuralNetwork
from app.models.mmagic import MmagicInpainter
from app.specs import OfficialFile

SIZE_MULTIPLE = 4  # two stride-2 convs undone by two stride-2 transposed convs, no skips to pad
WIDTH = 256  # channels at H/4 (encoder output, neck, first decoder convs)
DILATIONS = (2, 4, 8, 16)
#: (in, out, kernel, stride) of ``encoder.enc1`` .. ``enc6``; padding keeps the size (stride 1) or halves it.
ENCODER = ((4, 64, 5, 1), (64, 128, 3, 2), (128, 128, 3, 1), (128, 256, 3, 2), (256, 256, 3, 1), (256, 256, 3, 1))


class ConvModule(nn.Module):
    """mmcv ``ConvModule``: bias-free conv (or 4x4 stride-2 transposed conv) -> BN (eval stats) -> ReLU.

    In eval mode the BN is folded into the conv at each call (its scale into the weights, its
    shift as the bias): one pass over the feature map instead of two, at the cost of rescaling a
    few hundred thousand weights; the state_dict stays the release's. Same outputs up to float
    rounding (~1e-6 on the fixtures, tolerance 1e-4).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1,
                 dilation: int = 1, transposed: bool = False) -> None:
        super().__init__()
        if transposed:
            self.conv: nn.Conv2d | nn.ConvTranspose2d = nn.ConvTranspose2d(
                in_channels, out_channels, 4, stride=2, padding=1, bias=False)
        else:
            padding = dilation * (kernel_size // 2)
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                                  dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        if self.training:  # batch statistics: nothing to fold
            return self.act(self.bn(self.conv(x)))
        return F.relu(self.folded_conv(x), inplace=True)

    def folded_conv(self, x: Tensor) -> Tensor:
        """``bn(conv(x))`` with eval statistics, as one convolution with a bias."""
        bn, conv = self.bn, self.conv
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        shift = bn.bias - bn.running_mean * scale
        if isinstance(conv, nn.ConvTranspose2d):  # weight (in, out, k, k): out is dim 1
            weight = conv.weight * scale.view(1, -1, 1, 1)
            return F.conv_transpose2d(x, weight, shift, conv.stride, conv.padding)
        weight = conv.weight * scale.view(-1, 1, 1, 1)
        return F.conv2d(x, weight, shift, conv.stride, conv.padding, conv.dilation)


class HeadConv(nn.Module):
    """``dec7``: a 3x3 conv with bias and no norm or activation; only its ``conv`` holds weights."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class GLEncoder(nn.Sequential):
    """``enc1`` .. ``enc6``: the 4-channel input (masked image + hole mask) down to 256 channels at H/4."""

    def __init__(self) -> None:
        super().__init__()
        for i, (cin, cout, k, stride) in enumerate(ENCODER, start=1):
            self.add_module(f"enc{i}", ConvModule(cin, cout, k, stride=stride))


class GLDilationNeck(nn.Module):
    """Four dilated 3x3 convs at H/4: each output pixel then sees most of a 256 px crop."""

    def __init__(self) -> None:
        super().__init__()
        self.dilation_convs = nn.Sequential(*(ConvModule(WIDTH, WIDTH, 3, dilation=d) for d in DILATIONS))

    def forward(self, x: Tensor) -> Tensor:
        return self.dilation_convs(x)


class GLDecoder(nn.Sequential):
    """``dec1`` .. ``dec7``: two transposed convs back to full size, then BGR clipped to [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.dec1 = ConvModule(WIDTH, 256, 3)
        self.dec2 = ConvModule(256, 256, 3)
        self.dec3 = ConvModule(256, 128, 4, transposed=True)
        self.dec4 = ConvModule(128, 128, 3)
        self.dec5 = ConvModule(128, 64, 4, transposed=True)
        self.dec6 = ConvModule(64, 32, 3)
        self.dec7 = HeadConv(32, 3)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x).clamp(-1, 1)


class GlobalLocalNet(MmagicInpainter, NeuralNetwork):
    """mmagic's Global&Local generator: masked BGR image + hole mask in, BGR fill in [-1, 1] out."""

    #: The release is mmagic's whole inpaintor: ``generator.*`` is ours, ``disc.*`` (training only) is not.
    FACTS = NetworkFacts(
        native_size=256, size_multiple=SIZE_MULTIPLE, approx_mb=24, gpu_dtype=torch.float16,
        official_files=(OfficialFile(
            "gl_256x256_8x12_places_20200619-52a040a8.pth", "", container="state_dict", prefix="generator.",
            only_prefixed=True, aliases=("gl_256x256_8x12_celeba_20200619-5af0493f.pth",)),),
    )
    NAME = "Global&Local"

    def __init__(self) -> None:
        super().__init__()
        # Construction order as the official class, so the state_dict lists keys as the release does.
        self.encoder = GLEncoder()
        self.decoder = GLDecoder()
        self.dilation_neck = GLDilationNeck()

    def forward(self, x: Tensor) -> Tensor:
        """``x``: (B, 4, H, W) = normalised BGR with holes 0, then the hole mask (1 = hole).

        Runs channels-last: oneDNN's convolutions then skip the layout reorders around every
        layer (the dilated and transposed convolutions gain most); the values differ by float rounding only.
        """
        return self.decoder(self.dilation_neck(self.encoder(x.contiguous(memory_format=torch.channels_last))))

    def generate(self, masked: Tensor, hole: Tensor) -> Tensor:
        """``OneStageInpaintor.forward_tensor``: the 4-channel input, no ones channel."""
        return self(torch.cat([masked, hole], dim=1))
