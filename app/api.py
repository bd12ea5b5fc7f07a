"""The library API: ``inpaint(image, mask, models) -> results``, a thin layer over the pipeline.

Also click to select and find the people (issue 17): ``select(photo, points, box)`` -> :class:`Selection`,
``find_people(photo)`` -> :class:`Person` list, ``photobombers_mask(people)`` -> the hole that erases them;
and find the text (issue 30): ``find_text(photo, grow=4)`` -> :class:`FoundText` (``.mask``, the lettering).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from app import masks, options, pipeline, registry
from app.images import load_photo
from app.model_cache import availability
from app.options import Options
from app.pipeline import Result
from app.selection.clicks import Selection, segmenter_status, select
from app.selection.people import Person, find_people, photobombers_mask
from app.selection.text import FoundText, find_text

ImageLike = str | Path | bytes | Image.Image | np.ndarray


def inpaint(image: ImageLike, mask: ImageLike, models: Sequence[str] | str = registry.DEFAULT_MODELS,
            guides: dict[str, ImageLike] | None = None, progress: pipeline.Progress | None = None,
            **knobs: Any) -> list[Result]:
    """Fill the white (or opaque) part of ``mask`` in ``image`` with each model.

    ``knobs`` are those of :mod:`app.options` (samples, seed, strategy, margin, grow, feather;
    the signature lists them with their defaults), checked as for every other front end.
    ``guides`` are extra stroke maps a model understands, e.g. ``{"edges": strokes}`` for EdgeConnect.
    Each :class:`Result` holds a full-resolution :class:`~app.images.Photo` (``result.photo``);
    ``to_pil(result)`` gives a PIL image.
    """
    photo = load_photo(image)
    pipeline.check_photo(photo)  # before the mask is read or judged against it
    hole = masks.to_hole(mask, photo.size)
    guide_maps = {name: masks.to_hole(g, photo.size, f"{name} strokes") for name, g in (guides or {}).items()}
    model_ids = [models] if isinstance(models, str) else list(models)
    return pipeline.run(photo, hole, model_ids, Options.of(**knobs), guide_maps, progress)


inpaint.__signature__ = options.signature_with_knobs(inpaint, "knobs", keyword_only=True)  # type: ignore[attr-defined]


def to_pil(result: Result) -> Image.Image:
    """The result as an 8-bit PIL image (16-bit photos are scaled; save ``result.photo`` to keep 16 bit)."""
    pixels = result.photo.pixels
    if pixels.dtype == np.uint16:
        from app.images import to_uint8

        pixels = to_uint8(pixels)
    return Image.fromarray(pixels)


def list_models() -> list[dict[str, Any]]:
    """Every registered model with what a caller needs to choose one."""
    rows = []
    for spec in registry.MODELS:
        state = availability(spec)
        rows.append({"id": spec.id, "name": spec.name, "kind": spec.kind, "diverse": spec.diverse,
                     "licence": spec.licence, "available": state.ok, "reason": state.reason})
    return rows


__all__ = ["FoundText", "Person", "Selection", "find_people", "find_text", "inpaint", "list_models",
           "photobombers_mask", "segmenter_status", "select", "to_pil"]
