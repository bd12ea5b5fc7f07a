"""The Markdown report (docs/benchmarks/README.md), rendered from the result files beside it.

    python -m benchmarks.report [--out docs/benchmarks] [--snippet]

The quality, latency, high-resolution, precision and mmagic benchmarks call :func:`write` after
saving their results, so the report shows their latest run, each with the command, machine and
versions that produced it; the others (breakdown, PIC, select, MI-GAN, MAT, diffusion) save their
JSON and the report picks it up at its next rendering (``python -m benchmarks.report``). The
figures are redrawn from the same files, so they cannot disagree with the tables. ``--snippet``
prints the headline table for the project README instead.

Imports go one way, so ``benchmarks/`` has no cycle (``tests/test_layout.py``): a benchmark that
re-renders the report imports this module, and its section is rendered here; the report imports
the benchmarks that do not re-render it, for their file names and ``section()``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from app import registry
from benchmarks import (
    bench_breakdown,
    bench_diffusion,
    bench_mat,
    bench_migan,
    bench_pic,
    bench_select,
    bench_text,
    machine,
    plots,
    results,
)
from benchmarks.common import DEFAULT_OUT

REPORT = "README.md"
GPU_CHECK = "gpu-check.json"  # written by benchmarks/gpu_check.py on a GPU machine
HALF_TOLERANCE = 8  # 8-bit levels: the largest float16-vs-float32 pixel difference called "close"
COMMANDS = {
    "quality": "python -m benchmarks.bench_quality",
    "latency": "python -m benchmarks.bench_pipeline",
    "hires": "python -m benchmarks.bench_hires",
    "precision": "python -m benchmarks.bench_precision --device cpu|cuda",
    "mmagic": "python -m benchmarks.bench_mmagic [--official]",
    "breakdown": "python -m benchmarks.bench_breakdown",
    "select": bench_select.COMMAND,
    "pic": "python -m benchmarks.bench_pic",
    "migan": "python -m benchmarks.bench_migan --official /path/to/MI-GAN",
    "mat": "python -m benchmarks.bench_mat --official /path/to/MAT",
    "diffusion": "python -m benchmarks.bench_diffusion --device cpu|cuda",
    "text": "python -m benchmarks.bench_text [--official /path/to/Text_Segmentation_Image_Inpainting]",
    "gpu": "bash benchmarks/gpu_check.sh   # on a GPU machine: the whole GPU path in <= 8 min",
}
#: Devices of the precision benchmark, in reading order, with how its "half" is run there.
PRECISION_DEVICES = {"cpu": "CPU autocast (a proxy for CUDA numerics)", "cuda": "CUDA, the network's own precision()"}


def fmt(value: float | None, digits: int = 2, scale: float = 1.0) -> str:
    return "–" if value is None else f"{value * scale:.{digits}f}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def provenance(data: dict) -> str:
    return (f"Command: `{data['command']}` ({data['duration_s'] / 60:.1f} min)  \n"
            f"Machine: {machine.summary_line(data['machine'])}")


def load(out: Path) -> dict:
    """Every result file present in ``out`` (latency: one per device kind, CPU first)."""
    latency = [results.read_json(p) for p in sorted(out.glob("latency-*.json"), key=lambda p: p.stem != "latency-cpu")]
    return {"quality": results.read_json(out / "quality.json"), "latency": latency,
            "hires": results.read_json(out / "hires.json"), "precision": results.read_json(out / "precision.json"),
            "mmagic": results.read_json(out / "mmagic-speed.json"),
            "breakdown": results.read_json(out / bench_breakdown.JSON), "pic": results.read_json(out / bench_pic.JSON),
            "select": results.read_json(out / "select.json"),
            "migan": results.read_json(out / bench_migan.JSON), "mat": results.read_json(out / bench_mat.JSON),
            "diffusion": results.read_json(out / bench_diffusion.JSON), "gpu": results.read_json(out / GPU_CHECK),
            "text": results.read_json(out / bench_text.JSON)}


# ------------------------------------------------------------------------- headline


def latency_of(latencies: list[dict], model: str, which: str, device: str = "cpu") -> float | None:
    for data in latencies:
        for row in data["summary"]:
            if (row["model"], row["set"], row["precision"]) == (model, which, "float32") and \
                    row["device"].startswith(device):
                return row["median_s"]
    return None


def headline(data: dict) -> str:
    """Overall quality per model, and the median request time at 512 px and at full resolution."""
    quality, latencies = data["quality"], data["latency"]
    models = quality["models"] if quality else list(dict.fromkeys(r["model"] for d in latencies for r in d["summary"]))
    overall = {r["model"]: r for r in (quality or {}).get("overall", [])}
    gpu = any(r["device"].startswith("cuda") for d in latencies for r in d["summary"])
    shown = bench_breakdown.shown(data.get("breakdown"))
    if not any(label.startswith("GPU") for label in shown):
        shown["GPU"] = {}  # never run on a GPU: the column says so
    models = [*models, *(m for runs in shown.values() for m in runs if m not in models)]
    models = list(dict.fromkeys(models))
    headers = ["model", "PSNR ↑ dB", "SSIM ↑", "L1 ↓ %", "GMSD ↓", "512² request (CPU) s", "full-res request (CPU) s",
               *[f"10 MP: results on screen s ({label})" for label in shown]]
    headers += ["512² (GPU) s", "full-res (GPU) s"] if gpu else []
    rows = []
    for model in models:
        q = overall.get(model, {})
        row = [f"`{model}`", fmt(q.get("psnr")), fmt(q.get("ssim"), 3), fmt(q.get("l1"), 2, 100),
               fmt(q.get("gmsd"), 3), fmt(latency_of(latencies, model, "images"), 2),
               fmt(latency_of(latencies, model, "hires"), 1),
               *[fmt(runs[model], 2) if runs.get(model) is not None else "not measured" for runs in shown.values()]]
        if gpu:
            row += [fmt(latency_of(latencies, model, "images", "cuda"), 3),
                    fmt(latency_of(latencies, model, "hires", "cuda"), 2)]
        rows.append(row)
    return table(headers, rows)


def winners(quality: dict) -> str:
    """Per mask family, the best model by each metric: 'which fill is good at what'."""
    by_family = results.group(quality["per_family"], ["family"])
    rows = []
    for (family,), members in by_family.items():
        def best(metric: str, high: bool, digits: int, members=members) -> str:
            scored = [r for r in members if r[metric] is not None]
            top = max(scored, key=lambda r: r[metric] if high else -r[metric])
            return f"`{top['model']}` ({top[metric]:.{digits}f})"

        rows.append([family, fmt(members[0]["hole_ratio"], 1, 100), best("psnr", True, 2), best("ssim", True, 3),
                     best("gmsd", False, 3)])
    return table(["mask family", "hole %", "best PSNR", "best SSIM", "best GMSD"], rows)


# ---------------------------------------------------------------------------- models


def models_section(data: dict) -> str:
    """Every registered model: measured, or why not (never silently left out)."""
    sources = [d for d in (data["quality"], data["hires"], *data["latency"]) if d]
    measured = {m for d in sources for m in d["models"]}
    skipped = {k: v for d in sources for k, v in d["skipped"].items() if not v.startswith("not requested")}
    weights = {k: v for d in sources for k, v in d.get("weights", {}).items()}
    rows = []
    for spec in registry.MODELS:
        if spec.id in measured:
            status = "measured" + (f" — weights: {weights[spec.id]}" if spec.id in weights else " — no weights needed")
        else:
            status = "**skipped** — " + skipped.get(spec.id, "not requested in these runs")
        rows.append([f"`{spec.id}`", spec.kind, status.replace("|", "/")])
    return "## Models\n\n" + table(["model", "kind", "status"], rows) + (
        "\n\nOnly models whose weights are on the machine are measured: the scripts never download weights "
        "and never score networks with random or synthetic weights, whose output says nothing about the "
        "published models. `python -m app weights check <id>` fetches and checks a model's weights (or drop the "
        "official files into `checkpoints/<id>/`, see docs/weights.md); re-run the commands to add it to every "
        "table.")


# --------------------------------------------------------------------------- quality


def quality_section(q: dict, figures: list[str]) -> str:
    opts = q["options"]
    parts = [
        "## 1. Quality on the evaluation set",
        provenance(q),
        f"{q['photos']} photos of 512x512 (`images/`) x {len(q['families'])} mask families, every fill through "
        f"`app.pipeline.run` with strategy `{opts['strategy']}`, margin {opts['margin']}, grow {opts['grow']}, "
        f"feather {opts['feather']} (the hole is exactly the mask; nothing outside it changes). Scores are means "
        f"over the photos, computed inside the hole. Seconds per fill are the model's run inside the pipeline "
        f"with {q['jobs']} worker process(es) sharing the CPU (see *Speed* for clean timings).",
        table(["model", "fills", "PSNR ↑ dB", "SSIM ↑", "L1 ↓ %", "GMSD ↓", "s per fill"],
              [[f"`{r['model']}`", r["n"], fmt(r["psnr"]), fmt(r["ssim"], 3), fmt(r["l1"], 2, 100),
                fmt(r["gmsd"], 3), fmt(r["seconds"], 2)] for r in q["overall"]]),
        "### Per mask family",
        table(["family", "hole %", "model", "PSNR ↑ dB", "SSIM ↑", "L1 ↓ %", "GMSD ↓", "s per fill"],
              [[r["family"], fmt(r["hole_ratio"], 1, 100), f"`{r['model']}`", fmt(r["psnr"]), fmt(r["ssim"], 3),
                fmt(r["l1"], 2, 100), fmt(r["gmsd"], 3), fmt(r["seconds"], 2)] for r in q["per_family"]]),
        *[f"![Quality per mask family]({p})" for p in figures],
    ]
    if q["errors"]:
        parts.append("Fills that failed: " + "; ".join(f"`{k}`: {v}" for k, v in q["errors"].items()))
    parts.append("### Contact sheets\n\nOriginal, the input the model gets (hole in white), the mask, then each "
                 "model's fill; photos spread over the set. Full size: click an image.")
    parts += [f"**{family}**\n\n![{family}]({path})" for family, path in q["sheets"].items()]
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- latency


def latency_section(latencies: list[dict], figures: list[list[str]]) -> str:
    parts = ["## 2. Speed and memory per request"]
    if not any(d["machine"]["device"].startswith("cuda") for d in latencies):
        parts.append("**Only the CPU was measured**: CUDA was not available on the machine that produced these "
                     "numbers. On a GPU machine, `python -m benchmarks.bench_pipeline --device cuda --half` adds "
                     "`latency-cuda.json` beside these files (float32 and float16 for neural models, with the "
                     "largest pixel difference between them) and this report picks it up.")
    for d, names in zip(latencies, figures):
        parts += [f"### {d['machine']['device']}", provenance(d),
                  f"One request = `app.inpaint(photo, mask, [model])` with the default options (crop, margin 128, "
                  f"grow 8, feather 8), masks of the `{d['family']}` family, {d['repeats']} timed requests per "
                  "photo after a warm-up. *median*: median over photos of each photo's median; *p10–p90*: spread "
                  "over photos; *run-to-run*: median over photos of (max − min) / median of the repeats; memory: "
                  "peak resident set above the one before the request (median / max over photos) and, on CUDA, "
                  "peak GPU allocation above the loaded weights.",
                  _latency_table(d["summary"])]
        parts += [f"![Latency]({p})" for p in names]
        if d["hires_photos"]:
            parts += ["Full-resolution photos one by one:", _hires_photo_table(d["hires_photos"])]
    return "\n\n".join(parts)


def _latency_table(summary: list[dict]) -> str:
    headers = ["set", "model", "precision", "photos", "median s", "p10–p90 s", "run-to-run %", "RSS MiB", "GPU MiB",
               "max diff vs float32 (levels)"]
    rows = [[r["set"], f"`{r['model']}`", r["precision"], r["photos"], fmt(r["median_s"], 3),
             f"{r['p10_s']:.3f}–{r['p90_s']:.3f}", fmt(r["run_spread_pct"], 1),
             f"{fmt(r['rss_median_mib'], 0)} / {fmt(r['rss_max_mib'], 0)}", fmt(r["gpu_max_mib"], 0),
             _closeness(r["max_diff"])] for r in summary]
    return table(headers, rows)


def _closeness(diff: int | None) -> str:
    """A float16 row is only worth using where its output stays within a few levels of float32."""
    if diff is None:
        return "–"
    return f"{diff} ({'close' if diff <= HALF_TOLERANCE else 'not close: keep float32'})"


def _hires_photo_table(rows: list[dict]) -> str:
    return table(["photo", "size", "model", "precision", "median s", "min–max s", "RSS MiB"],
                 [[r["photo"], r["size"], f"`{r['model']}`", r["precision"], fmt(r["median_s"], 2),
                   f"{r['min_s']:.2f}–{r['max_s']:.2f}", fmt(r["rss_mib"], 0)] for r in rows])


# ----------------------------------------------------------------------------- hires


def hires_section(h: dict, figures: list[str]) -> str:
    photos = ", ".join(f"{name} ({size})" for name, size in h["photos"])
    plans = h["plans"]
    parts = [
        "## 3. High-resolution strategies", provenance(h),
        f"Photos: {photos}; mask families {', '.join(h['families'])}; margin {h['margin']} px; grow 0. "
        "Means over photos and families. *seam*: RMS of the edge strength the result adds along the hole "
        "border (2 px inside to 12 px outside), in 8-bit levels; *s*: wall time of `app.pipeline.run`; "
        "*windows* and *model MP*: what the strategy fed the model.",
        table(["model", "strategy", "feather px", "PSNR ↑ dB", "SSIM ↑", "L1 ↓ %", "GMSD ↓", "seam ↓", "s",
               "windows", "model MP"],
              [[f"`{r['model']}`", r["strategy"], r["feather"], fmt(r["psnr"]), fmt(r["ssim"], 3),
                fmt(r["l1"], 2, 100), fmt(r["gmsd"], 3), fmt(r["seam"], 2), fmt(r["seconds"], 2),
                fmt(r["windows"], 1), fmt(r["model_mpx"], 2)] for r in h["summary"]]),
    ]
    if plans["cases"]:
        parts.append(f"`original` and `resize` fed the model exactly the same windows in {plans['identical']} of "
                     f"{plans['cases']} photo/mask/model cases (`app.hires.plan` downscales `original` to the "
                     "model's size limit whenever the photo exceeds it, and `resize` leaves photos within the "
                     "limit as they are), so their rows differ only by timing noise.")
    parts += [f"![High-resolution strategies]({p})" for p in figures]
    if h.get("sheet"):
        parts.append(f"Close-ups of one seam for every setting:\n\n![Seams]({h['sheet']})")
    return "\n\n".join(parts)


# ------------------------------------------------------------------------- precision


PRECISION_INTRO = """Each network declares the dtype it runs in on CUDA (`FACTS.gpu_dtype`, applied by
`NeuralNetwork.precision()` as `torch.autocast`; `INPAINT_HALF=0` keeps float32): float16 or bfloat16,
whichever kept its output finite and closest to float32 on the reference fixtures
(`../shared/reference/fixtures`, with the synthetic weights that made them: numerical headroom, not image
quality). *levels*: largest absolute difference of the composited output (fill in the hole, photo
elsewhere, every sample) from float32, in 8-bit levels (1 = 1/255). On the CPU "half" is
`torch.autocast("cpu", dtype)` with float32 accumulation in convolutions and matrix products (what CUDA's
half kernels do): the same dtype rounding, other kernels and op lists, so a proxy for CUDA numerics; CPU
timings are float32, with half timed at a small size where the CPU has no native half kernels."""


def precision_section(p: dict) -> str:
    """Declared dtypes, closeness per fixture and speed, per device; a device never run reads "not measured"."""
    parts = ["## 4. Half precision on the GPU", PRECISION_INTRO]
    for device, label in PRECISION_DEVICES.items():
        part = p["devices"].get(device)
        parts.append(f"### {label}")
        if part is None:
            parts.append(f"**Not measured**: no run on a {device.upper()} device yet "
                         f"(`python -m benchmarks.bench_precision --device {device}` adds it beside these).")
            continue
        parts += [provenance(part), _precision_choice(part["summary"]), _precision_levels(part["summary"]),
                  _precision_speed(part["summary"])]
        if device == "cpu":
            parts += [section for section in [settings_section(part)] if section]
        if part["skipped"]:
            parts.append("Not measured: " + "; ".join(f"`{k}`: {v}" for k, v in part["skipped"].items()))
    return "\n\n".join(parts)


def _levels(value: float | None) -> str:
    return "not finite" if value is None else f"{value:.2f}"


def _precision_choice(summary: list[dict]) -> str:
    """Per network: the worst case of each candidate, and whether the declared dtype is the closest."""
    rows = []
    for s in summary:
        worst = s["worst_levels"]
        agrees = "yes" if s["best"] == s["gpu_dtype"] else f"**no**: {s['best'] or 'none finite'} is"
        rows.append([f"`{s['model']}`", s["gpu_dtype"], _levels(worst.get("float16")),
                     _levels(worst.get("bfloat16")), agrees])
    return table(["model", "declared GPU dtype", "worst float16 levels", "worst bfloat16 levels",
                  "declared = closest"], rows)


def _precision_levels(summary: list[dict]) -> str:
    rows = [[f"`{s['model']}`", s["gpu_dtype"], case, _levels(v.get("float16")), _levels(v.get("bfloat16"))]
            for s in summary for case, v in s["fixtures"].items()]
    return table(["model", "declared GPU dtype", "fixture", "float16 levels", "bfloat16 levels"], rows)


def _precision_speed(summary: list[dict]) -> str:
    rows = [[f"`{s['model']}`", t["size"], fmt(t["float32_s"], 3),
             f"{t['half_s']:.3f} ({s['gpu_dtype']})" if t["half_s"] is not None else t["half_note"],
             fmt(t["speedup"], 2)] for s in summary for t in s["latency"]]
    return table(["model", "crop (batch 1)", "float32 median s", "half median s", "speed-up"], rows)


# ---------------------------------------------------------------------------- method

READING = """Scores are inside the hole, averaged over every photo and mask family (per family below);
request times are medians over the photos with the app's default options. PSNR, SSIM and L1
reward a smooth fill close to the hole's average colour; GMSD, which compares structure, and the
contact sheets favour fills with real texture. Read the numbers together with the sheets."""

METHOD = """## How the numbers are made

* **Evaluation set**: `../shared/evalset` (`INPAINT_EVALSET`): natural photos from PyPI and Debian
  packages (sources and licences in its `manifest.csv` and `LICENSES.md`), masks generated by its
  `make_masks.py --seed 2024`, 255 = hole.
* **PSNR / L1** over the hole pixels only (L1 as % of the 8-bit range). **SSIM**: scikit-image,
  Gaussian window sigma 1.5 (Wang et al. 2004), map averaged over the hole. **GMSD** (Xue et al.
  2014): standard deviation of the gradient-magnitude similarity over the hole at half resolution;
  it needs no pretrained network (LPIPS and FID do, and their weights cannot be downloaded here).
  Code: [`benchmarks/metrics.py`](../../benchmarks/metrics.py), tested in `tests/test_benchmarks.py`.
* **Seam**: Sobel gradient magnitude of the luminance; RMS of what the result has in excess of the
  original in a band 2 px inside to 12 px outside the hole border. 0 = no edge added.
* **Time** is wall-clock (`time.perf_counter`), after a warm-up; **memory** is the kernel's
  resident-set high-water mark (reset before each request) minus the resident set before it.
* Results: `quality.csv`, `latency-<device>.csv`, `hires.csv`, `precision.csv` (every measurement) and the `.json`
  summaries this page is rendered from (`python -m benchmarks.report`)."""


# ------------------------------------------------------------------------- mmagic (bench_mmagic)


def _ratio(ours_s: float, official_s: float | None) -> str:
    return "–" if official_s is None else f"{ours_s / official_s:.2f}"


def _difference(value: float | None) -> str:
    return "–" if value is None else f"{value:.1e}"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


MMAGIC_HEADERS = ["network", "input", "ours median s (min)", "official this run, median s (min)",
           "ours / official this run", "max abs(ours − official)", "official MODELS.md median s", "ours / MODELS.md"]


def _mmagic_cells(r: dict, size: int) -> list[str]:
    run = r["official_run_median_s"]
    return [r["label"], f"{r['batch']}x{size}²", f"{r['median_s']:.3f} ({r['min_s']:.3f})",
            "not run" if run is None else f"{run:.3f} ({r['official_run_min_s']:.3f})",
            _ratio(r["median_s"], run), _difference(r.get("max_diff")), _seconds(r["official_doc_s"]),
            _ratio(r["median_s"], r["official_doc_s"])]


def mmagic_section(data: dict, heading: str = "##") -> str:
    """``bench_mmagic``'s run: provenance, then ours beside each official timing, with the ratios."""
    lines = ["| " + " | ".join(MMAGIC_HEADERS) + " |", "|" + "---|" * len(MMAGIC_HEADERS)]
    lines += ["| " + " | ".join(_mmagic_cells(r, data["size"])) + " |" for r in data["rows"]]
    official = (f"{data['official']} (mmengine 0.10.7, mmcv-lite 2.1.0, in a venv of their own: "
                "`benchmarks/mmagic_official.py`)" if data["official"] else f"not run here ({data['official_reason']})")
    return "\n\n".join([
        f"{heading} mmagic networks: generator forward time against the official code",
        f"Command: `{data['command']}` ({data['duration_s'] / 60:.1f} min)  \n"
        f"Machine: {machine.summary_line(data['machine'])}",
        f"Generator forward only, the synthetic weights of the reference fixtures, {data['rounds']} interleaved "
        f"rounds (median and minimum over rounds). Official code in this run: {official}. *MODELS.md*: the "
        "official medians of ../shared/reference/MODELS.md section 5 (torch 2.13.0+cpu, this CPU model, best "
        "of 3-4 runs on another day, batch 1 at 256² only): an indication, not a same-run comparison. "
        "*max abs(ours − official)*: largest difference of the raw fills (normalised units, BGR) on the "
        "benchmark's input, so both columns time the same computation.",
        "\n".join(lines)])


# ------------------------------------------------------------------------- CPU settings (bench_precision)

#: CPU settings tried per network (issue 18): adopted only if >= ADOPT_SPEEDUP faster within ADOPT_LEVELS
#: (8-bit levels). bench_precision applies the rule; the report states it.
ADOPT_SPEEDUP, ADOPT_LEVELS = 1.3, 2.0


def cpu_classes(part: dict) -> dict[str, dict]:
    """The CPU-settings runs of precision.json's CPU part, one per CPU class (``machine.cpu_class``).

    Before issue 29 the file held one run (``cpu_settings``) without a class: it is kept under its
    CPU's name, marked as emulating bf16 where the run timed bf16 on the small probe crop only
    (which the benchmark does only where the CPU has no bf16 instructions).
    """
    classes = dict(part.get("cpu_classes", {}))
    old = part.get("cpu_settings")
    if old:
        emulated = any(v.get("case", "").startswith("worst of every fixture (closeness run")
                       for settings in old["networks"].values() for v in settings.values())
        label = f"{old['machine']['cpu']}{', bf16 emulated' if emulated else ''} (run of {old['machine']['date']})"
        classes.setdefault(label, old)
    return classes


def _adopted(classes: dict[str, dict]) -> str:
    """Which (network, setting) cleared the bar on which CPU class; the bar, not a verdict for every machine."""
    chosen = [f"{name} for `{model}` ({label})" for label, run in classes.items() if not run.get("quoted")
              for model, settings in run["networks"].items() for name, v in settings.items() if v["adopted"]]
    applied = ("The app applies bf16 autocast only, per network through `FACTS.cpu_bf16`; channels_last is "
               "tried for information and not applied.")
    if not chosen:
        return "Nothing cleared the bar on the CPU classes this benchmark ran on. " + applied
    return "Cleared the bar: " + "; ".join(chosen) + ". " + applied


def _levels_cell(value: float | None) -> str:
    return "not finite" if value is None else f"{value:.2f}"


def _setting_cell(v: dict | None) -> str:
    """One class's figure for one network and setting: speed-up at its crop, levels, and whether it qualified."""
    if v is None:
        return "not measured"
    verdict = "" if v.get("adopted") is None else (" ✓" if v["adopted"] else " ✗")
    note = f" ({v['note']})" if v.get("note") else ""
    return f"{v['speedup']:.2f}x at {v.get('size', 256)}², {_levels_cell(v['levels'])} lv{verdict}{note}"


def _declared_cpu_bf16() -> dict[str, bool]:
    """Per model id, whether its network declares bf16 on a native-bf16 CPU (``FACTS.cpu_bf16``): what the app runs."""
    return {spec.id: spec.network().FACTS.cpu_bf16 for spec in registry.NEURAL}


def _class_provenance(label: str, run: dict) -> str:
    """Where a class's figures come from: its machine and every command that wrote one of them (a run of a few
    networks merges into the class's figures), with its date and the load the machine had."""
    if run.get("quoted"):
        return f"**{label}**: {run['quoted']}"
    runs = {json_key(v["run"]): v["run"] for settings in run["networks"].values() for v in settings.values()
            if "run" in v}
    commands = "; ".join(f"`{r['command']}` ({r['date']}, load average {r['load_average']}): "
                         + ", ".join(f"`{m}`" for m, settings in run["networks"].items()
                                     if any(v.get("run") == r for v in settings.values()))
                         for r in runs.values()) or f"`{run['command']}`"
    skipped = "; ".join(f"`{k}`: {v}" for k, v in run.get("skipped", {}).items())
    return (f"**{label}** — commands: {commands}  \nMachine (latest run): {machine.summary_line(run['machine'])}"
            + (f"  \nNot measured: {skipped}" if skipped else ""))


def json_key(value: dict) -> str:
    return repr(sorted(value.items()))


def settings_section(part: dict, heading: str = "###") -> str:
    """``bench_precision --cpu-settings``: a column per CPU class seen, and what each network declares for the app."""
    classes = cpu_classes(part)
    if not classes:
        return ""
    labels = list(classes)
    declared = _declared_cpu_bf16()
    models = list(dict.fromkeys(m for run in classes.values() for m in run["networks"]))
    rows = []
    for model in models:
        for name in dict.fromkeys(n for run in classes.values() for n in run["networks"].get(model, {})):
            app = ("bf16" if declared.get(model) else "float32") if name == "bfloat16 autocast" else "–"
            rows.append([f"`{model}`", name, app,
                         *[_setting_cell(classes[c]["networks"].get(model, {}).get(name)) for c in labels]])
    return "\n\n".join([
        f"{heading} CPU precision per CPU class: bf16 autocast and channels_last",
        "The app runs a network in bf16 autocast on the CPU only where the CPU computes bf16 natively "
        "(AVX512-BF16 or AMX, asked of torch once: `app.devices.native_cpu_bf16`; `INPAINT_CPU_BF16=on|off` "
        "forces either way) and the network declares it (`FACTS.cpu_bf16`, column *app on a native-bf16 CPU*). "
        f"A network declares it only at ≥ {ADOPT_SPEEDUP}x faster on such a CPU and ≤ {ADOPT_LEVELS:g} levels "
        "from float32 on every reference fixture. Each cell: speed-up = float32 time / the setting's time for one "
        "crop at the network's native size (256²; MAT, MI-GAN 512: 512²; where the CPU emulates bf16 the "
        "smallest crop the network takes), calls interleaved, median "
        "of the per-pair ratios; *lv* = largest difference from float32 in 8-bit levels over every fixture "
        "(where bf16 is emulated: the closeness run's, CPU autocast with float32 accumulation); ✓/✗ = whether "
        "it clears the bar on that class. " + _adopted(classes),
        *[_class_provenance(label, classes[label]) for label in labels],
        table(["network", "setting", "app on a native-bf16 CPU", *labels], rows)])


# ------------------------------------------------------------------------- the GPU path (gpu_check)


NO_GPU = """**Not measured**: no GPU was lent to any run yet. `bash benchmarks/gpu_check.sh` on a GPU machine (at
most 8 minutes) measures every network in float32 and in its half precision at 512², batch 1 and 8, Pluralistic
and MAT with 1 and 8 samples (one by one and in one batch), the 10 MP page path per model, the diffusion remover
at 4 and 8 steps, peak device memory, and ahead-of-time compilation of the heaviest networks; this section and the
GPU columns above fill in from its `gpu-check.json`."""


def gpu_section(run: dict | None) -> str:
    """``benchmarks/gpu_check.py``'s run; "not measured" until a GPU machine ran it (a --quick run measures nothing)."""
    head = "## The GPU path: networks, samples, 10 MP, diffusion, ahead-of-time compilation"
    if not run or run.get("quick") or not run["machine"]["device"].startswith("cuda"):
        return "\n\n".join([head, NO_GPU])
    steps = run["steps"]
    parts = [head, provenance(run)]
    parts += [_gpu_networks(steps.get("networks")), _gpu_samples(steps.get("samples")), _gpu_aoti(steps.get("aoti")),
              "The 10 MP page path: *From Erase to the fills on screen* above, under the GPU's name; the diffusion "
              "remover's seconds per fill: its own section (`cuda`)."]
    return "\n\n".join(parts)


def _skipped(step: object) -> str | None:
    return None if isinstance(step, list) else f"Not measured: {step or 'not run'}."


def _gpu_networks(rows: list[dict] | str | None) -> str:
    if (why := _skipped(rows)) is not None:
        return why
    pairs = results.group(rows, ["model", "size", "batch"])
    lines = []
    for (model, size, batch), (f32, half) in pairs.items():
        lines.append([f"`{model}`", f"{batch}x{size}²", f"{f32['median_s']:.4f}",
                      f"{half['median_s']:.4f} ({half['precision']})", f"{f32['median_s'] / half['median_s']:.2f}",
                      _levels_cell(half.get("levels_vs_float32")),
                      f"{fmt(f32['peak_mib'], 0)} / {fmt(half['peak_mib'], 0)}"])
    return table(["network", "input", "float32 s", "half s", "speed-up", "levels half vs float32",
                  "peak MiB f32 / half"], lines)


def _gpu_samples(rows: list[dict] | str | None) -> str:
    if (why := _skipped(rows)) is not None:
        return why
    return table(["network", "crop", "samples", "order", "precision", "median s", "peak MiB"],
                 [[f"`{r['model']}`", f"{r['size']}²", r["samples"], r["order"], r["precision"], f"{r['median_s']:.4f}",
                   fmt(r["peak_mib"], 0)] for r in rows])


def _gpu_aoti(rows: list[dict] | str | None) -> str:
    if (why := _skipped(rows)) is not None:
        return "Ahead-of-time compilation: " + why
    lines = []
    for r in rows:
        aoti = r.get("aoti")
        compiled = f"{aoti['median_s']:.4f}" if isinstance(aoti, dict) else str(aoti).replace("|", "/")
        speedup = f"{r['eager']['median_s'] / aoti['median_s']:.2f}" if isinstance(aoti, dict) else "–"
        lines.append([f"`{r['model']}`", f"{r['size']}²", r["precision"], f"{r['eager']['median_s']:.4f}", compiled,
                      speedup, fmt(r.get("compile_s"), 1)])
    return table(["network", "crop", "precision", "eager s", "AOTI s", "speed-up", "compile s"], lines)


def draw(data: dict, out: Path) -> dict:
    """(Re)draw every figure from the result files, so figures and tables always agree."""
    quality, hires = data["quality"], data["hires"]
    return {
        "quality": plots.quality(quality["per_family"], out) if quality and quality["per_family"] else [],
        "latency": [plots.latency(d["summary"], out, f"latency-{d['machine']['device'].split(':')[0]}.png")
                    if d["summary"] else [] for d in data["latency"]],
        "hires": plots.hires(hires["summary"], out) if hires and hires["summary"] else [],
    }


def render(data: dict, figures: dict) -> str:
    parts = ["# Benchmarks: which fill is good at what, and how long it takes",
             "Rendered by `python -m benchmarks.report` from the result files in this folder; each part "
             "says which command, machine and versions produced it. Commands:\n\n```bash\n"
             + "\n".join(COMMANDS.values()) + "\n```"]
    if data["quality"] or data["latency"]:
        parts += ["## Headline", headline(data), bench_breakdown.goal_line(data.get("breakdown")), READING]
    if data["quality"]:
        parts += ["Best model per mask family:", winners(data["quality"])]
    parts.append(models_section(data))
    if data["quality"]:
        parts.append(quality_section(data["quality"], figures["quality"]))
    if data["latency"]:
        parts.append(latency_section(data["latency"], figures["latency"]))
    if data["hires"]:
        parts.append(hires_section(data["hires"], figures["hires"]))
    if data.get("precision"):
        parts.append(precision_section(data["precision"]))
    if data.get("mmagic"):
        parts.append(mmagic_section(data["mmagic"]))
    if data.get("breakdown"):
        parts.append(bench_breakdown.section(data["breakdown"]))
    if data.get("pic"):
        parts.append(bench_pic.section(data["pic"]))
    if data.get("select"):
        parts.append(bench_select.section(data["select"]))
    if data.get("migan"):
        parts.append(bench_migan.section(data["migan"]))
    if data.get("mat"):
        parts.append(bench_mat.section(data["mat"]))
    if data.get("diffusion"):
        parts.append(bench_diffusion.section(data["diffusion"]))
    if data.get("text"):
        parts.append(bench_text.section(data["text"]))
    parts.append(gpu_section(data.get("gpu")))
    parts.append(METHOD)
    return "\n\n".join(parts) + "\n"


def write(out: Path = DEFAULT_OUT) -> Path:
    """Draw the figures and render the report from the result files in ``out``; returns its path."""
    data = load(out)
    path = out / REPORT
    path.write_text(render(data, draw(data, out)))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--snippet", action="store_true", help="print the headline table for the project README")
    args = parser.parse_args(argv)
    print(headline(load(args.out)) if args.snippet else write(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
