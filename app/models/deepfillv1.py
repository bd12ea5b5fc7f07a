"""DeepFill v1 (Yu et al., CVPR 2018): a coarse network, then a refiner that copies patches from the known area.

Our own re-implementation of mmagic's ``DeepFillEncoderDecoder`` with plain convolutions
(MODELS.md section 6) that loads ``deepfillv1_256x256_{8x2_places,4x4_celeba}_20200619-*.pth``
unmodified: module names mirror the official keys (``stage1.encoder.enc1.conv.weight``,
``stage2.contextual_attention_neck.contextual_attention.fuse_kernel``...), so only the
``generator.`` prefix is stripped and the discriminators the release also holds (``disc.*``) are
ignored. DeepFill v2 (:mod:`app.models.deepfillv2`) is the same generator with gated convolutions.

* Stage 1 (encoder, dilated neck, decoder) paints a coarse fill; it is pasted into the hole.
* Stage 2 runs two branches on that composite at H/4: dilated convolutions, and contextual
  attention, which rebuilds every position as a blend of 4x4 feature patches of the KNOWN area
  chosen by cosine similarity. A decoder fuses both branches.
* Every convolution pads by reflection (mmcv ``padding_mode='reflect'``), so crop sides must be
  multiples of 8 (the attention works at H/8 and copies back to H/4) and at least 72 px (the
  last dilated convolution reflects 16 px of the H/4 map). The official code does not pad.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.models.base import NetworkFacts, NeuralNetwork, float32_region
from app.models.mmagic import MmagicInpainter
from app.specs import OfficialFile

SIZE_MULTIPLE = 8
LEAST_SIDE = 72  # H/4 must exceed the reflection padding (16) of the last dilated convolution
#: Output channels of the six encoder convolutions (``DeepFillEncoder``), by encoder type.
ENCODER_CHANNELS = {
    "stage1": (32, 64, 64, 128, 128, 128),
    "stage2_conv": (32, 32, 64, 64, 128, 128),
    "stage2_attention": (32, 32, 64, 128, 128, 128),
}
ENCODER_KERNELS = (5, 3, 3, 3, 3, 3)
ENCODER_STRIDES = (1, 2, 1, 2, 1, 1)
DECODER_CHANNELS = (128, 128, 64, 64, 32, 16, 3)
DECODER_UPSAMPLE_AFTER = (2, 4)  # nearest x2 after dec2 and dec4
DILATIONS = (2, 4, 8, 16)
SOFTMAX_SCALE = 10.0  # ``ContextualAttentionNeck(contextual_attention_args=dict(softmax_scale=10.))``
NORM_EPS = 1e-4  # candidate patches are divided by max(norm, 1e-4)


class ConvBlock(nn.Module):
    """mmcv ``ConvModule`` as DeepFill v1 builds it: reflection padding, conv with bias, ELU (none on the last).

    ``nn.Conv2d(padding_mode='reflect')`` pads exactly like mmcv's explicit ``ReflectionPad2d``
    followed by an unpadded conv, and keeps the official key ``<name>.conv.weight``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1,
                 dilation: int = 1, activate: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                              padding=dilation * (kernel_size - 1) // 2, dilation=dilation, padding_mode="reflect")
        self.activate = activate

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        return F.elu(x, inplace=True) if self.activate else x  # in place, as mmcv's ConvModule


#: The block class a generator is built from: ``ConvBlock`` here, the gated one in DeepFill v2.
Block = type[ConvBlock]


def _scaled(channels: tuple[int, ...], factor: float) -> list[int]:
    """mmagic's ``int(c * channel_factor)`` (DeepFill v2 builds most modules at 0.75 width)."""
    return [int(c * factor) for c in channels]


class Encoder(nn.Module):
    """``DeepFillEncoder``: six convs (``enc1``..``enc6``), two of them stride 2, ending at H/4."""

    def __init__(self, block: Block, kind: str, factor: float = 1.0, in_channels: int = 5) -> None:
        super().__init__()
        channels = _scaled(ENCODER_CHANNELS[kind], factor)
        for i, (out, kernel, stride) in enumerate(zip(channels, ENCODER_KERNELS, ENCODER_STRIDES), start=1):
            self.add_module(f"enc{i}", block(in_channels, out, kernel, stride=stride))
            in_channels = out

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.children():
            x = layer(x)
        return x


class DilationNeck(nn.Module):
    """``GLDilationNeck``: four 3x3 convs with dilation 2, 4, 8, 16 at H/4 (the wide receptive field)."""

    def __init__(self, block: Block, channels: int) -> None:
        super().__init__()
        self.dilation_convs = nn.Sequential(*(block(channels, channels, 3, dilation=d) for d in DILATIONS))

    def forward(self, x: Tensor) -> Tensor:
        return self.dilation_convs(x)


class Decoder(nn.Module):
    """``DeepFillDecoder``: seven 3x3 convs, x2 nearest upsampling after dec2 and dec4, then ``out_act``.

    The last conv has no activation; ``out_act`` bounds the image to [-1, 1] (v1 clips, v2 tanh).
    """

    def __init__(self, block: Block, in_channels: int, out_act: nn.Module, factor: float = 1.0) -> None:
        super().__init__()
        channels = [*_scaled(DECODER_CHANNELS[:-1], factor), DECODER_CHANNELS[-1]]
        for i, out in enumerate(channels, start=1):
            self.add_module(f"dec{i}", block(in_channels, out, 3, activate=i < len(channels)))
            in_channels = out
        self.out_act = out_act

    def forward(self, x: Tensor) -> Tensor:
        for i in range(1, len(DECODER_CHANNELS) + 1):
            x = getattr(self, f"dec{i}")(x)
            if i in DECODER_UPSAMPLE_AFTER:
                x = F.interpolate(x, scale_factor=2)
        return self.out_act(x)


class CoarseNet(nn.Module):
    """Stage 1 (``GLEncoderDecoder``): encoder -> dilation neck -> decoder, a whole-crop coarse fill."""

    def __init__(self, block: Block, factor: float, out_act: nn.Module) -> None:
        super().__init__()
        width = int(128 * factor)
        self.encoder = Encoder(block, "stage1", factor)
        self.decoder = Decoder(block, width, out_act, factor)
        self.dilation_neck = DilationNeck(block, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.dilation_neck(self.encoder(x)))


class ContextualAttention(nn.Module):
    """mmagic's ``ContextualAttentionModule`` (self-attention of the H/4 feature, as the neck calls it).

    Every position of the H/8 map (nearest-downsampled) scores every 3x3 candidate patch by its
    dot product with the candidate's unit vector (the query is not normalised); scores are
    smoothed along diagonals (``fuse_kernel``) in row-major, then column-major order of both
    axes, candidates touching the hole get ``-inf``, and a softmax of ``10 * score`` weights the
    4x4 raw patches of the H/4 map pasted back with stride 2, divided by how many overlap.

    The official code convolves per crop with ``groups=batch``; here the same sums are batched
    matrix products on unfolded patches, so several crops run in one pass and never mix. Where
    every candidate of a crop touches the hole the official softmax gives NaN; we return zeros
    for that crop instead (the only place the two differ). Runs in float32 under autocast: the
    patch norms sum squares of C*9 values and the scores are multiplied by 10 before the softmax,
    where float16 would overflow or lose the ranking.
    """

    def __init__(self, softmax_scale: float = SOFTMAX_SCALE) -> None:
        super().__init__()
        self.softmax_scale = softmax_scale
        self.register_buffer("fuse_kernel", torch.eye(3).view(1, 1, 3, 3))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """``x``: (B, C, H/4, W/4) features; ``mask``: (B, 1, H/4, W/4), 1 = hole. Returns (B, C, H/4, W/4)."""
        with float32_region(x.device):
            return self._attend(x.float(), mask.float()).to(x.dtype)

    def _attend(self, x: Tensor, mask: Tensor) -> Tensor:
        raw = F.unfold(x, 4, stride=2, padding=1)  # (B, C*16, L): the patches that get copied
        small = F.interpolate(x, scale_factor=0.5)
        height, width = small.shape[-2:]
        queries = F.unfold(small, 3, padding=1)  # (B, C*9, Q); candidates are the same patches, normalised
        keys = queries / torch.sqrt((queries**2).sum(dim=1, keepdim=True)).clamp_min(NORM_EPS)
        scores = self._fuse(keys.transpose(1, 2) @ queries, height, width)  # (B, L, Q)
        invalid = self._invalid_candidates(mask)  # (B, L)
        # In place: at 512 px one (L, Q) matrix is 67 MB per crop.
        scores.mul_(self.softmax_scale).masked_fill_(invalid[:, :, None], float("-inf"))
        attention = torch.softmax(scores, dim=1).masked_fill_(invalid.all(dim=1)[:, None, None], 0.0)
        return self._paste(raw @ attention, x.shape[-2:])

    def _fuse(self, scores: Tensor, height: int, width: int) -> Tensor:
        """Diagonal smoothing of the (candidate, query) matrix, row-major then column-major ordered.

        A diagonal step moves both the candidate and the query to the next position in the
        flattened order, so it wraps around row (then column) ends exactly as the official
        ``fuse_correlation_map``. Which axis is flattened first matters on non-square maps.
        """
        b, n, _ = scores.shape
        scores = self._diagonal_sum(scores)
        scores = scores.view(b, height, width, height, width).permute(0, 2, 1, 4, 3).reshape(b, n, n)
        scores = self._diagonal_sum(scores)
        return scores.view(b, width, height, width, height).permute(0, 2, 1, 4, 3).reshape(b, n, n)

    def _diagonal_sum(self, scores: Tensor) -> Tensor:
        """``conv2d(scores, fuse_kernel, padding=1)`` over the matrix, written as shifted sums.

        Shifted sums instead of a convolution so no backend rounds them to TF32 (cuDNN may), and
        only over the kernel's non-zero taps: the released kernel is the identity, 3 taps of 9.
        Tap (i, j) adds ``weight * scores[q + di, l + dj]`` where that entry exists (zero padding).
        """
        taps = self.fuse_kernel[0, 0].tolist()
        centre = len(taps) // 2
        out = torch.zeros_like(scores)
        for i, row in enumerate(taps):
            for j, weight in enumerate(row):
                if weight:
                    target, source = _shifted(scores.shape[-2:], i - centre, j - centre)
                    out[(slice(None), *target)].add_(scores[(slice(None), *source)], alpha=weight)
        return out

    @staticmethod
    def _invalid_candidates(mask: Tensor) -> Tensor:
        """Candidates with ANY hole pixel in their 3x3 window of the nearest-downsampled mask."""
        small = F.interpolate(mask, scale_factor=0.5)
        return F.unfold(small, 3, padding=1).sum(dim=1) > 0

    @staticmethod
    def _paste(columns: Tensor, size: torch.Size) -> Tensor:
        """``conv_transpose2d`` of the weighted 4x4 patches (stride 2), divided by the overlap count."""
        out = F.fold(columns, size, 4, stride=2, padding=1)
        ones = columns.new_ones(1, 16, columns.shape[-1])
        return out / F.fold(ones, size, 4, stride=2, padding=1).clamp_min(1)


def _shifted(shape: torch.Size, di: int, dj: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """(target, source) slices of a (rows, cols) matrix such that ``target[q, l]`` pairs ``source[q + di, l + dj]``."""
    rows, cols = shape
    target = (slice(max(-di, 0), rows - max(di, 0)), slice(max(-dj, 0), cols - max(dj, 0)))
    source = (slice(max(di, 0), rows - max(-di, 0)), slice(max(dj, 0), cols - max(-dj, 0)))
    return target, source


class AttentionNeck(nn.Module):
    """``ContextualAttentionNeck``: contextual attention, then two 3x3 convs."""

    def __init__(self, block: Block, channels: int) -> None:
        super().__init__()
        self.contextual_attention = ContextualAttention()
        self.conv1 = block(channels, channels, 3)
        self.conv2 = block(channels, channels, 3)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.conv2(self.conv1(self.contextual_attention(x, mask)))


class Refiner(nn.Module):
    """Stage 2 (``DeepFillRefiner``): a dilated-conv branch and an attention branch, fused by a decoder.

    The stage-2 decoder is built at full width even in v2 (``channel_factor`` is not passed to it).
    """

    def __init__(self, block: Block, factor: float, out_act: nn.Module) -> None:
        super().__init__()
        width = int(128 * factor)
        self.encoder_attention = Encoder(block, "stage2_attention", factor)
        self.encoder_conv = Encoder(block, "stage2_conv", factor)
        self.contextual_attention_neck = AttentionNeck(block, width)
        self.dilation_neck = DilationNeck(block, width)
        self.decoder = Decoder(block, 2 * width, out_act)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        conv = self.dilation_neck(self.encoder_conv(x))
        attention = self.encoder_attention(x)
        small_mask = F.interpolate(mask, size=attention.shape[-2:])  # nearest: mask[4i, 4j]
        attention = self.contextual_attention_neck(attention, small_mask)
        return self.decoder(torch.cat([conv, attention], dim=1))


class DeepFillV1(MmagicInpainter, NeuralNetwork):
    """mmagic's DeepFill v1 generator: ``[masked BGR, ones, mask]`` in, (coarse, refined) BGR out, in [-1, 1]."""

    #: The release is mmagic's whole inpaintor: ``generator.*`` is ours, ``disc.*`` is not.
    FACTS = NetworkFacts(
        # 512: contextual attention is quadratic in the H/8 positions (1 M scores per crop at 256,
        # 16.8 M at 512); larger crops are downscaled by the pipeline.
        native_size=256, size_multiple=SIZE_MULTIPLE, max_size=512, approx_mb=15, gpu_dtype=torch.float16,
        least_side=LEAST_SIDE,
        official_files=(OfficialFile(
            "deepfillv1_256x256_8x2_places_20200619-c00a0e21.pth", "", container="state_dict",
            prefix="generator.", only_prefixed=True,
            aliases=("deepfillv1_256x256_4x4_celeba_20200619-dd51a855.pth",)),),
    )
    NAME = "DeepFill v1"
    MIN_SIDE = LEAST_SIDE

    def __init__(self, block: Block = ConvBlock, factor: float = 1.0, out_act: type[nn.Module] = nn.Hardtanh) -> None:
        """The released v1 by default; v2 passes its gated block, 0.75 width and tanh (Hardtanh = clip to [-1, 1])."""
        super().__init__()
        self.stage1 = CoarseNet(block, factor, out_act())
        self.stage2 = Refiner(block, factor, out_act())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x``: (B, 5, H, W) = normalised masked BGR, ones, mask (1 = hole). Returns (stage 1, stage 2)."""
        masked, mask = x[:, :3], x[:, -1:]
        coarse = self.stage1(x)
        composite = coarse * mask + masked * (1 - mask)
        refined = self.stage2(torch.cat([composite, torch.ones_like(mask), mask], dim=1), mask)
        return coarse, refined

    def generate(self, masked: Tensor, hole: Tensor) -> Tensor:
        """``TwoStageInpaintor.forward_tensor`` with ``input_with_ones``: the stage-2 output is the fill."""
        _, refined = self(torch.cat([masked, torch.ones_like(hole), hole], dim=1))
        return refined
