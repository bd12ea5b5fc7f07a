"""Weights: from a model's spec to its files, checked and loaded. The rest of the app uses only these names.

* :func:`availability` / :func:`offer` — whether a model can run here and how the page offers it;
  :func:`needs_download`, :func:`weights_location` — where its weights are (no network, no loading);
* :func:`download` — fetch them (verified, converted or pinned) without loading;
* :func:`state_of` then :func:`instantiate` — the one way from a spec to a loaded network (the model cache's,
  :mod:`app.model_cache`); :func:`obtain` alone fetches without reading; :mod:`app.weights.hub_pipeline` does
  the same for a diffusers pipeline;
* :func:`describe_source` — where the weights come from, in words.

Everything else in this package (hub I/O, pins, Drive, pickle scanning...) is how those answers are made.
Names are imported on first use, so importing one module of the package does not import them all.
"""

from __future__ import annotations

import importlib

_FACE = {
    **dict.fromkeys(("Availability", "Offer", "availability", "offer", "needs_download", "weights_location", "download",
                     "unavailable_here"), "status"),
    "obtain": "provision", "state_of": "provision", "load_state": "loader", "instantiate": "loader",
    "describe_source": "sources",
}
__all__ = sorted(_FACE)


def __getattr__(name: str):
    if name not in _FACE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_FACE[name]}"), name)
