"""Pluralistic Image Completion (Zheng, Cham & Cai, CVPR 2019), written to run the authors' released files.

PIC encodes the masked image into a Gaussian over a latent map (``net_E``), draws a latent
per sample and decodes it, with short+long-term attention, into a multi-scale fill
(``net_G``); the optional discriminator (``net_D``) scores each composite. Different
latents give genuinely different fills, which is what the studio's "samples" show.

Two behaviours of the release shape this module:

* PIC's own spectral norm runs one power-iteration step on *every* forward and writes
  the new ``u``/``v`` back, so the official code's k-th sample depends on how many
  forwards ran before it. The app wants "sample k of seed s" to be reproducible, so by
  default the step is computed from the loaded ``u`` and never stored (every request sees
  the loaded state). ``official_state=True`` restores the state-mutating behaviour, which
  is what the reference fixtures record.
* Every residual block registers its convolutions twice (as attributes and inside
  ``nn.Sequential`` containers), so the released state_dicts hold aliased duplicates.
  Our modules own each tensor once; the loading hook checks that each alias equals its
  original and drops it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.errors import WeightsError
from app.models.base import Batch, NetworkFacts, NeuralNetwork, Prediction, float32_region, sample_done, widen
from app.specs import OfficialFile

# Released hyper-parameters (model/pluralistic_model.py of the official repository).
Z_CHANNELS = 128  # z_nc
SLOPE = 0.1  # activation='LeakyReLU' -> LeakyReLU(0.1), shared by every block ...
ATTN_SLOPE = 0.01  # ... except the ResBlock inside the attention layer (torch's default slope)
ENCODER_CHANNELS = (32, 64, 128, 128, 128)  # ngf=32, img_f=128, layers=5: features at H/2 .. H/32
INFER_BLOCKS = 6  # define_e's default L=6 (not overridden by the release)
DECODER_OUT = (128, 128, 128, 64, 32)  # decoder0..4, H/16 .. H
SIZE_MULTIPLE = 32  # five 2x downsamplings
ATTN_FEATURE = 2  # the encoder feature (H/8) the long-term attention copies from
D_MIN_SIDE = 96  # the discriminator's final unpadded 3x3 conv needs a >= 3x3 map at H/32

_EPS = 1e-12  # l2-normalisation epsilon of the official power iteration

# Whether spectral norms store their power-iteration step (official behaviour). A context
# variable, not a module flag, so an official-mode run never leaks into a concurrent request.
_WRITE_BACK: ContextVar[bool] = ContextVar("pic_spectral_write_back", default=False)


@contextlib.contextmanager
def _write_back(enabled: bool) -> Iterator[None]:
    token = _WRITE_BACK.set(enabled)
    try:
        yield
    finally:
        _WRITE_BACK.reset(token)


def _l2n(x: Tensor) -> Tensor:
    return x / (x.norm() + _EPS)


class _SNTensors(nn.Module):
    """The tensors of one spectrally normalised conv, under the names the release uses.

    A separate child (called ``module``, as in the official wrapper) keeps our keys
    identical to the official ``<layer>.module.{bias,weight_u,weight_v,weight_bar}``.
    """

    def __init__(self, weight_shape: tuple[int, ...], out_channels: int) -> None:
        super().__init__()
        rows = weight_shape[0]  # dim 0 always, even for ConvTranspose2d (in_channels rows)
        # A usable random init (as the official constructor's), so an unloaded net runs finite.
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("weight_u", _l2n(torch.randn(rows)))
        self.register_buffer("weight_v", _l2n(torch.randn(int(np.prod(weight_shape)) // rows)))
        self.weight_bar = nn.Parameter(torch.randn(weight_shape) * 0.02)


class SNConv(nn.Module):
    """Conv / transposed conv whose weight is ``weight_bar / sigma`` (PIC's own spectral norm).

    sigma comes from one power-iteration step started at the stored ``u`` on every
    forward, in eval mode too; the step is stored back only inside an official-mode run.
    """

    def __init__(self, cin: int, cout: int, kernel: int, *, padding: int = 0, transposed: bool = False) -> None:
        super().__init__()
        shape = (cin, cout, kernel, kernel) if transposed else (cout, cin, kernel, kernel)
        self.module = _SNTensors(shape, cout)
        self.padding = padding
        self.transposed = transposed
        self._cached: tuple[tuple, Tensor] | None = None  # (state key, normalised weight); app mode only

    def weight(self) -> Tensor:
        """Normalised weight; advances the stored u/v only when official write-back is on.

        Without write-back the step always starts from the same stored ``u``, so the weight is a
        function of the stored tensors: it is computed once and kept until they change (a load
        bumps their version, a move makes new tensors). Bit for bit what recomputing gives.
        """
        if _WRITE_BACK.get():
            return self._normalised()
        key = self._state_key()
        if key is None:
            return self._normalised()
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, self._normalised())
        return self._cached[1]

    def _state_key(self) -> tuple | None:
        """What the normalised weight depends on; None where tensors keep no version (inference tensors)."""
        t = self.module
        try:
            return (t.weight_bar.data_ptr(), t.weight_bar._version, t.weight_u.data_ptr(), t.weight_u._version,
                    t.weight_bar.dtype, t.weight_bar.device, torch.is_inference_mode_enabled())
        except RuntimeError:
            return None

    def _normalised(self) -> Tensor:
        """``weight_bar / sigma`` from one power-iteration step (stored back in official mode).

        In the weights' own dtype even under autocast (which would run ``mv`` in half on CUDA):
        sigma scales every output of the layer and u/v are state; three matrix-vector products.
        """
        t = self.module
        with float32_region(t.weight_bar.device):
            mat = t.weight_bar.reshape(t.weight_bar.shape[0], -1)
            v = _l2n(torch.mv(mat.t(), t.weight_u))
            u = _l2n(torch.mv(mat, v))
            sigma = torch.dot(u, torch.mv(mat, v))
            if _WRITE_BACK.get():
                t.weight_u.copy_(u)
                t.weight_v.copy_(v)
            return t.weight_bar / sigma

    def forward(self, x: Tensor) -> Tensor:
        if self.transposed:  # every transposed conv of PIC doubles the size: k3 s2 p1 op1
            return F.conv_transpose2d(x, self.weight(), self.module.bias, stride=2, padding=1, output_padding=1)
        return F.conv2d(x, self.weight(), self.module.bias, padding=self.padding)


class ResBlock(nn.Module):
    """Pre-activation residual block (act-conv-act-conv + 1x1 bypass), optionally average-pooled."""

    # Where the official block also registers its convs (its unnormalised Sequential).
    ALIASES = {"model.1": "conv1", "model.3": "conv2", "shortcut.0": "bypass"}

    def __init__(self, cin: int, cout: int, hidden: int, *, slope: float = SLOPE, down: bool = False) -> None:
        super().__init__()
        self.conv1 = SNConv(cin, hidden, 3, padding=1)
        self.conv2 = SNConv(hidden, cout, 3, padding=1)
        self.bypass = SNConv(cin, cout, 1)
        self.slope = slope
        self.down = down

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(F.leaky_relu(self.conv1(F.leaky_relu(x, self.slope)), self.slope))
        skip = self.bypass(x)
        if self.down:
            return F.avg_pool2d(out, 2) + F.avg_pool2d(skip, 2)
        return out + skip


class StemBlock(nn.Module):
    """First encoder block: conv-act-conv-pool with a pool-then-1x1 bypass (no activation on the raw image)."""

    ALIASES = {"model.0": "conv1", "model.2": "conv2", "shortcut.1": "bypass"}

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = SNConv(cin, cout, 3, padding=1)
        self.conv2 = SNConv(cout, cout, 3, padding=1)
        self.bypass = SNConv(cin, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        out = F.avg_pool2d(self.conv2(F.leaky_relu(self.conv1(x), SLOPE)), 2)
        return out + self.bypass(F.avg_pool2d(x, 2))


class UpBlock(nn.Module):
    """Decoder residual block: IN-act-conv-IN-act-convT(x2) with a convT(x2) bypass."""

    ALIASES = {"model.2": "conv1", "model.5": "conv2", "shortcut.0": "bypass"}

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = SNConv(cin, cout, 3, padding=1)
        self.conv2 = SNConv(cout, cout, 3, transposed=True)
        self.bypass = SNConv(cin, cout, 3, transposed=True)
        # Keys "0" and "3" are the norms' positions in the official Sequential, kept for the key names.
        norms = {"0": nn.InstanceNorm2d(cin, affine=True), "3": nn.InstanceNorm2d(cout, affine=True)}
        self.model = nn.ModuleDict(norms)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(F.leaky_relu(self.model["0"](x), SLOPE))
        out = self.conv2(F.leaky_relu(self.model["3"](out), SLOPE))
        return out + self.bypass(x)


class OutputHead(nn.Module):
    """act - reflection pad - 3x3 conv - tanh: one RGB output of the multi-scale pyramid."""

    ALIASES = {"model.2": "conv1"}

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.conv1 = SNConv(cin, 3, 3)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.conv1(F.pad(F.leaky_relu(x, SLOPE), (1, 1, 1, 1), mode="reflect")))


class Attention(nn.Module):
    """Short+long-term attention: self-attention on the decoder features, and the same
    attention map used to copy encoder features (``pre``) into the hole."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.query_conv = nn.Conv2d(channels, channels // 4, 1)  # key = query (shared projection)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.alpha = nn.Parameter(torch.zeros(1))
        self.model = ResBlock(2 * channels, channels, channels, slope=ATTN_SLOPE)

    def forward(self, x: Tensor, pre: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        b, c, h, w = x.shape
        q = self.query_conv(x).flatten(2)  # (B, C/4, N)
        with float32_region(x.device):  # logits rounded in half would shift the softmax by their magnitude
            q = widen(q)
            attn = torch.softmax(torch.bmm(q.transpose(1, 2), q), dim=-1)  # row i: weights over positions j
        out = self.gamma * torch.bmm(x.flatten(2), attn.transpose(1, 2)).view(b, c, h, w) + x
        if pre is None:  # the discriminator's use: self-attention only, self.model unused
            return out
        context = torch.bmm(pre.flatten(2), attn.transpose(1, 2)).view_as(pre)
        context = self.alpha * (1 - mask) * context + mask * pre  # copy only into the hole
        return self.model(torch.cat([out, context], dim=1))


def _down_blocks(net: nn.Module) -> None:
    """block0 + encoder0..3, the downsampling trunk shared by net_E and net_D."""
    net.block0 = StemBlock(3, ENCODER_CHANNELS[0])
    for i, (cin, cout) in enumerate(zip(ENCODER_CHANNELS[:-1], ENCODER_CHANNELS[1:], strict=True)):
        net.add_module(f"encoder{i}", ResBlock(cin, cout, cin, down=True))


class Encoder(nn.Module):
    """net_E: image features at five scales and the conditional prior N(mu, sigma) over z."""

    def __init__(self) -> None:
        super().__init__()
        _down_blocks(self)
        c = ENCODER_CHANNELS[-1]
        for i in range(INFER_BLOCKS):
            self.add_module(f"infer_prior{i}", ResBlock(c, c, c))
        self.posterior = ResBlock(c, 2 * Z_CHANNELS, c)  # training-only path, loaded for strictness
        self.prior = ResBlock(c, 2 * Z_CHANNELS, c)

    def forward(self, img_m: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        out = self.block0(img_m)
        features = [out]
        for i in range(len(ENCODER_CHANNELS) - 1):
            out = getattr(self, f"encoder{i}")(out)
            features.append(out)
        for i in range(INFER_BLOCKS):
            out = getattr(self, f"infer_prior{i}")(out)
        # The prior in float32 whatever the autocast: z = mu + sigma * eps is drawn from it.
        mu, std = widen(self.prior(out)).split(Z_CHANNELS, dim=1)
        return mu, F.softplus(std), features


class Generator(nn.Module):
    """net_G: z + deepest encoder feature -> RGB outputs at H/8, H/4, H/2 and H."""

    def __init__(self) -> None:
        super().__init__()
        c = DECODER_OUT[0]
        self.generator = ResBlock(Z_CHANNELS, c, c)
        cin = ENCODER_CHANNELS[-1]
        for i, cout in enumerate(DECODER_OUT):
            self.add_module(f"decoder{i}", UpBlock(cin + (3 if i > 1 else 0), cout))
            if i >= 1:
                self.add_module(f"out{i}", OutputHead(cout))
            cin = cout
        self.attn1 = Attention(DECODER_OUT[1])

    def forward(self, z: Tensor, f_m: Tensor, f_e: Tensor, mask: Tensor) -> list[Tensor]:
        out = f_m + self.generator(z)
        results = []
        for i in range(len(DECODER_OUT)):
            out = getattr(self, f"decoder{i}")(out)
            if i == 1:
                out = self.attn1(out, f_e, mask)
            if i >= 1:
                results.append(getattr(self, f"out{i}")(out))
                out = torch.cat([out, results[-1]], dim=1)  # each scale's image feeds the next decoder
        return results


class Discriminator(nn.Module):
    """net_D: patch realism map of an image in [-1, 1] (higher = judged more real)."""

    def __init__(self) -> None:
        super().__init__()
        _down_blocks(self)
        c = ENCODER_CHANNELS[-1]
        self.attn2 = Attention(ENCODER_CHANNELS[2])
        self.block1 = ResBlock(c, c, c)
        self.conv = SNConv(c, 1, 3)

    def forward(self, x: Tensor) -> Tensor:
        out = self.block0(x)
        for i in range(len(ENCODER_CHANNELS) - 1):
            if i == 2:
                out = self.attn2(out)
            out = getattr(self, f"encoder{i}")(out)
        return self.conv(F.leaky_relu(self.block1(out), SLOPE))


# --------------------------------------------------------------------------- official files

_NETS: dict[str, type[nn.Module]] = {"encoder": Encoder, "generator": Generator, "discriminator": Discriminator}


@functools.cache
def _alias_table(component: str) -> dict[str, str]:
    """Official alias module path -> the path of the module we register it under.

    Read off our own blocks' ``ALIASES`` (built on the meta device, no memory), so the
    table always follows the architecture defined above.
    """
    with torch.device("meta"):
        net = _NETS[component]()
    table = {}
    for name, module in net.named_modules():
        for alias, original in getattr(module, "ALIASES", {}).items():
            table[f"{name}.{alias}"] = f"{name}.{original}"
    return table


def _original_key(key: str, table: Mapping[str, str]) -> str | None:
    parts = key.split(".")
    for i in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:i])
        if head in table:
            return ".".join([table[head], *parts[i:]])
    return None


def _raw(state: Mapping[str, Tensor], key: str) -> Tensor | None:
    """Value of ``key`` in the file, saved with or without the DataParallel prefix."""
    return state.get("module." + key, state.get(key))


def _alias_hook(component: str) -> Callable[[str, Mapping[str, Tensor]], str | None]:
    """OfficialFile.rename hook: drop aliased duplicates after checking they equal their original.

    A differing duplicate means the file is not what the official code saved (the two
    names are one tensor there), so loading either copy would be a guess.
    """

    def rename(key: str, state: Mapping[str, Tensor]) -> str | None:
        original = _original_key(key, _alias_table(component))
        if original is None:
            return key
        alias_value, original_value = _raw(state, key), _raw(state, original)
        if original_value is None:  # the strict load then names the missing original
            return None
        if not (isinstance(alias_value, Tensor) and isinstance(original_value, Tensor)
                and alias_value.shape == original_value.shape and torch.equal(alias_value, original_value)):
            raise WeightsError(
                f"PIC {component} weights: '{key}' should be an identical copy of '{original}' but differs; "
                "the file is corrupt or not an official Pluralistic release."
            )
        return None

    return rename


def _official_file(name: str, component: str, required: bool = True) -> OfficialFile:
    return OfficialFile(name, component, prefix="module.", rename=_alias_hook(component), required=required)


# --------------------------------------------------------------------------- the model


@dataclass
class Completion:
    """Everything one PIC run produced (tensors on the model's device)."""

    q_mu: Tensor  # (B, 128, H/32, W/32) prior mean
    q_sigma: Tensor  # (B, 128, H/32, W/32) softplus std
    outputs: list[Tensor]  # generator outputs at H/8, H/4, H/2, H: each (B, S, 3, h, w) in [-1, 1]
    composite: Tensor  # (B, S, 3, H, W): (1 - valid) * outputs[-1] + valid * masked input, [-1, 1]
    scores: Tensor | None  # (B, S) mean discriminator map of the composite; higher = judged more real


def noise(seed: int, k: int, height: int, width: int) -> Tensor:
    """eps of sample ``k``: (1, 128, h, w) standard normal from a CPU generator seeded by (seed, k).

    Its own stream per (seed, k), drawn on CPU, makes sample k identical whatever the
    number of samples, the other images of the batch, earlier calls or the device.
    """
    digest = hashlib.sha256(f"pic-noise|{int(seed)}|{int(k)}".encode()).digest()
    gen = torch.Generator(device="cpu").manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
    return torch.randn((1, Z_CHANNELS, height, width), generator=gen)


class Pluralistic(NeuralNetwork):
    """PIC inpainter: ``encoder`` (net_E), ``generator`` (net_G), optional ``discriminator`` (net_D).

    ``official_state=False`` (the app default): spectral norms never store their
    power-iteration step (so each layer's weight is computed once and kept) and the encoder
    runs once per request, then one generator pass per sample: sample k of a seed is reproducible.
    ``official_state=True``: samples run one
    after another and every E/G/D forward advances the stored u/v, exactly like the
    official ``test()`` (use a freshly loaded model to match its outputs).
    """

    # gpu_dtype: float16 keeps the three composites within 0.33 / 0.39 levels of float32 on the
    # fixtures (case 0 / 1; benchmarks/bench_precision.py, CPU autocast as a proxy for CUDA), bfloat16
    # 2.5 / 3.0. Spectral norms, attention logits and the prior stay float32 (see SNConv, Attention).
    FACTS = NetworkFacts(
        native_size=256, size_multiple=SIZE_MULTIPLE, approx_mb=31, gpu_dtype=torch.float16,
        least_side=64,  # instance norm at H/32 x W/32 needs more than one position
        official_files=(
            _official_file("latest_net_E.pth", "encoder"),
            _official_file("latest_net_G.pth", "generator"),
            _official_file("latest_net_D.pth", "discriminator", required=False),
        ),
    )

    def __init__(self, *, discriminator: bool = True, official_state: bool = False) -> None:
        super().__init__()
        self.encoder = Encoder()
        self.generator = Generator()
        self.discriminator = Discriminator() if discriminator else None
        self.official_state = official_state

    @classmethod
    def for_state(cls, state: Mapping[str, Tensor], **kwargs) -> Pluralistic:
        """Include the discriminator only when its weights came with the others (it is optional)."""
        return cls(discriminator=any(k.startswith("discriminator.") for k in state), **kwargs)

    # ---- pieces (also used by the reference tests)

    def encode(self, img_m: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        """Masked image in [-1, 1] (holes 0) -> (q_mu, q_sigma, features at H/2 .. H/32)."""
        return self.encoder(img_m)

    def generate(self, z: Tensor, features: list[Tensor], valid: Tensor) -> list[Tensor]:
        """Decode latent ``z`` into outputs at H/8 .. H; ``valid`` (B, 1|3, H, W), 1 = known pixel."""
        mask = self._attention_mask(features, valid)
        return self.generator(z, f_m=features[-1], f_e=features[ATTN_FEATURE], mask=mask)

    def score(self, composite: Tensor) -> Tensor | None:
        """(N,) mean of net_D's patch map on composites in [-1, 1]; higher = judged more real.

        None without a discriminator or below ``D_MIN_SIDE`` pixels, where its last
        unpadded 3x3 conv has nothing to slide over.
        """
        if self.discriminator is None or min(composite.shape[2:]) < D_MIN_SIDE:
            return None
        return self.discriminator(composite).mean(dim=(1, 2, 3))

    def complete(self, image: Tensor, valid: Tensor, eps: Tensor, *, official_state: bool | None = None) -> Completion:
        """Run PIC with injected noise: ``z_k = q_mu + q_sigma * eps[k]``.

        image (B, 3, H, W) in [0, 1]; valid (B, 1|3, H, W), 1 = known, 0 = hole;
        eps (S, B|1, 128, H/32, W/32). ``official_state`` overrides the constructor's choice.
        """
        official = self.official_state if official_state is None else official_state
        img_m = valid * (image * 2 - 1)
        with _write_back(official):
            q_mu, q_sigma, features = self.encode(img_m)
            run = self._sequential if official else self._batched
            outputs, composite, scores = run(q_mu, q_sigma, features, img_m, valid, eps)
        return Completion(q_mu, q_sigma, outputs, composite, scores)

    def _batched(self, q_mu: Tensor, q_sigma: Tensor, features: list[Tensor], img_m: Tensor, valid: Tensor,
                 eps: Tensor) -> tuple[list[Tensor], Tensor, Tensor | None]:
        """The app's mode: the encoder's work is shared, then one generator (+ discriminator) pass per sample.

        All crops of a sample go through together; samples go one after another, each told to the
        pipeline (:func:`~app.models.base.sample_done`) so its progress and time are its own. Uncontended,
        one pass per sample beat one pass of every sample stacked (which also held S copies of the
        encoder features; docs/benchmarks/README.md, Pluralistic). The discriminator only rates
        samples against each other, so a single sample is not rated: it costs what the official
        encoder+generator pass costs.
        """
        sample_done(-1)
        rate = eps.shape[0] > 1
        mask = self._attention_mask(features, valid)
        outputs, composites, scores = [], [], []
        for k, eps_k in enumerate(eps):
            out = self.generator(q_mu + q_sigma * eps_k, f_m=features[-1], f_e=features[ATTN_FEATURE], mask=mask)
            composite = (1 - valid) * out[-1] + valid * img_m
            outputs.append(out)
            composites.append(composite)
            scores.append(self.score(composite) if rate else None)
            sample_done(k)
        stacked = [torch.stack(scale, dim=1) for scale in zip(*outputs, strict=True)]
        score = None if scores[0] is None else torch.stack(scores, dim=1)
        return stacked, torch.stack(composites, dim=1), score

    def _attention_mask(self, features: list[Tensor], valid: Tensor) -> Tensor:
        """The known-pixel mask at the attention's scale (H/8), shared by every sample."""
        f_e = features[ATTN_FEATURE]
        return F.interpolate(valid, size=f_e.shape[2:], mode="bilinear", align_corners=True)[:, :1]

    def _sequential(self, q_mu: Tensor, q_sigma: Tensor, features: list[Tensor], img_m: Tensor, valid: Tensor,
                    eps: Tensor) -> tuple[list[Tensor], Tensor, Tensor | None]:
        """The official loop: per sample one net_G then one net_D forward, each advancing its state."""
        outputs, composites, scores = [], [], []
        for eps_k in eps:
            out = self.generate(q_mu + q_sigma * eps_k, features, valid)
            composite = (1 - valid) * out[-1] + valid * img_m
            outputs.append(out)
            composites.append(composite)
            scores.append(self.score(composite))
        stacked = [torch.stack(scale, dim=1) for scale in zip(*outputs, strict=True)]
        score = None if scores[0] is None else torch.stack(scores, dim=1)
        return stacked, torch.stack(composites, dim=1), score

    # ---- the app's interface

    def inpaint(self, batch: Batch, *, samples: int = 1, seed: int = 0) -> Prediction:
        """``samples`` fills per crop; ``scores`` = discriminator realism, higher = better.

        None without net_D, and for a single sample (nothing to rank it against).

        Returns the raw generator output (the pipeline composites); sample k of a seed is
        the same whatever ``samples`` is and whatever ran before (in the default mode).
        """
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        b, h, w, _ = batch.images.shape
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
            raise ValueError(f"PIC needs sides that are multiples of {SIZE_MULTIPLE}, got {h}x{w}")
        device = next(self.parameters()).device
        eps = torch.stack([noise(seed, k, h // SIZE_MULTIPLE, w // SIZE_MULTIPLE) for k in range(samples)])
        with torch.inference_mode():
            image = torch.from_numpy(np.ascontiguousarray(batch.images)).to(device).permute(0, 3, 1, 2).float() / 255
            valid = torch.from_numpy(np.ascontiguousarray(~batch.holes)).to(device).unsqueeze(1).float()
            with self.precision():
                run = self.complete(image, valid, eps.to(device))
            fills = ((run.outputs[-1] + 1) / 2).permute(0, 1, 3, 4, 2).float().cpu().numpy()
            scores = None if run.scores is None else run.scores.float().cpu().numpy()
        return Prediction(samples=np.clip(fills, 0.0, 1.0).astype(np.float32), scores=scores)
