"""Find text: how well the comic text segmenter finds text drawn on photos, and its time and memory on large pages.

    python -m benchmarks.bench_text --photos 20 --rounds 3 [--official /path/to/Text_Segmentation_Image_Inpainting]

**Photos** (issue 30, 3): the evaluation photos with signs and captions drawn on them
(:mod:`benchmarks.text_pages`; the clean photo and the true text mask are kept). Per photo: the IoU of
the mask *Find text* proposes (at its default grow) with the true mask grown by the same amount, and
the hole PSNR of LaMa's fill of the photo with that mask against LaMa's fill with the true mask
(the PSNR is measured on the true text's pixels, against the clean photo: text the mask missed stays
and costs PSNR). Both need the released weights of the segmenter and of LaMa on this machine; without
them the part says "not measured" and why: synthetic weights find pseudo-random "text", and a score
of them would mislead.

**Speed and memory** (issue 30, 4): one A4 comic page at 300 dpi (2480x3508) and one 12 MP photo
(4000x3000), CPU time of the whole of ``find_text`` (resize to 600, the network, the mask back to the
photo's size) and its peak memory above the starting resident set, and the network alone on the
600x600 input. The official demo reads every page at 600 px on its long side too, so its network time
is the same at every page size: ``--official`` names a checkout of yu45020/Text_Segmentation_Image_Inpainting
at ae16690 whose ``models/text_segmentation.py`` ``XceptionTextSegment`` is given our state dict and
timed on the same input; without it MODELS.md's measurement of the official forward on this kind of
machine is the comparison (section 12: median 1455 ms, min 1294 ms, 2 threads). Random weights when the
released ones are not here: speed does not depend on the values.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from app import masks, registry
from app.models.textseg import WORK_SIDE, XceptionTextSegmenter
from app.selection import text
from app.weights.resolve import locate
from benchmarks import machine, memory, results
from benchmarks.common import command, evalset_dir, photos
from benchmarks.text_pages import iou, with_text

JSON = "text.json"
OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / JSON
SIZES = {"A4 page, 300 dpi": (2480, 3508), "12 MP photo": (4000, 3000)}
MODELS_MD_OFFICIAL_S = {"median": 1.455, "min": 1.294}  # MODELS.md 12: official forward 1x3x600x600, 2 threads
NOT_MEASURED = "not measured (released weights unavailable offline)"
ON_DISK = ("local", "cached")
FILLER = "lama"  # the inpainter whose hole PSNR tells a good text mask from a bad one (issue 30, 3)


# ---------------------------------------------------------------------------- photos


def weights_here(model_id: str) -> bool:
    spec = registry.text_finder(model_id) if model_id == registry.DEFAULT_TEXT_FINDER else registry.get(model_id)
    return locate(spec).status in ON_DISK


def quality(root: Path, count: int) -> dict:
    """IoU and LaMa hole PSNR per photo, or why they were not measured."""
    missing = [m for m in (registry.DEFAULT_TEXT_FINDER, FILLER) if not weights_here(m)]
    if missing:
        return {"measured": False, "reason": f"{NOT_MEASURED}: no weights of {', '.join(missing)} on this machine"}
    from app import pipeline
    from app.images import load_photo
    from benchmarks import metrics

    rows = []
    for seed, path in enumerate(photos(root, "images", count)):
        clean = np.asarray(Image.open(path).convert("RGB"))
        drawn, truth = with_text(clean, seed)
        found = text.find_text(drawn)
        true_hole = masks.grow(truth, found.grow)
        fills = {name: pipeline.run(load_photo(drawn), hole, [FILLER], pipeline.Options(grow=0))[0].photo.rgb8
                 for name, hole in (("found", found.mask), ("true", true_hole))}
        rows.append({"photo": path.stem, "text_share": float(truth.mean()), "iou": iou(found.mask, true_hole),
                     "psnr_found": metrics.psnr(clean, fills["found"], true_hole),
                     "psnr_true": metrics.psnr(clean, fills["true"], true_hole), "seconds": found.seconds})
    return {"measured": True, "rows": rows,
            "mean": {k: results.finite_mean(r[k] for r in rows) for k in ("iou", "psnr_found", "psnr_true")}}


# ----------------------------------------------------------------------------- speed


def network(official: Path | None) -> tuple[XceptionTextSegmenter, torch.nn.Module | None, str]:
    """Ours (released weights when here, else random) and the official network given the same state dict."""
    spec = registry.text_finder()
    ours: XceptionTextSegmenter
    if locate(spec).status in ON_DISK:
        ours, weights = text.get_finder(spec), "released"
    else:
        torch.manual_seed(0)
        ours, weights = XceptionTextSegmenter().deploy("cpu"), "random"
    if official is None:
        return ours, None, weights
    sys.path.insert(0, str(official))
    theirs = importlib.import_module("models.text_segmentation").XceptionTextSegment()
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs.eval(), weights


def page(size: tuple[int, int]) -> np.ndarray:
    """A page of ``size`` with text on it (content does not change the time: the network's input is 600 px)."""
    rng = np.random.default_rng(1)
    small = np.clip(rng.normal(200, 40, (size[1] // 8, size[0] // 8, 3)), 0, 255).astype(np.uint8)
    return np.asarray(Image.fromarray(with_text(small, 0)[0]).resize(size, Image.BICUBIC))


def median_s(call: Callable[[], object], rounds: int) -> dict[str, float]:
    """Median wall time and CPU time (all threads of the process) of ``rounds`` calls.

    The CPU time is what a busy shared machine changes least: other processes lengthen the wall time.
    """
    wall, cpu = [], []
    for _ in range(rounds):
        started, used = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - used)
    return {"wall_s": statistics.median(wall), "cpu_s": statistics.median(cpu)}


def peak_mb(call: Callable[[], object]) -> float | None:
    extra = memory.cpu_peak_extra(lambda: call())
    return None if extra is None else extra / memory.MiB


def speed(rounds: int, official: Path | None) -> dict:
    ours, theirs, weights = network(official)
    x = text.prepare(page((WORK_SIDE, WORK_SIDE))).x
    found = {"weights": weights, "network_600": {"ours": median_s(lambda: ours.logits(x), rounds),
                                                 "ours_peak_mb": peak_mb(lambda: ours.logits(x))}}
    if theirs is not None:
        with torch.no_grad():
            found["network_600"] |= {"official": median_s(lambda: theirs(x), rounds),
                                     "official_peak_mb": peak_mb(lambda: theirs(x)),
                                     "max_abs_diff": float((theirs(x) - ours.logits(x)).abs().max())}
    for label, size in SIZES.items():
        rgb = page(size)
        found[label] = {"size": list(size), "find_text": median_s(lambda rgb=rgb: text.segment(ours, rgb), rounds),
                        "peak_mb": peak_mb(lambda rgb=rgb: text.segment(ours, rgb))}
    return found


# ---------------------------------------------------------------------------- report


def section(data: dict, heading: str = "##") -> str:
    """The report's part: the photo benchmark (or why not) and time and memory on a page and a photo."""
    speed_part, net = data["speed"], data["speed"]["network_600"]
    official = (f"{_times(net['official'])}, peak {_mb(net.get('official_peak_mb'))}" if "official" in net else
                f"not run here (MODELS.md, same kind of machine: wall median {MODELS_MD_OFFICIAL_S['median']:.2f} s, "
                f"min {MODELS_MD_OFFICIAL_S['min']:.2f} s)")
    rows = [f"| network alone, 600x600 | {_times(net['ours'])} | {_mb(net.get('ours_peak_mb'))} | {official} |"]
    for label in SIZES:
        row = speed_part[label]
        rows.append(f"| {label} ({row['size'][0]}x{row['size'][1]}), whole find_text | {_times(row['find_text'])} | "
                    f"{_mb(row['peak_mb'])} | one 600x600 forward as above, + the same resize and mask steps |")
    return "\n\n".join([
        f"{heading} Find text: the comic text segmenter on photos, and on large pages",
        f"Command: `{data['command']}` ({data['duration_s'] / 60:.1f} min)  \n"
        f"Machine: {machine.summary_line(data['machine'])}",
        _quality_text(data["quality"]),
        f"Speed and memory ({speed_part['weights']} weights, {data['threads']} threads, median of {data['rounds']} "
        "runs; CPU time: all threads of the process, which other load on a shared machine changes least; peak: "
        "resident memory above the start). The official demo reads every page at 600 px on its long side, so a page "
        "of any size costs it one 600x600 forward, as it costs ours:",
        "| what | ours: wall / CPU time | ours, peak memory | official |\n|---|---|---|---|\n" + "\n".join(rows),
        _official_note(net)])


def _official_note(net: dict) -> str:
    if "official" in net:
        return (f"Ours and the official network were given the same weights and input: largest logit difference "
                f"{net['max_abs_diff']:.1e}.")
    return ("The official column is MODELS.md's measurement, made at another time on a shared machine: on a busy "
            "one (see the load average above) wall times are not comparable with it, the CPU time is the fairer "
            "figure. `--official` times both in the same run.")


def _quality_text(q: dict) -> str:
    if not q["measured"]:
        return f"Photos with drawn text (IoU of the found mask, LaMa hole PSNR with it and with the true mask): " \
            f"{q['reason']}."
    mean = q["mean"]
    return (f"Photos with drawn text ({len(q['rows'])} evaluation photos): IoU of the found mask with the true one "
            f"{mean['iou']:.3f}; LaMa's hole PSNR with the found mask {mean['psnr_found']:.2f} dB, with the true mask "
            f"{mean['psnr_true']:.2f} dB.")


def _times(measured: dict[str, float]) -> str:
    return f"{measured['wall_s']:.2f} s / {measured['cpu_s']:.2f} s"


def _mb(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--evalset", type=Path, default=None)
    parser.add_argument("--official", type=Path, default=None,
                        help="a checkout of yu45020/Text_Segmentation_Image_Inpainting (models/ is imported)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    data = {"command": command(argv, "benchmarks.bench_text"), "machine": machine.describe("cpu"),
            "threads": args.threads, "rounds": args.rounds,
            "quality": quality(evalset_dir(args.evalset), args.photos), "speed": speed(args.rounds, args.official)}
    data["duration_s"] = time.perf_counter() - started
    print(results.write_json(args.out, data))
    print(section(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
