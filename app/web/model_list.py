"""The model list as one visit shows it: ready ticks, ticks that download on first use, the rest folded with why.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import gradio as gr

from app import registry
from app.weights import offer
from app.weights.sources import Source

log = logging.getLogger(__name__)


class ModelList(NamedTuple):
    """The model list as one visit shows it: what can be ticked, and the rest folded away with why."""

    choices: list[tuple[str, str]]  # (label, id) of the ready models and those that download on first use
    info: str  # under the list's label: what the downloads' mark means, with their sizes and sources
    unavailable: list[str]  # ids of the models that cannot run here: not in ``choices``, listed in ``folded``
    heading: str  # the fold's one line: how many, and why ("" when every model can run)
    folded: str  # Markdown: each unavailable model with its reason, for a visitor
    table: str  # Markdown: every model with its licence and state


#: Marks a tick whose model downloads its weights on first use (:func:`download_info` says from where).
DOWNLOAD_MARK = "↓"


def model_choices() -> ModelList:
    """Every model in one of three states: ready, downloads on first use (size and source), or unavailable.

    Only the first two are ticks: 18 greyed-out boxes made the list three screens long on a phone
    and pushed Erase far below the photo. A download's tick is its name and a mark, one line on a
    phone; the list's info gives sizes and sources per source. The unavailable ones are folded
    behind one line, each with a reason written for a visitor; the operator's detail (folders,
    commands) is in the CLI and the server log.
    """
    choices, downloads, unavailable, reasons, folded = [], [], [], [], []
    rows = ["| model | licence | status |", "|---|---|---|"]
    for spec in registry.MODELS:
        shown = offer(spec)
        if shown.state == "unavailable":
            unavailable.append(spec.id)
            reasons.append(shown.public)
            folded.append(f"- **{spec.name}**: {shown.public}")
            log.info("%s unavailable: %s", spec.id, shown.reason)
        elif shown.state == "download":
            downloads.append((spec.name, shown.source))
            choices.append((f"{spec.name} {DOWNLOAD_MARK}", spec.id))
        else:
            choices.append((spec.name, spec.id))
        status = {"ready": "ready" + (f" ({shown.public})" if shown.public else ""),
                  "download": shown.public, "unavailable": f"unavailable: {shown.public}"}[shown.state]
        rows.append(f"| **{spec.name}** — {spec.description} | {spec.licence} | {status} |")
    return ModelList(choices, download_info(downloads), unavailable, fold_heading(reasons), "\n".join(folded),
                     "\n".join(rows))


def download_info(downloads: list[tuple[str, Source]]) -> str:
    """E.g. "↓ downloads its weights when first chosen: LaMa (big-lama), 381 MB, from the Hugging Face Hub;
    8 models from the authors' server (size unknown)" — one clause per source ("" when nothing downloads)."""
    by_source: dict[str, list[tuple[str, Source]]] = {}
    for name, source in downloads:
        by_source.setdefault(source.label, []).append((name, source))
    clauses = []
    for label, group in by_source.items():
        sizes = {source.size for _, source in group}
        size = sizes.pop() if len(sizes) == 1 else "sizes under Models and licences"
        who = group[0][0] if len(group) == 1 else f"{len(group)} models"
        each = " each" if len(group) > 1 and size.endswith("B") else ""
        clauses.append(f"{who} from {label} ({size}{each})")
    return f"{DOWNLOAD_MARK} downloads its weights when first chosen: {'; '.join(clauses)}." if clauses else ""


def fold_heading(reasons: list[str]) -> str:
    """The fold's one line for the unavailable models' ``reasons``: how many, and the reason when all share one."""
    if not reasons:
        return ""
    count = f"{len(reasons)} more model{'s' if len(reasons) > 1 else ''} unavailable"
    if len(set(reasons)) > 1:
        return f"{count} on this server — why"
    return f"{count}: {_plural(reasons[0]) if len(reasons) > 1 else reasons[0]}"


def _plural(reason: str) -> str:
    """A visitor reason written for one model, said of several ("its weights" -> "their weights")."""
    return reason.replace("its weights", "their weights").replace("it is ", "they are ")


def on_load() -> tuple[dict, dict, str, str]:
    """The model list, its fold and the table as they stand for this visit.

    The ticks stay (the defaults need no weights); a Hub that came back makes its models tickable.
    """
    shown = model_choices()
    return (gr.update(choices=shown.choices, info=shown.info or None),
            gr.update(label=shown.heading or "Unavailable models", visible=bool(shown.unavailable)),
            shown.folded, shown.table)
