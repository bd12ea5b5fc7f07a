"""Half precision per network: float32 against its GPU dtype, in speed and in 8-bit levels on the fixtures.

    python -m benchmarks.bench_precision --device cpu --repeats 3    # CPU autocast: numerics, CPU speed
    python -m benchmarks.bench_precision --device cuda --repeats 10  # a GPU machine: the real thing

For every registered network class (first spec of each, as ``tests/test_model_contract.py``):

* **latency**: one crop (batch 1) at 256 px and 512 px where the pipeline feeds the network that
  size (its crop limit), float32 and half timed alternately after a warm-up of each, median over
  ``--repeats``; speed-up = float32 median / half median (> 1: half is faster).
* **closeness**: every reference fixture of the network's family (``<family>_*.npz`` in
  ``$INPAINT_REFERENCE_FIXTURES``, default ../shared/reference/fixtures), with the synthetic weights
  that made it (``weight_seed``, ../shared/reference/init_weights.py): the composited output (fill
  in the hole, photo elsewhere, every sample of diverse networks) under float16 and under bfloat16
  against float32, as the largest absolute difference in 8-bit levels (1 level = 1/255); a
  non-finite output is reported as such. The declared ``FACTS.gpu_dtype`` is the candidate that
  stays finite and closest.

On ``--device cpu`` the closeness runs under :func:`cpu_autocast`: ``torch.autocast("cpu", dtype)``
whose convolutions and matrix products round their operands to ``dtype``, accumulate in float32
and round the result, as CUDA's half kernels do (a CPU without native half kernels runs them 30x
slower than float32 and more). Same dtype rounding as CUDA, other kernels and op lists (CUDA
autocast runs ``pow``/``sum``/``softmax`` in float32, CPU autocast does not): a proxy for CUDA
numerics, not a replica. CPU timings use the CPU's own half kernels; without native ones (no
AVX-512 BF16/FP16, AMX) half is timed on one small crop only, 64 px or the smallest the network
takes (``--force-cpu-half``: at every size).
On ``--device cuda`` the declared dtype goes through the network's own ``precision()`` (the app's
path), float32 through ``INPAINT_HALF=0``. The two devices are stored side by side in
``precision.json``/``.csv``: a run on one device keeps the other's results, and a device never run
stays "not measured" in the report (``--device cuda`` without a CUDA device exits, measuring nothing).
Synthetic weights suffice here: the figures are numerical headroom and speed, not image quality.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_map_only

from app import registry
from app.devices import native_cpu_bf16
from app.models.base import Batch, NeuralNetwork, Prediction
from app.specs import ModelSpec
from app.weights.loader import instantiate
from app.weights.official import OfficialFile, map_keys
from benchmarks import common, machine, report, results
from benchmarks.bench_models import make_batch
from benchmarks.reference_weights import load_init_weights

MODULE = "benchmarks.bench_precision"
HALF_DTYPES = (torch.float16, torch.bfloat16)
RESULT = "precision"  # precision.json / precision.csv in --out
SIZES = (256, 512)
PROBE_SIZE = 64  # px: half timed from this size up on a CPU without half kernels (see probe_size)
CANDIDATES = {"float16": torch.float16, "bfloat16": torch.bfloat16}
SAMPLES = 3  # diverse networks: samples compared per fixture (the PIC fixtures hold 3)
REFERENCE_ENV, FIXTURES_ENV = "INPAINT_REFERENCE", "INPAINT_REFERENCE_FIXTURES"
#: Release file -> the manifest in ../shared/reference/manifests describing its state_dict.
MANIFESTS = {
    "checkpoint.pth": "rfr_G",
    "EdgeModel_gen.pth": "edgeconnect_EdgeModel_gen",
    "InpaintingModel_gen.pth": "edgeconnect_InpaintingModel_gen",
    "latest_net_E.pth": "pic_net_E",
    "latest_net_G.pth": "pic_net_G",
    "latest_net_D.pth": "pic_net_D",
    "best.ckpt": "lama_generator",
    "Places_512_FullData_G.pth": "mat_G",
}


# --------------------------------------------------------------------------- networks and fixtures


def networks() -> list[ModelSpec]:
    """The first registered spec of each network class: precision is a property of the code, not the dataset."""
    first: dict[str, ModelSpec] = {}
    for spec in registry.NEURAL:
        first.setdefault(spec.entry, spec)
    return list(first.values())


#: Network classes whose fixture prefix (and ``<prefix>_generator`` manifest) is not their module's name.
FAMILIES = {"app.models.migan:MIGAN512": "migan512"}


def family(spec: ModelSpec) -> str:
    """The fixture prefix of ``spec``'s network: its module name (``app.models.rfr:RFRNet`` -> ``rfr``)."""
    return FAMILIES.get(spec.entry) or spec.entry.partition(":")[0].rpartition(".")[2]


def reference_dir() -> Path:
    return Path(os.environ.get(REFERENCE_ENV) or common.REPO.parent / "shared" / "reference")


def fixture_files(name: str) -> list[Path]:
    """Every ``<name>_*.npz`` of the fixture folder, sorted."""
    folder = Path(os.environ.get(FIXTURES_ENV) or reference_dir() / "fixtures")
    return sorted(folder.glob(f"{name}_*.npz")) if folder.is_dir() else []


def _init_weights() -> ModuleType:
    try:
        return load_init_weights(reference_dir())  # the loader tests/reference.py uses too
    except FileNotFoundError as missing:
        sys.exit(f"No {missing}: set {REFERENCE_ENV} to ../shared/reference (it makes the fixtures' weights).")


def synthetic_state(spec: ModelSpec, seed: int) -> dict[str, torch.Tensor]:
    """The fixtures' synthetic weights in our layout, mapped from each release file as the loader maps it."""
    make = _init_weights().make_state_dict
    state: dict[str, torch.Tensor] = {}
    for official in spec.network().FACTS.official_files:
        state.update(map_keys(_release_keys(make, official, family(spec), seed), official))
    return state


def manifest_of(official: OfficialFile, name: str) -> str:
    """The manifest of a release file: :data:`MANIFESTS`, else ``<family>_generator`` (mmagic's single generators)."""
    return MANIFESTS.get(official.name, f"{name}_generator")


def _release_keys(make: Callable, official: OfficialFile, name: str, seed: int) -> dict[str, torch.Tensor]:
    """One release file's state_dict with the key prefix the release carries (LaMa's ``generator.``...)."""
    path = reference_dir() / "manifests" / f"{manifest_of(official, name)}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no manifest {path.name} for {official.name}: add it to MANIFESTS in "
                                f"{Path(__file__).name}")
    entries = json.loads(path.read_text())["entries"]
    return {official.prefix + k: v for k, v in make(entries, seed).items()}


def build(spec: ModelSpec, seed: int, device: str) -> NeuralNetwork:
    return instantiate(spec, synthetic_state(spec, seed), device, source="synthetic weights")


# --------------------------------------------------------------------------- running in a precision


#: The products CPU autocast runs in half, which dominate the time: convolutions and matrix products.
_PRODUCTS = frozenset({
    torch.conv1d, torch.conv2d, torch.conv3d, torch.conv_transpose1d, torch.conv_transpose2d,
    torch.conv_transpose3d, torch.nn.functional.linear, torch.mm, torch.bmm, torch.matmul, torch.addmm,
    torch.baddbmm, torch.addbmm, torch.Tensor.mm, torch.Tensor.bmm, torch.Tensor.matmul, torch.Tensor.__matmul__,
})


class _Float32Accumulation(TorchFunctionMode):
    """Under CPU autocast, a product rounds its operands to the autocast dtype, computes in float32, rounds the result.

    That is what autocast asks of a half kernel, and what CUDA's do (products of half values
    accumulated in float32, one rounding at the end). This CPU has no AVX-512 BF16/FP16: its own
    half convolutions take 30x the float32 time and more (RFR-Net at 64 px: 15.7 s against 0.53 s),
    too slow to test. A function mode, not a dispatch mode: entering one of those imports torch._dynamo (3-5 s).
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _PRODUCTS and torch.is_autocast_enabled("cpu"):
            low = torch.get_autocast_dtype("cpu")
            operands = [t for t in _tensors((args, kwargs)) if t.is_floating_point()]
            if operands and all(t.dtype in (torch.float32, *HALF_DTYPES) for t in operands):
                wide = tree_map_only(torch.Tensor, lambda t: t.to(low).float() if t.is_floating_point() else t,
                                     (args, kwargs))
                with torch.autocast("cpu", enabled=False):
                    return func(*wide[0], **wide[1]).to(low)
        return func(*args, **kwargs)


def _tensors(tree: object) -> list[torch.Tensor]:
    found: list[torch.Tensor] = []
    tree_map_only(torch.Tensor, found.append, tree)
    return found


@contextlib.contextmanager
def cpu_autocast(dtype: torch.dtype) -> Iterator[None]:
    """``torch.autocast("cpu", dtype)`` with float32 accumulation in the products (:class:`_Float32Accumulation`).

    The op lists are CPU autocast's: the same dtype rounding as on CUDA, other kernels, and
    some ops CUDA autocast runs in float32 (``pow``, ``sum``, ``softmax`` ...) stay in half
    here. A proxy for CUDA numerics, not a replica; the networks keep their fragile steps in
    float32 explicitly (``app.models.base.float32_region``), so those do not depend on the lists.
    """
    with torch.autocast("cpu", dtype=dtype), _Float32Accumulation():
        yield


def precision_mode(net: NeuralNetwork, device: str, dtype: torch.dtype | None,
                   emulate: bool = True) -> contextlib.ExitStack:
    """float32 (``dtype`` None) or ``dtype``: on CUDA the declared dtype is the network's own ``precision()``.

    Any other case switches the network's own half off and autocasts from outside (on the CPU
    ``precision()`` is a no-op anyway): :func:`cpu_autocast` when ``emulate``, else the CPU's
    own half kernels (only for timing them).
    """
    kind = device.split(":")[0]
    native = kind == "cuda" and dtype is not None and dtype == net.FACTS.gpu_dtype
    stack = contextlib.ExitStack()
    stack.enter_context(common.half_precision(native))
    if dtype is not None and not native:
        outer = cpu_autocast(dtype) if kind == "cpu" and emulate else torch.autocast(kind, dtype=dtype)
        stack.enter_context(outer)
    return stack


def predict(net: NeuralNetwork, spec: ModelSpec, image: np.ndarray, hole: np.ndarray, device: str,
            dtype: torch.dtype | None) -> Prediction:
    """The network's fill of one crop in float32 (``dtype`` None) or ``dtype`` (see :func:`precision_mode`)."""
    with precision_mode(net, device, dtype):
        return net.inpaint(Batch(image[None], hole[None]), samples=SAMPLES if spec.diverse else 1, seed=0)


def composite(pred: Prediction, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """(S, H, W, 3) float64: the fill in the hole, the photo elsewhere, as the pipeline composites it."""
    return np.where(hole[None, ..., None], pred.samples[0].astype(np.float64), image[None].astype(np.float64) / 255)


def levels(got: np.ndarray, want: np.ndarray) -> float | None:
    """Largest absolute difference in 8-bit levels; None when ``got`` is not finite (NaN/inf)."""
    if not np.isfinite(got).all():
        return None
    return float(np.abs(got - want).max() * 255)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# --------------------------------------------------------------------------- measurements


def closeness(spec: ModelSpec, device: str, nets: dict[int, NeuralNetwork]) -> list[dict]:
    """One row per fixture and candidate dtype: levels from float32 (None = not finite)."""
    rows = []
    for path in fixture_files(family(spec)):
        with np.load(path) as data:
            image, hole, seed = data["image"], data["hole"].astype(bool), int(data["weight_seed"])
        if seed not in nets:
            nets[seed] = build(spec, seed, device)
        net = nets[seed]
        reference = composite(predict(net, spec, image, hole, device, None), image, hole)
        for name, dtype in CANDIDATES.items():
            diff = levels(composite(predict(net, spec, image, hole, device, dtype), image, hole), reference)
            rows.append({"kind": "fixture", "device": device, "model": spec.id, "case": path.stem,
                         "precision": name, "levels": diff, "finite": diff is not None, "seconds": None})
            print(f"{spec.id:<22} {device:<5} {path.stem:<18} {name:<9} "
                  f"{'not finite' if diff is None else f'{diff:.3f} levels'}", file=sys.stderr, flush=True)
    return rows


def sizes_of(spec: ModelSpec) -> list[int]:
    """The benchmark sizes the pipeline feeds this network (up to its crop limit)."""
    limit = spec.crop_limit
    return [s for s in SIZES if limit is None or s <= limit]


def native_cpu_half(dtype: torch.dtype) -> bool:
    """Whether this CPU computes ``dtype`` natively (bf16: AVX512-BF16 or AMX, the app's own test
    :func:`app.devices.native_cpu_bf16`; float16: oneDNN's AVX512-FP16/AMX-FP16 check); without it half is emulated."""
    if dtype == torch.bfloat16:
        return native_cpu_bf16()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_fp16_supported())


def timing_plan(spec: ModelSpec, net: NeuralNetwork, device: str, force_cpu_half: bool) -> list[tuple[int, bool]]:
    """(size, whether half is timed too) per size to time.

    A CPU without native half kernels runs a half convolution 30-100x slower than float32 (minutes
    per call at 256 px): there half is timed at :func:`probe_size` only, unless ``force_cpu_half``.
    """
    half = net.FACTS.gpu_dtype
    timed_half = half != torch.float32
    if device.startswith("cuda") or force_cpu_half or native_cpu_half(half):
        return [(size, timed_half) for size in sizes_of(spec)]
    probe = probe_size(spec, net) if timed_half else None
    return [(size, False) for size in sizes_of(spec)] + ([(probe, True)] if probe else [])


def probe_size(spec: ModelSpec, net: NeuralNetwork) -> int | None:
    """The smallest crop from :data:`PROBE_SIZE` up that the network takes (DeepFill refuses < 72 px, PConv
    takes multiples of 128); None when none up to the largest benchmark size."""
    step = spec.size_multiple or 1
    for size in range(-(-PROBE_SIZE // step) * step, max(SIZES) + 1, step):
        try:
            with torch.inference_mode():
                net.inpaint(make_batch(size, 1))
        except ValueError:  # CropSizeError and the older networks' ValueError: too small or off the multiple
            continue
        return size
    return None


def latency(spec: ModelSpec, net: NeuralNetwork, device: str, repeats: int, plan: list[tuple[int, bool]]) -> list[dict]:
    """float32 (and the declared dtype) per size, alternating call by call so drift hits both alike."""
    rows = []
    half = net.FACTS.gpu_dtype
    for size, with_half in plan:
        modes = {"float32": None} | ({dtype_name(half): half} if with_half else {})
        batch = make_batch(size, 1)

        def call(dtype: torch.dtype | None, batch: Batch = batch) -> float:
            start = time.perf_counter()
            with precision_mode(net, device, dtype, emulate=False):  # the device's own half kernels: real speed
                net.inpaint(batch, samples=1, seed=0)
            sync(device)
            return time.perf_counter() - start

        for dtype in modes.values():  # warm-up: kernels, allocator, autocast caches
            call(dtype)
        for r in range(repeats):
            for name, dtype in modes.items():
                rows.append({"kind": "latency", "device": device, "model": spec.id, "case": f"{size}px",
                             "precision": name, "levels": None, "finite": None, "seconds": call(dtype),
                             "repeat": r})
        print(f"{spec.id:<22} {device:<5} {size}px timed: {', '.join(modes)}", file=sys.stderr, flush=True)
    return rows


def measure(spec: ModelSpec, device: str, repeats: int, force_cpu_half: bool) -> list[dict]:
    """Closeness on every fixture, then timings (on the fixtures' first weights)."""
    nets: dict[int, NeuralNetwork] = {}
    rows = closeness(spec, device, nets)
    net = next(iter(nets.values()), None) or build(spec, 1, device)
    plan = timing_plan(spec, net, device, force_cpu_half)
    return rows + latency(spec, net, device, repeats, plan)


#: CPU settings tried per network (issue 18); adopted by the rule :data:`report.ADOPT_SPEEDUP` /
#: :data:`report.ADOPT_LEVELS` states.
CPU_SETTINGS = ("bfloat16 autocast", "channels_last")


@contextlib.contextmanager
def cpu_setting(net: NeuralNetwork, setting: str | None) -> Iterator[None]:
    """The network under ``setting`` (None = plain float32): the CPU's own bf16 autocast, or channels_last weights.

    ``INPAINT_HALF=0`` inside, so the network's own ``precision()`` (bf16 where the app would choose it)
    cannot turn the float32 reference into bf16; the outer autocast still applies to the setting.
    """
    with common.half_precision(False):
        if setting == "channels_last":
            _memory_format(net, torch.channels_last)
            try:
                yield
            finally:
                _memory_format(net, torch.contiguous_format)
        elif setting == "bfloat16 autocast":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                yield
        else:
            yield


def _memory_format(net: NeuralNetwork, memory_format: torch.memory_format) -> None:
    """The 4-D weights in ``memory_format`` (MAT's 5-D style weights cannot take channels_last: ``net.to`` refuses)."""
    for param in net.parameters():
        if param.dim() == 4:
            param.data = param.data.contiguous(memory_format=memory_format)


def _fixtures(spec: ModelSpec) -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    """(name, image, hole, weight seed) of every reference fixture of ``spec``'s network."""
    found = []
    for path in fixture_files(family(spec)):
        with np.load(path) as data:
            found.append((path.stem, data["image"], data["hole"].astype(bool), int(data["weight_seed"])))
    return found


def cpu_settings(spec: ModelSpec, repeats: int, known: dict | None = None) -> dict:
    """Per setting: speed-up over float32 for one crop at the network's native size (interleaved calls, median
    of the ratios) and the largest difference in 8-bit levels over every fixture, and whether it clears the bar.

    Where this CPU has no bf16 instructions, bf16 autocast is emulated (EdgeConnect at 64 px: 30 s against
    5 s) and a fixture takes minutes: its levels are then the ones the closeness run measured on every
    fixture (``known``: the summary's ``worst_levels``, CPU autocast with float32 accumulation, which rounds
    as the native kernels do), and its speed is timed once on the smallest crop.
    """
    cases = _fixtures(spec)
    nets = {seed: build(spec, seed, "cpu") for seed in dict.fromkeys(c[3] for c in cases)}
    samples = SAMPLES if spec.diverse else 1

    def run(net: NeuralNetwork, setting: str | None, batch: Batch) -> Prediction:
        with torch.inference_mode(), cpu_setting(net, setting):
            return net.inpaint(batch, samples=samples, seed=0)

    references = [composite(run(nets[seed], None, Batch(image[None], hole[None])), image, hole)
                  for _, image, hole, seed in cases]
    net = nets[cases[0][3]]
    out = {}
    for setting in CPU_SETTINGS:
        emulated = setting == "bfloat16 autocast" and not native_cpu_half(torch.bfloat16)
        if emulated:
            diff, case = (known or {}).get("bfloat16"), "worst of every fixture (closeness run, emulated)"
        else:
            diff = _worst(levels(composite(run(nets[seed], setting, Batch(image[None], hole[None])), image, hole), want)
                          for (_, image, hole, seed), want in zip(cases, references, strict=True))
            case = "worst of every fixture (this CPU's kernels)"
        size = probe_size(spec, net) if emulated else spec.native_size or 256
        batch = make_batch(size, 1)
        times = common.interleaved({"float32": functools.partial(run, net, None, batch),
                                    setting: functools.partial(run, net, setting, batch)}, 1 if emulated else repeats)
        speedup = common.median_ratio(times, "float32", setting)
        out[setting] = {"speedup": round(speedup, 3), "levels": diff, "case": case, "size": size,
                        "float32_s": round(min(times["float32"]), 3), "setting_s": round(min(times[setting]), 3),
                        "adopted": diff is not None and speedup >= report.ADOPT_SPEEDUP and diff <= report.ADOPT_LEVELS}
        print(f"{spec.id:<22} cpu   {setting:<18} x{speedup:.2f}, {diff} levels", file=sys.stderr, flush=True)
    return out


def settings_run(specs: list[ModelSpec], args, argv: list[str] | None, started: float) -> int:
    """``--cpu-settings``: every network's CPU settings, kept in precision.json per CPU class (a run on another
    class of CPU keeps this one's figures beside its own)."""
    info = machine.describe("cpu")
    data = results.read_json(args.out / f"{RESULT}.json") or {"kind": RESULT, "devices": {}}
    part = data["devices"].setdefault("cpu", {"summary": []})
    classes = report.cpu_classes(part)
    part.pop("cpu_settings", None)  # the single run of before issue 29, kept under its class
    known = {s["model"]: s.get("worst_levels") for s in part["summary"]}
    found, failed = {}, {}
    for spec in (s for s in specs if fixture_files(family(s))):
        try:
            found[spec.id] = cpu_settings(spec, args.repeats, known.get(spec.id))
        except Exception as exc:  # one network that cannot be built must not lose the others' figures
            failed[spec.id] = f"failed: {type(exc).__name__}: {exc}"
            print(f"{spec.id}: {failed[spec.id]}", file=sys.stderr)
    run = {"command": common.command(argv, MODULE), "date": info["date"], "load_average": info["load_average"],
           "repeats": args.repeats}
    for settings in found.values():
        for figures in settings.values():
            figures["run"] = run  # each figure with the command that made it: a later run of a few networks merges
    label = machine.class_of(info)
    before = classes.get(label, {})
    _backfill_runs(before)
    classes[label] = {"command": run["command"], "machine": info, "repeats": args.repeats,
                      "duration_s": round(time.perf_counter() - started, 1),
                      "networks": before.get("networks", {}) | found,
                      "skipped": {k: v for k, v in (before.get("skipped", {}) | failed).items() if k not in found}}
    part["cpu_classes"] = classes
    print(f"wrote {results.write_json(args.out / f'{RESULT}.json', data)}", file=sys.stderr)
    print(report.write(args.out), file=sys.stderr)
    return 0


def _backfill_runs(entry: dict) -> None:
    """Figures written before each carried its own run get their class entry's run, before a new run merges in."""
    if not entry:
        return
    run = {"command": entry["command"], "date": entry["machine"]["date"],
           "load_average": entry["machine"].get("load_average"), "repeats": entry.get("repeats")}
    for settings in entry["networks"].values():
        for figures in settings.values():
            figures.setdefault("run", run)


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# --------------------------------------------------------------------------- summary and files


def summarise(spec: ModelSpec, rows: list[dict], device: str) -> dict:
    """Per network: the declared dtype, latency per size, levels per fixture and dtype, and the worst case."""
    declared = dtype_name(spec.network().FACTS.gpu_dtype)
    timed: dict[str, dict[str, float]] = {}
    for (case, precision), members in results.group([r for r in rows if r["kind"] == "latency"],
                                                    ["case", "precision"]).items():
        timed.setdefault(case, {})[precision] = statistics.median(r["seconds"] for r in members)
    speed = [{"size": case, "float32_s": t["float32"], "half_s": t.get(declared),
              "speedup": t["float32"] / t[declared] if t.get(declared) else None,
              "half_note": None if declared in t else _why_untimed(declared, device)}
             for case, t in timed.items()]
    fixtures: dict[str, dict[str, float | None]] = {}
    for r in rows:
        if r["kind"] == "fixture":
            fixtures.setdefault(r["case"], {})[r["precision"]] = r["levels"]
    worst = {name: _worst(f.get(name) for f in fixtures.values()) for name in CANDIDATES} if fixtures else {}
    return {"model": spec.id, "entry": spec.entry, "gpu_dtype": declared, "latency": speed,
            "fixtures": fixtures, "worst_levels": worst, "best": best_dtype(worst)}


def _why_untimed(declared: str, device: str) -> str:
    if declared == "float32":
        return "no half dtype declared (FACTS.gpu_dtype = float32)"
    if device == "cpu":
        return f"not measured: no native {declared} kernels on this CPU (see the smaller crop)"
    return "not measured"


def _worst(values) -> float | None:
    """Largest difference; None (not finite) as soon as one case was not finite."""
    out = 0.0
    for v in values:
        if v is None:
            return None
        out = max(out, v)
    return out


def best_dtype(worst: dict[str, float | None]) -> str | None:
    """The candidate that stayed finite on every fixture with the smallest largest difference."""
    finite = {name: v for name, v in worst.items() if v is not None}
    return min(finite, key=finite.get) if finite else None


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def write(out: Path, device: str, part: dict, rows: list[dict]) -> Path:
    """Store ``device``'s results beside those of the other device already in ``out``."""
    kind = device.split(":")[0]
    data = results.read_json(out / f"{RESULT}.json") or {"kind": RESULT, "devices": {}}
    before = data["devices"].get(kind, {})
    classes = report.cpu_classes(before)  # the --cpu-settings runs per CPU class stay beside the new closeness run
    data["devices"][kind] = part | ({"cpu_classes": classes} if classes else {})
    kept = [r for r in _read_rows(out / f"{RESULT}.csv") if r["device"].split(":")[0] != kind]
    columns = ["kind", "device", "model", "case", "precision", "levels", "finite", "seconds", "repeat"]
    results.write_csv(out / f"{RESULT}.csv", [{c: r.get(c) for c in columns} for r in kept + rows])
    return results.write_json(out / f"{RESULT}.json", data)


def build_parser():
    import argparse

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per precision and size")
    p.add_argument("--models", nargs="+", default=None, help="model ids (default: one per network class)")
    p.add_argument("--force-cpu-half", action="store_true",
                   help="time half at every size on a CPU without half kernels too (else one small crop only)")
    p.add_argument("--cpu-settings", action="store_true",
                   help="only try bf16 autocast and channels_last per network on the CPU (speed, levels), "
                        "stored beside the last run's other figures")
    p.add_argument("--out", type=Path, default=common.DEFAULT_OUT)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("No CUDA device here: nothing measured. The report keeps the GPU figures 'not measured'.")
    started = time.perf_counter()
    specs = [s for s in networks() if not args.models or s.id in args.models]
    if args.cpu_settings:
        return settings_run(specs, args, argv, started)
    info = machine.describe(args.device)
    rows, summary, skipped = [], [], {}
    for spec in specs:
        if not fixture_files(family(spec)):
            skipped[spec.id] = f"no {family(spec)}_*.npz fixtures (set {FIXTURES_ENV})"
            continue
        try:
            measured = measure(spec, args.device, args.repeats, args.force_cpu_half)
        except Exception as exc:  # one network that cannot be built must not lose the others' figures
            skipped[spec.id] = f"failed: {type(exc).__name__}: {exc}"
            print(f"{spec.id}: {skipped[spec.id]}", file=sys.stderr)
            continue
        rows += measured
        summary.append(summarise(spec, measured, args.device))
    part = {"command": common.command(argv, MODULE), "machine": info, "repeats": args.repeats,
            "duration_s": round(time.perf_counter() - started, 1), "models": [s["model"] for s in summary],
            "skipped": skipped, "summary": summary}
    print(f"wrote {write(args.out, args.device, part, rows)}", file=sys.stderr)
    print(report.write(args.out), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
