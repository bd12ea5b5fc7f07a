"""Inpainting studio: erase things from photos with classical and neural inpainters.

Library use::

    from app import inpaint
    results = inpaint("photo.jpg", "mask.png", models=["telea", "patchmatch"])
    results[0].photo  # full resolution, everything outside the hole untouched
"""

import spaces  # noqa: F401 - before torch: on a ZeroGPU Space it takes over torch's CUDA calls

from app import settings as settings  # first of the app: the environment Gradio reads at import

__all__ = ["find_people", "find_text", "inpaint", "list_models", "photobombers_mask", "select", "to_pil"]


def __getattr__(name: str):
    """The library API (:mod:`app.api`), imported on first use: ``import app.registry`` or ``app.specs``
    alone must not pull in torch, the networks and the pipeline."""
    if name in __all__:
        from app import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
