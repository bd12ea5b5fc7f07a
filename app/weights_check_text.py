"""``python -m app weights check textseg-xception``: fetch the text finder, run it on pages with known text.

The inpainters' check (:mod:`app.weights_check`) compares fills with Telea's; a text finder fills
nothing, so it is checked on what it finds instead: evaluation photos with text drawn on them, whose
true text mask is known (:mod:`benchmarks.text_pages`). Per finder it prints download and load time,
the time per photo, and the IoU of the found mask with the truth in the two BatchNorm modes, the
app's (eval: the stored statistics) and the official demo's (it never calls ``eval()``, so each page's
own statistics), saying which found the text better. That line is how the choice of mode is made on
real weights (docs/select.md); the app uses eval mode until it shows otherwise.

Flagged as suspect (a bad conversion, not a weak model): a mask that is empty on every photo with
text, or that covers more than :data:`MOST` of the photos on average (text covers 1-6 % of them).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from app.errors import InpaintError
from app.selection import text
from app.specs import ModelSpec
from app.weights_check import Report, _fetch_and_load, evalset_pairs

MOST = 0.5  # share of the photo a text mask may cover on average before it is suspect
Print = Callable[[str], None]


@dataclass
class TextReport:
    """One finder's check: the IoU per photo in eval mode and in the demo's train-BN mode, and its times."""

    report: Report
    iou_eval: list[float] = field(default_factory=list)
    iou_demo: list[float] = field(default_factory=list)
    share: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def problems(self) -> list[str]:
        found = []
        if self.share and max(self.share) == 0:
            found.append("it found no text on any of the photos (all of them have some)")
        if self.share and float(np.mean(self.share)) > MOST:
            found.append(f"it marks {np.mean(self.share):.0%} of the photos as text on average")
        return found


def cases(evalset: Path | None, photos: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, photo with text drawn on it, true text mask) for ``photos`` evaluation photos."""
    from PIL import Image

    from benchmarks.text_pages import with_text

    found = []
    for seed, (path, _) in enumerate(evalset_pairs(evalset, photos)):
        drawn, truth = with_text(np.asarray(Image.open(path).convert("RGB")), seed)
        found.append((path.stem, drawn, truth))
    return found


def demo_mask(net: torch.nn.Module, rgb: np.ndarray) -> np.ndarray:
    """The official demo's mask as written (no ``eval()``: BatchNorm on the padded page's own statistics)."""
    demo = copy.deepcopy(net).to(memory_format=torch.contiguous_format).train()  # the demo's layout and mode
    prepared = text.prepare(rgb)
    with torch.no_grad():
        logits = demo(prepared.x.to(next(demo.parameters()).device)).float().cpu()
    return text.full_mask(text.network_mask(logits), prepared)


def check(spec: ModelSpec, found: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> TextReport:
    """Fetch (when not here), load and run ``spec`` on every photo, in both BatchNorm modes."""
    from benchmarks.text_pages import iou

    result = TextReport(Report(spec))
    try:
        _fetch_and_load(result.report)
    except InpaintError as exc:
        result.report.failure = result.report.failure or str(exc)
        return result
    net = text.get_finder(spec)
    for _, drawn, truth in found:
        started = time.perf_counter()
        mask = text.segment(net, drawn)
        result.seconds.append(time.perf_counter() - started)
        result.share.append(float(mask.mean()))
        result.iou_eval.append(iou(mask, truth))
        result.iou_demo.append(iou(demo_mask(net, drawn), truth))
    return result


def describe(result: TextReport) -> str:
    """One finder's result: what it found and in which BatchNorm mode it found it better."""
    report, spec = result.report, result.report.spec
    if report.offline:
        return (f"{spec.id}: needs the network — its weights are not on this machine and cannot be fetched now "
                f"({report.offline}); run `python -m app weights check {spec.id}` again online.")
    if report.failure:
        return f"{spec.id}: FAILED — {report.failure}"
    problems = result.problems()
    status = "OK" if not problems else "SUSPECT: check the conversion — " + "; ".join(problems)
    download = "weights already here" if report.download_s is None else f"download {report.download_s:.1f} s"
    ours, demo = float(np.mean(result.iou_eval)), float(np.mean(result.iou_demo))
    better = "eval mode (the app's)" if ours >= demo else "the demo's train-BN mode: consider it (docs/select.md)"
    return (f"{spec.id}: {status}\n  {download}, load {report.load_s:.1f} s, {np.mean(result.seconds):.2f} s per "
            f"photo ({len(result.seconds)} photos), text found on {np.mean(result.share):.1%} of them; IoU with the "
            f"drawn text {ours:.3f} in eval mode, {demo:.3f} in the demo's train-BN mode: better in {better}")


def run(specs: Sequence[ModelSpec], evalset: Path | None, photos: int = 3, out: Print = print) -> int:
    """Check every text finder of ``specs``; 0 when all look right, 1 when any is suspect, failed or offline."""
    found = cases(evalset, max(photos, 1))
    if not found:
        out("No photos to check the text finder with: the evaluation set (INPAINT_EVALSET or --evalset) is needed.")
        return 1
    out(f"Checking text finders on {len(found)} evaluation photos with text drawn on them: "
        + ", ".join(name for name, _, _ in found))
    bad = 0
    for spec in specs:
        result = check(spec, found)
        out(describe(result))
        bad += bool(result.report.failure or result.report.offline or result.problems())
    return 1 if bad else 0
