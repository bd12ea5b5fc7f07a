"""Half precision on the GPU: each network's declared ``FACTS.gpu_dtype`` keeps its output finite and close.

Every registered network class is covered through the contract's list (``test_model_contract.py``),
loaded from its release files with the synthetic weights of the reference fixtures. Without a GPU,
"half" is CPU autocast with float32 accumulation in the products (``benchmarks.bench_precision.
cpu_autocast``): the same dtype rounding as CUDA, other kernels, so a proxy for CUDA numerics; the
CUDA test runs the real thing where a device is present. The decision when to use half (CUDA only,
``INPAINT_HALF``) is a pure function, tested here without CUDA.
"""

from __future__ import annotations

import contextlib
import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from app.models.base import (
    HALF_ENV,
    Batch,
    NetworkFacts,
    NeuralNetwork,
    autocast_dtype,
    half_enabled,
)
from app.models.lama import FourierUnit
from app.models.rfr import PartialConv2d
from app.specs import ModelSpec
from benchmarks import bench_precision as bench
from tests import contract
from tests.reference import fixture_files

#: Largest difference from float32 of the composited output, in 8-bit levels, for a network in its
#: declared GPU dtype. Measured (docs/benchmarks/precision.json, float16): at most 2.8 on the first
#: fixtures (EdgeConnect case 0) and 3.7 on all (PConv case 1; RFR case 1: 3.2); bfloat16 reached 20
#: (EdgeConnect) and 34 (RFR). 5 leaves room for CUDA's other kernels and still catches a wrong dtype
#: or a lost float32 island (NaN, or tens of levels).
TOLERANCE_LEVELS = 5.0
HALVES = [pytest.param(torch.float16, id="float16"), pytest.param(torch.bfloat16, id="bfloat16")]


def _net(spec: ModelSpec, tmp_path_factory: pytest.TempPathFactory) -> NeuralNetwork:
    """The contract's network of ``spec`` (loaded once per class per session, shared with the contract)."""
    return contract.loaded(spec.entry, tmp_path_factory.getbasetemp() / "contract")


def _first_fixture(spec: ModelSpec) -> tuple[np.ndarray, np.ndarray]:
    files = fixture_files(bench.family(spec))
    if not files:
        pytest.skip(f"no {bench.family(spec)}_*.npz fixtures (set INPAINT_REFERENCE_FIXTURES)")
    with np.load(files[0]) as data:
        return data["image"], data["hole"].astype(bool)


def _declared(spec: ModelSpec) -> torch.dtype:
    dtype = spec.network().FACTS.gpu_dtype
    if dtype == torch.float32:
        pytest.skip(f"{spec.entry} declares float32: no half measured, CUDA runs it in float32")
    return dtype


def _assert_close(pred, image: np.ndarray, hole: np.ndarray, want: np.ndarray, what: str) -> None:
    """Float32 samples in [0, 1] (what the pipeline reads), finite, within the tolerance of ``want``."""
    assert pred.samples.dtype == np.float32
    got = bench.composite(pred, image, hole)
    levels = bench.levels(got, want)
    assert levels is not None, f"{what}: output not finite"
    assert 0.0 <= pred.samples.min() and pred.samples.max() <= 1.0
    assert levels <= TOLERANCE_LEVELS, f"{what}: {levels:.2f} levels from float32 (tolerance {TOLERANCE_LEVELS})"


# --------------------------------------------------------------------------- the switch


@pytest.mark.parametrize(("value", "expected"), [
    (None, True), ("1", True), ("yes", True), ("0", False), (" 0 ", False), ("false", False), ("Off", False),
    ("no", False),
])
def test_inpaint_half_switch(value: str | None, expected: bool) -> None:
    assert half_enabled({} if value is None else {HALF_ENV: value}) is expected


@pytest.mark.parametrize("declared", [torch.float16, torch.bfloat16])
def test_half_only_on_cuda_and_only_when_allowed(declared: torch.dtype) -> None:
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert autocast_dtype(cuda, declared, half=True) == declared
    assert autocast_dtype(cuda, declared, half=False) is None  # INPAINT_HALF=0: float32 on CUDA too
    assert autocast_dtype(cpu, declared, half=True) is None  # the CPU never runs half: slower and less exact
    assert autocast_dtype(cuda, torch.float32, half=True) is None  # not measured: float32


class _Tiny(NeuralNetwork):
    """A network declaring float16, on the CPU."""

    FACTS = NetworkFacts(gpu_dtype=torch.float16)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1)


class _OnCuda(_Tiny):
    """Its weights claim to be on CUDA: all ``precision()`` reads of them, so no GPU is needed."""

    @property
    def device(self) -> torch.device:
        return torch.device("cuda")


def test_precision_is_the_declared_autocast_unless_inpaint_half_is_0(monkeypatch: pytest.MonkeyPatch) -> None:
    net = _OnCuda()
    monkeypatch.delenv(HALF_ENV, raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available ... Disabling autocast" on a machine without
        context = net.precision()
    assert isinstance(context, torch.autocast)
    assert (context.device, context.fast_dtype) == ("cuda", torch.float16)
    monkeypatch.setenv(HALF_ENV, "0")
    assert isinstance(net.precision(), contextlib.nullcontext)


def test_precision_is_a_no_op_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HALF_ENV, "1")
    assert isinstance(_Tiny().precision(), contextlib.nullcontext)


# --------------------------------------------------------------------------- the CPU proxy and float32 islands


class _Products(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.up = nn.ConvTranspose2d(4, 4, 4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up(self.conv(x)).flatten(2)
        return torch.bmm(y.transpose(1, 2), y)


@pytest.mark.parametrize("dtype", HALVES)
def test_cpu_proxy_is_cpu_autocast_with_float32_accumulation(dtype: torch.dtype) -> None:
    """Same casts and output dtypes as CPU autocast, results within a few of its roundings."""
    torch.manual_seed(0)
    net, x = _Products().eval(), torch.randn(1, 3, 6, 5)
    with torch.inference_mode():
        exact = net(x)
        with torch.autocast("cpu", dtype=dtype):
            real = net(x)
        with bench.cpu_autocast(dtype):
            proxy = net(x)
    assert real.dtype == proxy.dtype == dtype
    eps = torch.finfo(dtype).eps
    scale = exact.abs().max()
    assert (proxy.float() - real.float()).abs().max() <= 8 * eps * scale
    assert (proxy.float() - exact).abs().max() > 0  # it did round


def test_partial_conv_stays_finite_in_float16_over_empty_windows() -> None:
    """The count of valid inputs stays float32: float16 lost the 1e-8 floor and gave 3136/0 * 0 = NaN."""
    torch.manual_seed(0)
    conv = PartialConv2d(4, 4, 7, 1, 3).eval()
    x, mask = torch.randn(1, 4, 32, 32), torch.ones(1, 1, 32, 32)
    mask[..., 4:28, 4:28] = 0  # windows that see no valid pixel
    with torch.inference_mode():
        want, want_mask = conv(x, mask)
        with bench.cpu_autocast(torch.float16):
            got, got_mask = conv(x, mask)
    assert torch.isfinite(got).all()
    assert torch.equal(got_mask, want_mask) and got_mask.dtype == torch.float32
    assert (got.float() - want).abs().max() <= 1e-2 * want.abs().max()


class _FFTDtypes(TorchFunctionMode):
    """Records the input dtype of every ``torch.fft`` call."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.dtype] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if "fft" in getattr(func, "__name__", ""):
            self.seen.append(args[0].dtype)
        return func(*args, **(kwargs or {}))


def test_lama_ffts_run_in_float32_under_half_autocast() -> None:
    """cuFFT in float16 takes only power-of-2 sizes: the Fourier unit casts to float32 first (here 24x20)."""
    unit, x = FourierUnit(8).eval(), torch.randn(1, 8, 24, 20)
    record = _FFTDtypes()
    with torch.inference_mode(), bench.cpu_autocast(torch.float16), record:
        out = unit(x.half())
    assert record.seen and set(record.seen) <= {torch.float32, torch.complex64}
    assert out.dtype == torch.float16  # back in the caller's dtype


# --------------------------------------------------------------------------- every network, on its first fixture


@pytest.mark.slow  # a 256 px forward in float32 and one under (emulated) CPU autocast, per network
@pytest.mark.parametrize("spec", contract.NETWORKS)
def test_declared_gpu_dtype_stays_close_on_the_first_fixture(spec: ModelSpec,
                                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    dtype = _declared(spec)
    image, hole = _first_fixture(spec)
    net = _net(spec, tmp_path_factory)
    want = bench.composite(bench.predict(net, spec, image, hole, "cpu", None), image, hole)
    pred = bench.predict(net, spec, image, hole, "cpu", dtype)
    _assert_close(pred, image, hole, want, f"{spec.entry} in {dtype} (CPU autocast)")


@pytest.mark.slow  # loads every network's release files
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("spec", contract.NETWORKS)
def test_cuda_precision_stays_close_to_cpu_float32(spec: ModelSpec, tmp_path_factory: pytest.TempPathFactory,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's path on a GPU: ``inpaint`` under the network's own ``precision()``, against CPU float32."""
    dtype = _declared(spec)
    image, hole = _first_fixture(spec)
    cpu = _net(spec, tmp_path_factory)
    want = bench.composite(bench.predict(cpu, spec, image, hole, "cpu", None), image, hole)
    monkeypatch.setenv(HALF_ENV, "1")
    gpu = copy.deepcopy(cpu).deploy("cuda")
    context = gpu.precision()
    assert isinstance(context, torch.autocast) and context.fast_dtype == dtype
    pred = gpu.inpaint(Batch(image[None], hole[None]), samples=bench.SAMPLES if spec.diverse else 1, seed=0)
    _assert_close(pred, image, hole, want, f"{spec.entry} on CUDA in {dtype}")

