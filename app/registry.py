"""Every model the studio can run, declared in one place.

Adding a model = one module with its network (implementing
:class:`app.models.base.Inpainter`) + one :class:`ModelSpec` below. The UI choices,
the CLI's ``--model`` values, the API and the weights tooling are all derived from
this list; nothing else names a model.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from app.errors import ModelUnavailableError

#: Hub namespace that mirrors the authors' weights (they are published on Google Drive
#: only); whoever deploys sets it to their own mirror.
HUB_NAMESPACE_ENV = "INPAINT_HUB_NAMESPACE"
DEFAULT_HUB_NAMESPACE = "inpaint-studio"


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
    kind: Literal["classical", "neural"]
    #: ``"module:Class"`` implementing :class:`~app.models.base.Inpainter`.
    entry: str
    licence: str
    #: Side of the square the model was trained at; None = works at any size.
    native_size: int | None = None
    #: Largest crop side fed to the model; larger crops are resized down to it.
    #: Defaults to ``native_size`` (models like LaMa can take more).
    max_size: int | None = None
    size_multiple: int = 1
    #: Most crops per forward pass; bounds memory when a photo has many holes.
    max_batch: int = 8
    diverse: bool = False  # gives several different samples per input
    #: Stroke maps the user can draw to steer the model, e.g. ("edges",) for EdgeConnect.
    guides: tuple[str, ...] = ()
    description: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)  # passed to the entry class
    weights: HubWeights | None = None
    official_archive: OfficialArchive | None = None
    card: Card = field(default_factory=Card)

    @property
    def crop_limit(self) -> int | None:
        return self.max_size or self.native_size

    def entry_class(self) -> type:
        module, _, name = self.entry.partition(":")
        return getattr(importlib.import_module(module), name)


_MIT_OPENCV = "Apache-2.0 (OpenCV)"

CLASSICAL: tuple[ModelSpec, ...] = (
    ModelSpec(
        id="telea",
        name="OpenCV Telea",
        kind="classical",
        entry="app.inpainters.opencv:OpenCVInpainter",
        kwargs={"method": "telea"},
        licence=_MIT_OPENCV,
        description="Fast marching (Telea 2004): smooth, good for thin scratches and text.",
        card=Card(authors="A. Telea", paper="An Image Inpainting Technique Based on the Fast Marching Method (2004)",
                  source="https://docs.opencv.org/4.x/df/d3d/tutorial_py_inpainting.html"),
    ),
    ModelSpec(
        id="navier-stokes",
        name="OpenCV Navier-Stokes",
        kind="classical",
        entry="app.inpainters.opencv:OpenCVInpainter",
        kwargs={"method": "ns"},
        licence=_MIT_OPENCV,
        description="Fluid-dynamics diffusion (Bertalmio 2001): smooth, follows isophotes.",
        card=Card(authors="M. Bertalmio, A. L. Bertozzi, G. Sapiro",
                  paper="Navier-Stokes, Fluid Dynamics, and Image and Video Inpainting (CVPR 2001)",
                  source="https://docs.opencv.org/4.x/df/d3d/tutorial_py_inpainting.html"),
    ),
    ModelSpec(
        id="patchmatch",
        name="PatchMatch",
        kind="classical",
        entry="app.inpainters.patchmatch:PatchMatchInpainter",
        licence="MIT (PyPatchMatch)",
        max_size=1024,
        description="Copies texture from elsewhere in the photo (Barnes 2009): good for backgrounds.",
        card=Card(authors="C. Barnes, E. Shechtman, A. Finkelstein, D. B. Goldman",
                  paper="PatchMatch (SIGGRAPH 2009)", source="https://github.com/vacancy/PyPatchMatch"),
    ),
)

_NC = "CC BY-NC 4.0 (non-commercial)"
_EDGECONNECT = Card(
    authors="K. Nazeri, E. Ng, T. Joseph, F. Qureshi, M. Ebrahimi",
    paper="EdgeConnect: Structure Guided Image Inpainting using Edge Prediction (ICCVW 2019)",
    source="https://github.com/knazeri/edge-connect",
    weights_source="https://github.com/knazeri/edge-connect#getting-started (Google Drive)",
)
_RFR = Card(
    authors="J. Li, N. Wang, L. Zhang, B. Du, D. Tao",
    paper="Recurrent Feature Reasoning for Image Inpainting (CVPR 2020)",
    source="https://github.com/jingyuanli001/RFR-Inpainting",
    weights_source="https://drive.google.com/drive/folders/1EbRSL6SlJqeMliT9qU8V5g0idJqvirZr",
)
_PIC = Card(
    authors="C. Zheng, T.-J. Cham, J. Cai",
    paper="Pluralistic Image Completion (CVPR 2019)",
    source="https://github.com/lyndonzheng/Pluralistic-Inpainting",
    weights_source="https://github.com/lyndonzheng/Pluralistic-Inpainting#pretrained-models (Google Drive)",
)
_LAMA = Card(
    authors="R. Suvorov, E. Logacheva, A. Mashikhin, A. Remizova, A. Ashukha, A. Silvestrov, N. Kong, "
    "H. Goka, K. Park, V. Lempitsky",
    paper="Resolution-robust Large Mask Inpainting with Fourier Convolutions (WACV 2022)",
    source="https://github.com/advimman/lama",
    weights_source="https://huggingface.co/smartywu/big-lama (big-lama.zip)",
)

#: Tag that ``python -m app weights push`` creates; pin a commit sha here once mirrored.
MIRROR_REVISION = "v1"


def _mirror(repo: str) -> HubWeights:
    return HubWeights(repo=repo, revision=MIRROR_REVISION, files={"model.safetensors": None})


def _edgeconnect(dataset: str, label: str, default: bool = False) -> ModelSpec:
    return ModelSpec(
        id=f"edgeconnect-{dataset}", name=f"EdgeConnect ({label})", kind="neural",
        entry="app.models.edgeconnect:EdgeConnect", licence=_NC, native_size=256, size_multiple=4,
        guides=("edges",),
        description="Draws the missing edges first, then paints along them; you can draw edges to steer it."
        + (" General-purpose." if default else ""),
        weights=_mirror(f"edgeconnect-{dataset}"), card=_EDGECONNECT,
    )


def _rfr(dataset: str, label: str) -> ModelSpec:
    return ModelSpec(
        id=f"rfr-{dataset}", name=f"RFR-Net ({label})", kind="neural",
        entry="app.models.rfr:RFRNet", licence="MIT code; weights licence not stated by the authors",
        native_size=256, size_multiple=16,
        description="Fills large holes progressively from the border inward.",
        weights=_mirror(f"rfr-{dataset}"), card=_RFR,
    )


def _pic(dataset: str, label: str) -> ModelSpec:
    return ModelSpec(
        id=f"pic-{dataset}", name=f"Pluralistic ({label})", kind="neural",
        entry="app.models.pic:Pluralistic", licence=_NC, native_size=256, size_multiple=32, diverse=True,
        description="Several different plausible fills per hole; pick the one you like.",
        weights=_mirror(f"pic-{dataset}"), card=_PIC,
    )


NEURAL: tuple[ModelSpec, ...] = (
    _edgeconnect("places2", "Places2", default=True),
    _edgeconnect("celeba", "CelebA faces"),
    _edgeconnect("psv", "Paris StreetView"),
    _rfr("psv", "Paris StreetView"),
    _rfr("celeba", "CelebA faces"),
    _pic("places2", "Places2"),
    _pic("celebahq", "CelebA-HQ faces"),
    _pic("psv", "Paris StreetView"),
    _pic("imagenet", "ImageNet"),
    ModelSpec(
        id="lama", name="LaMa (big-lama)", kind="neural", entry="app.models.lama:BigLaMa",
        licence="Apache-2.0", native_size=256, max_size=1536, size_multiple=8,
        description="Fourier convolutions see the whole crop: the strongest eraser of large objects.",
        weights=_mirror("big-lama"), card=_LAMA,
        # sha256 and size of smartywu/big-lama's big-lama.zip as three independent public pins
        # give them (consistent with the 381 MB in ../shared/reference/MODELS.md).
        official_archive=OfficialArchive(repo="smartywu/big-lama", file="big-lama.zip",
                                         members={"big-lama/models/best.ckpt": "best.ckpt"},
                                         sha256="d7161bba4d68b438f9fa7f09dcb750a223804c300c68d214a5e0be16251fba8d",
                                         size=381_428_720),
    ),
)

MODELS = CLASSICAL + NEURAL

DEFAULT_MODELS: tuple[str, ...] = ("telea", "patchmatch")


def get(model_id: str) -> ModelSpec:
    """The spec of ``model_id``, or an error listing the valid ids."""
    for spec in MODELS:
        if spec.id == model_id:
            return spec
    raise ModelUnavailableError(f"Unknown model '{model_id}'. Choose from: {', '.join(ids())}.")


def ids() -> list[str]:
    return [spec.id for spec in MODELS]
