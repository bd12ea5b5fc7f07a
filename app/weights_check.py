"""``python -m app weights check [ids | --all]``: fetch each model, run it, compare it with Telea, flag bad conversions.

Meant for the first start on a machine with internet (a Space, an operator's server): every
model's weights are fetched the way a first click fetches them (:func:`~app.model_cache.download`),
loaded strictly, and run through :func:`app.pipeline.run` on the bundled examples (``assets/``) and
on a few photos of the evaluation set with their ``object`` masks. Per model it prints download
and load time, forward time, whether the output is finite and varied, and hole PSNR / GMSD next
to Telea's on the same holes (the benchmark's own metrics, :mod:`benchmarks.metrics`).

A conversion can load strictly and still be wrong: colour channels swapped (RGB/BGR), the
wrong value range ([0, 1] vs [-1, 1]), a mask of the wrong polarity. Those do not crash; they
give fills that look wrong. :func:`judge` turns what such mistakes do to a fill into flags, with
thresholds measured on the evaluation set's ``object`` masks (``docs/benchmarks/quality.csv``
and Telea / Navier-Stokes / PatchMatch fills of all 58 photos, 2026-12):

* **much worse than Telea**: mean hole PSNR over the evaluation photos more than
  :data:`PSNR_MARGIN` dB below Telea's, or mean GMSD more than :data:`GMSD_MARGIN` above. The
  classical rows of the report lie within 0.72 dB and 0.03 GMSD of Telea on every mask family
  (object: Navier-Stokes +0.16 dB, PatchMatch -0.41 dB); per photo PatchMatch, a legitimate
  method, falls to -4.6 dB and +0.051 GMSD, on the worst mean of three photos -4.16 dB and +0.037.
  The margins sit above all of those, so no classical method would ever be flagged.
* **colours swapped**: reversing the fill's channels brings its mean colour closer to Telea's
  fill by more than :data:`SWAP_GAIN` levels on average. For Navier-Stokes and PatchMatch this
  gain is at most 2.8 levels on any photo (0 at the 95th percentile); Telea's own fill reversed
  gains 34 levels at the median.
* **colour off** (a scaling or range mistake): the fill's mean colour differs from Telea's by
  more than :data:`SHIFT_LEVELS` levels on average. The true content of the hole differs from
  Telea's fill by 11 levels at the median and 44 at worst on single photos; PatchMatch by 37 at worst.
* **outside the photo's range**: more than :data:`OUT_OF_RANGE` of the fill's values lie
  beyond the colours of the photo around it (Telea and PatchMatch only reuse those colours).
* **constant**: the fill's standard deviation is below :data:`FLAT_STD` levels where Telea's is
  above :data:`VARIED_STD` (Telea's is at least 14 on every object hole).
* **the input back**: :data:`SAME_SHARE` of the hole's pixels within 2 levels of the input, the
  fill of a network that ignores its mask.
* NaN/inf output (the pipeline refuses it) is flagged as well.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from app import model_cache, pipeline
from app.errors import InpaintError
from app.images import Photo, load_photo
from app.masks import to_hole
from app.specs import ModelSpec
from app.weights import hub

ASSETS = Path(__file__).resolve().parents[1] / "assets"
REFERENCE = "telea"
SIDE = 512  # longest side the photos are checked at: a few seconds per model on a CPU
PHOTOS = 3  # evaluation photos

PSNR_MARGIN = 4.5  # dB below Telea, mean over the evaluation photos
GMSD_MARGIN = 0.06  # above Telea, mean over the evaluation photos
SWAP_GAIN = 6.0  # 8-bit levels, mean over all photos
SHIFT_LEVELS = 40.0  # 8-bit levels, mean over all photos
OUT_OF_RANGE = 0.2  # share of the fill's channel values, mean over all photos
RANGE_SLACK = 16  # levels beyond the photo's 0.5-99.5 % range that still count as inside
FLAT_STD = 1.0  # levels
VARIED_STD = 4.0  # levels
SAME_SHARE = 0.9  # share of hole pixels, mean over all photos
NAN_MARKER = "NaN/inf"  # in the pipeline's message for a non-finite fill
UNREACHABLE = "cannot be reached"  # in the visitor's words of every unreachable source (app.weights.probe)

Print = Callable[[str], None]


@dataclass(frozen=True)
class Case:
    """One photo and hole; ``truth``: the hole's original pixels are the right answer (evaluation set)."""

    name: str
    photo: Photo
    hole: np.ndarray
    truth: bool


@dataclass
class Measure:
    """What one fill of one case looked like, next to Telea's fill of the same hole."""

    seconds: float
    psnr: float | None = None  # only where ``truth``
    gmsd: float | None = None
    shift: float = 0.0  # max over channels of |mean fill - mean Telea fill|, levels
    swap_gain: float = 0.0  # how much closer the fill comes to Telea's with its channels reversed
    out_of_range: float = 0.0  # share of fill values beyond the photo's own range
    std: float = 0.0  # the fill's standard deviation (max over channels)
    reference_std: float = 0.0  # Telea's
    same: float = 0.0  # share of hole pixels equal (within 2 levels) to the input
    darker: float = 0.0  # mean luminance of Telea's fill minus the fill's


@dataclass
class Report:
    """One model's check: times, scores, and what looked wrong (``problems``) or why it could not run."""

    spec: ModelSpec
    download_s: float | None = None  # None: already on this machine
    load_s: float = 0.0
    measures: list[Measure] = field(default_factory=list)
    reference: list[Measure] = field(default_factory=list)  # Telea on the truth cases
    problems: list[str] = field(default_factory=list)
    failure: str = ""  # could not be fetched, loaded or run
    offline: str = ""  # needs the network: why it is not there

    @property
    def ok(self) -> bool:
        return not (self.problems or self.failure or self.offline)


# ------------------------------------------------------------------------------ cases


def cases(evalset: Path | None, photos: int = PHOTOS, assets: Path = ASSETS) -> list[Case]:
    """The bundled examples, then ``photos`` evaluation photos spread over the set, with their object masks."""
    found = [_case(p.stem, p, m, truth=False) for p, m in example_pairs(assets)]
    return found + [_case(p.stem, p, m, truth=True) for p, m in evalset_pairs(evalset, photos)]


def example_pairs(assets: Path = ASSETS) -> list[tuple[Path, Path]]:
    """(photo, mask) of every bundled example: ``<name>.<ext>`` beside ``<name>_mask.png`` (as the page lists them)."""
    pairs = []
    for mask in sorted(assets.glob("*_mask.png")):
        stem = mask.name.removesuffix("_mask.png")
        photo = next((p for p in sorted(assets.glob(f"{stem}.*")) if p != mask), None)
        if photo is not None:
            pairs.append((photo, mask))
    return pairs


def evalset_pairs(root: Path | None, photos: int) -> list[tuple[Path, Path]]:
    """``photos`` images of ``root/images`` with a ``masks/object`` mask, spread evenly over the sorted names."""
    if root is None or photos <= 0 or not (root / "masks" / "object").is_dir():
        return []
    images = sorted(p for p in (root / "images").glob("*") if (root / "masks" / "object" / f"{p.stem}.png").is_file())
    if not images:
        return []
    picks = np.unique(np.linspace(0, len(images) - 1, min(photos, len(images))).round().astype(int))
    return [(images[i], root / "masks" / "object" / f"{images[i].stem}.png") for i in picks]


def _case(name: str, photo_path: Path, mask_path: Path, truth: bool) -> Case:
    """The photo at most :data:`SIDE` px long, its hole scaled along (nearest neighbour keeps it binary)."""
    photo = load_photo(photo_path)
    hole = to_hole(mask_path, photo.size)
    scale = SIDE / max(photo.size)
    if scale < 1:
        size = (round(photo.size[0] * scale), round(photo.size[1] * scale))
        photo = load_photo(cv2.resize(photo.rgb8, size, interpolation=cv2.INTER_AREA))
        hole = cv2.resize(hole.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    return Case(name, photo, hole, truth)


# ---------------------------------------------------------------------------- running


def fill(model_id: str, case: Case) -> tuple[np.ndarray, float]:
    """``model_id``'s fill of ``case`` as the benchmark makes it (exact hole, no feather) and its forward time."""
    options = pipeline.Options(grow=0, feather=0)
    (result,) = pipeline.run(case.photo, case.hole, [model_id], options)
    return result.photo.rgb8, result.seconds


def measure(case: Case, filled: np.ndarray, reference: np.ndarray, seconds: float) -> Measure:
    """Every number :func:`judge` looks at, for one fill and Telea's fill of the same hole."""
    from benchmarks import metrics  # the report's own hole metrics, so the numbers compare with it

    hole, original = case.hole, case.photo.rgb8
    ours, theirs = filled[hole].astype(np.float64), reference[hole].astype(np.float64)
    mean, ref_mean = ours.mean(0), theirs.mean(0)
    shift = float(np.abs(mean - ref_mean).max())
    found = Measure(seconds, shift=shift, swap_gain=shift - float(np.abs(mean[::-1] - ref_mean).max()),
                    out_of_range=_out_of_range(original[~hole], ours), std=float(ours.std(0).max()),
                    reference_std=float(theirs.std(0).max()),
                    same=float((np.abs(ours - original[hole]).max(1) <= 2).mean()),
                    darker=float((ref_mean - mean) @ np.array([0.299, 0.587, 0.114])))
    if case.truth:
        found.psnr, found.gmsd = metrics.psnr(original, filled, hole), metrics.gmsd(original, filled, hole)
    return found


def _out_of_range(kept: np.ndarray, values: np.ndarray) -> float:
    """Share of ``values`` (N, 3) beyond the 0.5-99.5 % range of the kept photo, per channel, with some slack."""
    low, high = np.percentile(kept, [0.5, 99.5], axis=0)
    return float(((values < low - RANGE_SLACK) | (values > high + RANGE_SLACK)).mean())


# ---------------------------------------------------------------------------- judging


def judge(measures: Sequence[Measure], reference: Sequence[Measure]) -> list[str]:
    """What looked wrong in a model's fills, in words; [] when nothing did. ``reference``: Telea's truth cases."""
    if not measures:
        return []
    problems = []
    mean = {key: float(np.mean([getattr(m, key) for m in measures]))
            for key in ("shift", "swap_gain", "out_of_range", "same", "darker")}
    if mean["swap_gain"] > SWAP_GAIN:
        problems.append(f"colours look swapped (RGB/BGR?): with its channels reversed the fill comes "
                        f"{mean['swap_gain']:.0f} levels closer to Telea's mean colour")
    elif mean["shift"] > SHIFT_LEVELS:
        tone = "darker" if mean["darker"] > 0 else "brighter"
        problems.append(f"the fill is {mean['shift']:.0f} levels off Telea's mean colour ({tone}): input or output "
                        "scaled wrong ([0, 1] vs [-1, 1]?)")
    if mean["out_of_range"] > OUT_OF_RANGE:
        problems.append(f"{mean['out_of_range']:.0%} of the fill lies outside the photo's own colour range")
    flat = [m for m in measures if m.std < FLAT_STD and m.reference_std > VARIED_STD]
    if flat:
        problems.append(f"constant fill on {len(flat)} of {len(measures)} photos (std {min(m.std for m in flat):.1f} "
                        "levels)")
    if mean["same"] > SAME_SHARE:
        problems.append(f"{mean['same']:.0%} of the hole is the input unchanged: the mask was ignored (polarity?)")
    return problems + _worse(measures, reference)


def _worse(measures: Sequence[Measure], reference: Sequence[Measure]) -> list[str]:
    """The quality margin against Telea on the evaluation photos (module docstring: where the numbers come from)."""
    scored = [m for m in measures if m.psnr is not None]
    if not scored or len(scored) != len(reference):
        return []
    psnr, ref_psnr = _mean_psnr(scored), _mean_psnr(reference)
    gmsd, ref_gmsd = (float(np.mean([m.gmsd for m in group])) for group in (scored, reference))
    problems = []
    if psnr < ref_psnr - PSNR_MARGIN:
        problems.append(f"much worse than Telea: hole PSNR {psnr:.1f} dB vs {ref_psnr:.1f} dB "
                        f"(margin {PSNR_MARGIN} dB)")
    if gmsd > ref_gmsd + GMSD_MARGIN:
        problems.append(f"much worse than Telea: hole GMSD {gmsd:.3f} vs {ref_gmsd:.3f} (margin {GMSD_MARGIN})")
    return problems


def _mean_psnr(measures: Sequence[Measure]) -> float:
    """Mean PSNR, a perfect (infinite) one counted as 99 dB so one photo cannot make the mean infinite."""
    return float(np.mean([min(m.psnr, 99.0) for m in measures]))


# ----------------------------------------------------------------------------- checking


def needs_network(spec: ModelSpec) -> str:
    """Why ``spec``'s weights cannot be fetched from here: offline, or its source unreachable ("" = go ahead).

    Only asked for a model whose weights are not on this machine yet. Its source (Hub, the authors'
    server, Drive) is asked the way the page asks it (:func:`~app.model_cache.availability`, one HEAD);
    any other reason the weights cannot be had (no source configured, a file gone) is what fetching raises.
    """
    settings = hub.settings()
    if settings.offline:
        return "HF_HUB_OFFLINE is set"
    down = hub.unreachable_reason(settings.endpoint)
    if down:
        return down
    state = model_cache.availability(spec)
    return state.reason if not state.ok and UNREACHABLE in state.public else ""


class Reference:
    """Telea's fills of the cases, made once, and only when some model got as far as running."""

    def __init__(self, found: Sequence[Case]) -> None:
        self.cases = list(found)
        self._fills: list[np.ndarray] | None = None

    def fills(self) -> list[np.ndarray]:
        if self._fills is None:
            self._fills = [fill(REFERENCE, case)[0] for case in self.cases]
        return self._fills

    def truth(self) -> list[Measure]:
        """Telea's own scores on the evaluation photos, for the quality margin."""
        return [measure(case, ref, ref, 0.0) for case, ref in zip(self.cases, self.fills(), strict=True) if case.truth]


def check(spec: ModelSpec, reference: Reference) -> Report:
    """Fetch (when not here), load and run ``spec`` on every case, and judge its fills against Telea's."""
    report = Report(spec)
    try:
        _fetch_and_load(report)
    except InpaintError as exc:
        report.failure = report.failure or str(exc)
        return report
    for case, telea in zip(reference.cases, reference.fills(), strict=True):
        try:
            filled, seconds = fill(spec.id, case)
        except InpaintError as exc:
            _run_failed(report, case, exc)
            return report
        report.measures.append(measure(case, filled, telea, seconds))
    report.reference = reference.truth()
    report.problems += judge(report.measures, report.reference)
    return report


def _fetch_and_load(report: Report) -> None:
    """Download (timed) when the weights are not here, then load (timed); offline says so instead."""
    spec = report.spec
    not_here = model_cache.unavailable_here(spec)
    if not_here:
        raise InpaintError(not_here)
    location = model_cache.weights_location(spec)
    if location.status in {"remote", "missing"}:
        report.offline = needs_network(spec)
        if report.offline:
            raise InpaintError(report.offline)
        started = time.perf_counter()
        try:
            model_cache.download(spec)
        except InpaintError:
            report.offline = hub.unreachable_reason(hub.settings().endpoint)  # the Hub went away on the way
            raise
        report.download_s = time.perf_counter() - started
    started = time.perf_counter()
    model_cache.get_inpainter(spec)
    report.load_s = time.perf_counter() - started


def _run_failed(report: Report, case: Case, exc: InpaintError) -> None:
    """A NaN/inf fill is a conversion problem; anything else is a failure to run."""
    if NAN_MARKER in str(exc):
        report.problems.append(f"the output is not finite (NaN/inf) on {case.name}")
    else:
        report.failure = f"failed on {case.name}: {exc}"


# ----------------------------------------------------------------------------- printing


def describe(report: Report) -> str:
    """One model's result in one line (two when suspect): what it did and what looked wrong."""
    spec = report.spec
    if report.offline:
        return (f"{spec.id}: needs the network — its weights are not on this machine and cannot be fetched now "
                f"({report.offline}); run `python -m app weights check {spec.id}` again online.")
    if report.failure:
        return f"{spec.id}: FAILED — {report.failure}"
    status = "OK" if report.ok else "SUSPECT: check the conversion — " + "; ".join(report.problems)
    return f"{spec.id}: {status}\n  {_numbers(report)}"


def _numbers(report: Report) -> str:
    download = "weights already here" if report.download_s is None else f"download {report.download_s:.1f} s"
    parts = [download, f"load {report.load_s:.1f} s"]
    if report.measures:
        forward = np.mean([m.seconds for m in report.measures])
        parts.append(f"forward {forward:.2f} s per photo ({len(report.measures)} photos)")
        parts.append("output finite, " + ("not constant" if all(m.std >= FLAT_STD for m in report.measures)
                                          else "constant on some photos"))
    scored = [m for m in report.measures if m.psnr is not None]
    if scored and report.reference:
        gmsd, ref_gmsd = np.mean([m.gmsd for m in scored]), np.mean([m.gmsd for m in report.reference])
        parts.append(f"hole PSNR {_mean_psnr(scored):.2f} dB / GMSD {gmsd:.3f} "
                     f"(Telea {_mean_psnr(report.reference):.2f} dB / {ref_gmsd:.3f}) on {len(scored)} "
                     "evaluation photos")
    return ", ".join(parts)


def run(specs: Sequence[ModelSpec], evalset: Path | None, photos: int = PHOTOS, out: Print = print) -> int:
    """Check every model of ``specs``; 0 when all look right, 1 when any is suspect, failed or needs the network."""
    found = cases(evalset, photos)
    if not found:
        out("No photos to check with: neither bundled examples in assets/ nor an evaluation set.")
        return 1
    out(_header(found))
    reference = Reference(found)
    bad = 0
    for spec in specs:
        report = check(spec, reference)
        out(describe(report))
        bad += not report.ok
    return 1 if bad else 0


def _header(found: Sequence[Case]) -> str:
    examples = [c.name for c in found if not c.truth]
    evaluation = [c.name for c in found if c.truth]
    text = f"Checking on {len(found)} photos (at most {SIDE} px): bundled examples {', '.join(examples) or 'none'}"
    if evaluation:
        return text + f"; evaluation photos with object masks {', '.join(evaluation)}"
    return text + "; no evaluation photos (hole PSNR/GMSD need the evaluation set: INPAINT_EVALSET or --evalset)"
