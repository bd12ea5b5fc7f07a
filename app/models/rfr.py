"""RFR-Net (Li et al., CVPR 2020): recurrent feature reasoning for large holes.

Our own PyTorch implementation of the released 7x7 partial-convolution variant, written so
that the authors' ``checkpoint_*.pth`` loads unmodified and strictly: every submodule name
below mirrors a key of the official state_dict (``Pconv1.weight``,
``RFRModule.att.att.ratio``, ...), which is why some attributes are not snake_case.

The net fills the hole from its border inward: the same partial-conv pair shrinks the hole a
little on each of six recurrences, an encoder-decoder with knowledge-consistent attention
(KCA) reasons about the features, and the six intermediate results are averaged where they
were valid. Input polarity follows the official tensors: mask 1 = known pixel, holes of the
image zeroed (black, [0, 1] range). The raw output is unbounded (no final activation).

Memory: the KCA compares every position of the H/8 x W/8 attention map with every other,
i.e. one (H/8 * W/8)^2 float matrix per image (4 MiB at 256x256, 64 MiB at 512x512, 1 GiB at
1024x1024) — the term that dominates at large sizes; see :func:`attention_bytes`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.models.base import Batch, NetworkFacts, NeuralNetwork, Prediction, float32_region, widen
from app.specs import OfficialFile

RECURRENCES = 6  # the released model reasons six times (fixed by training, not a knob)
SIZE_MULTIPLE = 16  # stride-2 Pconv1 + three stride-2 encoder stages with skip concatenations
ATTENTION_STRIDE = 8  # the KCA runs on the H/8 x W/8 decoder features
#: (H/8*W/8)^2 score matrices alive at once per image inside the attention (current scores,
#: their blend with the previous recurrence's, and the carried state); measured, see benchmarks.
ATTENTION_PEAK_MATRICES = 3
PCONV_EPS = 1e-8  # official partial-conv ratio epsilon
KCA_EPS = 1e-7  # official attention epsilon (key offset, ratio floor)
MERGE_EPS = 1e-7  # official feature-merge epsilon
LEAK = 0.01  # F.leaky_relu default slope, used by the official main branch
DEC_LEAK = 0.2  # slope inside the RFR module decoders


def attention_floats(height: int, width: int) -> int:
    """Entries of one attention score matrix for an ``height`` x ``width`` crop: (H/8*W/8)^2."""
    positions = (height // ATTENTION_STRIDE) * (width // ATTENTION_STRIDE)
    return positions * positions


def attention_bytes(height: int, width: int, batch: int = 1, bytes_per_float: int = 4) -> int:
    """Peak bytes the attention needs for a batch: quadratic in the pixel count.

    The registry caps RFR's crops at its native 256 px and its batches at ``max_batch``, so
    the pipeline never asks for more than ``attention_bytes(256, 256, max_batch)`` (96 MiB);
    the rest of the network grows only linearly with the pixel count.
    """
    return ATTENTION_PEAK_MATRICES * batch * attention_floats(height, width) * bytes_per_float


class PartialConv2d(nn.Conv2d):
    """Convolution that only sees known pixels and rescales by how many it saw.

    The mask updater of the official layer is a constant all-ones kernel and not part of the
    checkpoint, so it is not a buffer here: because every mask channel holds 0/1 values, the
    count of valid inputs is the channel sum convolved with a k x k box, which is exact in
    float32 and far cheaper than an (out, in, k, k) ones convolution.

    The count, the ratio and the new mask stay in float32 under autocast: counts reach
    C*k*k = 3136, past the integers float16 (2048) and bfloat16 (256) hold exactly, and in
    float16 the 1e-8 floor vanishes, so a window with nothing valid gives 3136/0 * 0 = NaN.
    Only the convolution of the features runs in half.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias=False)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        """``mask`` broadcasts to ``x`` (1 = valid); returns the output and its (B,1,H,W) mask."""
        kh, kw = self.kernel_size
        with float32_region(x.device):
            mask = widen(mask)
            box = mask.new_ones(1, 1, kh, kw)
            counts = mask.expand(-1, x.shape[1], -1, -1).sum(1, keepdim=True)
            valid = F.conv2d(counts, box, stride=self.stride, padding=self.padding)
            ratio = (self.in_channels * kh * kw) / (valid + PCONV_EPS)
            new_mask = valid.clamp(0, 1)
            scale = ratio * new_mask
        out = self._conv_forward(x * mask, self.weight, None) * scale
        return out, new_mask


@dataclass
class AttentionState:
    """What one recurrence's attention hands to the next: its scores and its mask.

    Kept outside the module (returned and passed back by the caller) so that state lives only
    for one forward call: concurrent requests on a shared model cannot see each other's.
    """

    scores: Tensor  # (B, N, h, w): softmax over the N key positions for each query position
    mask: Tensor  # (B, 1, h, w): 1 = known at that query position


class KnowledgeConsistentAttention(nn.Module):
    """Patch-1 attention whose scores are blended with the previous recurrence's.

    Blending (weighted by the learnt ``ratio`` where the previous mask was known) keeps the
    recurrences consistent instead of attending somewhere new each time. The batch is
    processed in one ``bmm`` per product: memory is (h*w)^2 per image, nothing per-image in Python.
    Inference-only: it updates score tensors in place to keep the peak at three matrices.

    Never in half, under autocast too: the scores are sums of nine unnormalised dot products,
    the softmax turns an absolute rounding error d of a score into a relative error e^d of its
    weight (d grows with the score: 2^-11 of it in float16, 2^-8 in bfloat16), and the blend carries
    the weights across six recurrences. Two bmm at H/8 cost little next to the convolutions around them.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ratio = nn.Parameter(torch.ones(1))

    def forward(self, feature: Tensor, mask: Tensor, state: AttentionState | None
                ) -> tuple[Tensor, AttentionState]:
        b, c, h, w = feature.shape
        with float32_region(feature.device):
            feature, mask = widen(feature), widen(mask)
            if mask.shape[-2:] != (h, w):
                mask = F.interpolate(mask, size=(h, w), mode="nearest")
            queries = feature.reshape(b, c, h * w)
            keys = queries + KCA_EPS
            keys = keys / keys.pow(2).sum(1, keepdim=True).sqrt()
            scores = self._scores(keys, queries, h, w)
            if state is not None:
                scores = self._blend(scores, state)
            out = torch.bmm(keys, scores.reshape(b, h * w, h * w)).reshape(b, c, h, w)
        return out, AttentionState(scores, mask)

    @staticmethod
    def _scores(keys: Tensor, queries: Tensor, h: int, w: int) -> Tensor:
        """Cosine match of every key with every query, summed over a 3x3 query neighbourhood."""
        b, n = keys.shape[0], h * w
        raw = torch.bmm(keys.transpose(1, 2), queries).reshape(b, n, h, w)
        pooled = F.avg_pool2d(raw, 3, 1, 1).mul_(9)  # zero-padded 3x3 box sum, as the official
        del raw
        return torch.softmax(pooled, dim=1)

    def _blend(self, scores: Tensor, state: AttentionState) -> Tensor:
        """(prev*mask_prev + scores*r) / (mask_prev + r), r = |ratio| + eps, computed in place."""
        weight = self.ratio.abs() + KCA_EPS
        blended = state.scores * state.mask
        blended.add_(scores.mul_(weight))
        del scores
        return blended.div_(state.mask + weight)


class AttentionModule(nn.Module):
    """KCA plus a 1x1 conv that fuses the attended and the original features."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.att = KnowledgeConsistentAttention()
        self.combiner = nn.Conv2d(2 * channels, channels, 1)

    def forward(self, feature: Tensor, mask: Tensor, state: AttentionState | None
                ) -> tuple[Tensor, AttentionState]:
        attended, state = self.att(feature, mask, state)
        return self.combiner(torch.cat([attended, feature], 1)), state


def _block(conv: nn.Module, channels: int, act: nn.Module) -> nn.Sequential:
    """conv -> BN -> activation; indices 0/1 are what the checkpoint keys name."""
    return nn.Sequential(conv, nn.BatchNorm2d(channels), act)


class RFRModule(nn.Module):
    """Encoder-decoder run at every recurrence; attention sits on the H/8 decoder features."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        relu, lrelu = nn.ReLU(inplace=True), nn.LeakyReLU(DEC_LEAK, inplace=True)
        c1, c2, c3 = 2 * channels, 4 * channels, 8 * channels
        self.enc_1 = _block(nn.Conv2d(channels, c1, 3, 2, 1, bias=False), c1, relu)
        self.enc_2 = _block(nn.Conv2d(c1, c2, 3, 2, 1, bias=False), c2, relu)
        self.enc_3 = _block(nn.Conv2d(c2, c3, 3, 2, 1, bias=False), c3, relu)
        self.enc_4 = _block(nn.Conv2d(c3, c3, 3, 1, 2, dilation=2, bias=False), c3, relu)
        self.enc_5 = _block(nn.Conv2d(c3, c3, 3, 1, 2, dilation=2, bias=False), c3, relu)
        self.enc_6 = _block(nn.Conv2d(c3, c3, 3, 1, 2, dilation=2, bias=False), c3, relu)
        self.att = AttentionModule(c3)
        self.dec_5 = _block(nn.Conv2d(2 * c3, c3, 3, 1, 2, dilation=2, bias=False), c3, lrelu)
        self.dec_4 = _block(nn.Conv2d(2 * c3, c3, 3, 1, 2, dilation=2, bias=False), c3, lrelu)
        self.dec_3 = _block(nn.ConvTranspose2d(2 * c3, c3, 4, 2, 1, bias=False), c3, lrelu)
        self.dec_2 = _block(nn.ConvTranspose2d(c3 + c2, c2, 4, 2, 1, bias=False), c2, lrelu)
        self.dec_1 = _block(nn.ConvTranspose2d(c2 + c1, channels, 4, 2, 1, bias=False), channels, lrelu)

    def forward(self, x: Tensor, mask: Tensor, state: AttentionState | None) -> tuple[Tensor, AttentionState]:
        skips = [x]
        for enc in (self.enc_1, self.enc_2, self.enc_3, self.enc_4, self.enc_5, self.enc_6):
            skips.append(enc(skips[-1]))
        h = skips.pop()
        h = self.dec_5(torch.cat([h, skips.pop()], 1))
        h = self.dec_4(torch.cat([h, skips.pop()], 1))
        h = self.dec_3(torch.cat([h, skips.pop()], 1))
        h, state = self.att(h, mask, state)
        h = self.dec_2(torch.cat([h, skips.pop()], 1))
        return self.dec_1(torch.cat([h, skips.pop()], 1)), state


class Bottleneck(nn.Module):
    """ResNet bottleneck (1x1 -> 3x3 -> 1x1, x4 expansion) with identity residual."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + x)


class RFRNet(NeuralNetwork):
    """The released RFR-Net generator; ``state_dict()`` keys equal the official file's."""

    # Released as checkpoint_paris.pth / checkpoint_celeba.pth (names reported in the official
    # issues), one per dataset; either is found under its release name (an alias) in the model's
    # folder (checkpoints/rfr-psv/, checkpoints/rfr-celeba/), as is a generic checkpoint.pth.
    # gpu_dtype: on the fixtures (benchmarks/bench_precision.py, CPU autocast as a proxy for CUDA) the
    # composite stays within 0.18 / 3.2 levels of float32 in float16 (case 0 / 1), 1.2 / 34 in bfloat16,
    # whose 8-bit mantissa the six recurrences amplify. The raw output (|x| ~ 25) is far from float16's
    # 65504; what broke float16 (NaN) was the partial-conv count, now kept in float32 (PartialConv2d).
    FACTS = NetworkFacts(
        native_size=256, size_multiple=SIZE_MULTIPLE, approx_mb=125, gpu_dtype=torch.float16,
        official_files=(OfficialFile("checkpoint.pth", "", container="generator",
                                     aliases=("checkpoint_paris.pth", "checkpoint_celeba.pth")),),
    )

    def __init__(self) -> None:
        super().__init__()
        self.Pconv1 = PartialConv2d(3, 64, 7, 2, 3)
        self.bn1 = nn.BatchNorm2d(64)
        self.Pconv2 = PartialConv2d(64, 64, 7, 1, 3)
        self.bn20 = nn.BatchNorm2d(64)
        self.Pconv21 = PartialConv2d(64, 64, 7, 1, 3)
        self.Pconv22 = PartialConv2d(64, 64, 7, 1, 3)
        self.bn2 = nn.BatchNorm2d(64)
        self.RFRModule = RFRModule(64)
        self.Tconv = nn.ConvTranspose2d(64, 64, 4, 2, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(64)
        self.tail1 = PartialConv2d(67, 32, 3, 1, 1)
        self.tail2 = Bottleneck(32, 8)
        self.out = nn.Conv2d(64, 3, 3, 1, 1, bias=False)
        self.eval()

    def train(self, mode: bool = True) -> RFRNet:
        """Always eval: the port is inference-only and BN must use the stored statistics."""
        return super().train(False)

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        """``image`` (B,3,H,W) in [0,1] with holes zeroed; ``mask`` (B,1|3,H,W), 1 = known.

        Returns the raw, unbounded (B,3,H,W) fill for the whole image.
        """
        x, m = self.Pconv1(image, mask)
        x = F.relu(self.bn1(x))
        x, m = self.Pconv2(x, m)
        x = F.relu(self.bn20(x))
        merged, m_last = self._recur(x, m)
        x = F.leaky_relu(self.bn3(self.Tconv(merged)), LEAK)
        m = F.interpolate(m_last, scale_factor=2, mode="nearest")
        x = torch.cat([image, x], 1)
        m = torch.cat([mask.expand_as(image), m.expand(-1, x.shape[1] - 3, -1, -1)], 1)
        x, _ = self.tail1(x, m)
        x = F.leaky_relu(x, LEAK)
        return self.out(torch.cat([x, self.tail2(x)], 1))

    def _recur(self, x: Tensor, m: Tensor) -> tuple[Tensor, Tensor]:
        """Six reasoning rounds; returns their mask-weighted mean and the final mask.

        The official code stacks the seven states and takes means over them; running sums
        give the same value with one feature map of memory instead of seven.
        """
        feat_sum, mask_sum = x * m, m.clone()
        state: AttentionState | None = None  # local: reset on every forward call
        for _ in range(RECURRENCES):
            x, m = self.Pconv21(x, m)
            x, m = self.Pconv22(x, m)
            x = F.leaky_relu(self.bn2(x), LEAK)
            x, state = self.RFRModule(x, m, state)
            x = x * m
            feat_sum += x * m
            mask_sum += m
        states = RECURRENCES + 1
        return (feat_sum / states) / (mask_sum / states + MERGE_EPS), m

    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        weight = self.Pconv1.weight
        return weight.device, weight.dtype

    @torch.inference_mode()
    def inpaint(self, batch: Batch, *, samples: int = 1, seed: int = 0) -> Prediction:
        """Fill every crop in one forward; deterministic, so one sample whatever is asked.

        Returns the raw fill clamped to [0, 1] over the whole crop; the pipeline composites.
        """
        _, h, w, _ = batch.images.shape
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
            raise ValueError(f"RFR-Net needs crop sides that are multiples of {SIZE_MULTIPLE}, got {h}x{w}.")
        device, dtype = self._device_dtype()
        image = torch.from_numpy(batch.images).to(device).permute(0, 3, 1, 2).contiguous().to(dtype) / 255
        known = torch.from_numpy(np.logical_not(batch.holes)).to(device)[:, None].to(dtype)
        with self.precision():
            fill = self(image * known, known).float().clamp_(0, 1)
        samples_np = fill.permute(0, 2, 3, 1).float().cpu().numpy()[:, None]
        return Prediction(samples=np.ascontiguousarray(samples_np, dtype=np.float32))
