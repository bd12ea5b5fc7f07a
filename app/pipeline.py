"""The model-agnostic pipeline every front end calls.

image hygiene -> mask -> windows at the model's size -> model -> paste back only the
hole with a soft seam. The UI, the CLI and the library API are thin layers over
:func:`run`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from app import gpu, hires, masks, registry
from app.errors import BadImageError, BadMaskError, Cancelled, InpaintError
from app.hires import Window
from app.images import Photo
from app.model_cache import get_inpainter, run_guarded
from app.models.base import SAMPLE_DONE, Batch, Prediction
from app.options import MAX_SAMPLES as MAX_SAMPLES  # re-exported: callers know them from here
from app.options import RANGES as RANGES
from app.options import Options
from app.specs import ModelSpec, Progress

OnFailure = Callable[[ModelSpec, InpaintError], None]
#: True once nobody waits for the result any more (the client left): work stops at the next window batch.
IsCancelled = Callable[[], bool]

REQUEST_MEMORY_ENV = "INPAINT_REQUEST_MEMORY_MB"
DEFAULT_REQUEST_MEMORY_MB = 4096
#: Shortest side of a photo the pipeline inpaints (see :func:`check_photo`).
MIN_PHOTO_SIDE = 2
#: Bytes per photo pixel besides the photo and its results: hole maps, feather alpha (float32),
#: the 8-bit RGB copy models read, and encoder buffers (measured by tests/test_memory.py).
_WORK_BYTES_PER_PIXEL = 24


@dataclass
class Result:
    """One completion of the photo, at full resolution."""

    model: ModelSpec
    sample: int  # 0-based; shown from 1
    photo: Photo
    #: The model's own time for this sample, loading excluded: the work its samples share plus this sample's
    #: own (what asking for this sample alone would have cost); the whole run for models that do not report samples.
    seconds: float
    maps: dict[str, np.ndarray] = field(default_factory=dict)  # (H, W) float side outputs
    score: float | None = None  # the model's own rating of this sample (PIC's discriminator), higher = better
    best: bool = False  # the highest-rated of several samples
    #: The request's paste-back alpha (:func:`changed_area`), one array shared by all its results: the page
    #: needs it for its tiles, and computing it again cost ~0.1 s at 10 MP.
    changed: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        sample = f" · sample {self.sample + 1}" if self.model.diverse else ""
        best = " · ★ rated best" if self.best else ""
        return f"{self.model.name}{sample}{best} · {self.seconds:.1f} s"

    @property
    def name(self) -> str:
        return result_name(self.model, self.sample)


def result_name(model: ModelSpec, sample: int) -> str:
    """File name stem of a result, numbered like its label: ``telea``, ``pic-places2_sample-2``."""
    return model.id + (f"_sample-{sample + 1}" if model.diverse else "")


def check_photo(photo: Photo) -> None:
    """Refuse a photo too small to inpaint, before its mask is read or judged.

    A hole needs photo around it to be filled from. Every method works from 2x2 px (the networks get
    their crops upscaled to the least side they take), so below that the answer is about the photo;
    a 1x1 photo used to be told its mask was empty or covered everything.
    """
    w, h = photo.size
    if min(w, h) < MIN_PHOTO_SIDE:
        raise BadImageError(f"The photo is {w}x{h} px, too small to inpaint: the smallest photo this app takes is "
                            f"{MIN_PHOTO_SIDE}x{MIN_PHOTO_SIDE} px (a hole needs some photo around it to be filled "
                            "from).")


def prepare_hole(photo: Photo, hole: np.ndarray, grow: int) -> np.ndarray:
    """Check and grow the painted hole; it must match the photo's size."""
    check_photo(photo)
    if hole.shape != photo.pixels.shape[:2]:
        (w, h), (mw, mh) = photo.size, hole.shape[::-1]
        raise InpaintError(f"The mask is {mw}x{mh} but the photo is {w}x{h}.")
    masks.validate(hole)
    grown = masks.grow(hole, grow)
    if grown.all():  # the painting left photo to fill from; the growth took it
        raise BadMaskError(f"Grown by {grow} px, the mask covers the whole photo ({photo.size[0]}x{photo.size[1]} "
                           "px): lower the mask growth, or leave more of the photo unpainted.")
    return grown


def run(photo: Photo, hole: np.ndarray, model_ids: Sequence[str], options: Options | None = None,
        guides: dict[str, np.ndarray] | None = None, progress: Progress | None = None,
        on_failure: OnFailure | None = None, cancelled: IsCancelled | None = None) -> list[Result]:
    """Inpaint ``photo`` where ``hole`` is True with every model in ``model_ids`` (repeats run once).

    By default the first model that fails fails the call. With ``on_failure``, a failing
    model is reported to it and the others still run (side by side, one broken model
    should not cost the user the other fills); if every model fails, that is raised instead.
    ``cancelled`` is polled between window batches: once it says True, :class:`Cancelled` is raised.
    """
    options = options or Options()
    model_ids = list(dict.fromkeys(model_ids))
    if not model_ids:
        raise InpaintError("Choose at least one model.")
    specs = [registry.get(model_id) for model_id in model_ids]
    check_photo(photo)
    check_memory(photo, specs, options)
    hole = prepare_hole(photo, hole, options.grow)
    alpha = hires.feather_alpha(hole, options.feather)  # = changed_area(); the grown hole is needed too
    results: list[Result] = []
    failures: list[InpaintError] = []
    for index, spec in enumerate(specs):
        report = _scaled(progress, index, len(specs))
        try:
            results += run_model(spec, photo, hole, alpha, options, guides or {}, report, cancelled)
            for result in results:
                result.changed = alpha
        except Cancelled:
            raise
        except InpaintError as exc:
            if on_failure is None:
                raise
            failures.append(exc)
            on_failure(spec, exc)
    if failures and not results:
        raise failures[0] if len(failures) == 1 else InpaintError(" ".join(str(f) for f in failures))
    if progress:
        progress(1.0, "All fills computed")
    return results


def changed_area(photo: Photo, hole: np.ndarray, options: Options) -> np.ndarray:
    """Where a result may differ from ``photo``: the paste-back alpha (> 0 inside the grown, feathered hole)."""
    return hires.feather_alpha(prepare_hole(photo, hole, options.grow), options.feather)


def request_memory_limit() -> int:
    """Bytes one request may hold (``INPAINT_REQUEST_MEMORY_MB``)."""
    return int(float(os.environ.get(REQUEST_MEMORY_ENV, DEFAULT_REQUEST_MEMORY_MB)) * (1 << 20))


def estimate_memory(photo: Photo, results: int) -> int:
    """Bytes a request holds at its peak outside the networks: the photo, every result, the work maps.

    Each network sees windows of at most its own size, so its memory does not grow with the photo.
    """
    h, w = photo.pixels.shape[:2]
    return h * w * (photo.pixels.itemsize * photo.pixels.shape[2] * (1 + results) + _WORK_BYTES_PER_PIXEL)


def check_memory(photo: Photo, specs: Sequence[ModelSpec], options: Options) -> None:
    """Refuse, before any work, a request whose results would not fit the per-request memory limit."""
    results = sum(options.samples if spec.diverse else 1 for spec in specs)
    need, limit = estimate_memory(photo, results), request_memory_limit()
    if need > limit:
        w, h = photo.size
        raise InpaintError(f"{results} full-resolution result(s) of this {w}x{h} photo would need about "
                           f"{need / 2**30:.1f} GB, over this app's limit of {limit / 2**30:.1f} GB per request. "
                           "Choose fewer models or samples, or a smaller photo.")


def _stop_if(cancelled: IsCancelled | None) -> None:
    if cancelled is not None and cancelled():
        raise Cancelled("The request was cancelled (the client left); the work stopped and nothing was saved.")


def _scaled(progress: Progress | None, index: int, count: int) -> Progress:
    def report(fraction: float, message: str) -> None:
        if progress:
            progress((index + fraction) / count, message)

    return report


def run_model(spec: ModelSpec, photo: Photo, hole: np.ndarray, alpha: np.ndarray, options: Options,
              guides: dict[str, np.ndarray], progress: Progress, cancelled: IsCancelled | None = None) -> list[Result]:
    """All samples of one model, pasted back into copies of the photo.

    A model that breaks with an unexpected exception is reported by name (a bare
    ``RuntimeError: ...`` does not tell the user which of the chosen models failed).
    """
    try:
        return _run_model(spec, photo, hole, alpha, options, guides, progress, cancelled)
    except InpaintError:
        raise
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else "no details"
        raise InpaintError(f"{spec.name} failed while inpainting ({type(exc).__name__}: {detail}). Nothing was "
                           "changed; run again, or choose another model.") from exc


def _run_model(spec: ModelSpec, photo: Photo, hole: np.ndarray, alpha: np.ndarray, options: Options,
               guides: dict[str, np.ndarray], progress: Progress, cancelled: IsCancelled | None) -> list[Result]:
    _stop_if(cancelled)
    progress(0.0, f"Loading {spec.name}")
    loading = time.perf_counter()
    inpainter = get_inpainter(spec, progress=lambda f, m: progress(0.3 * f, m))
    progress(0.3, f"Running {spec.name} (loaded in {time.perf_counter() - loading:.1f} s)")
    start = time.perf_counter()
    try:
        windows = hires.plan(hole, options.strategy, spec.crop_limit, spec.size_multiple, options.margin,
                             square=spec.native_size is not None, least=spec.least_side)
    except InpaintError as exc:
        raise InpaintError(f"{spec.name}: {exc}") from exc
    samples = options.samples if spec.diverse else 1
    runs: Runs = []
    own = [0.0] * samples  # seconds each sample took alone, as the model reported them
    batches = _batches(photo, hole, guides, windows, spec.max_batch)
    for done, (indices, batch) in enumerate(batches):
        _stop_if(cancelled)
        where = f"window batch {done + 1} of {len(batches)}" if len(batches) > 1 else ""
        if where:
            progress(0.3 + 0.6 * done / len(batches), f"Running {spec.name}: {where}")
        tell = _per_sample(spec.name, samples, own, where,
                           lambda f, m, done=done: progress(0.3 + 0.6 * (done + f) / len(batches), m))
        with _listening(tell):
            if spec.kind == "neural":  # on a ZeroGPU Space: the GPU is held for this call only
                prediction = gpu.run_network(spec, batch, samples=samples, seed=options.seed)
            else:
                prediction = run_guarded(spec, inpainter.inpaint, batch, samples=samples, seed=options.seed)
        runs.append((indices, _checked(spec, prediction)))
    _stop_if(cancelled)
    outputs = _assemble(photo, alpha, windows, runs, samples)
    shared = time.perf_counter() - start - sum(own)  # everything no single sample is charged with
    maps = _assemble_maps(photo, windows, runs)
    scores = _scores([prediction for _, prediction in runs], samples)
    best = int(np.argmax(scores)) if samples > 1 and all(score is not None for score in scores) else -1
    return [Result(spec, k, out, shared + own[k], maps, scores[k], best=k == best) for k, out in enumerate(outputs)]


def _per_sample(name: str, samples: int, own: list[float], where: str, progress: Progress) -> Callable[[int], None]:
    """The hook a model calls as each sample is done (``-1``: its shared work): times and progress per sample."""
    last = [time.perf_counter()]

    def tell(k: int) -> None:
        now = time.perf_counter()
        if 0 <= k < samples:
            own[k] += now - last[0]
            if samples > 1:
                progress((k + 1) / samples, f"{name}: sample {k + 1} of {samples} done"
                         + (f" ({where})" if where else "") + f" · {now - last[0]:.1f} s")
        last[0] = now

    return tell


@contextlib.contextmanager
def _listening(tell: Callable[[int], None]):
    """:data:`app.models.base.SAMPLE_DONE` set to ``tell`` for the model call inside."""
    token = SAMPLE_DONE.set(tell)
    try:
        yield
    finally:
        SAMPLE_DONE.reset(token)


def _checked(spec: ModelSpec, prediction: Prediction) -> Prediction:
    """Refuse NaN/inf fills: they come from broken weights and must not reach the user as noise."""
    if not np.isfinite(prediction.samples).all():
        raise InpaintError(f"{spec.name} produced invalid values (NaN/inf); its weights are probably damaged. "
                           "Re-download or re-convert them (python -m app weights verify).")
    return prediction


Runs = list[tuple[list[int], Prediction]]  # window indices of a batch, and its prediction


def _batches(photo: Photo, hole: np.ndarray, guides: dict[str, np.ndarray], windows: list[Window],
             max_batch: int) -> list[tuple[list[int], Batch]]:
    """Windows grouped by model-side size (at most ``max_batch`` each), one forward pass per group."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, window in enumerate(windows):
        groups.setdefault(window.target, []).append(i)
    chunks = [indices[i:i + max_batch] for indices in groups.values() for i in range(0, len(indices), max_batch)]
    rgb = photo.rgb8

    def stack(array: np.ndarray, indices: list[int]) -> np.ndarray:
        return np.stack([hires.extract(array, windows[i]) for i in indices])

    return [(indices, Batch(images=stack(rgb, indices), holes=stack(hole, indices),
                            guides={name: stack(g, indices) for name, g in guides.items()}))
            for indices in chunks]


def _walk(runs: Runs):
    """(window index, prediction, row of that window in the prediction) for every window."""
    for indices, prediction in runs:
        for row, window_index in enumerate(indices):
            yield window_index, prediction, row


def _assemble(photo: Photo, alpha: np.ndarray, windows: list[Window], runs: Runs, samples: int) -> list[Photo]:
    outputs = [photo.pixels.copy() for _ in range(samples)]
    for window_index, prediction, row in _walk(runs):
        for k in range(samples):
            hires.paste(outputs[k], prediction.samples[row, k], windows[window_index], alpha)
    return [photo.with_pixels(pixels) for pixels in outputs]


def _assemble_maps(photo: Photo, windows: list[Window], runs: Runs) -> dict[str, np.ndarray]:
    """Side outputs (e.g. predicted edges) placed at their windows on a full-size canvas."""
    h, w = photo.pixels.shape[:2]
    canvases: dict[str, np.ndarray] = {}
    for window_index, prediction, row in _walk(runs):
        window = windows[window_index]
        for name, values in prediction.maps.items():
            canvas = canvases.setdefault(name, np.zeros((h, w), np.float32))
            canvas[window.slices] = hires.resize(values[row].astype(np.float32), (window.w, window.h))
    return canvases


def _scores(predictions: list[Prediction], samples: int) -> list[float | None]:
    """Mean score per sample over the windows, when the model scores its samples."""
    if any(p.scores is None for p in predictions):
        return [None] * samples
    stacked = np.concatenate([p.scores for p in predictions], axis=0)
    return [float(stacked[:, k].mean()) for k in range(samples)]
