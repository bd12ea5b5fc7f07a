"""Every knob of a request, declared once: type, range, default, label and help text.

The studio's controls, the inputs of ``/inpaint``, the CLI flags and the library's
``inpaint(**options)`` are all derived from :data:`KNOBS`, and every value is checked by
:class:`Options` whichever way it came in (as IOPaint's ``schema.InpaintRequest`` does with
field descriptions). A knob added here appears everywhere; a default changed here changes
everywhere. Models and guide kinds are not knobs: they come from :mod:`app.registry`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, Literal

from app import masks, registry
from app.errors import InpaintError
from app.hires import Strategy

MAX_SAMPLES = 16
Control = Literal["slider", "number", "radio"]


@dataclass(frozen=True)
class Knob:
    """One option as every front end shows it; without ``choices`` it is a whole number in [low, high]."""

    name: str
    default: int | str
    label: str  # the studio's control
    help: str  # CLI --help, the studio's radio and the API's description
    low: int = 0
    high: int = 0
    step: int = 1
    choices: tuple[str, ...] = ()
    control: Control = "slider"
    advanced: bool = False  # under the studio's "Advanced" accordion

    @property
    def description(self) -> str:
        """The help text, with the range of a number: the API's description of this knob.

        ``/inpaint`` leaves ranges to :class:`Options` (for its message), so its schema has no
        minimum or maximum; an MCP client learns the range from here.
        """
        return self.help if self.choices else f"{self.help} (a whole number from {self.low} to {self.high})"

    @property
    def annotation(self) -> type:
        """What callers may pass: numbers arrive as floats from sliders and JSON, and are rounded."""
        return str if self.choices else float

    def check(self, value: object) -> int | str:
        """The value this knob stands for, or :class:`InpaintError` with a message for the user."""
        if self.choices:
            for choice in self.choices:
                if choice == value:  # a str Enum member equals its value
                    return choice
            raise InpaintError(f"Unknown {self.name} {value!r}; choose one of {', '.join(self.choices)}.")
        return whole(self.name, value, self.low, self.high)


def whole(name: str, value: object, low: int, high: int) -> int:
    """A whole number within [low, high]; NaN, infinities, text and out-of-range values are refused."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    except OverflowError:  # an integer too large for a float, e.g. 10**400 in raw JSON
        number = math.inf
    if not (math.isfinite(number) and low <= number <= high):
        raise InpaintError(f"{name.capitalize()} must be a number from {low} to {high} (got {repr(value)[:40]}).")
    return int(round(number))


def _knob(default: Any, label: str, help: str, **spec: Any) -> Any:
    """A field of :class:`Options` carrying its knob's declaration (the name comes from the field)."""
    return field(default=default, metadata={"knob": {"label": label, "help": help, **spec}})


@dataclass
class Options:
    """The validated knob values of one request; the defaults are what every front end starts with.

    Fields are in the order of ``/inpaint``'s inputs, which gradio_client callers pass by position.
    """

    samples: int = _knob(1, "Samples per model (for models that give several)",
                         "samples per model that gives several; the others give one",
                         low=1, high=MAX_SAMPLES)
    seed: int = _knob(0, "Seed (same seed = same fills)", "random seed of the models that sample",
                      high=2**32 - 1, control="number")
    strategy: Strategy = _knob(Strategy.CROP, "High-resolution strategy",
                               "crop: each hole with context at the model's size; resize: whole photo "
                               "downscaled to the model's size; original: whole photo at its own resolution "
                               "(refused by models with a smaller size limit)",
                               choices=tuple(s.value for s in Strategy), control="radio", advanced=True)
    margin: int = _knob(128, "Crop margin (px)", "px of context around each hole, for crop", high=512, step=8,
                        advanced=True)
    grow: int = _knob(masks.DEFAULT_GROW, "Grow mask (px)", "dilate the mask by this many px", high=64, advanced=True)
    feather: int = _knob(8, "Seam feather (px)", "soft seam width, px", high=64, advanced=True)

    def __post_init__(self) -> None:
        for knob in KNOBS:
            setattr(self, knob.name, knob.check(getattr(self, knob.name)))
        self.strategy = Strategy(self.strategy)

    @classmethod
    def of(cls, **values: Any) -> Options:
        """Options from caller-supplied values; an unknown name is the caller's error, not a ``TypeError``."""
        unknown = sorted(set(values) - set(NAMES))
        if unknown:
            raise InpaintError(f"Unknown option {unknown[0]!r}; choose from {', '.join(NAMES)}.")
        return cls(**values)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


KNOBS: tuple[Knob, ...] = tuple(Knob(name=f.name, default=_plain(f.default), **f.metadata["knob"])
                                for f in fields(Options))
NAMES: tuple[str, ...] = tuple(knob.name for knob in KNOBS)
#: Inclusive range of every numeric option, enforced by Options for every caller (UI, API, CLI, library).
RANGES: dict[str, tuple[int, int]] = {k.name: (k.low, k.high) for k in KNOBS if not k.choices}


def knob(name: str) -> Knob:
    """The declaration of one knob by name."""
    return KNOBS[NAMES.index(name)]


def defaults() -> dict[str, int | str]:
    return {k.name: k.default for k in KNOBS}


def signature_with_knobs(fn: Callable, placeholder: str, keyword_only: bool = False) -> inspect.Signature:
    """``fn``'s signature with its ``placeholder`` parameter replaced by one parameter per knob, with its default.

    Front ends take the knobs as one mapping but show them as parameters: Gradio names
    ``/inpaint``'s parameters after them, and ``help(app.inpaint)`` lists them.
    """
    signature = inspect.signature(fn)
    params = list(signature.parameters.values())
    at = [p.name for p in params].index(placeholder)
    kind = inspect.Parameter.KEYWORD_ONLY if keyword_only else inspect.Parameter.POSITIONAL_OR_KEYWORD
    knobs = [inspect.Parameter(k.name, kind, default=k.default, annotation=k.annotation) for k in KNOBS]
    return signature.replace(parameters=[*params[:at], *knobs, *params[at + 1:]])


def doc_with_knobs(doc: str | None, placeholder: str) -> str | None:
    """``doc`` with its ``placeholder:`` argument line replaced by one line per knob and its description.

    The docstring counterpart of :func:`signature_with_knobs`: Gradio's MCP server describes each
    parameter of a tool by its own ``name: text`` line under ``Args:``, and the text is declared here once.
    """
    return expand_arg_doc(doc, placeholder, {k.name: k.description for k in KNOBS})


def expand_arg_doc(doc: str | None, placeholder: str, entries: dict[str, str]) -> str | None:
    """``doc`` with the ``placeholder:`` line of its Google-style ``Args:`` replaced by a ``name: text`` line per entry.

    For wrappers that turn one parameter into several; a docstring without that line is returned as it is.
    """
    lines = (doc or "").splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "Args:"), len(lines))
    for i in range(start + 1, len(lines)):
        name, colon, _ = lines[i].strip().partition(":")
        if colon and name == placeholder:
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            lines[i:i + 1] = [f"{indent}{key}: {text}" for key, text in entries.items()]
            return "\n".join(lines)
    return doc


def guide_kinds() -> list[str]:
    """Every guide any registered model accepts (``ModelSpec.guides``), in registry order."""
    kinds: list[str] = []
    for spec in registry.MODELS:
        kinds += [g for g in spec.guides if g not in kinds]
    return kinds


def guide_users(kind: str) -> list[str]:
    """Short names of the models that read ``kind`` strokes, e.g. ``["EdgeConnect"]``."""
    return sorted({spec.name.split(" (")[0] for spec in registry.MODELS if kind in spec.guides})
