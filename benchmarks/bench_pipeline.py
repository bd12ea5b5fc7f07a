"""Request-to-result time and peak memory of every available inpainter on full-resolution photos.

    python benchmarks/bench_pipeline.py [--models telea patchmatch] [--repeats 3] [--family object]

For each photo of ``$INPAINT_EVALSET/hires`` (default ../shared/evalset) with its mask of the
chosen family, it times ``app.inpaint`` (load + hygiene + mask + windows + model + paste-back) and
reads the peak resident memory of a fresh worker process per (model, photo), so one run does not
inherit another's peak. Prints a Markdown table with medians and spreads.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

EVALSET = Path(os.environ.get("INPAINT_EVALSET", Path(__file__).resolve().parents[2] / "shared" / "evalset"))


def _measure(model: str, photo: str, mask: str, repeats: int, queue) -> None:
    from app import inpaint

    inpaint(photo, mask, [model])  # warm-up: imports, model load, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        inpaint(photo, mask, [model])
        times.append(time.perf_counter() - start)
    queue.put((times, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def measure(model: str, photo: Path, mask: Path, repeats: int) -> tuple[list[float], float]:
    queue = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(target=_measure, args=(model, str(photo), str(mask), repeats, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    from app import list_models

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    available = [m["id"] for m in list_models() if m["available"]]
    parser.add_argument("--models", nargs="+", default=[m for m in available if m in {"telea", "navier-stokes",
                                                                                         "patchmatch"}])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--family", default="object")
    args = parser.parse_args()
    photos = sorted((EVALSET / "hires").glob("*.jpg"))
    if not photos:
        sys.exit(f"no photos in {EVALSET / 'hires'} (set INPAINT_EVALSET)")
    print(f"`python benchmarks/bench_pipeline.py {' '.join(sys.argv[1:])}` on {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}\n")
    print("| model | photo | size | median s | min–max s | peak RSS MB |\n|---|---|---|---|---|---|")
    for model in args.models:
        for photo in photos:
            from PIL import Image

            mask = EVALSET / "masks" / args.family / f"{photo.stem}.png"
            times, peak = measure(model, photo, mask, args.repeats)
            w, h = Image.open(photo).size
            print(f"| {model} | {photo.stem} | {w}x{h} | {statistics.median(times):.2f} | "
                  f"{min(times):.2f}–{max(times):.2f} | {peak:.0f} |", flush=True)


if __name__ == "__main__":
    main()
