"""CPU precision (issue 29): bf16 autocast where the CPU computes bf16 natively, for the networks that qualify.

The machine's answer (``app.devices.cpu_bf16``: the ``INPAINT_CPU_BF16`` setting, else the CPU's bf16
instructions) is injected here, so both branches run on any CPU; the loader hands it to each network,
which takes it only where its facts declare bf16 faithful and faster (``FACTS.cpu_bf16``). The fidelity
test runs the app's path (the network's own ``precision()``) on every reference fixture of every
declaring network; where this CPU emulates bf16 it takes minutes, so it is marked slow there.
"""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest
import torch
from torch import nn

from app import devices
from app.errors import ModelUnavailableError
from app.models.base import HALF_ENV, Batch, NetworkFacts, NeuralNetwork, autocast_dtype
from app.specs import ModelSpec
from app.weights.loader import instantiate
from benchmarks import bench_precision as bench
from benchmarks import report
from tests.paths import REPO
from tests.reference import fixture_files

BOUND_LEVELS = 2.0  # the bar: at most 2 levels (1/255 each) from float32 on every fixture
PRECISION_JSON = REPO / "docs" / "benchmarks" / "precision.json"


def _declaring() -> list[ModelSpec]:
    """The first model of every network class that declares bf16 on a native-bf16 CPU."""
    return [spec for spec in bench.networks() if spec.network().FACTS.cpu_bf16]


# --------------------------------------------------------------------------- the decision


@pytest.mark.parametrize(("setting", "native", "expected"), [
    (None, True, True), (None, False, False), ("auto", True, True), ("AUTO ", False, False), ("", True, True),
    ("on", False, True), ("on", True, True), ("off", True, False), ("off", False, False),
])
def test_the_decision_follows_the_capability_unless_the_setting_forces_it(setting, native, expected) -> None:
    environ = {} if setting is None else {devices.CPU_BF16_ENV: setting}
    assert devices.cpu_bf16(environ, native=lambda: native) is expected


def test_auto_never_asks_the_cpu_when_the_setting_decides() -> None:
    def refuse() -> bool:
        raise AssertionError("asked the CPU although the setting forces the answer")

    assert devices.cpu_bf16({devices.CPU_BF16_ENV: "off"}, native=refuse) is False
    assert devices.cpu_bf16({devices.CPU_BF16_ENV: "on"}, native=refuse) is True


def test_an_unknown_setting_is_refused_with_the_values_it_takes() -> None:
    with pytest.raises(ModelUnavailableError, match="auto, on, off"):
        devices.cpu_bf16({devices.CPU_BF16_ENV: "bf16"}, native=lambda: True)


@pytest.mark.parametrize(("avx512_bf16", "amx", "expected"), [
    (False, False, False), (True, False, True), (False, True, True), (True, True, True),
])
def test_native_means_the_bf16_instructions_not_onednn_emulating_them(monkeypatch, avx512_bf16, amx, expected):
    """oneDNN says "bf16 supported" on any AVX-512 CPU, where it emulates bf16 slower than float32: not asked on x86."""
    monkeypatch.setattr(torch.cpu, "_is_avx2_supported", lambda: True)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert devices.native_cpu_bf16.__wrapped__() is expected


# --------------------------------------------------------------------------- the network takes it


class _Declares(NeuralNetwork):
    FACTS = NetworkFacts(cpu_bf16=True)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1)


class _Silent(_Declares):
    FACTS = NetworkFacts()  # cpu_bf16 not declared: float32 on every CPU


def _autocast_of(net: NeuralNetwork) -> tuple[str, torch.dtype] | None:
    context = net.precision()
    if isinstance(context, contextlib.nullcontext):
        return None
    assert isinstance(context, torch.autocast)
    return context.device, context.fast_dtype


def test_a_network_runs_bf16_on_the_cpu_only_when_it_declares_it_and_the_machine_says_so(monkeypatch) -> None:
    monkeypatch.delenv(HALF_ENV, raising=False)
    assert _autocast_of(_Declares().deploy("cpu", cpu_bf16=True)) == ("cpu", torch.bfloat16)
    assert _autocast_of(_Declares().deploy("cpu", cpu_bf16=False)) is None
    assert _autocast_of(_Declares()) is None  # never deployed: float32
    assert _autocast_of(_Silent().deploy("cpu", cpu_bf16=True)) is None
    monkeypatch.setenv(HALF_ENV, "0")  # INPAINT_HALF=0: float32 everywhere, whatever the CPU
    assert _autocast_of(_Declares().deploy("cpu", cpu_bf16=True)) is None


def test_the_cpu_decision_does_not_touch_cuda() -> None:
    cuda = torch.device("cuda")
    assert autocast_dtype(cuda, torch.float16, half=True, cpu_bf16=True) == torch.float16
    assert autocast_dtype(cuda, torch.float32, half=True, cpu_bf16=True) is None


@pytest.fixture(scope="module")
def two_networks() -> list[tuple[ModelSpec, dict[str, torch.Tensor]]]:
    """A declaring network and the smallest one that does not, each with a state of its own shape (built once)."""
    declaring = _declaring()
    assert declaring, "no network declares FACTS.cpu_bf16: the decision is never exercised"
    silent = min((spec for spec in bench.networks() if not spec.network().FACTS.cpu_bf16),
                 key=lambda spec: spec.network().FACTS.approx_mb or 0)
    return [(spec, spec.network()(**spec.kwargs).state_dict()) for spec in (declaring[0], silent)]


@pytest.mark.parametrize("native", [True, False], ids=["native-bf16", "emulated-bf16"])
def test_the_loader_hands_the_machines_answer_to_each_network(monkeypatch, two_networks, native: bool) -> None:
    """Loading through the app's one path: a declaring network runs bf16 exactly where the CPU has it."""
    monkeypatch.delenv(devices.CPU_BF16_ENV, raising=False)
    monkeypatch.setattr(devices, "native_cpu_bf16", lambda: native)
    for spec, state in two_networks:
        net = instantiate(spec, state, "cpu")
        assert net.bf16_on_cpu is (native and spec.network().FACTS.cpu_bf16), spec.id


# --------------------------------------------------------------------------- the declarations hold


def test_every_declaration_is_backed_by_the_recorded_measurements() -> None:
    """A network declares bf16 exactly when the benchmark's figures clear the bar: ≤ 2 levels on every fixture
    (closeness run) and ≥ 1.3x faster on a native-bf16 CPU class; none declares it on figures that miss it."""
    cpu = json.loads(PRECISION_JSON.read_text())["devices"]["cpu"]
    worst = {s["model"]: s["worst_levels"].get("bfloat16") for s in cpu["summary"]}
    native_runs = [run for label, run in report.cpu_classes(cpu).items()
                   if "bf16 native" in label and not run.get("quoted")]
    assert native_runs, "no CPU-settings run on a native-bf16 CPU is recorded"
    for spec in bench.networks():
        measured = [run["networks"][spec.id]["bfloat16 autocast"] for run in native_runs if spec.id in run["networks"]]
        if not measured:
            assert not spec.network().FACTS.cpu_bf16, f"{spec.id} declares bf16 without a measurement"
            continue
        clears = all(m["adopted"] for m in measured) and (worst.get(spec.id) or 99) <= BOUND_LEVELS
        assert spec.network().FACTS.cpu_bf16 is clears, (spec.id, measured, worst.get(spec.id))


def _fidelity_cases() -> list:
    marks = () if devices.native_cpu_bf16() else (pytest.mark.slow,)  # emulated bf16: minutes per fixture
    cases = [pytest.param(spec, path, id=path.stem, marks=marks)
             for spec in _declaring() for path in fixture_files(bench.family(spec))]
    return cases or [pytest.param(None, None, marks=pytest.mark.skip(reason="no fixtures of a declaring network"))]


@pytest.mark.parametrize(("spec", "path"), _fidelity_cases())
def test_a_bf16_network_stays_within_2_levels_of_float32_on_every_fixture(monkeypatch, spec, path) -> None:
    """The app's path (the network's own ``precision()``), forced on so it runs on any CPU."""
    monkeypatch.setenv(devices.CPU_BF16_ENV, "on")
    with np.load(path) as data:
        image, hole, seed = data["image"], data["hole"].astype(bool), int(data["weight_seed"])
    net = bench.build(spec, seed, "cpu")
    assert net.bf16_on_cpu
    batch = Batch(image[None], hole[None])
    monkeypatch.setenv(HALF_ENV, "0")
    with torch.inference_mode():
        want = bench.composite(net.inpaint(batch), image, hole)
    monkeypatch.setenv(HALF_ENV, "1")
    with torch.inference_mode():
        got = bench.composite(net.inpaint(batch), image, hole)
    levels = bench.levels(got, want)
    assert levels is not None, "bf16 output not finite"
    assert 0 < levels <= BOUND_LEVELS, f"{levels:.2f} levels from float32 (0 = bf16 never ran)"


def test_the_report_keeps_a_column_per_cpu_class() -> None:
    runs = {label: {"command": "c", "duration_s": 60, "machine": _machine(label), "networks": {"lama": {
        "bfloat16 autocast": {"speedup": x, "levels": 0.9, "size": 256, "adopted": x >= 1.3}}}}
        for label, x in (("CPU A, AVX512, bf16 native (AMX)", 1.6), ("CPU B, AVX2, bf16 emulated", 0.2))}
    section = report.settings_section({"cpu_classes": runs})
    header = next(line for line in section.splitlines() if line.startswith("| network"))
    assert "CPU A, AVX512, bf16 native (AMX)" in header and "CPU B, AVX2, bf16 emulated" in header
    assert "1.60x at 256², 0.90 lv ✓" in section and "0.20x at 256², 0.90 lv ✗" in section


def _machine(label: str) -> dict:
    return {"cpu_class": label, "cpu": label, "cpu_count": 2, "ram_gib": 8, "gpu": "none", "device": "cpu", "os": "x",
            "python": "3", "code": "x", "date": "d", "versions": {k: "1" for k in (
                "torch", "numpy", "opencv-python-headless", "pypatchmatch", "scikit-image")}}
