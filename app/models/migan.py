"""MI-GAN: a small, fast inpainting GAN for mobile devices (Sargsyan et al., ICCV 2023).

Our own re-implementation of the authors' inference generator (``migan_inference.Generator``)
that loads their released ``migan_256_places2.pt`` / ``migan_256_ffhq.pt`` /
``migan_512_places2.pt`` (bare state dicts) unmodified and strictly: module names are chosen so
that ``state_dict()`` keys, shapes and order equal the release's (``synthesis.b8.conv1.conv1.weight``,
``encoder.b256.fromrgb.bias``...). Written from the facts in ``../shared/reference/MODELS.md``
section 11.

Architecture (resolution ``R`` = 256 or 512; channels per resolution ``min(32768 // res, 512)``):

* every convolution is separable: depthwise 3x3 (bias) -> activation -> [downsample] -> 1x1 (no
  bias) -> [upsample] -> [+ fixed noise x learnt strength] -> activation, where the activation is
  ``clamp(leaky_relu(x, 0.2) * sqrt(2), -256, 256)``;
* the encoder: ``fromrgb`` 1x1 (4 -> C) + activation at ``R``, then per resolution ``R .. 8`` two
  separable convs, the second halving the size; the first one's output is kept as a skip feature;
  ``b4`` likewise without the halving;
* the synthesis: ``b4`` conv1, + skip, conv2, ``torgb``; then per resolution ``8 .. R`` conv1
  (doubles the size), + skip, conv2, and the RGB image = upsampled previous image + ``torgb``.
  The output is that sum: no tanh, unbounded, in the [-1, 1] convention.

The noise is a fixed buffer (``noise_const``), so the network is deterministic. The up- and
downsampling filters are the [1, 3, 3, 1] kernels StyleGAN2 uses; the release stores them (and the
zero-insertion pattern ``filter_const``) and we compute with the stored values.

Speed on a CPU (what this network is for; ``benchmarks/bench_migan.py`` times it against the
official code): the features are kept channels-last (oneDNN's fast layout for depthwise and 1x1
convolutions); activations run in place, their sqrt(2) gain carried by the weights that read them
(:func:`activate_`) and their leaky ReLU fused into the convolution where nothing comes between
(:func:`conv_activate`); and the upsampling runs as one stride-2 transposed convolution with the
flipped filter, which is exactly the official "nearest x2, multiply by ``filter_const`` (zero
insertion), pad (2, 1, 2, 1), depthwise 4x4" whenever ``filter_const`` holds the zero-insertion
pattern (checked after every load; the official steps run otherwise). What is derived from the
weights is kept in non-persistent buffers, so ``state_dict()`` stays exactly the release's.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.errors import CropSizeError
from app.models.base import Batch, NetworkFacts, NeuralNetwork, Prediction
from app.specs import OfficialFile

CH_BASE = 32768
CH_MAX = 512
IMAGE_CHANNELS = 4  # mask - 0.5, image * mask
RGB = 3
LEAK = 0.2
GAIN = math.sqrt(2)
CLAMP = 256.0
#: The [1, 3, 3, 1] binomial kernel the resamplers are built with (outer product, normalised).
_BINOMIAL = torch.tensor([1.0, 3.0, 3.0, 1.0])

#: The released files (bare state dicts), all saved under one name in the model's folder.
OFFICIAL_NAME = "migan.pt"
RELEASED_256 = ("migan_256_places2.pt", "migan_256_ffhq.pt")
RELEASED_512 = ("migan_512_places2.pt",)


def channels(resolution: int) -> int:
    """Feature channels at ``resolution`` (the official ``min(ch_base // res, ch_max)``)."""
    return min(CH_BASE // resolution, CH_MAX)


def resample_filter(gain: float) -> Tensor:
    """The normalised 4x4 [1, 3, 3, 1] kernel times ``gain`` (4 for upsampling, 1 for downsampling)."""
    f = torch.outer(_BINOMIAL, _BINOMIAL)
    return f / f.sum() * gain


def activate_(x: Tensor) -> Tensor:
    """The official ``lrelu_agc`` divided by its gain, in place: ``clamp(leaky_relu(x, 0.2), -256/g, 256/g)``.

    ``clamp(leaky_relu(x) * g, -256, 256) = g * clamp(leaky_relu(x), -256/g, 256/g)``, and every
    consumer of an activation is linear in it before anything else happens (a depthwise conv, a
    1x1 conv, ``torgb``, or a sum of two activations that then enters a depthwise conv), so the
    gain ``g = sqrt(2)`` is carried by those convolutions' weights instead (:func:`scaled`): one
    pass over the feature map fewer per activation.
    """
    return F.leaky_relu_(x, LEAK).clamp_(-CLAMP / GAIN, CLAMP / GAIN)


@functools.cache
def _fused_available() -> bool:
    """Whether oneDNN's convolution with a fused leaky ReLU runs here and equals the two steps (checked once)."""
    try:
        op = torch.ops.mkldnn._convolution_pointwise
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(1, 8, 6, 6, generator=generator).contiguous(memory_format=torch.channels_last)
        weight, bias = torch.randn(8, 1, 3, 3, generator=generator), torch.randn(8, generator=generator)
        with torch.inference_mode():
            fused = op(x, weight, bias, [1, 1], [1, 1], [1, 1], 8, "leaky_relu", [LEAK], "")
            plain = F.leaky_relu(F.conv2d(x, weight, bias, padding=1, groups=8), LEAK)
        return bool(torch.allclose(fused, plain, rtol=1e-5, atol=1e-6))
    except (AttributeError, RuntimeError, TypeError):
        return False


def conv_activate(x: Tensor, weight: Tensor, bias: Tensor | None, padding: int, groups: int) -> Tensor:
    """``activate_(conv2d(x, weight, bias))``; on a CPU, in float32, without autograd or autocast (whose dtype
    rules it would bypass), the leaky ReLU runs inside oneDNN's convolution: one pass over the output fewer.
    The op is torch's own (what ``torch.compile`` emits on a CPU) but private: :func:`_fused_available`
    checks once that it exists and equals the two steps, else the two steps run."""
    if (x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_grad_enabled()
            and not torch.is_autocast_enabled("cpu") and _fused_available()):
        y = torch.ops.mkldnn._convolution_pointwise(x, weight, bias, [padding, padding], [1, 1], [1, 1], groups,
                                                    "leaky_relu", [LEAK], "")
        return y.clamp_(-CLAMP / GAIN, CLAMP / GAIN)
    return activate_(F.conv2d(x, weight, bias, padding=padding, groups=groups))


def _refresh_after_load(module: nn.Module, _keys: object) -> None:
    """Load post-hook: re-derive what depends on the loaded values (a plain function: the module stays picklable)."""
    module.refresh()


def scaled(weight: Tensor) -> Tensor:
    """A weight that reads an activation: it takes the activation's gain (see :func:`activate_`)."""
    return weight.detach() * GAIN


class GainFolded(nn.Module):
    """A module holding convolutions that read activations: their weights times the gain, kept current.

    The copies are non-persistent buffers (not in ``state_dict``, so the release's keys stay exact;
    moved and cast with the module), re-derived after every ``load_state_dict``. Call
    :meth:`refresh` after changing the weights in place by other means.
    """

    FOLDED: tuple[str, ...] = ()  # names of the nn.Conv2d children whose weight reads an activation

    def fold(self) -> None:
        for name in self.FOLDED:
            self.register_buffer(f"{name}_folded", None, persistent=False)
        self.refresh()
        self.register_load_state_dict_post_hook(_refresh_after_load)

    def refresh(self) -> None:
        with torch.no_grad():
            for name in self.FOLDED:
                setattr(self, f"{name}_folded", scaled(getattr(self, name).weight))


def _depthwise(channels_: int, kernel: int, **kwargs) -> nn.Conv2d:
    return nn.Conv2d(channels_, channels_, kernel, groups=channels_, **kwargs)


class Downsample2d(nn.Module):
    """Depthwise 4x4 low-pass with stride 2 (the release stores the filter as ``filter.weight``)."""

    def __init__(self, channels_: int) -> None:
        super().__init__()
        self.filter = _depthwise(channels_, 4, stride=2, padding=1, bias=False)
        with torch.no_grad():
            self.filter.weight.copy_(resample_filter(1.0).expand_as(self.filter.weight))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.filter.weight, stride=2, padding=1, groups=x.shape[1])


class Upsample2d(nn.Module):
    """x2 upsampling: zero insertion (``filter_const``, fixed-size), pad (2, 1, 2, 1), depthwise 4x4 low-pass."""

    def __init__(self, channels_: int, resolution: int) -> None:
        super().__init__()
        pattern = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).repeat(1, 1, resolution // 2, resolution // 2)
        self.register_buffer("filter_const", pattern)
        self.filter = _depthwise(channels_, 4, bias=False)
        with torch.no_grad():
            self.filter.weight.copy_(resample_filter(4.0).expand_as(self.filter.weight))
        self.inserts_zeros = True  # filter_const is the plain zero-insertion pattern (refreshed on every load)
        self.register_load_state_dict_post_hook(_refresh_after_load)

    def refresh(self) -> None:
        """Whether the transposed-convolution shortcut is exact for the values now loaded."""
        h, w = self.filter_const.shape[-2:]
        pattern = torch.zeros(h, w, dtype=self.filter_const.dtype, device=self.filter_const.device)
        pattern[::2, ::2] = 1
        self.inserts_zeros = bool(torch.equal(self.filter_const[0, 0], pattern))

    def forward(self, x: Tensor) -> Tensor:
        weight = self.filter.weight
        if self.inserts_zeros:
            # out[p] = sum_a f[a] z[p + a - 2] with z[2i] = x[i]: a stride-2 transposed conv with f flipped.
            return F.conv_transpose2d(x, weight.flip(-1, -2), stride=2, padding=1, groups=x.shape[1])
        y = F.interpolate(x, scale_factor=2, mode="nearest") * self.filter_const
        return F.conv2d(F.pad(y, (2, 1, 2, 1)), weight, groups=x.shape[1])


class SeparableConv2d(GainFolded):
    """Depthwise kxk (bias) -> act -> [down] -> 1x1 (no bias) -> [up] -> [+ noise] -> act.

    Its input is always an activation (or a sum of two) and so is the 1x1 conv's: both weights
    carry the gain (:func:`activate_`), and so does its output for whoever reads it.
    """

    FOLDED = ("conv1", "conv2")

    def __init__(self, in_channels: int, out_channels: int, *, noise_resolution: int | None = None,
                 down: bool = False, up_resolution: int | None = None) -> None:
        super().__init__()
        if noise_resolution is not None:  # registered first: the release lists them before conv1
            self.noise_strength = nn.Parameter(torch.zeros([]))
            self.register_buffer("noise_const", torch.randn(noise_resolution, noise_resolution))
        else:
            self.noise_strength = None
            self.noise_const = None
        self.conv1 = _depthwise(in_channels, 3, padding=1, bias=True)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.downsample = Downsample2d(in_channels) if down else None
        self.upsample = Upsample2d(out_channels, up_resolution) if up_resolution else None
        self.fold()

    def forward(self, x: Tensor) -> Tensor:
        x = conv_activate(x, self.conv1_folded, self.conv1.bias, 1, x.shape[1])
        if self.downsample is not None:
            x = self.downsample(x)
        if self.upsample is None and self.noise_const is None:  # nothing between the 1x1 conv and the activation
            return conv_activate(x, self.conv2_folded, None, 0, 1)
        x = F.conv2d(x, self.conv2_folded)
        if self.upsample is not None:
            x = self.upsample(x)
        if self.noise_const is not None:
            x = x.add_(self.noise_const * self.noise_strength)
        return activate_(x)


class EncoderBlock(nn.Module):
    """[fromrgb + act] -> conv1 (kept as the skip feature) -> conv2 (halves the size, except at 4x4)."""

    def __init__(self, in_channels: int, out_channels: int, *, top: bool = False, down: bool = True) -> None:
        super().__init__()
        self.fromrgb = nn.Conv2d(IMAGE_CHANNELS, in_channels, 1) if top else None
        self.conv1 = SeparableConv2d(in_channels, in_channels)
        self.conv2 = SeparableConv2d(in_channels, out_channels, down=down)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.fromrgb is not None:
            x = conv_activate(x, self.fromrgb.weight, self.fromrgb.bias, 0, 1)
        feat = self.conv1(x)
        return self.conv2(feat), feat


class Encoder(nn.Module):
    """Blocks ``b{R} .. b8`` then ``b4``; returns the 512x4x4 bottleneck and the skip feature per resolution."""

    def __init__(self, resolution: int) -> None:
        super().__init__()
        self.resolutions = [2**i for i in range(int(math.log2(resolution)), 2, -1)]  # R .. 8
        for i, res in enumerate(self.resolutions):
            self.add_module(f"b{res}", EncoderBlock(channels(res), channels(res // 2), top=i == 0))
        self.b4 = EncoderBlock(channels(4), channels(4), down=False)

    def forward(self, x: Tensor) -> tuple[Tensor, dict[int, Tensor]]:
        feats: dict[int, Tensor] = {}
        for res in [*self.resolutions, 4]:
            x, feats[res] = getattr(self, f"b{res}")(x)
        return x, feats


class SynthesisBlockFirst(GainFolded):
    """At 4x4: conv1, + skip, conv2, ``torgb``."""

    FOLDED = ("torgb",)

    def __init__(self, channels_: int) -> None:
        super().__init__()
        self.conv1 = SeparableConv2d(channels_, channels_)
        self.conv2 = SeparableConv2d(channels_, channels_)
        self.torgb = nn.Conv2d(channels_, RGB, 1)
        self.fold()

    def forward(self, x: Tensor, feat: Tensor) -> tuple[Tensor, Tensor]:
        x = self.conv2(self.conv1(x).add_(feat))
        return x, F.conv2d(x, self.torgb_folded, self.torgb.bias)


class SynthesisBlock(GainFolded):
    """At ``resolution``: conv1 (x2 up, noise), + skip, conv2 (noise); image = up(previous image) + ``torgb``."""

    FOLDED = ("torgb",)

    def __init__(self, in_channels: int, out_channels: int, resolution: int) -> None:
        super().__init__()
        self.conv1 = SeparableConv2d(in_channels, out_channels, noise_resolution=resolution,
                                     up_resolution=resolution)
        self.conv2 = SeparableConv2d(out_channels, out_channels, noise_resolution=resolution)
        self.torgb = nn.Conv2d(out_channels, RGB, 1)
        self.upsample = Upsample2d(RGB, resolution)
        self.fold()

    def forward(self, x: Tensor, feat: Tensor, img: Tensor) -> tuple[Tensor, Tensor]:
        x = self.conv2(self.conv1(x).add_(feat))
        img = self.upsample(img).add_(F.conv2d(x, self.torgb_folded, self.torgb.bias))
        return x, img


class Synthesis(nn.Module):
    """``b4`` then ``b8 .. b{R}``; returns the summed RGB skips at ``R``."""

    def __init__(self, resolution: int) -> None:
        super().__init__()
        self.resolutions = [2**i for i in range(3, int(math.log2(resolution)) + 1)]  # 8 .. R
        self.b4 = SynthesisBlockFirst(channels(4))
        for res in self.resolutions:
            self.add_module(f"b{res}", SynthesisBlock(channels(res // 2), channels(res), res))

    def forward(self, x: Tensor, feats: dict[int, Tensor]) -> Tensor:
        x, img = self.b4(x, feats[4])
        for res in self.resolutions:
            x, img = getattr(self, f"b{res}")(x, feats[res], img)
        return img


class MIGAN(NeuralNetwork):
    """The released MI-GAN generator at a fixed ``RESOLUTION`` (its noise and zero-insertion buffers are that size).

    ``forward`` takes the official 4-channel input ``cat([known - 0.5, image * known])`` (image in
    [-1, 1], ``known`` 1 = known pixel) at exactly ``RESOLUTION`` square and returns the raw,
    unbounded RGB output in [-1, 1] convention. :meth:`inpaint` maps it to [0, 1] the way the
    official ``scripts/demo.py`` does before it quantises; the pipeline composites.
    """

    RESOLUTION = 256
    NAME = "MI-GAN"
    FACTS = NetworkFacts(native_size=256, max_size=256, size_multiple=256, least_side=256, approx_mb=25,
                         official_files=(OfficialFile(OFFICIAL_NAME, "", aliases=RELEASED_256),))

    def __init__(self) -> None:
        super().__init__()
        resolution = self.RESOLUTION
        if 2 ** int(math.log2(resolution)) != resolution:
            raise ValueError(f"MI-GAN's resolution must be a power of two, got {resolution}")
        self.synthesis = Synthesis(resolution)  # first: the release lists the synthesis keys first
        self.encoder = Encoder(resolution)
        self.eval()

    def encode(self, x: Tensor) -> Tensor:
        """The encoder bottleneck (B, 512, 4, 4), the official value (for inspection); ``x`` as in :meth:`forward`."""
        bottleneck, _ = self.encoder(x.contiguous(memory_format=torch.channels_last))
        return bottleneck * GAIN  # the encoder's outputs are activations divided by their gain (activate_)

    def forward(self, x: Tensor) -> Tensor:
        """``x``: (B, 4, R, R) ``cat([known - 0.5, image * known])``; returns (B, 3, R, R), unbounded."""
        bottleneck, feats = self.encoder(x.contiguous(memory_format=torch.channels_last))
        return self.synthesis(bottleneck, feats).contiguous()

    def check_size(self, height: int, width: int) -> None:
        """Only ``R`` x ``R``: the noise and zero-insertion buffers are that size (the official README says so)."""
        r = self.RESOLUTION
        if (height, width) != (r, r):
            raise CropSizeError(f"{self.NAME} needs crops of exactly {r}x{r} px (sides multiples of {r}, "
                                f"at most {r}), got {height}x{width}.")

    @staticmethod
    def network_input(images: Tensor, known: Tensor) -> Tensor:
        """The official input: ``images`` (B, 3, H, W) uint8-valued, ``known`` (B, 1, H, W) 1 = known."""
        scaled = images * 2 / 255 - 1  # demo.py's preprocess
        return torch.cat([known - 0.5, scaled * known], dim=1)

    def inpaint(self, batch: Batch, *, samples: int = 1, seed: int = 0) -> Prediction:
        """Raw fill of every crop, ``(out * 0.5 + 0.5).clamp(0, 1)`` as ``scripts/demo.py`` computes it.

        Deterministic (the noise is a fixed buffer): ``samples`` and ``seed`` are accepted for the common
        interface, there is always one sample. The pipeline composites.
        """
        del samples, seed
        _, height, width = batch.holes.shape
        self.check_size(height, width)
        weight = self.encoder.b4.conv1.conv1.weight
        device, dtype = weight.device, weight.dtype
        with torch.inference_mode():
            images = torch.from_numpy(batch.images).to(device).permute(0, 3, 1, 2).to(dtype)
            known = torch.from_numpy(np.logical_not(batch.holes)).to(device)[:, None].to(dtype)
            with self.precision():
                out = self(self.network_input(images, known)).float()
            fill = out.mul_(0.5).add_(0.5).clamp_(0, 1).permute(0, 2, 3, 1)[:, None]
            return Prediction(samples=np.ascontiguousarray(fill.cpu().numpy(), dtype=np.float32))


class MIGAN256(MIGAN):
    """MI-GAN at 256x256 (``migan_256_places2.pt``, ``migan_256_ffhq.pt``)."""

    RESOLUTION = 256
    NAME = "MI-GAN (256)"
    FACTS = MIGAN.FACTS


class MIGAN512(MIGAN):
    """MI-GAN at 512x512 (``migan_512_places2.pt``)."""

    RESOLUTION = 512
    NAME = "MI-GAN (512)"
    FACTS = NetworkFacts(native_size=512, max_size=512, size_multiple=512, least_side=512, approx_mb=30,
                         official_files=(OfficialFile(OFFICIAL_NAME, "", aliases=RELEASED_512),))
