"""The plain facts every part of the studio speaks in: what a model is and where its weights come from.

The ground floor of the house: dataclasses and constants only, importing nothing of the app (nor
torch), so the registry, the weights machinery and the networks can all build on it without a loop.
:mod:`app.registry` is the catalogue written in these terms; a network class declares its
:class:`OfficialFile` s here and its sizes in :class:`app.models.base.NetworkFacts`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

#: How long work reports how far it got: (fraction done in [0, 1], what it is doing). The one progress type.
Progress = Callable[[float, str], None]

if TYPE_CHECKING:
    import torch

    from app.models.base import NeuralNetwork

#: Hub namespace that mirrors the authors' weights (they are published on Google Drive
#: only); whoever deploys sets it, or records each mirror in pins.json with ``weights push``.
#: Unset, a registry mirror is not used (see :func:`app.weights.resolve.mirror`).
HUB_NAMESPACE_ENV = "INPAINT_HUB_NAMESPACE"
DEFAULT_HUB_NAMESPACE = "inpaint-studio"  # only named in messages while no namespace is set


class Licence(str):
    """A licence as users read it (the string itself, unchanged in UI, API and CLI) plus its identifier.

    The identifier is what machines read (the Hub model card's ``license``), so nothing has to
    guess it back from the display text. A ``str`` subclass so every place that shows or
    serialises the licence keeps showing exactly the text.
    """

    id: str

    def __new__(cls, text: str, id: str = "other") -> Licence:  # noqa: A002 - the field is named id
        licence = super().__new__(cls, text)
        licence.id = id
        return licence

    def __getnewargs__(self) -> tuple[str, str]:  # copy and pickle keep the id
        return str(self), self.id

    @property
    def text(self) -> str:
        return str.__str__(self)


#: Identifier of a licence the authors did not state (the Hub card says ``other`` with this name).
WEIGHTS_LICENCE_NOT_STATED = "weights-licence-not-stated"


@dataclass(frozen=True)
class HubWeights:
    """Where our converted safetensors live on the Hugging Face Hub."""

    repo: str  # repo name inside the namespace, e.g. "edgeconnect-places2"
    revision: str  # pinned commit sha (or tag) — never a moving branch in production
    files: dict[str, str | None]  # file name -> sha256 (None = not pinned yet)

    @property
    def repo_id(self) -> str:
        """Full repo id; the namespace comes from ``INPAINT_HUB_NAMESPACE``."""
        if "/" in self.repo:
            return self.repo
        return f"{os.environ.get(HUB_NAMESPACE_ENV) or DEFAULT_HUB_NAMESPACE}/{self.repo}"

    @property
    def where(self) -> str:
        """``repo_id@revision``, as messages name it."""
        return f"{self.repo_id}@{self.revision}"


@dataclass(frozen=True)
class OfficialArchive:
    """The authors' own distribution on the Hub, fetched only by ``python -m app weights fetch-official``.

    It holds pickled release files, so it is never loaded directly: the command extracts the
    named members into ``checkpoints/<id>/`` and converts them to safetensors (reading them
    with the restricted unpickler, which runs no code from the file). ``sha256`` is
    mandatory in practice: :mod:`app.weights.archive` refuses an archive without a pin, and
    checks ``size`` (when given) before hashing.
    """

    repo: str  # full repo id, e.g. "smartywu/big-lama"
    file: str  # e.g. "big-lama.zip"
    members: dict[str, str]  # path inside the archive -> official file name we expect
    revision: str = "main"
    sha256: str | None = None  # of the whole archive; None = unpinned, which fetch-official refuses
    size: int | None = None  # bytes of the whole archive, checked before hashing
    max_member_bytes: int = 2 << 30  # largest unpacked size of one named member (2 GiB)


@dataclass(frozen=True)
class OfficialDownload:
    """The authors' release file on a plain HTTPS server (mmagic's download.openmmlab.com), not the Hub.

    Fetched and converted on first use like an :class:`OfficialArchive` (:mod:`app.weights.provision`).
    Until its full ``sha256`` is known and pinned (here or in pins.json), the download is held to
    ``sha256_prefix``, the hex digits the authors put in the file name: a weak check on its own
    (32 bits), which is why the file is only ever read with the restricted unpickler and loaded
    strictly. A successful first download prints the full sha256 to pin.
    """

    url: str  # https://... (http only for a loopback host: the tests' server)
    file: str  # the official file name it is saved under (one of the network's official files)
    sha256_prefix: str = ""
    #: The md5 the publisher's own code checks (IOPaint's for MAT), where no sha256 is published: weaker
    #: still than the prefix, held only until a full sha256 is pinned (pins.json).
    md5: str = ""
    sha256: str | None = None
    size: int | None = None  # bytes, checked before hashing when known
    max_bytes: int = 2 << 30  # a response longer than this is cut off and refused


@dataclass(frozen=True)
class GoogleDriveRelease:
    """The authors' release on Google Drive (EdgeConnect, RFR-Net, PIC): fetched and converted on first use.

    Drive publishes no hash, so the first download that converts and loads strictly is pinned in
    pins.json (``first_use``, sha256 and size) and every later one must match it
    (:mod:`app.weights.gdrive`). ``id`` is what the authors' README links to: a folder, a zip, or
    the release file itself (``container``; ``auto`` asks Drive whether it lists the id as a folder).
    """

    id: str  # the Drive folder or file id from the authors' README
    #: file the network needs, as released (a path suffix inside the folder or zip) -> official name saved under;
    #: only these are downloaded or extracted (the generators; PIC's discriminator too, it rates samples)
    files: dict[str, str]
    container: Literal["folder", "zip", "file", "auto"] = "auto"
    size: int | None = None  # approximate bytes downloaded, for display only (nothing is pinned here)
    max_bytes: int = 2 << 30  # one downloaded file past this is cut off and refused (size cap before reading)
    max_member_bytes: int = 2 << 30  # a zip member unpacking past this is refused (as for the Hub archive)

    @property
    def where(self) -> str:
        """How messages name the source (no server path, nothing a visitor cannot read)."""
        return f"Google Drive {'folder' if self.container == 'folder' else 'file'} {self.id}"


@dataclass(frozen=True)
class HubPipeline:
    """A ``diffusers`` pipeline published on the Hub by its authors (the diffusion remover), run through diffusers.

    Every file of the repo at one commit that is JSON, plain text (tokenizer vocabularies) or
    ``.safetensors`` is downloaded, nothing else (no pickles, no code); the commit and each file's
    sha256 are pinned on the first download that loads (:mod:`app.weights.hub_pipeline`), unless
    ``revision`` names a commit already. ``model_index.json`` must name ``pipeline`` and only
    diffusers/transformers classes: no remote code is ever run.
    """

    repo: str  # full repo id, e.g. "LetsThink/RORem"
    pipeline: str  # the diffusers class model_index.json must name, e.g. "StableDiffusionXLInpaintPipeline"
    approx_mb: int  # download size, shown before the first use
    revision: str = ""  # 40-hex commit; "" = the default branch's commit at the first download, then pinned
    #: A LoRA fused into the UNet at load (RORem's LCM LoRA for 4-step sampling), from the authors' Drive.
    lora: GoogleDriveRelease | None = None
    lora_file: str = ""  # the name the LoRA is saved under (a .safetensors file)


@dataclass(frozen=True)
class Card:
    """Facts for the model card and the UI's licence line."""

    authors: str = ""
    paper: str = ""
    source: str = ""
    weights_source: str = ""  # where the authors publish the official files


@dataclass(frozen=True)
class ModelSpec:
    id: str
    name: str
    kind: Literal["classical", "neural", "diffusion"]
    #: ``"module:Class"`` implementing :class:`~app.models.base.Inpainter`.
    entry: str
    #: Display text + identifier; a plain string is accepted (identifier ``other``).
    licence: Licence
    #: Side of the square the model was trained at; None = works at any size.
    native_size: int | None = None
    #: Largest crop side fed to the model; larger crops are resized down to it.
    #: Defaults to ``native_size`` (models like LaMa can take more).
    max_size: int | None = None
    size_multiple: int = 1
    #: Smallest crop side the model takes (:attr:`~app.models.base.NetworkFacts.least_side`).
    least_side: int = 1
    #: Most crops per forward pass; bounds memory when a photo has many holes.
    max_batch: int = 8
    diverse: bool = False  # gives several different samples per input
    #: Stroke maps the user can draw to steer the model, e.g. ("edges",) for EdgeConnect.
    guides: tuple[str, ...] = ()
    description: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)  # passed to the entry class
    weights: HubWeights | None = None
    official_archive: OfficialArchive | None = None
    official_download: OfficialDownload | None = None
    official_drive: GoogleDriveRelease | None = None
    hub_pipeline: HubPipeline | None = None  # kind "diffusion": the diffusers pipeline it runs
    #: ZeroGPU seconds per crop and sample at 256x256 (scaled by area; :func:`app.gpu.gpu_seconds`).
    gpu_seconds_per_crop: float = 0.5
    #: Seconds one 512x512 fill takes on a CPU, measured (docs/benchmarks): a model that needs minutes
    #: there is offered only where a GPU is (or ``INPAINT_SLOW_ON_CPU=1``). None = fine on any CPU.
    cpu_seconds_512: float | None = None
    card: Card = field(default_factory=Card)

    def __post_init__(self) -> None:
        if not isinstance(self.licence, Licence):
            object.__setattr__(self, "licence", Licence(self.licence))

    @property
    def crop_limit(self) -> int | None:
        return self.max_size or self.native_size

    def entry_class(self) -> type:
        return import_entry(self.entry)

    def network(self) -> type[NeuralNetwork]:
        """The neural network class of this spec, checked to implement the contract the loader relies on."""
        from app.errors import ModelUnavailableError  # imported when asked: this module imports nothing of the app
        from app.models.base import NeuralNetwork

        cls = self.entry_class()
        if not (isinstance(cls, type) and issubclass(cls, NeuralNetwork)):
            raise ModelUnavailableError(f"{self.name}: {self.entry} is not a NeuralNetwork (app.models.base), "
                                        "so it cannot be loaded from weights.")
        return cls


def import_entry(entry: str) -> type:
    module, _, name = entry.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class PretrainedSpec:
    """A ``transformers`` model the studio runs besides the inpainters: a segmenter or the person detector.

    Loaded through the same weights machinery as the inpainters (:mod:`app.weights.pretrained`:
    ``checkpoints/<id>/`` first, then the Hugging Face cache at the pinned revision, then a
    download of exactly ``weights.files``) and kept by the same model cache. Only
    ``config.json`` and ``.safetensors`` files are ever fetched, the class is named here (never
    ``trust_remote_code``) and ``config.json`` must declare ``model_type``.

    ``weights.revision`` is a 40-hex commit of the authors' repo, or "" while none is known:
    then the first download pins the commit the repo's default branch is at (every file fetched at
    that commit, never at the moving branch), once the files load strictly, in pins.json's
    ``first_use`` record with each file's sha256 and size; every later use fetches that commit and
    must match those hashes. A file given without a sha256 is pinned on first use the same way. The
    operator may record a commit instead (``{"<id>": {"mirror": {"repo_id": ..., "revision": ...,
    "files": {...}}}}``, the record ``weights push`` writes for mirrors), which wins over the commit
    given here.
    """

    id: str
    name: str
    task: Literal["segment", "detect"]
    architecture: str  # the transformers class, e.g. "Sam2Model"
    model_type: str  # what its config.json must say, e.g. "sam2"
    weights: HubWeights
    licence: Licence
    approx_mb: int  # download size: parameters x 4 bytes (float32 safetensors), see docs/benchmarks
    description: str = ""
    card: Card = field(default_factory=Card)
    kind: str = "pretrained"  # the model cache keeps these with the neural inpainters (LRU, memory budget)
    #: Other ``model_type``s the published config.json may declare for the same weights: SAM 2.1's
    #: repos say ``sam2_video`` (one checkpoint for both the image and the video model).
    published_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class OfficialFile:
    """One released file and how its tensors map onto our network."""

    name: str  # file name as released, e.g. "EdgeModel_gen.pth"
    component: str  # our submodule it fills, e.g. "edge" ("" = the root module)
    container: str | None = None  # key of the state_dict inside the saved dict, None = bare
    prefix: str = ""  # prefix to strip from every key, e.g. "module." or "generator."
    # True: keys without ``prefix`` belong to other networks and are ignored (LaMa's
    # Lightning checkpoint holds the discriminator and losses too). False: ``prefix``
    # is optional (files saved with or without DataParallel both load).
    only_prefixed: bool = False
    # Model-specific renaming of an official key; return None to drop the key
    # (e.g. PIC's aliased duplicates). Applied after the prefix is stripped.
    rename: Callable[[str, Mapping[str, torch.Tensor]], str | None] | None = None
    required: bool = True
    aliases: tuple[str, ...] = ()  # other names the same file is known under (e.g. per dataset)

    def find(self, folder: Path) -> Path | None:
        """The file in ``folder`` under its name or one of its aliases."""
        for name in (self.name, *self.aliases):
            if (folder / name).is_file():
                return folder / name
        return None
