"""The report's figures (matplotlib, no display needed): grouped bars, one colour per model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DPI = 100
SET_TITLES = {"images": "512x512 photos", "hires": "full-resolution photos"}
QUALITY_PANELS = (("psnr", "PSNR in hole, dB (higher is better)", 1),
                  ("ssim", "SSIM in hole (higher is better)", 1),
                  ("l1", "L1 in hole, % of range (lower is better)", 100),
                  ("gmsd", "GMSD in hole (lower is better)", 1))


def grouped_bars(ax, categories: Sequence[str], series: dict[str, list[float | None]]) -> None:
    """One group of bars per category, one bar per series (missing values left out)."""
    width = 0.8 / max(1, len(series))
    for i, (label, values) in enumerate(series.items()):
        offset = (i - (len(series) - 1) / 2) * width
        points = [(c + offset, v) for c, v in enumerate(values) if v is not None]
        ax.bar([x for x, _ in points], [v for _, v in points], width, label=label)
    ax.set_xticks(range(len(categories)), categories, rotation=30, ha="right")
    ax.grid(axis="y", alpha=0.3)


def _series(rows: list[dict], key: str, category: str, categories: list, metric: str) -> dict[str, list]:
    """{series label: [metric per category]} from summary rows."""
    table = {(r[key], r[category]): r.get(metric) for r in rows}
    labels = list(dict.fromkeys(r[key] for r in rows))
    return {label: [table.get((label, c)) for c in categories] for label in labels}


def save(fig, out: Path, name: str) -> str:
    out.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out / name, dpi=DPI)
    plt.close(fig)
    return name


def quality(per_family: list[dict], out: Path) -> list[str]:
    """PSNR, SSIM, L1 and GMSD per mask family, one bar per model."""
    families = list(dict.fromkeys(r["family"] for r in per_family))
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.5))
    for ax, (metric, title, scale) in zip(axes.flat, QUALITY_PANELS):
        series = _series(per_family, "model", "family", families, metric)
        grouped_bars(ax, families, {k: [None if v is None else v * scale for v in vs] for k, vs in series.items()})
        ax.set_title(title, fontsize=10)
    axes.flat[0].legend(fontsize=8)
    return [save(fig, out, "quality_by_family.png")]


def latency(summary: list[dict], out: Path, name: str) -> list[str]:
    """Median seconds per request (bars) with the 10-90 % range over photos (whiskers), per photo set."""
    sets = list(dict.fromkeys(r["set"] for r in summary))
    fig, axes = plt.subplots(1, len(sets), figsize=(5.5 * len(sets), 3.8), squeeze=False)
    for ax, which in zip(axes.flat, sets):
        rows = [r for r in summary if r["set"] == which]
        labels = [f"{r['model']}\n{r['precision']}" if r["precision"] != "float32" else r["model"] for r in rows]
        ax.bar(range(len(rows)), [r["median_s"] for r in rows], color="tab:blue",
               yerr=[[r["median_s"] - r["p10_s"] for r in rows], [r["p90_s"] - r["median_s"] for r in rows]],
               capsize=3)
        ax.set_xticks(range(len(rows)), labels, fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("seconds per request")
        ax.set_title(f"{SET_TITLES.get(which, which)} on {rows[0]['device']} (whiskers: 10-90 % of photos)",
                     fontsize=10)
        ax.grid(axis="y", alpha=0.3, which="both")
    return [save(fig, out, name)]


def hires(summary: list[dict], out: Path) -> list[str]:
    """Quality in the hole, seam visibility and time for each strategy / feather setting, per model."""
    configs = list(dict.fromkeys(r["config"] for r in summary))
    panels = (("psnr", "PSNR in hole, dB (higher is better)"), ("seam", "seam: added edge RMS (lower is better)"),
              ("seconds", "seconds per photo (lower is better)"))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for ax, (metric, title) in zip(axes, panels):
        grouped_bars(ax, configs, _series(summary, "model", "config", configs, metric))
        ax.set_title(title, fontsize=10)
    axes[0].legend(fontsize=8)
    return [save(fig, out, "hires_strategies.png")]
