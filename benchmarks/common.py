"""What every benchmark script shares: the evaluation set, which models can run, the command line.

The scripts measure only models whose weights are on this machine: a benchmark that silently
downloads 200 MB, or that runs a network with random weights and calls the result "quality",
would mislead the people reading the report. Every model left out is named with the reason.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from app import registry
from app.model_cache import availability
from app.models.base import HALF_ENV
from app.specs import ModelSpec
from app.weights.loader import local_dir
from app.weights.resolve import locate
from benchmarks import machine

REPO = Path(__file__).resolve().parents[1]
EVALSET_ENV = "INPAINT_EVALSET"
DEFAULT_OUT = REPO / "docs" / "benchmarks"
#: Reading order of the mask families (generator order, irregular masks by hole ratio).
FAMILY_ORDER = ("thin", "medium", "thick", "irr_00_10", "irr_10_20", "irr_20_30", "irr_30_40", "irr_40_50",
                "irr_50_60", "box", "object")
ON_DISK = ("local", "cached")  # weight locations that need no download


def evalset_dir(value: str | Path | None = None) -> Path:
    """``--evalset``, else ``$INPAINT_EVALSET``, else ``../shared/evalset`` beside the checkout."""
    return Path(value or os.environ.get(EVALSET_ENV) or REPO.parent / "shared" / "evalset")


def require_evalset(root: Path) -> Path:
    """The evalset folder, or exit with what is missing and how to point at it."""
    missing = [name for name in ("images", "hires", "masks") if not (root / name).is_dir()]
    if missing:
        sys.exit(f"No evaluation set at {root} (missing {', '.join(missing)}/). Set {EVALSET_ENV} or --evalset to "
                 "the folder with images/, hires/ and masks/ (../shared/evalset, see its README.md).")
    return root


def photos(root: Path, subset: str, limit: int | None = None) -> list[Path]:
    """The photos of ``images/`` (512 px) or ``hires/``, sorted by name, at most ``limit``."""
    found = sorted(p for p in (root / subset).iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    return found[:limit] if limit else found


def mask_path(root: Path, family: str, photo: Path) -> Path:
    return root / "masks" / family / f"{photo.stem}.png"


def families(root: Path, wanted: list[str] | None = None) -> list[str]:
    """Mask families present in the evalset (or the ones asked for), in reading order."""
    present = sorted(p.name for p in (root / "masks").iterdir() if p.is_dir())
    unknown = sorted(set(wanted or []) - set(present))
    if unknown:
        sys.exit(f"Unknown mask families {', '.join(unknown)}; {root / 'masks'} has {', '.join(present)}.")
    chosen = wanted or present
    return sorted(chosen, key=lambda f: (FAMILY_ORDER.index(f) if f in FAMILY_ORDER else len(FAMILY_ORDER), f))


@dataclass
class Selection:
    """The models a run measures, and every other registered model with why it is not measured."""

    models: list[ModelSpec] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    weights: dict[str, str] = field(default_factory=dict)  # neural model id -> where its weights are


def select_models(requested: list[str] | None = None) -> Selection:
    """Classical models always; neural models only with weights on disk (never downloaded here)."""
    unknown = sorted(set(requested or []) - set(registry.ids()))
    if unknown:
        sys.exit(f"Unknown models {', '.join(unknown)}; choose from {', '.join(registry.ids())}.")
    selection = Selection()
    for spec in registry.MODELS:
        if requested and spec.id not in requested:
            selection.skipped[spec.id] = "not requested (--models)"
            continue
        reason = why_not_measured(spec)
        if reason:
            selection.skipped[spec.id] = reason
            continue
        selection.models.append(spec)
        if spec.kind == "neural":
            selection.weights[spec.id] = locate(spec).reason
    return selection


def require_models(selection: Selection) -> Selection:
    """``selection``, or exit naming every model and why it cannot run."""
    if not selection.models:
        sys.exit("No model can run on this machine: " + "; ".join(f"{k}: {v}" for k, v in selection.skipped.items()))
    return selection


def why_not_measured(spec: ModelSpec) -> str:
    """"" when ``spec`` can run from what is on this machine, else the reason."""
    state = availability(spec)
    if not state.ok:
        return state.reason
    if spec.kind == "classical":
        return ""
    location = locate(spec)
    if location.status in ON_DISK:
        return ""
    return (f"weights not on this machine ({location.reason}); the benchmarks never download: "
            f"`python -m app weights check {spec.id}` fetches and checks them (or put them in "
            f"{_shown(local_dir(spec))}/) to include it")


def _shown(path: Path) -> str:
    """``path`` relative to the checkout when inside it (reports must not carry one machine's paths)."""
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


def parser(doc: str, families_default: list[str] | None = None) -> argparse.ArgumentParser:
    """The options every benchmark script takes."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--evalset", type=Path, default=None, help=f"evaluation set (default ${EVALSET_ENV} or "
                   "../shared/evalset)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where results, plots and the report go")
    p.add_argument("--models", nargs="+", default=None, help="model ids (default: every model that can run here)")
    p.add_argument("--limit", type=int, default=None, help="at most N photos (quick runs)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (neural models; sets INPAINT_DEVICE)")
    if families_default is not None:
        p.add_argument("--families", nargs="+", default=families_default or None,
                       help="mask families (default: " + (" ".join(families_default) or "all") + ")")
    return p


def use_device(device: str) -> str:
    """Point the app's model cache at ``device`` (it reads ``INPAINT_DEVICE`` when loading a model)."""
    os.environ["INPAINT_DEVICE"] = device
    from app.model_cache import select_device

    return str(select_device())


@contextlib.contextmanager
def half_precision(enabled: bool) -> Iterator[None]:
    """``INPAINT_HALF`` for a block, restored after: on CUDA each network then runs in its own ``gpu_dtype``
    (``NeuralNetwork.precision()``), or in float32 everywhere. An outer ``torch.autocast`` would not do:
    the network's own autocast, inside it, wins."""
    before = os.environ.get(HALF_ENV)
    os.environ[HALF_ENV] = "1" if enabled else "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(HALF_ENV, None)
        else:
            os.environ[HALF_ENV] = before


def command(argv: list[str] | None, module: str) -> str:
    """The command line that reproduces this run, for the report."""
    import shlex

    args = sys.argv[1:] if argv is None else argv
    return shlex.join(["python", "-m", module, *[str(a) for a in args]])


@dataclass
class Setup:
    """What an evaluation-set benchmark starts from: checked inputs, the device, the machine."""

    root: Path
    device: str
    machine: dict
    selection: Selection
    started: float

    def elapsed(self) -> float:
        return round(time.perf_counter() - self.started, 1)


def setup(args: argparse.Namespace) -> Setup:
    """The evalset, device and models of ``args`` (exiting with a message when one is missing)."""
    started = time.perf_counter()
    root = require_evalset(evalset_dir(args.evalset))
    device = use_device(args.device)
    return Setup(root, device, machine.describe(device), require_models(select_models(args.models)), started)


# ------------------------------------------------------------------ interleaved timing


def interleaved(calls: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Seconds per variant and round (after one warm-up each), the order rotating every round."""
    names = list(calls)
    with torch.inference_mode():
        for name in names:
            calls[name]()
        times: dict[str, list[float]] = {name: [] for name in names}
        for r in range(rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                start = time.perf_counter()
                calls[name]()
                times[name].append(time.perf_counter() - start)
    return times


def median_ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    """Median over rounds of a / b."""
    return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))
