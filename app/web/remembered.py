"""Settings remembered per browser: the chosen models and every knob, kept in Gradio's ``BrowserState``.

Saved on each change the visitor makes (``.input``, not ``.change``: restoring them must not save
them again), restored when the page loads, and *Reset to defaults* forgets them. What comes back
from the browser is the visitor's own data but still checked like any request: a model that is not
on this server's list any more, or a value out of its knob's range, falls back to the default.
"""

from __future__ import annotations

import os
from typing import Any

import gradio as gr

from app import options, registry
from app.errors import InpaintError
from app.web.model_list import ModelList, model_choices, on_load

STORAGE_KEY = "inpaint-studio-settings"
#: The key Gradio encrypts the stored settings with. They are not confidential (models and knobs): a
#: fixed key lets them outlive a restart of the Space, where Gradio's random default would drop them.
SECRET_ENV = "INPAINT_SETTINGS_SECRET"


def browser_state() -> gr.BrowserState:
    return gr.BrowserState({}, storage_key=STORAGE_KEY, secret=os.environ.get(SECRET_ENV, "inpaint-studio-settings"))


def default_models(shown: ModelList | None = None) -> list[str]:
    """The models ticked on a first visit: the registry's defaults that can run here."""
    unavailable = set((shown or model_choices()).unavailable)
    return [m for m in registry.DEFAULT_MODELS if m not in unavailable]


def remember(models: list[str] | None, *values: Any) -> dict[str, Any]:
    """What the browser keeps: the ticked models and each knob's value, by name."""
    return {"models": list(models or []), "knobs": dict(zip(options.NAMES, values, strict=True))}


def restore(saved: dict[str, Any] | None) -> tuple[list[str], list[Any]]:
    """The models to tick and each knob's value: the saved ones where they still hold, else the defaults."""
    saved = saved if isinstance(saved, dict) else {}
    shown = model_choices()  # one availability check for both the list and the defaults
    listed = {model_id for _, model_id in shown.choices}
    models = saved.get("models")
    if isinstance(models, list):
        models = [m for m in dict.fromkeys(models) if isinstance(m, str) and m in listed]
    else:
        models = default_models(shown)
    knobs = saved.get("knobs") if isinstance(saved.get("knobs"), dict) else {}
    return models, [_checked(knob, knobs.get(knob.name, knob.default)) for knob in options.KNOBS]


def _checked(knob: options.Knob, value: Any) -> Any:
    try:
        return knob.check(value)
    except (InpaintError, TypeError, ValueError):
        return knob.default


def defaults() -> tuple[list[str], list[Any]]:
    """What *Reset to defaults* puts back."""
    return default_models(), [knob.default for knob in options.KNOBS]


def on_visit(saved: dict[str, Any] | None) -> tuple:
    """The model list for this visit (:func:`app.web.model_list.on_load`) with the remembered ticks and knobs."""
    models, fold, folded, table = on_load()
    ticked, values = restore(saved)
    return (models | {"value": ticked}, fold, folded, table, *values)


def on_reset() -> tuple:
    """*Reset to defaults*: the default ticks and knobs, and nothing remembered any more."""
    ticked, values = defaults()
    return (ticked, *values, {})
