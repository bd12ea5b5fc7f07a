"""EdgeConnect (Nazeri et al., ICCVW 2019): predict the missing edges, then paint along them.

Two generators run in sequence. The edge generator sees the grayscale crop, the Canny
edges of the known region and the hole mask, and draws an edge map for the whole crop;
the inpainting generator sees the RGB crop and that edge map and paints the fill.
Because the structure is an explicit image, users can steer the fill by drawing edges
themselves (``Batch.guides["edges"]``).

Our own implementation of the published architecture; it loads the authors' released
``EdgeModel_gen.pth`` / ``InpaintingModel_gen.pth`` unmodified and strictly, and
reproduces the official ``EdgeConnect.test()`` outputs (model 3, the default):

* masks: 1 = hole; holes are filled with 1 (white) in the gray and RGB inputs;
* Canny is skimage's masked Canny over the KNOWN region only (``mask=known``);
* the edge net's prediction goes to the inpainting net UN-merged (over the whole crop),
  as ``test()`` does (training/eval merge it with Canny outside the hole, inference does not);
* spectral norm uses the u and v STORED in the checkpoint (PyTorch's eval mode), no power
  iteration, so the weights the network computes with never drift between calls.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from skimage.color import rgb2gray
from skimage.feature import canny
from torch import Tensor, nn

from app.models.base import Batch, NetworkFacts, NeuralNetwork, Prediction, float32_region
from app.specs import OfficialFile

#: H and W must be multiples of this (two stride-2 convolutions, two x2 deconvolutions).
SIZE_MULTIPLE = 4


# --------------------------------------------------------------------------- layers


class SpectralNormConv(nn.Module):
    """Conv2d / ConvTranspose2d normalised by the spectral-norm estimate saved with the weights.

    The released files hold ``weight_orig`` plus the power-iteration vectors ``weight_u`` and
    ``weight_v`` of ``torch.nn.utils.spectral_norm``. In eval mode PyTorch divides by
    ``sigma = u . (W_mat v)`` with those stored vectors and never updates them; we do the same
    (and only that), so the result is deterministic and independent of earlier calls.
    ``W_mat`` is the weight flattened along the OUTPUT channels: dim 0 for Conv2d, dim 1 for
    ConvTranspose2d (whose weight is laid out ``(in, out, k, k)``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1,
                 padding: int = 0, dilation: int = 1, bias: bool = True, transposed: bool = False) -> None:
        super().__init__()
        self.stride, self.padding, self.dilation, self.transposed = stride, padding, dilation, transposed
        shape = (in_channels, out_channels) if transposed else (out_channels, in_channels)
        self.weight_orig = nn.Parameter(torch.randn(*shape, kernel_size, kernel_size) * 0.02)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        # Buffers, not parameters: torch.nn.utils.spectral_norm stores them that way too.
        self.register_buffer("weight_u", F.normalize(torch.randn(out_channels), dim=0))
        self.register_buffer("weight_v", F.normalize(torch.randn(in_channels * kernel_size**2), dim=0))

    def weight(self) -> Tensor:
        """``weight_orig / sigma`` with sigma from the stored u and v.

        In the weights' own dtype even under autocast (which would run ``mv`` in half on CUDA):
        sigma scales every output of the layer, and it costs one matrix-vector product.
        """
        with float32_region(self.weight_orig.device):
            rows = self.weight_orig.transpose(0, 1) if self.transposed else self.weight_orig
            mat = rows.reshape(rows.shape[0], -1)
            sigma = torch.dot(self.weight_u, torch.mv(mat, self.weight_v))
            return self.weight_orig / sigma

    def forward(self, x: Tensor) -> Tensor:
        if self.transposed:
            return F.conv_transpose2d(x, self.weight(), self.bias, self.stride, self.padding)
        return F.conv2d(x, self.weight(), self.bias, self.stride, self.padding, self.dilation)


def _conv(in_ch: int, out_ch: int, k: int, *, spectral: bool, stride: int = 1, padding: int = 0,
          dilation: int = 1, bias: bool = True) -> nn.Module:
    """A Conv2d, spectrally normalised or plain (the two nets differ only in that)."""
    if spectral:
        return SpectralNormConv(in_ch, out_ch, k, stride=stride, padding=padding, dilation=dilation, bias=bias)
    return nn.Conv2d(in_ch, out_ch, k, stride=stride, padding=padding, dilation=dilation, bias=bias)


def _deconv(in_ch: int, out_ch: int, *, spectral: bool) -> nn.Module:
    """The x2 upsampling ConvTranspose2d (k4 s2 p1) of the decoder."""
    if spectral:
        return SpectralNormConv(in_ch, out_ch, 4, stride=2, padding=1, transposed=True)
    return nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1)


def _norm_relu(channels: int) -> list[nn.Module]:
    """Instance norm without affine or running stats: always the statistics of the crop itself."""
    return [nn.InstanceNorm2d(channels, affine=False, track_running_stats=False), nn.ReLU(inplace=True)]


class ResnetBlock(nn.Module):
    """Dilated residual block; ``out = x + block(x)`` with no activation after the sum.

    The submodule indices of ``conv_block`` (1 and 5 are the convs) are the official key layout.
    """

    def __init__(self, channels: int, *, dilation: int, spectral: bool) -> None:
        super().__init__()
        bias = not spectral  # the released edge net has no bias in its spectrally normalised blocks
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(dilation),
            _conv(channels, channels, 3, spectral=spectral, dilation=dilation, bias=bias),
            *_norm_relu(channels),
            nn.ReflectionPad2d(1),
            _conv(channels, channels, 3, spectral=spectral, bias=bias),
            nn.InstanceNorm2d(channels, affine=False, track_running_stats=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class _Generator(nn.Module):
    """Encoder (3 convs, /4) -> dilated residual blocks -> decoder (x4); shared by both nets.

    Returns the logits of the last conv; subclasses apply their output activation.
    """

    def __init__(self, in_channels: int, out_channels: int, *, spectral: bool, residual_blocks: int) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.ReflectionPad2d(3),
            _conv(in_channels, 64, 7, spectral=spectral),
            *_norm_relu(64),
            _conv(64, 128, 4, spectral=spectral, stride=2, padding=1),
            *_norm_relu(128),
            _conv(128, 256, 4, spectral=spectral, stride=2, padding=1),
            *_norm_relu(256),
        )
        self.middle = nn.Sequential(*(ResnetBlock(256, dilation=2, spectral=spectral) for _ in range(residual_blocks)))
        self.decoder = nn.Sequential(
            _deconv(256, 128, spectral=spectral),
            *_norm_relu(128),
            _deconv(128, 64, spectral=spectral),
            *_norm_relu(64),
            nn.ReflectionPad2d(3),
            nn.Conv2d(64, out_channels, 7),  # never spectrally normalised, even in the edge net
        )

    def logits(self, x: Tensor) -> Tensor:
        return self.decoder(self.middle(self.encoder(x)))


class EdgeGenerator(_Generator):
    """(gray, edges, mask) -> edge probability map; spectral norm everywhere but the last conv."""

    def __init__(self, residual_blocks: int = 8) -> None:
        super().__init__(3, 1, spectral=True, residual_blocks=residual_blocks)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.logits(x))


class InpaintGenerator(_Generator):
    """(RGB, edges) -> RGB in [0, 1]; plain convolutions."""

    def __init__(self, residual_blocks: int = 8) -> None:
        super().__init__(4, 3, spectral=False, residual_blocks=residual_blocks)

    def forward(self, x: Tensor) -> Tensor:
        return (torch.tanh(self.logits(x)) + 1) / 2


# --------------------------------------------------------------------------- pre-processing


def to_gray(image: np.ndarray) -> np.ndarray:
    """skimage ``rgb2gray`` of a uint8 RGB crop, in float64 as the official Canny receives it."""
    return rgb2gray(image)


def masked_canny(gray: np.ndarray, hole: np.ndarray, sigma: float) -> np.ndarray:
    """The official edge input: Canny over the KNOWN pixels only (skimage's masked Canny).

    Restricting Canny to the known region keeps the hole's border from producing a fake
    edge. ``sigma < 0`` means "no edges", as the official ``SIGMA: -1``.
    """
    if sigma < 0:
        return np.zeros(gray.shape, dtype=bool)
    return canny(gray, sigma=sigma, mask=~hole)


def prepare(images: np.ndarray, holes: np.ndarray, *, sigma: float = 2.0,
            device: str | torch.device = "cpu") -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Batch arrays -> the official tensors ``(images, gray, canny, masks)``, float32 on ``device``.

    ``images`` (B,H,W,3) uint8, ``holes`` (B,H,W) bool (True = fill). Returns images
    (B,3,H,W) in [0,1] and gray / canny / masks (B,1,H,W), masks 1 = hole. Gray and Canny
    are computed per crop on the CPU (skimage), in float64 like the official loader.
    """
    holes = np.asarray(holes, dtype=bool)
    grays = [to_gray(img) for img in images]
    edges = [masked_canny(g, h, sigma) for g, h in zip(grays, holes, strict=True)]

    def tensor(arrays: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(arrays, dtype=np.float32)).to(device)

    images_t = tensor(images).permute(0, 3, 1, 2).div(255)
    return images_t, tensor(np.stack(grays))[:, None], tensor(np.stack(edges))[:, None], tensor(holes)[:, None]


def guided_edges(edges: Tensor, strokes: Tensor, masks: Tensor) -> Tensor:
    """Add the user's strokes (max) to an edge map, inside the hole only.

    Outside the hole the real image already fixes the structure; strokes there are ignored.
    """
    return torch.maximum(edges, strokes.to(edges.dtype) * masks)


# --------------------------------------------------------------------------- model


class EdgeConnect(NeuralNetwork):
    """EdgeConnect model 3 (edge + inpainting generators), an :class:`~app.models.base.Inpainter`.

    State_dict layout: ``edge.<official key>`` and ``painter.<official key>`` (the
    inpainting generator; ``inpaint`` is the Inpainter method).
    """

    # gpu_dtype: float16 keeps the composite within 2.8 / 2.4 levels of float32 on the fixtures
    # (case 0 / 1; benchmarks/bench_precision.py, CPU autocast as a proxy for CUDA), bfloat16 20 / 20.
    FACTS = NetworkFacts(
        native_size=256, size_multiple=SIZE_MULTIPLE, approx_mb=86, gpu_dtype=torch.float16,
        least_side=12,  # the reflection padding of the H/4 residual blocks needs 3 px there
        official_files=(
            OfficialFile("EdgeModel_gen.pth", "edge", container="generator"),
            OfficialFile("InpaintingModel_gen.pth", "painter", container="generator"),
        ),
    )

    def __init__(self, sigma: float = 2.0, residual_blocks: int = 8) -> None:
        super().__init__()
        self.sigma = sigma  # Canny sigma; the released config.yml uses 2
        self.edge = EdgeGenerator(residual_blocks)
        self.painter = InpaintGenerator(residual_blocks)

    @property
    def device(self) -> torch.device:
        return self.edge.decoder[-1].weight.device

    def prepare(self, images: np.ndarray, holes: np.ndarray) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """:func:`prepare` with this model's Canny sigma, on this model's device."""
        return prepare(images, holes, sigma=self.sigma, device=self.device)

    @torch.inference_mode()
    def predict_edges(self, gray: Tensor, edges: Tensor, masks: Tensor) -> Tensor:
        """Edge probabilities (B,1,H,W) over the WHOLE crop (not merged with Canny).

        Official input: gray with holes set to 1, Canny zeroed in holes, the mask.
        """
        known = 1 - masks
        return self.edge(torch.cat([gray * known + masks, edges * known, masks], dim=1))

    @torch.inference_mode()
    def inpaint_rgb(self, images: Tensor, edges: Tensor, masks: Tensor) -> Tensor:
        """Raw RGB fill (B,3,H,W) in [0,1] for the whole crop; input holes set to 1."""
        return self.painter(torch.cat([images * (1 - masks) + masks, edges], dim=1))

    @torch.inference_mode()
    def inpaint(self, batch: Batch, *, samples: int = 1, seed: int = 0) -> Prediction:
        """Fill every crop of ``batch`` in one forward pass.

        Deterministic: one sample per crop whatever ``samples``/``seed`` say. Guide strokes
        ``batch.guides["edges"]`` (B,H,W bool) are max-ed into the predicted edges inside
        the hole; without them this is exactly the official ``test()``.
        """
        _check_size(batch.images.shape[1:3])
        images, gray, canny_t, masks = self.prepare(batch.images, batch.holes)
        with self.precision():
            edges = self.predict_edges(gray, canny_t, masks).float()
            strokes = batch.guides.get("edges")
            if strokes is not None:
                edges = guided_edges(edges, _strokes_tensor(strokes, batch, edges.device), masks)
            fill = self.inpaint_rgb(images, edges, masks).float()
        shown = edges * masks + canny_t * (1 - masks)  # what the fill followed, as the user sees it
        return Prediction(
            samples=fill.permute(0, 2, 3, 1)[:, None].float().cpu().numpy(),
            maps={"edges": shown[:, 0].float().cpu().numpy()},
        )


def _check_size(hw: tuple[int, int]) -> None:
    """The skip-free encoder/decoder only returns the input size for multiples of 4."""
    if hw[0] % SIZE_MULTIPLE or hw[1] % SIZE_MULTIPLE:
        raise ValueError(f"EdgeConnect needs crop sides that are multiples of {SIZE_MULTIPLE}, got {hw}")


def _strokes_tensor(strokes: np.ndarray, batch: Batch, device: torch.device) -> Tensor:
    """Validated (B,1,H,W) 0/1 tensor of the user's edge strokes (a 0/255 mask must not become 255)."""
    strokes = np.asarray(strokes)
    if strokes.shape != batch.holes.shape:
        raise ValueError(f"guides['edges'] must be {batch.holes.shape}, got {strokes.shape}")
    return torch.from_numpy(strokes.astype(bool).astype(np.float32))[:, None].to(device)  # any non-zero = stroke
