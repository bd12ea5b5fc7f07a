"""The deployment's weight pins: which Hub mirror each model uses, at which commit and sha256.

``weights push`` records a mirror here after uploading it, so deploying the studio never
means editing Python. The file is ``pins.json`` beside ``app.py`` (``INPAINT_PINS`` names
another), read at each lookup so a running process sees a new pin at once::

    {"edgeconnect-places2": {"mirror": {"repo_id": "me/edgeconnect-places2",
                                        "revision": "<40-hex commit>",
                                        "files": {"model.safetensors": "<sha256>"}}},
     "lama": {"archive": {"sha256": "<sha256 of big-lama.zip>", "size": 381428720}}}

``mirror`` replaces the registry's mirror; ``archive`` re-pins the authors' own file (a Hub archive
or an HTTPS download: when the authors re-upload it, once its full sha256 is known, and for the
tests' synthetic files). A model with neither keeps
the registry's entries. A malformed file is an error naming it, never silently ignored.

``first_use`` pins a mirror file that neither the registry nor a ``mirror`` record pins (the registry's
mirrors under ``INPAINT_HUB_NAMESPACE``): the app writes it itself once the file's first download
(or the copy it found in the cache) loaded strictly, and from then on every download and cache hit
of that model must have that sha256 and size, whichever mirror serves it::

    {"lama": {"first_use": {"model.safetensors": {"sha256": "<sha256>", "size": 204000000,
                                                  "from": "me/big-lama@v1"}}}}

Deleting that record accepts a new file at its next first use.

A segmenter's or the person detector's first-use pins (:mod:`app.weights.pretrained`) cover
``config.json`` too, and each holds only for the ``<repo>@<commit>`` in its ``from``: a repo with no
recorded commit (EdgeTAM) is fetched at the commit its first use recorded there, wherever its
branch has moved since, and a commit the operator records later is pinned afresh on its own first use.
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from app.errors import WeightsError
from app.specs import HubWeights, ModelSpec, OfficialArchive, OfficialDownload

PINS_ENV = "INPAINT_PINS"


@dataclass(frozen=True)
class FirstUsePin:
    """What a mirror file was on its first use (``where``: the repo@revision it came from then)."""

    sha256: str
    size: int
    where: str

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_lock = threading.Lock()


def pins_path() -> Path:
    """``$INPAINT_PINS``, else ``pins.json`` at the project root (next to ``app.py``)."""
    env = os.environ.get(PINS_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "pins.json"


def read_pins() -> dict[str, dict[str, Any]]:
    """Every record of the pins file ({} when there is none)."""
    path = pins_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise WeightsError(f"The weight pins file {path} cannot be read: {exc}") from exc
    try:
        pins = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WeightsError(f"The weight pins file {path} is not valid JSON ({exc}); fix or delete it.") from exc
    if not isinstance(pins, dict) or not all(isinstance(v, dict) for v in pins.values()):
        raise WeightsError(f"The weight pins file {path} must map model ids to records ({{\"<id>\": {{...}}}}).")
    return pins


def recorded_mirror(spec: ModelSpec) -> HubWeights | None:
    """The mirror recorded for ``spec``, checked, or None."""
    record = read_pins().get(spec.id, {}).get("mirror")
    if record is None:
        return None
    try:
        files = {str(name): _sha(sha) for name, sha in dict(record["files"]).items()}
        return HubWeights(repo=_repo_id(record["repo_id"]), revision=str(record["revision"]), files=files)
    except (KeyError, TypeError, ValueError) as exc:
        raise WeightsError(f"The mirror pinned for {spec.id} in {pins_path()} is malformed ({exc}): it needs "
                           "repo_id (namespace/name), revision and files {name: sha256}.") from exc


def official(spec: ModelSpec) -> OfficialArchive | OfficialDownload | None:
    """``spec``'s own source (Hub archive or HTTPS file), with the pins file's sha256/size when it re-pins them."""
    source = spec.official_archive or spec.official_download
    record = read_pins().get(spec.id, {}).get("archive")
    if source is None or record is None:
        return source
    try:
        return replace(source, sha256=_sha(record["sha256"]), size=int(record["size"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise WeightsError(f"The archive pinned for {spec.id} in {pins_path()} is malformed ({exc}): it needs "
                           "sha256 and size.") from exc


def first_use(spec: ModelSpec) -> dict[str, FirstUsePin]:
    """The mirror files of ``spec`` pinned on their first use, by name ({} when none is)."""
    record = read_pins().get(spec.id, {}).get("first_use")
    if record is None:
        return {}
    try:
        return {str(name): FirstUsePin(_sha(str(entry["sha256"])), int(entry["size"]), str(entry["from"]))
                for name, entry in dict(record).items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise WeightsError(f"The first-use pins of {spec.id} in {pins_path()} are malformed ({exc}): each file "
                           "needs sha256, size and from; delete that record to pin again.") from exc


def why_pinned(spec: ModelSpec, name: str, expected: str, changed: str) -> tuple[str, str]:
    """Where the pin ``expected`` of ``name`` comes from, and what to do about a file that does not match it.

    ``changed`` says what a mismatch means for this source (e.g. "the Hub serves other bytes...").
    """
    first = first_use(spec).get(name)
    if first is not None and first.sha256 == expected:
        return (f"pinned on its first use, from {first.where}, in {pins_path()}",
                f"If it changed on purpose, delete the \"first_use\" record of {spec.id} in that file to pin the "
                f"new one; otherwise {changed}.")
    return f"pinned for {spec.id} in the registry or {pins_path()}", f"{changed[:1].upper()}{changed[1:]}: check it."


def record_mirror(spec: ModelSpec, repo_id: str, revision: str, files: dict[str, str]) -> Path:
    """Write ``spec``'s mirror into the pins file (other records kept); returns the file."""
    return _update(spec, "mirror", {"repo_id": repo_id, "revision": revision, "files": dict(files)})


def record_first_use(spec: ModelSpec, files: dict[str, FirstUsePin]) -> Path:
    """Pin ``files`` of ``spec``'s mirror as they were on their first use (its other first-use pins kept)."""
    entries = {name: {"sha256": pin.sha256, "size": pin.size, "from": pin.where} for name, pin in files.items()}
    return _update(spec, "first_use", entries, merge=True)


def _update(spec: ModelSpec, kind: str, record: dict[str, Any], merge: bool = False) -> Path:
    """Set (or ``merge`` into) ``spec``'s ``kind`` record, other records kept; written whole, then renamed over it."""
    path = pins_path()
    with _lock:
        pins = read_pins()
        entry = pins.setdefault(spec.id, {})
        entry[kind] = {**entry.get(kind, {}), **record} if merge else record
        staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        staged.write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(staged, path)
    return path


def _repo_id(value: Any) -> str:
    if not isinstance(value, str) or value.count("/") != 1 or not all(value.split("/")):
        raise ValueError(f"repo_id {value!r} is not namespace/name")
    return value


def _sha(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _SHA256.match(value.lower()):
        raise ValueError(f"{value!r} is not a sha256 (64 hex digits)")
    return value.lower()
