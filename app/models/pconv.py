"""Partial convolution (Liu et al., ECCV 2018) as released in the OpenMMLab mmagic model zoo.

Our own re-implementation of mmagic's ``PConvEncoderDecoder`` (stage-2 releases, MODELS.md
section 8) that loads ``pconv_256x256_stage2_4x2_{places,celeba}_20200619-*.pth`` unmodified:
module names mirror the official keys (``encoder.enc2.conv.weight``, ``decoder.dec1.conv.bias``,
``...weight_mask_updater``), so only the ``generator.`` prefix is stripped and the perceptual-loss
VGG the release also holds (``loss_percep.vgg.*``) is ignored.

A U-Net of partial convolutions: every layer only sees known pixels, rescales its sum by how
many it saw, and hands on a mask of where it produced something. Seven stride-2 stages down,
seven nearest-neighbour x2 stages up with skip concatenations of features and masks, so crop
sides must be multiples of 128. The output has no activation and is unbounded: where a window
saw a single known pixel the rescaling reaches ``in*k*k``, which gives spikes (|x| ~ 28 with
large holes) that the mmagic export simply clamps.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.models.base import NetworkFacts, NeuralNetwork, float32_region
from app.models.mmagic import MmagicInpainter
from app.specs import OfficialFile

EPS = 1e-8  # ``PartialConv2d(eps=1e-8)``: keeps the ratio finite where a window saw nothing
STAGES = 7  # stride-2 encoder stages, each undone by one x2 decoder stage
SIZE_MULTIPLE = 2**STAGES
LEAK = 0.2  # decoder LeakyReLU slope
#: (in, out, kernel) of ``encoder.enc1`` .. ``enc7``; all stride 2, padding kernel // 2.
ENCODER = ((3, 64, 7), (64, 128, 5), (128, 256, 5), (256, 512, 3), (512, 512, 3), (512, 512, 3), (512, 512, 3))


class PartialConv2d(nn.Conv2d):
    """mmagic's ``PartialConv2d(multi_channel=True)``: a convolution of the known inputs, renormalised.

    ``weight_mask_updater`` is the official constant all-ones kernel, a buffer that the release
    carries (and a strict load therefore needs). It counts the known inputs under each window.
    When it is all ones (always, for the releases) that count equals the mask's channel sum boxed
    over k x k: exact in float32 (integers below 2^24) and ``in_channels`` times cheaper, so
    :meth:`valid_counts` takes that path; any other loaded kernel is convolved as the official
    layer does. The masks stay float32 under autocast: the epsilon vanishes in float16 (0 * inf)
    and counts above 2048 are not exact there.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, bias: bool) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=bias)
        self.register_buffer("weight_mask_updater", torch.ones(out_channels, in_channels, kernel_size, kernel_size))
        self.ones_kernel = True

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args)
        self.ones_kernel = bool((self.weight_mask_updater == 1).all())

    def valid_counts(self, mask: Tensor) -> Tensor:
        """Known inputs under each output window (zero padding counts as unknown), float32.

        ``out`` channels from a loaded kernel; from the all-ones kernel one channel, the same for every
        output channel, which the ratio and the updated mask broadcast instead of repeating ``out`` times.
        The box sum is a sum pool (``avg_pool2d`` with divisor 1): a one-channel convolution takes
        oneDNN's slow path on the CPU, and the sums of 0/1 values are exact either way.
        """
        kernel = self.weight_mask_updater
        if not self.ones_kernel:
            return F.conv2d(mask, kernel.float(), None, self.stride, self.padding, self.dilation)
        return F.avg_pool2d(mask.sum(1, keepdim=True), kernel.shape[2:], self.stride, self.padding,
                            count_include_pad=True, divisor_override=1)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        """``mask``: float32, as many channels as ``x``, 1 = known; returns (output, updated mask, ``out`` channels)."""
        with float32_region(x.device):
            counts = self.valid_counts(mask)
            updated = counts.clamp(0, 1)
            ratio = self.weight_mask_updater[0].numel() / (counts + EPS) * updated
        raw = super().forward(x * mask)
        updated = updated.expand(-1, self.out_channels, -1, -1)
        if self.bias is None:
            return raw * ratio, updated
        bias = self.bias.view(1, -1, 1, 1)
        return ((raw - bias) * ratio + bias) * updated, updated


class MaskConvModule(nn.Module):
    """Partial conv -> batch norm -> activation (mmagic ``MaskConvModule``); the conv has a bias only without norm."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, *, norm: bool,
                 act: nn.Module | None) -> None:
        super().__init__()
        self.conv = PartialConv2d(in_channels, out_channels, kernel_size, stride, bias=not norm)
        self.bn = nn.BatchNorm2d(out_channels) if norm else None
        self.act = act

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        x, mask = self.conv(x, mask)
        if self.bn is not None:
            x = self.bn(x)
        return (x if self.act is None else self.act(x)), mask


class PConvEncoder(nn.Module):
    """``enc1`` .. ``enc7``: stride-2 partial convs with ReLU, BN (frozen in stage 2) after all but the first."""

    def __init__(self) -> None:
        super().__init__()
        for i, (cin, cout, k) in enumerate(ENCODER, start=1):
            self.add_module(f"enc{i}", MaskConvModule(cin, cout, k, 2, norm=i > 1, act=nn.ReLU()))

    def forward(self, x: Tensor, mask: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Every (feature, mask) from the input h0 to the bottleneck h7: the decoder's skips."""
        hidden = [(x, mask)]
        for i in range(1, STAGES + 1):
            hidden.append(getattr(self, f"enc{i}")(*hidden[-1]))
        return hidden


class PConvDecoder(nn.Module):
    """``dec7`` .. ``dec1``: x2 nearest upsampling, concat with the encoder's skip, 3x3 partial conv.

    Built in the official order (dec5, dec6, dec7, then dec4 .. dec1) so the state_dict lists the
    keys as the release does. ``dec1`` maps to the 3 output channels, with a bias and no activation.
    """

    def __init__(self) -> None:
        super().__init__()
        widths = [3] + [cout for _, cout, _ in ENCODER]  # channels of h0 .. h7
        for i in (5, 6, 7, 4, 3, 2, 1):
            last = i == 1
            cout = 3 if last else widths[i - 1]
            self.add_module(f"dec{i}", MaskConvModule(widths[i] + widths[i - 1], cout, 3, 1, norm=not last,
                                                      act=None if last else nn.LeakyReLU(LEAK)))

    def forward(self, hidden: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
        h, mask = hidden[STAGES]
        for i in range(STAGES, 0, -1):
            skip, skip_mask = hidden[i - 1]
            h = torch.cat([F.interpolate(h, scale_factor=2, mode="nearest"), skip], dim=1)
            mask = torch.cat([F.interpolate(mask, scale_factor=2, mode="nearest"), skip_mask], dim=1)
            h, mask = getattr(self, f"dec{i}")(h, mask)
        return h, mask


class PartialConvNet(MmagicInpainter, NeuralNetwork):
    """mmagic's PConv generator: masked BGR image + known-pixel mask in, raw BGR fill out (normalised units)."""

    #: The release is mmagic's whole inpaintor: ``generator.*`` is ours, ``loss_percep.vgg.*`` is not.
    FACTS = NetworkFacts(
        native_size=256, size_multiple=SIZE_MULTIPLE, approx_mb=206, gpu_dtype=torch.float16,
        official_files=(OfficialFile(
            "pconv_256x256_stage2_4x2_places_20200619-1ffed0e8.pth", "", container="state_dict",
            prefix="generator.", only_prefixed=True,
            aliases=("pconv_256x256_stage2_4x2_celeba_20200619-860f8b95.pth",)),),
    )
    NAME = "Partial convolution"

    def __init__(self) -> None:
        super().__init__()
        self.encoder = PConvEncoder()
        self.decoder = PConvDecoder()

    def forward(self, masked: Tensor, known: Tensor) -> tuple[Tensor, Tensor]:
        """``masked``: (B, 3, H, W) normalised BGR; ``known``: (B, 3, H, W) float32, 1 = known pixel."""
        return self.decoder(self.encoder(masked, known))

    def generate(self, masked: Tensor, hole: Tensor) -> Tensor:
        """``PConvInpaintor.forward_tensor``: the mask as 1 = known, on 3 channels; the updated mask is dropped."""
        fill, _ = self(masked, (1 - hole).expand(-1, 3, -1, -1))
        return fill
