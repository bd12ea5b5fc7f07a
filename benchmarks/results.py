"""Result files: raw rows as CSV (one line per measurement), summaries and context as JSON.

The report is rendered from these files only, so it can be rebuilt (``python -m benchmarks.report``)
without measuring again, and results from another machine (a GPU box) can be dropped in beside.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np


def write_csv(path: Path, rows: Sequence[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    return path


def _cell(value: object) -> object:
    return f"{value:.6g}" if isinstance(value, float) else value


def write_json(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=_json_default, allow_nan=False) + "\n")
    return path


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a result file")


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def finite_mean(values: Iterable[float]) -> float | None:
    """Mean over finite values (a PSNR of inf for an exact fill would swamp the average); None if none."""
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(kept)) if kept else None


def group(rows: Sequence[dict], keys: Sequence[str]) -> dict[tuple, list[dict]]:
    """Rows bucketed by the values of ``keys``, in first-seen order."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    return groups


def summarise(rows: Sequence[dict], keys: Sequence[str], metrics: Sequence[str]) -> list[dict]:
    """Mean of each metric per group, with the group size."""
    return [{**dict(zip(keys, key)), "n": len(members), **{m: finite_mean(r[m] for r in members) for m in metrics}}
            for key, members in group(rows, keys).items()]
