"""LaMa big-lama: a fast-Fourier-convolution (FFC) ResNet that fills holes in one pass.

Our own re-implementation of the generator of Suvorov et al. (WACV 2022) that loads the
authors' released ``big-lama/models/best.ckpt`` unmodified. Module names are chosen so
that the state_dict keys equal the official ones (``model.5.conv1.ffc.convg2g.fu...``):
the checkpoint then loads strictly with nothing but the ``generator.`` prefix stripped.

Layout of ``model`` (indices are part of the key names, hence kept exactly):
0 reflection pad 3, 1 stem conv 7x7 (local only), 2-4 stride-2 downsampling (4 also
splits the features 25 % local / 75 % global), 5-22 eighteen FFC residual blocks,
23 local/global concatenation, 24-32 three transposed-conv upsampling stages,
33-34 reflection pad + 7x7 conv to RGB, 35 sigmoid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.models.base import Batch, NetworkFacts, NeuralNetwork, Prediction
from app.specs import OfficialFile

#: Released hyper-parameters (``configs/training/big-lama.yaml``, generator section).
WIDTH = 64  # ngf: channels after the stem
DOWNSAMPLINGS = 3
BLOCKS = 18
GLOBAL_RATIO = 0.75  # share of channels on the spectral (global) path in the residual blocks
#: The net downsamples 3 times; the official predictor pads every side to this multiple.
PAD_MULTIPLE = 8

#: A feature map split into its local (spatial) and global (spectral) channel groups.
#: ``None`` = the group has no channels at this layer (e.g. the global part of the stem).
Pair = tuple[Tensor, Tensor | None]


def _add(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    """Sum of two optional terms: an absent path contributes nothing, not a zero tensor."""
    if a is None:
        return b
    return a if b is None else a + b


def _run(module: nn.Module | None, x: Tensor | None) -> Tensor | None:
    """``module(x)``, or None when the path or its input does not exist at this layer."""
    return None if module is None or x is None else module(x)


class FourierUnit(nn.Module):
    """1x1 conv + BN + ReLU applied in the 2-D frequency domain: every output pixel sees the whole image.

    The spectrum's real and imaginary parts become interleaved channels
    (``c0.re, c0.im, c1.re, ...``), the order the released 1x1 conv weights expect.
    The FFT always runs in float32: cuFFT in half precision only takes power-of-two
    sizes and loses too much precision, so autocast is switched off around it.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_layer = nn.Conv2d(2 * channels, 2 * channels, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(2 * channels)

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        with torch.autocast(device_type=x.device.type, enabled=False):
            spectrum = torch.fft.rfft2(x.float(), norm="ortho")
            b, c, fh, fw = spectrum.shape
            z = torch.stack((spectrum.real, spectrum.imag), dim=2).reshape(b, 2 * c, fh, fw)
            z = self.conv_layer(z.to(self.conv_layer.weight.dtype))
            z = F.relu(self.bn(z)).float().reshape(b, c, 2, fh, fw)
            out = torch.fft.irfft2(torch.complex(z[:, :, 0], z[:, :, 1]), s=(height, width), norm="ortho")
        return out.to(x.dtype)


class SpectralTransform(nn.Module):
    """The global-to-global path: squeeze channels by 2, add the Fourier unit's view, expand back."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        hidden = out_channels // 2
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, hidden, kernel_size=1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True)
        )
        self.fu = FourierUnit(hidden)
        self.conv2 = nn.Conv2d(hidden, out_channels, kernel_size=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        return self.conv2(x + self.fu(x))


class FFC(nn.Module):
    """Fast Fourier convolution: four paths between the local and global channel groups.

    local->local, local->global and global->local are ordinary convolutions (reflect
    padded, no bias); global->global is the :class:`SpectralTransform`. A path whose
    input or output group is empty does not exist (and has no weights in the file).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 ratio_in: float = 0.0, ratio_out: float = 0.0) -> None:
        super().__init__()
        in_g, out_g = int(in_channels * ratio_in), int(out_channels * ratio_out)
        in_l, out_l = in_channels - in_g, out_channels - out_g

        def conv(cin: int, cout: int) -> nn.Conv2d | None:
            if not (cin and cout):
                return None
            return nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False,
                             padding_mode="reflect")

        self.convl2l = conv(in_l, out_l)
        self.convl2g = conv(in_l, out_g)
        self.convg2l = conv(in_g, out_l)
        if in_g and out_g and stride != 1:
            raise ValueError("the spectral path of big-lama never downsamples")
        self.convg2g = SpectralTransform(in_g, out_g) if in_g and out_g else None

    def forward(self, x: Pair) -> Pair:
        x_l, x_g = x
        out_l = _add(_run(self.convl2l, x_l), _run(self.convg2l, x_g))
        out_g = _add(_run(self.convl2g, x_l), _run(self.convg2g, x_g))
        return out_l, out_g


class FFCBlock(nn.Module):
    """FFC followed by BatchNorm + ReLU on each channel group (``FFC_BN_ACT`` in the paper's code)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 ratio_in: float = 0.0, ratio_out: float = 0.0) -> None:
        super().__init__()
        self.ffc = FFC(in_channels, out_channels, kernel_size, stride, padding, ratio_in, ratio_out)
        out_g = int(out_channels * ratio_out)
        self.bn_l = nn.BatchNorm2d(out_channels - out_g) if out_channels - out_g else None
        self.bn_g = nn.BatchNorm2d(out_g) if out_g else None

    def forward(self, x: Tensor | Pair) -> Pair:
        if isinstance(x, Tensor):  # the stem receives the plain 4-channel image
            x = (x, None)
        x_l, x_g = self.ffc(x)
        return _relu(_run(self.bn_l, x_l)), _relu(_run(self.bn_g, x_g))


def _relu(x: Tensor | None) -> Tensor | None:
    return None if x is None else F.relu(x)


class FFCResBlock(nn.Module):
    """Two FFC blocks with a residual connection on both the local and the global group."""

    def __init__(self, channels: int, ratio: float) -> None:
        super().__init__()
        self.conv1 = FFCBlock(channels, channels, 3, padding=1, ratio_in=ratio, ratio_out=ratio)
        self.conv2 = FFCBlock(channels, channels, 3, padding=1, ratio_in=ratio, ratio_out=ratio)

    def forward(self, x: Pair) -> Pair:
        y_l, y_g = self.conv2(self.conv1(x))
        return x[0] + y_l, x[1] + y_g


class ConcatGroups(nn.Module):
    """Back from (local, global) to one tensor, local channels first, before the decoder."""

    def forward(self, x: Pair) -> Tensor:
        x_l, x_g = x
        return x_l if x_g is None else torch.cat([x_l, x_g], dim=1)


def _encoder(width: int, downsamplings: int, ratio: float) -> list[nn.Module]:
    """Stem + stride-2 convs; the last one splits its output into local/global groups."""
    layers: list[nn.Module] = [nn.ReflectionPad2d(3), FFCBlock(4, width, 7)]
    for i in range(downsamplings):
        last = i == downsamplings - 1
        layers.append(FFCBlock(width * 2**i, width * 2 ** (i + 1), 3, stride=2, padding=1,
                               ratio_out=ratio if last else 0.0))
    return layers


def _decoder(width: int, upsamplings: int) -> list[nn.Module]:
    """Transposed-conv upsampling back to full resolution, then the RGB head with sigmoid."""
    layers: list[nn.Module] = []
    for i in range(upsamplings, 0, -1):
        cin, cout = width * 2**i, width * 2 ** (i - 1)
        layers += [nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1),
                   nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return [*layers, nn.ReflectionPad2d(3), nn.Conv2d(width, 3, 7), nn.Sigmoid()]


class BigLaMa(NeuralNetwork):
    """The big-lama generator: RGB image with holes + hole mask in, full RGB prediction in [0, 1] out."""

    #: ``best.ckpt`` is a Lightning checkpoint holding the discriminator and the loss
    #: networks too; only the ``generator.`` entries are ours.
    #: gpu_dtype: float16 keeps the composite within 0.10 / 0.14 levels of float32 on the fixtures
    #: (case 0 / 1; benchmarks/bench_precision.py, CPU autocast as a proxy for CUDA), bfloat16 0.86 /
    #: 0.98; the FFTs run in float32 either way (FourierUnit).
    #: cpu_bf16: on a CPU with bf16 instructions, bf16 autocast is 1.56x faster at 256² on an AMD EPYC with
    #: AVX512-BF16 (2026-12-07, ``python -m benchmarks.bench_precision --device cpu --repeats 5 --cpu-settings
    #: --models lama mat-places512``; 1.48x in a run of 3 repeats) and 1.61x (256²) / 1.34x (768²) on an Intel
    #: Xeon with AVX512-BF16 and AMX (issue 29's figures), within 0.98 levels of float32 on every fixture
    #: (closeness run, ``python -m benchmarks.bench_precision --device cpu``; 0.90 with that EPYC's own
    #: kernels). The only network to clear both bars (docs/benchmarks/README.md, docs/timing.md).
    FACTS = NetworkFacts(
        native_size=256, max_size=1536, size_multiple=PAD_MULTIPLE, approx_mb=204, gpu_dtype=torch.float16,
        cpu_bf16=True,
        least_side=16,  # the reflection padding at H/8 needs 2 px there
        official_files=(OfficialFile("best.ckpt", "", container="state_dict", prefix="generator.",
                                     only_prefixed=True),),
    )

    def __init__(self, width: int = WIDTH, blocks: int = BLOCKS, ratio: float = GLOBAL_RATIO) -> None:
        super().__init__()
        bottleneck = width * 2**DOWNSAMPLINGS
        self.model = nn.Sequential(
            *_encoder(width, DOWNSAMPLINGS, ratio),
            *(FFCResBlock(bottleneck, ratio) for _ in range(blocks)),
            ConcatGroups(),
            *_decoder(width, DOWNSAMPLINGS),
        )

    def forward(self, x: Tensor) -> Tensor:
        """``x``: (B, 4, H, W) = masked RGB in [0, 1] + mask (1 = hole); H, W multiples of 8."""
        return self.model(x)

    def inpaint(self, batch: Batch, *, samples: int = 1, seed: int = 0) -> Prediction:
        """Raw fill of every crop, as the official ``bin/predict.py`` computes it.

        LaMa is deterministic: ``samples`` and ``seed`` are accepted for the common
        interface but there is always exactly one sample. The pipeline composites.
        """
        del samples, seed
        with torch.inference_mode():
            images = torch.from_numpy(batch.images).to(self.device).permute(0, 3, 1, 2).float() / 255
            holes = torch.from_numpy(batch.holes).to(self.device)[:, None].float()
            height, width = images.shape[-2:]
            images, holes = pad_symmetric(images, PAD_MULTIPLE), pad_symmetric(holes, PAD_MULTIPLE)
            dtype = next(self.parameters()).dtype
            x = torch.cat([images * (1 - holes), holes], dim=1).to(dtype)
            with self.precision():
                pred = self(x)[..., :height, :width].float()
            out = pred.permute(0, 2, 3, 1)[:, None].cpu().numpy()
        return Prediction(samples=out)


def symmetric_indices(size: int, padded: int, device: torch.device | None = None) -> Tensor:
    """Source index of each of ``padded`` positions under numpy's 'symmetric' padding at the end.

    numpy 'symmetric' repeats the edge pixel (``abc|cba|abc...``), unlike torch's
    'reflect' (``abc|ba``); the official predictor uses numpy's, and the released
    weights were evaluated that way. Periodic indexing also covers pads longer than the image.
    """
    i = torch.arange(padded, device=device) % (2 * size)
    return torch.where(i < size, i, 2 * size - 1 - i)


def pad_symmetric(x: Tensor, multiple: int) -> Tensor:
    """Pad (..., H, W) at the bottom/right to multiples of ``multiple``, as ``np.pad(mode='symmetric')``."""
    height, width = x.shape[-2:]
    ph, pw = -(-height // multiple) * multiple, -(-width // multiple) * multiple
    if (ph, pw) == (height, width):
        return x
    x = x.index_select(-2, symmetric_indices(height, ph, x.device))
    return x.index_select(-1, symmetric_indices(width, pw, x.device))
