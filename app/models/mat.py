"""MAT, the Mask-Aware Transformer (Li, Lin, Zhou, Qi, Wang & Jia, CVPR 2022), Places512 generator.

Written from the facts in the reference notes (architecture, key names, run-time conventions) so
that the authors' released state dict (``Places_512_FullData_G.pth`` as IOPaint ships it, or the
float16 safetensors copy) loads strictly, key for key, and reproduces the official outputs.

The generator runs in two stages on a 512x512 crop (mask 1 = known, 0 = hole):

* stage 1, a conv + Swin-style transformer at 64 -> 16 -> 64 tokens whose attention only
  looks at valid tokens (-100 on the logits of hole tokens, the validity spreading window by
  window), and a style-modulated decoder back to 512 px: a coarse fill;
* stage 2, a conv encoder (512 -> 16) of the stage-1 composite and a StyleGAN2 decoder
  (modulated convs, constant noise maps, RGB skips) conditioned on the mapped latent ``z``
  and a global style of the encoder features.

All StyleGAN2 conventions are reproduced in plain PyTorch (no compiled extension): weights
stored unscaled and multiplied by ``1/sqrt(fan_in)`` at run time (and by the mapping's learning
rate multiplier 0.01), leaky ReLU 0.2 with gain sqrt(2), and up/down-sampling with the
normalised [1, 3, 3, 1] filter and the padding rules of ``upfirdn2d``/``conv2d_resample``.

What makes it pluralistic: the latent ``z`` and two *forced* dropouts that the official code
draws at inference too (``F.dropout(0.5 * ones, training=True)``, which is exactly a 0/1 keep
mask with p = 0.5): tokens of stage 1 (256 x 180) and 16x16 features of stage 2 (512 x 16 x 16)
are replaced by a learned function of the latent where the keep mask is 0. Here all three come
from one CPU generator per (seed, sample), so sample k of a seed is the same whatever the number
of samples, the batch or the device. Noise mode is 'const' (the ``noise_const`` buffers) and the
truncation psi 1, as in the official ``generate_image.py``.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.models.base import Batch, NetworkFacts, NeuralNetwork, Prediction, sample_done
from app.specs import OfficialFile

RESOLUTION = 512  # the released generator's img_resolution (its only size)
Z_DIM = 512
W_DIM = 512
NUM_WS = 12  # 2 * log2(512) - 6 style vectors (all equal at truncation psi 1)
DIM = 180  # stage-1 token channels
HEADS = 6
DEPTHS = (2, 3, 4, 3, 2)  # transformer layers at 64, 32, 16, 32, 64 tokens per side
WINDOWS = (8, 16, 16, 16, 8)
TOKENS = 64  # stage-1 token grid side (512 / 8)
SLOPE = 0.2
GAIN = math.sqrt(2.0)  # def_gain of lrelu in StyleGAN2's bias_act
KEEP1_SHAPE = (256, DIM)  # stage-1 dropout: tokens of the 16x16 grid x channels
KEEP2_SHAPE = (512, 16, 16)  # stage-2 dropout: encoder features at 16x16


def _channels(log2: int) -> int:
    """Stage-2 channels per resolution (the official ``nf``)."""
    return {9: 64, 8: 128, 7: 256}.get(log2, 512)


# ----------------------------------------------------------------------------- StyleGAN2 ops


def _channels_last(x: Tensor) -> Tensor:
    """NHWC memory: the convolutions (depthwise blurs and transposed convs most: 2-3x on a CPU) run faster.

    Every later op keeps the layout (elementwise ops, and the token <-> feature reshapes are views of it).
    """
    return x.contiguous(memory_format=torch.channels_last)


def _filter() -> Tensor:
    """[1, 3, 3, 1] outer itself, normalised to sum 1 (the ``resample_filter`` buffers)."""
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = torch.outer(f, f)
    return f / f.sum()


def _act(x: Tensor, bias: Tensor | None, lrelu: bool, dim: int = 1) -> Tensor:
    """``bias_act``: add the bias along ``dim``, then leaky ReLU 0.2 times sqrt(2), or nothing ('linear')."""
    if bias is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + bias.reshape(shape)
    if lrelu:
        x = F.leaky_relu(x, SLOPE) * GAIN
    return x


def _lrelu_(x: Tensor) -> Tensor:
    """In-place leaky ReLU 0.2 of a fresh tensor whose gain sqrt(2) was folded into its weights and bias.

    lrelu(y) * g == lrelu(g * y) for g > 0, so ``bias_act``'s gain costs no pass over the output.
    """
    return F.leaky_relu_(x, SLOPE)


def _blur(x: Tensor, f: Tensor, pad: int, gain: float = 1.0) -> Tensor:
    """Depthwise 4x4 FIR filter with ``pad`` zeros on every side (``upfirdn2d`` without resampling).

    The filter is symmetric, so convolution and correlation agree.
    """
    c = x.shape[1]
    weight = (f * gain).to(x.dtype).expand(c, 1, *f.shape)
    return F.conv2d(x, weight, padding=pad, groups=c)


def _upsample(x: Tensor, f: Tensor) -> Tensor:
    """``upsample2d``: zeros inserted after every pixel, padded (2, 1), filtered with gain 4."""
    c = x.shape[1]
    weight = (f * 4).to(x.dtype).expand(c, 1, *f.shape)
    # The transposed conv inserts the zeros and, with padding 1, crops to the same 2H x 2W window.
    return F.conv_transpose2d(x, weight, stride=2, padding=1, groups=c)


def _conv(x: Tensor, w: Tensor, f: Tensor, up: int = 1, down: int = 1, groups: int = 1,
          bias: Tensor | None = None) -> Tensor:
    """``conv2d_resample`` for the cases the generator uses: k in {1, 3}, plain, 2x down or 2x up.

    ``bias`` (plain and down only) is added by the convolution itself, saving a pass.
    """
    k = w.shape[-1]
    if up == 1 and down == 1:
        return F.conv2d(x, w, bias, padding=k // 2, groups=groups)
    if down == 2 and up == 1 and k == 3:
        # blur with padding 1 + (4 - 2 + 1) // 2 = 2, then a strided 3x3 conv without padding
        return F.conv2d(_blur(x, f, 2), w, bias, stride=2, groups=groups)
    if bias is not None:
        return _act(_conv(x, w, f, up, down, groups), bias, False)
    if up == 2 and down == 1 and k == 3:
        # transposed strided conv of the flipped kernel (zero insertion), then blur with gain 4
        out, inp = w.shape[0] // groups, w.shape[1]
        wt = w.reshape(groups, out, inp, k, k).transpose(1, 2).reshape(groups * inp, out, k, k)
        x = F.conv_transpose2d(x, wt.flip([2, 3]), stride=2, groups=groups)
        return _blur(x, f, 1, gain=4.0)
    raise NotImplementedError(f"conv k={k} up={up} down={down}")


class FullyConnected(nn.Module):
    """StyleGAN2 ``FullyConnectedLayer``: weight x lr/sqrt(in), bias x lr, optional lrelu."""

    def __init__(self, in_features: int, out_features: int, lrelu: bool = False, lr_multiplier: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.lrelu = lrelu
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight * self.weight_gain
        b = self.bias * self.bias_gain if self.bias_gain != 1 else self.bias
        return _act(x.matmul(w.t()), b, self.lrelu, dim=x.ndim - 1)


class Conv(nn.Module):
    """StyleGAN2 ``Conv2dLayer``: run-time weight scaling, resampling, bias + activation."""

    def __init__(self, cin: int, cout: int, k: int, lrelu: bool = True, up: int = 1, down: int = 1) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.register_buffer("resample_filter", _filter())
        self.lrelu, self.up, self.down = lrelu, up, down
        self.weight_gain = 1 / math.sqrt(cin * k * k)

    def forward(self, x: Tensor) -> Tensor:
        if not self.lrelu:
            x = _conv(x, self.weight * self.weight_gain, self.resample_filter, self.up, self.down)
            return _act(x, self.bias, False)
        return _lrelu_(_conv(x, self.weight * (self.weight_gain * GAIN), self.resample_filter, self.up, self.down,
                             bias=self.bias * GAIN))


class PartialConv(nn.Module):
    """MAT's ``Conv2dLayerPartial``: the conv's output rescaled by k*k / (valid pixels under the kernel).

    The input itself is not masked. The new mask is 1 wherever any valid pixel fell under the
    kernel (clamped to [0, 1], so a grey mask stays grey). The all-ones kernel that counts the
    valid pixels is a constant, not a stored tensor.
    """

    def __init__(self, cin: int, cout: int, k: int = 3, up: int = 1, down: int = 1) -> None:
        super().__init__()
        self.conv = Conv(cin, cout, k, lrelu=True, up=up, down=down)
        self.k, self.stride = k, down

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        if mask is None:
            return self.conv(x), None
        ones = torch.ones(1, 1, self.k, self.k, dtype=mask.dtype, device=mask.device)
        count = F.conv2d(mask, ones, stride=self.stride, padding=self.k // 2)
        ratio = self.k * self.k / (count + 1e-8)
        new_mask = count.clamp(0, 1)
        return self.conv(x) * (ratio * new_mask), new_mask


class ModulatedConv(nn.Module):
    """``ModulatedConv2d``: weights scaled per input channel by ``affine(style)``, optionally demodulated."""

    def __init__(self, cin: int, cout: int, k: int, style_dim: int, demodulate: bool = True, up: int = 1) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, cout, cin, k, k))
        self.register_buffer("resample_filter", _filter())
        self.affine = FullyConnected(style_dim, cin)
        self.weight_gain = 1 / math.sqrt(cin * k * k)
        self.demodulate, self.up = demodulate, up

    def forward(self, x: Tensor, style: Tensor, gain: float = 1.0) -> Tensor:
        b, cin, h, w = x.shape
        s = self.affine(style).view(b, 1, cin, 1, 1)
        weight = self.weight * self.weight_gain * s  # (B, out, in, k, k)
        if self.demodulate:
            weight = weight * ((weight.pow(2).sum(dim=[2, 3, 4]) + 1e-8).rsqrt() * gain).view(b, -1, 1, 1, 1)
        elif gain != 1:
            weight = weight * gain
        cout, k = weight.shape[1], weight.shape[-1]
        out = _conv(x.reshape(1, b * cin, h, w), weight.reshape(b * cout, cin, k, k), self.resample_filter,
                    up=self.up, groups=b)
        return out.view(b, cout, *out.shape[2:])


class StyleConv(nn.Module):
    """Modulated conv + constant noise (``noise_const * noise_strength``) + bias + lrelu."""

    def __init__(self, cin: int, cout: int, style_dim: int, resolution: int, up: int = 1,
                 use_noise: bool = True) -> None:
        super().__init__()
        self.conv = ModulatedConv(cin, cout, 3, style_dim, demodulate=True, up=up)
        self.use_noise = use_noise
        if use_noise:
            self.register_buffer("noise_const", torch.zeros(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        x = self.conv(x, style, gain=GAIN)  # lrelu's gain folded into the modulated weights ...
        shift = self.bias.view(-1, 1, 1)
        if self.use_noise:
            shift = shift + self.noise_const * self.noise_strength  # (C, H, W): one pass over x, not two
        return _lrelu_(x.add_(shift * GAIN))  # ... and into the noise + bias


class ToRGB(nn.Module):
    """1x1 modulated conv (not demodulated) + bias, added to the 2x upsampled previous image."""

    def __init__(self, cin: int, style_dim: int, channels: int = 3) -> None:
        super().__init__()
        self.conv = ModulatedConv(cin, channels, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("resample_filter", _filter())

    def forward(self, x: Tensor, style: Tensor, skip: Tensor | None = None) -> Tensor:
        out = _act(self.conv(x, style), self.bias, False)
        if skip is not None:
            if skip.shape != out.shape:
                skip = _upsample(skip, self.resample_filter)
            out = out + skip
        return out


# ----------------------------------------------------------------------------- stage 1: transformer


def _to_feature(x: Tensor, side: int) -> Tensor:
    b, n, c = x.shape
    return x.transpose(1, 2).reshape(b, c, side, side)


def _to_tokens(x: Tensor) -> Tensor:
    b, c = x.shape[:2]
    return x.reshape(b, c, -1).transpose(1, 2)


def _windows(x: Tensor, size: int) -> Tensor:
    """(B, H, W, C) -> (B * nW, size * size, C), windows in row-major order per image."""
    b, h, w, c = x.shape
    x = x.view(b, h // size, size, w // size, size, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, size * size, c)


def _unwindow(x: Tensor, size: int, h: int, w: int) -> Tensor:
    """Inverse of :func:`_windows`: (B * nW, size * size, C) -> (B, H, W, C)."""
    c = x.shape[-1]
    x = x.view(-1, h // size, w // size, size, size, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


def shifted_window_mask(side: int, window: int, shift: int) -> Tensor:
    """The Swin attention mask of a cyclically shifted grid: 0 within a region, -100 across regions."""
    regions = torch.zeros(1, side, side, 1)
    cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for i, (hs, ws) in enumerate((hs, ws) for hs in cuts for ws in cuts):
        regions[:, hs, ws, :] = i
    ids = _windows(regions, window).squeeze(-1)  # (nW, N)
    diff = ids.unsqueeze(1) - ids.unsqueeze(2)
    return torch.where(diff != 0, torch.tensor(-100.0), torch.tensor(0.0))


class WindowAttention(nn.Module):
    """Multi-head attention inside each window; queries and keys read the L2-normalised tokens.

    Keys at invalid tokens get -100 on their logits (grey mask values are added as they are), and
    a window becomes valid as soon as one of its tokens was.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.q = FullyConnected(dim, dim)
        self.k = FullyConnected(dim, dim)
        self.v = FullyConnected(dim, dim)
        self.proj = FullyConnected(dim, dim)

    def forward(self, x: Tensor, valid: Tensor | None, shift_mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        bw, n, c = x.shape
        h = self.heads
        normed = F.normalize(x, p=2.0, dim=-1)
        q = self.q(normed).view(bw, n, h, c // h).transpose(1, 2)
        k = self.k(normed).view(bw, n, h, c // h).permute(0, 2, 3, 1)
        v = self.v(x).view(bw, n, h, c // h).transpose(1, 2)
        attn = (q @ k) * self.scale
        if shift_mask is not None:
            nw = shift_mask.shape[0]
            attn = (attn.view(bw // nw, nw, h, n, n) + shift_mask.unsqueeze(1).unsqueeze(0)).view(bw, h, n, n)
        if valid is not None:
            m = valid.squeeze(-1)[:, None, None, :]
            attn = attn + torch.where(m == 0, -100.0, torch.where(m == 1, 0.0, m))
            valid = valid.sum(dim=1, keepdim=True).clamp(0, 1).expand(bw, n, 1)
        x = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(bw, n, c)
        return self.proj(x), valid


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = FullyConnected(dim, hidden, lrelu=True)
        self.fc2 = FullyConnected(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.fc1(x))


class TransformerBlock(nn.Module):
    """(Shifted) window attention, ``fuse`` of [input, attention] and an MLP (no other residual)."""

    def __init__(self, dim: int, side: int, heads: int, window: int, shift: int) -> None:
        super().__init__()
        if side <= window:  # one window covers the grid: no partition, no shift
            window, shift = side, 0
        self.side, self.window, self.shift = side, window, shift
        self.attn = WindowAttention(dim, heads)
        self.fuse = FullyConnected(2 * dim, dim, lrelu=True)
        self.mlp = Mlp(dim, 2 * dim)
        self.register_buffer("attn_mask", shifted_window_mask(side, window, shift) if shift else None)

    def forward(self, x: Tensor, valid: Tensor | None) -> tuple[Tensor, Tensor | None]:
        b, n, c = x.shape
        s, win, shift = self.side, self.window, self.shift
        grid = x.view(b, s, s, c)
        vgrid = None if valid is None else valid.view(b, s, s, 1)
        if shift:
            grid = torch.roll(grid, shifts=(-shift, -shift), dims=(1, 2))
            vgrid = None if vgrid is None else torch.roll(vgrid, shifts=(-shift, -shift), dims=(1, 2))
        out, vwin = self.attn(_windows(grid, win), None if vgrid is None else _windows(vgrid, win), self.attn_mask)
        out = _unwindow(out, win, s, s)
        vgrid = None if vwin is None else _unwindow(vwin, win, s, s)
        if shift:
            out = torch.roll(out, shifts=(shift, shift), dims=(1, 2))
            vgrid = None if vgrid is None else torch.roll(vgrid, shifts=(shift, shift), dims=(1, 2))
        out = self.fuse(torch.cat([x, out.reshape(b, n, c)], dim=-1))
        return self.mlp(out), None if vgrid is None else vgrid.reshape(b, n, 1)


class Resample(nn.Module):
    """``PatchMerging`` / ``PatchUpsampling``: a partial 3x3 conv that halves or doubles the token grid."""

    def __init__(self, dim: int, up: int = 1, down: int = 1) -> None:
        super().__init__()
        self.conv = PartialConv(dim, dim, 3, up=up, down=down)


class TransformerLayer(nn.Module):
    """``BasicLayer``: optional resampling, the blocks, then a partial conv added to the blocks' input."""

    def __init__(self, dim: int, side: int, depth: int, heads: int, window: int, resample: Resample | None) -> None:
        super().__init__()
        self.downsample = resample
        self.side = side
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, side, heads, window, 0 if i % 2 == 0 else window // 2) for i in range(depth))
        self.conv = PartialConv(dim, dim, 3)

    def forward(self, x: Tensor, valid: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if self.downsample is not None:
            side_in = int(math.isqrt(x.shape[1]))
            fv = None if valid is None else _to_feature(valid, side_in)
            x, fv = self.downsample.conv(_to_feature(x, side_in), fv)
            x, valid = _to_tokens(x), None if fv is None else _to_tokens(fv)
        identity = x
        for block in self.blocks:
            x, valid = block(x, valid)
        fv = None if valid is None else _to_feature(valid, self.side)
        x, fv = self.conv(_to_feature(x, self.side), fv)
        return _to_tokens(x) + identity, None if fv is None else _to_tokens(fv)


class DecStyleBlock(nn.Module):
    """Stage-1 decoder block: 2x up modulated conv, + encoder skip, modulated conv, RGB skip (no noise)."""

    def __init__(self, res: int, cin: int, cout: int, style_dim: int) -> None:
        super().__init__()
        self.conv0 = StyleConv(cin, cout, style_dim, res, up=2, use_noise=False)
        self.conv1 = StyleConv(cout, cout, style_dim, res, use_noise=False)
        self.toRGB = ToRGB(cout, style_dim)

    def forward(self, x: Tensor, img: Tensor | None, style: Tensor, skip: Tensor) -> tuple[Tensor, Tensor]:
        x = self.conv1(self.conv0(x, style) + skip, style)
        return x, self.toRGB(x, style, skip=img)


@dataclass
class StageOneCode:
    """What stage 1 computes before any randomness enters: shared by every sample of a request."""

    skips: list[Tensor]  # conv features at 512, 256, 128, then tokens at 64 and 32
    tokens: Tensor  # (B, 256, 180) at the 16x16 grid, before the dropout mix


class FirstStage(nn.Module):
    def __init__(self, channels: int = 3, resolution: int = RESOLUTION, dim: int = DIM, w_dim: int = W_DIM) -> None:
        super().__init__()
        self.conv_first = PartialConv(channels + 1, dim, 3)
        downs = int(math.log2(resolution // TOKENS))
        self.enc_conv = nn.ModuleList(PartialConv(dim, dim, 3, down=2) for _ in range(downs))
        sides = (TOKENS, TOKENS // 2, TOKENS // 4, TOKENS // 2, TOKENS)
        resamples = (None, Resample(dim, down=2), Resample(dim, down=2), Resample(dim, up=2), Resample(dim, up=2))
        self.tran = nn.ModuleList(
            TransformerLayer(dim, side, depth, HEADS, window, resample)
            for side, depth, window, resample in zip(sides, DEPTHS, WINDOWS, resamples, strict=True))
        self.down_conv = nn.Sequential(*(Conv(dim, dim, 3, down=2) for _ in range(4)), nn.AdaptiveAvgPool2d((1, 1)))
        self.to_style = FullyConnected(dim, 2 * dim, lrelu=True)
        self.ws_style = FullyConnected(w_dim, dim, lrelu=True)
        self.to_square = FullyConnected(dim, 16 * 16, lrelu=True)
        self.dec_conv = nn.ModuleList(
            DecStyleBlock(TOKENS * 2 ** (i + 1), dim, dim, 3 * dim) for i in range(downs))
        self.channels = channels

    def encode(self, images: Tensor, masks: Tensor) -> StageOneCode:
        """Everything up to the 16x16 tokens (independent of the latent and of the dropout)."""
        x, valid = self.conv_first(_channels_last(torch.cat([masks - 0.5, images * masks], dim=1)), masks)
        skips = [x]
        for i, block in enumerate(self.enc_conv):
            x, valid = block(x, valid)
            if i != len(self.enc_conv) - 1:
                skips.append(x)
        x, valid = _to_tokens(x), _to_tokens(valid)
        mid = len(self.tran) // 2
        for layer in self.tran[:mid]:
            x, valid = layer(x, valid)
            skips.append(x)
        x, _ = self.tran[mid](x, None)  # the middle and later layers attend without a validity mask
        return StageOneCode(skips, x)

    def decode(self, code: StageOneCode, images: Tensor, masks: Tensor, ws: Tensor, keep: Tensor) -> Tensor:
        """Dropout mix at 16x16 (``keep`` (B|1, 256, 180) of 0/1), upper layers, decoder, composite."""
        w = self.ws_style(ws[:, -1])
        fill = self.to_square(w).unsqueeze(-1)  # (B, 256, 1): one value per token, over every channel
        keep = keep.to(code.tokens.dtype)
        x = code.tokens * keep + fill * (1 - keep)
        side = int(math.isqrt(x.shape[1]))
        gs = self.to_style(self.down_conv(_to_feature(x, side)).flatten(start_dim=1))
        style = torch.cat([gs, w], dim=1)
        mid = len(self.tran) // 2
        for i in range(mid + 1, len(self.tran)):
            x, _ = self.tran[i](x, None)
            x = x + code.skips[mid - i]
        x = _to_feature(x, self.tran[-1].side)
        img = None
        for i, block in enumerate(self.dec_conv):
            x, img = block(x, img, style, code.skips[len(self.dec_conv) - i - 1])
        return img * (1 - masks) + images * masks


# ----------------------------------------------------------------------------- stage 2: conv GAN


class EncFromRGB(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv0 = Conv(cin, cout, 1)
        self.conv1 = Conv(cout, cout, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv1(self.conv0(x))


class ConvBlockDown(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv0 = Conv(cin, cout, 3, down=2)
        self.conv1 = Conv(cout, cout, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv1(self.conv0(x))


class Encoder(nn.Module):
    """512 -> 16 convs on [mask - 0.5, composite, known pixels]; features per log2 resolution."""

    def __init__(self, res_log2: int, channels: int = 3) -> None:
        super().__init__()
        self.levels = list(range(res_log2, 3, -1))
        for i in self.levels:
            block = EncFromRGB(2 * channels + 1, _channels(i)) if i == res_log2 else ConvBlockDown(
                _channels(i + 1), _channels(i))
            setattr(self, f"EncConv_Block_{2 ** i}x{2 ** i}", block)

    def forward(self, x: Tensor) -> dict[int, Tensor]:
        out = {}
        for i in self.levels:
            x = getattr(self, f"EncConv_Block_{2 ** i}x{2 ** i}")(x)
            out[i] = x
        return out


class ToStyle(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(*(Conv(cin, cin, 3, down=2) for _ in range(3)))
        self.fc = FullyConnected(cin, cout, lrelu=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.conv(x).mean(dim=(2, 3)))


class DecBlockFirst(nn.Module):
    """``DecBlockFirstV2`` at 16x16: conv, + encoder features, modulated conv, RGB."""

    def __init__(self, cin: int, cout: int, style_dim: int) -> None:
        super().__init__()
        self.conv0 = Conv(cin, cin, 3)
        self.conv1 = StyleConv(cin, cout, style_dim, 16)
        self.toRGB = ToRGB(cout, style_dim)

    def forward(self, x: Tensor, ws: Tensor, gs: Tensor, features: dict[int, Tensor]) -> tuple[Tensor, Tensor]:
        x = self.conv0(x) + features[4]
        x = self.conv1(x, torch.cat([ws[:, 0], gs], dim=1))
        return x, self.toRGB(x, torch.cat([ws[:, 1], gs], dim=1))


class DecBlock(nn.Module):
    def __init__(self, res_log2: int, cin: int, cout: int, style_dim: int) -> None:
        super().__init__()
        self.res = res_log2
        self.conv0 = StyleConv(cin, cout, style_dim, 2 ** res_log2, up=2)
        self.conv1 = StyleConv(cout, cout, style_dim, 2 ** res_log2)
        self.toRGB = ToRGB(cout, style_dim)

    def forward(self, x: Tensor, img: Tensor, ws: Tensor, gs: Tensor,
                features: dict[int, Tensor]) -> tuple[Tensor, Tensor]:
        r = self.res
        x = self.conv0(x, torch.cat([ws[:, 2 * r - 9], gs], dim=1)) + features[r]
        x = self.conv1(x, torch.cat([ws[:, 2 * r - 8], gs], dim=1))
        return x, self.toRGB(x, torch.cat([ws[:, 2 * r - 7], gs], dim=1), skip=img)


class Decoder(nn.Module):
    def __init__(self, res_log2: int, style_dim: int) -> None:
        super().__init__()
        self.Dec_16x16 = DecBlockFirst(_channels(4), _channels(4), style_dim)
        self.levels = list(range(5, res_log2 + 1))
        for r in self.levels:
            setattr(self, f"Dec_{2 ** r}x{2 ** r}", DecBlock(r, _channels(r - 1), _channels(r), style_dim))

    def forward(self, x: Tensor, ws: Tensor, gs: Tensor, features: dict[int, Tensor]) -> Tensor:
        x, img = self.Dec_16x16(x, ws, gs, features)
        for r in self.levels:
            x, img = getattr(self, f"Dec_{2 ** r}x{2 ** r}")(x, img, ws, gs, features)
        return img


@dataclass
class SynthesisOutput:
    out_stg1: Tensor  # (B, 3, H, W) stage-1 composite, [-1, 1]-ish
    dec_img: Tensor  # (B, 3, H, W) stage-2 decoder output before compositing
    output: Tensor  # (B, 3, H, W) final composite (not clamped)


class SynthesisNet(nn.Module):
    def __init__(self, w_dim: int = W_DIM, resolution: int = RESOLUTION, channels: int = 3) -> None:
        super().__init__()
        res_log2 = int(math.log2(resolution))
        self.first_stage = FirstStage(channels, resolution, DIM, w_dim)
        self.enc = Encoder(res_log2, channels)
        self.to_square = FullyConnected(w_dim, 16 * 16, lrelu=True)
        self.to_style = ToStyle(_channels(4), 2 * _channels(2))
        self.dec = Decoder(res_log2, w_dim + 2 * _channels(2))

    def finish(self, code: StageOneCode, images: Tensor, masks: Tensor, ws: Tensor, keep1: Tensor,
               keep2: Tensor) -> SynthesisOutput:
        """Both stages from stage 1's shared code, for one latent and one pair of keep masks."""
        out_stg1 = self.first_stage.decode(code, images, masks, ws, keep1)
        known = images * masks
        features = self.enc(_channels_last(torch.cat([masks - 0.5, known + out_stg1 * (1 - masks), known], dim=1)))
        fea = features[4]
        fill = self.to_square(ws[:, 0]).view(-1, 1, 16, 16)  # bilinear resize to 16x16 = identity
        keep2 = keep2.to(fea.dtype)
        fea = fea * keep2 + fill * (1 - keep2)
        features[4] = fea
        gs = self.to_style(fea)
        dec_img = self.dec(fea, ws, gs, features)
        return SynthesisOutput(out_stg1, dec_img, dec_img * (1 - masks) + images * masks)


class MappingNet(nn.Module):
    """8 FC lrelu layers (lr multiplier 0.01) on the 2nd-moment-normalised z, broadcast to ``num_ws``."""

    def __init__(self, z_dim: int = Z_DIM, w_dim: int = W_DIM, num_ws: int = NUM_WS, layers: int = 8) -> None:
        super().__init__()
        self.num_ws, self.layers = num_ws, layers
        for i in range(layers):
            setattr(self, f"fc{i}", FullyConnected(z_dim if i == 0 else w_dim, w_dim, lrelu=True, lr_multiplier=0.01))
        self.register_buffer("w_avg", torch.zeros(w_dim))  # only used by truncation (psi != 1)

    def forward(self, z: Tensor, truncation_psi: float = 1.0) -> Tensor:
        x = z.to(torch.float32) if z.dtype == torch.float64 else z
        x = x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        for i in range(self.layers):
            x = getattr(self, f"fc{i}")(x)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            ws = self.w_avg.lerp(ws, truncation_psi)
        return ws


@dataclass
class MatRun:
    """One generator pass with its intermediates (tensors on the model's device)."""

    ws: Tensor  # (B, 12, 512)
    out_stg1: Tensor
    dec_img: Tensor
    output: Tensor


def latents(seed: int, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """z (1, 512), stage-1 keep mask (1, 256, 180) and stage-2 keep mask (1, 512, 16, 16) of sample ``k``.

    Drawn from a CPU generator seeded by (seed, k) alone, in that order: sample k is identical
    whatever the number of samples, the batch, earlier calls or the device. The keep masks are
    Bernoulli(0.5) in {0, 1}: exactly the ``mul_map`` that ``F.dropout(0.5 * ones, p=0.5)`` makes
    (kept values 0.5 / (1 - 0.5) = 1, dropped 0).
    """
    digest = hashlib.sha256(f"mat-latent|{int(seed)}|{int(k)}".encode()).digest()
    gen = torch.Generator(device="cpu").manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
    z = torch.randn((1, Z_DIM), generator=gen)
    keep1 = (torch.rand((1, *KEEP1_SHAPE), generator=gen) < 0.5).float()
    keep2 = (torch.rand((1, *KEEP2_SHAPE), generator=gen) < 0.5).float()
    return z, keep1, keep2


class MAT(NeuralNetwork):
    """The MAT generator, state dict keys as released (``synthesis.*``, ``mapping.*``)."""

    FACTS = NetworkFacts(
        native_size=RESOLUTION, max_size=RESOLUTION, size_multiple=RESOLUTION, least_side=RESOLUTION,
        approx_mb=253,  # 63.3 M float32 values (params + buffers)
        official_files=(OfficialFile("Places_512_FullData_G.pth", ""),),
    )

    def __init__(self) -> None:
        super().__init__()
        self.synthesis = SynthesisNet(W_DIM, RESOLUTION, 3)
        self.mapping = MappingNet(Z_DIM, W_DIM, NUM_WS)

    def run(self, images: Tensor, masks: Tensor, z: Tensor, keep1: Tensor, keep2: Tensor) -> MatRun:
        """The official ``G(images, masks, z, c, truncation_psi=1, noise_mode='const')`` with injected dropout.

        images (B, 3, 512, 512) in [-1, 1]; masks (B, 1, 512, 512), 1 = known; z (B|1, 512);
        keep1 (B|1, 256, 180), keep2 (B|1, 512, 16, 16) of 0/1 (the official ``mul_map`` values).
        """
        code = self.synthesis.first_stage.encode(images, masks)
        return self._finish(code, images, masks, z, keep1, keep2)

    def _finish(self, code: StageOneCode, images: Tensor, masks: Tensor, z: Tensor, keep1: Tensor,
                keep2: Tensor) -> MatRun:
        ws = self.mapping(z)
        if ws.shape[0] != images.shape[0]:
            ws = ws.expand(images.shape[0], -1, -1)
        out = self.synthesis.finish(code, images, masks, ws, keep1, keep2)
        return MatRun(ws, out.out_stg1, out.dec_img, out.output)

    def forward(self, images: Tensor, masks: Tensor, z: Tensor, keep1: Tensor, keep2: Tensor) -> Tensor:
        return self.run(images, masks, z, keep1, keep2).output

    def inpaint(self, batch: Batch, *, samples: int = 1, seed: int = 0) -> Prediction:
        """``samples`` fills per crop: the generator's output (already composited) mapped to [0, 1].

        The stage-1 work before the random mix is done once per request (``sample_done(-1)``),
        then one pass per sample, every crop of the batch together, with sample k's latent and
        keep masks from :func:`latents` (the same for every crop).
        """
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        b, h, w, _ = batch.images.shape
        if (h, w) != (RESOLUTION, RESOLUTION):
            raise ValueError(f"MAT takes {RESOLUTION}x{RESOLUTION} crops (sides multiples of {RESOLUTION}, at most "
                             f"{RESOLUTION}), got {h}x{w}")
        device = self.device
        fills = np.empty((b, samples, h, w, 3), dtype=np.float32)
        with torch.inference_mode():
            images = torch.from_numpy(np.ascontiguousarray(batch.images)).to(device).permute(0, 3, 1, 2).float()
            images = images / 127.5 - 1
            masks = torch.from_numpy(np.ascontiguousarray(~batch.holes)).to(device).unsqueeze(1).float()
            with self.precision():
                code = self.synthesis.first_stage.encode(images, masks)
                sample_done(-1)
                for k in range(samples):
                    z, keep1, keep2 = (t.to(device) for t in latents(seed, k))
                    out = self._finish(code, images, masks, z, keep1, keep2).output
                    fills[:, k] = (out.float() * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
                    sample_done(k)
        return Prediction(samples=fills)
