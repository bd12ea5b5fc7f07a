"""One unit of the quality benchmark: one photo, one mask, every model, through the app's pipeline.

Kept apart from the command line so worker processes import only this (and the app), and so
the tests can call it directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app import pipeline
from app.errors import InpaintError
from app.images import load_photo
from app.masks import to_hole
from benchmarks import metrics, sheets


@dataclass(frozen=True)
class Task:
    photo: Path
    mask: Path
    family: str
    models: tuple[str, ...]
    options: dict  # fields of app.pipeline.Options
    thumbnails: bool = False  # this photo goes on the family's contact sheet


@dataclass
class Outcome:
    rows: list[dict] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # model id -> message
    cells: dict[str, np.ndarray] = field(default_factory=dict)  # column name -> thumbnail


def init_worker(threads: int) -> None:
    """Share the cores between worker processes instead of each taking them all."""
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))


def evaluate(task: Task) -> Outcome:
    """Fill ``task.photo`` with each model and score the fills inside the (grown) hole."""
    photo = load_photo(task.photo)
    options = pipeline.Options(**task.options)
    hole = pipeline.prepare_hole(photo, to_hole(task.mask, photo.size), options.grow)
    original = photo.rgb8
    outcome = Outcome()
    if task.thumbnails:
        outcome.cells = {"original": sheets.thumbnail(original), "input": sheets.thumbnail(
            sheets.masked_input(original, hole)), "mask": sheets.thumbnail(sheets.mask_image(hole))}
    base = {"image": task.photo.stem, "family": task.family, "hole_ratio": round(float(hole.mean()), 5)}
    for model_id in task.models:
        try:
            (result,) = pipeline.run(photo, hole, [model_id], pipeline.Options(**{**task.options, "grow": 0}))
        except InpaintError as exc:
            outcome.errors[model_id] = str(exc)
            continue
        filled = result.photo.rgb8
        outcome.rows.append({**base, "model": model_id, **metrics.hole_scores(original, filled, hole),
                             "seconds": round(result.seconds, 4)})
        if task.thumbnails:
            outcome.cells[model_id] = sheets.thumbnail(filled)
    return outcome
