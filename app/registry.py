"""Every model the studio can run, declared in one place.

Adding a model = one module with its network (a :class:`app.models.base.NeuralNetwork`
declaring its :class:`~app.models.base.NetworkFacts`) + one :class:`ModelSpec` below + its
fixture test. The UI choices, the CLI's ``--model`` values, the API and the weights tooling
are all derived from this list; nothing else names a model. A network's sizes are read
from its class here, once, so the registry cannot disagree with the network.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from app.errors import ModelUnavailableError
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
        return _import_entry(self.entry)

    def network(self) -> type[NeuralNetwork]:
        """The neural network class of this spec, checked to implement the contract the loader relies on."""
        cls = self.entry_class()
        if not (isinstance(cls, type) and issubclass(cls, NeuralNetwork)):
            raise ModelUnavailableError(f"{self.name}: {self.entry} is not a NeuralNetwork (app.models.base), "
                                        "so it cannot be loaded from weights.")
        return cls


def _import_entry(entry: str) -> type:
    module, _, name = entry.partition(":")
    return getattr(importlib.import_module(module), name)


def _neural(entry: str, **fields: Any) -> ModelSpec:
    """A neural spec whose sizes come from its network's :class:`NetworkFacts` (declared once, on the class)."""
    facts = _import_entry(entry).FACTS
    return ModelSpec(kind="neural", entry=entry, native_size=facts.native_size, max_size=facts.max_size,
                     size_multiple=facts.size_multiple, least_side=facts.least_side or facts.size_multiple,
                     **fields)


_APACHE_OPENCV = Licence("Apache-2.0 (OpenCV)", "apache-2.0")

CLASSICAL: tuple[ModelSpec, ...] = (
    ModelSpec(
        id="telea",
        name="OpenCV Telea",
        kind="classical",
        entry="app.inpainters.opencv:OpenCVInpainter",
        kwargs={"method": "telea"},
        licence=_APACHE_OPENCV,
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
        licence=_APACHE_OPENCV,
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
        licence=Licence("MIT (PyPatchMatch)", "mit"),
        max_size=1024,
        description="Copies texture from elsewhere in the photo (Barnes 2009): good for backgrounds.",
        card=Card(authors="C. Barnes, E. Shechtman, A. Finkelstein, D. B. Goldman",
                  paper="PatchMatch (SIGGRAPH 2009)", source="https://github.com/vacancy/PyPatchMatch"),
    ),
)

_NC = Licence("CC BY-NC 4.0 (non-commercial)", "cc-by-nc-4.0")
_RFR_LICENCE = Licence("MIT code; weights licence not stated by the authors", WEIGHTS_LICENCE_NOT_STATED)
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
#: MI-GAN's one Drive folder (README "Prepare environment"): migan_256_places2.pt, migan_256_ffhq.pt and
#: migan_512_places2.pt, bare state dicts.
_MIGAN_DRIVE = "1xNtvN2lto0p5yFKOEEg9RioMjGrYM74w"
_MIGAN = Card(
    authors="A. Sargsyan, S. Navasardyan, X. Xu, H. Shi",
    paper="MI-GAN: A Simple Baseline for Image Inpainting on Mobile Devices (ICCV 2023)",
    source="https://github.com/Picsart-AI-Research/MI-GAN",
    weights_source=f"https://drive.google.com/drive/folders/{_MIGAN_DRIVE}",
)
_MAT = Card(
    authors="W. Li, Z. Lin, K. Zhou, L. Qi, Y. Wang, J. Jia",
    paper="MAT: Mask-Aware Transformer for Large Hole Image Inpainting (CVPR 2022)",
    source="https://github.com/fenglinglwb/MAT",
    weights_source="https://github.com/Sanster/models/releases/download/add_mat/Places_512_FullData_G.pth",
)

#: Tag that ``python -m app weights push`` creates; pin a commit sha here once mirrored.
MIRROR_REVISION = "v1"


def _mirror(repo: str) -> HubWeights:
    return HubWeights(repo=repo, revision=MIRROR_REVISION, files={"model.safetensors": None})


#: EdgeConnect's per-dataset Drive folders (its README); each holds EdgeModel_gen/dis.pth, InpaintingModel_gen/dis.pth.
#: (scripts/download_model.sh fetches one zip of all three instead: 1bXYYcFFbvTsoZUnaoePNEObPzfx1DkPV.)
_EDGECONNECT_DRIVE = {"places2": "158ch9Psjop0mQEdeIp9DKjrYIGTDsZKN", "celeba": "13JgMA5sKMYgRwHBp4f7PBc5orNJ_Cv-p",
                      "psv": "1hMGVz6Ck3erpP3BRNzG90HNCJl85kveN"}
#: RFR-Net's one Drive folder (Paris StreetView and CelebA only; Places2 was never added): checkpoint_<dataset>.pth.
_RFR_DRIVE = "1EbRSL6SlJqeMliT9qU8V5g0idJqvirZr"
_RFR_FILES = {"psv": "checkpoint_paris.pth", "celeba": "checkpoint_celeba.pth"}
#: Pluralistic's *_random models, one Drive link each (README "Pretrained Models"): a folder or an archive.
_PIC_DRIVE = {"celebahq": "1nLq-W7eAZErqsvB1Q8h1yQT_l7_kZBXT", "psv": "1D67Y1AtsMy_opysxtt06D7vZrDUKvDAm",
              "places2": "1L4NAHQqyEJ_ANt4SfEP1hdEVdGrteu4L", "imagenet": "1hS6D4gjOkvEOlAEOAKxCCzjhpCoddU2S"}


def _edgeconnect(dataset: str, label: str, default: bool = False) -> ModelSpec:
    return _neural(
        "app.models.edgeconnect:EdgeConnect",
        id=f"edgeconnect-{dataset}", name=f"EdgeConnect ({label})", licence=_NC, guides=("edges",),
        description="Draws the missing edges first, then paints along them; you can draw edges to steer it."
        + (" General-purpose." if default else ""),
        weights=_mirror(f"edgeconnect-{dataset}"), card=_EDGECONNECT,
        official_drive=GoogleDriveRelease(_EDGECONNECT_DRIVE[dataset], container="folder", size=86_000_000,
                                          files={"EdgeModel_gen.pth": "EdgeModel_gen.pth",
                                                 "InpaintingModel_gen.pth": "InpaintingModel_gen.pth"}),
    )


def _rfr(dataset: str, label: str) -> ModelSpec:
    return _neural(
        "app.models.rfr:RFRNet", id=f"rfr-{dataset}", name=f"RFR-Net ({label})", licence=_RFR_LICENCE,
        description="Fills large holes progressively from the border inward.",
        weights=_mirror(f"rfr-{dataset}"), card=_RFR,
        official_drive=GoogleDriveRelease(_RFR_DRIVE, container="folder",
                                          files={_RFR_FILES[dataset]: "checkpoint.pth"}),
    )


_PIC_FILES = ("latest_net_E.pth", "latest_net_G.pth", "latest_net_D.pth")  # D rates the samples


def _pic(dataset: str, label: str) -> ModelSpec:
    return _neural(
        "app.models.pic:Pluralistic", id=f"pic-{dataset}", name=f"Pluralistic ({label})", licence=_NC, diverse=True,
        description="Several different plausible fills per hole; pick the one you like.",
        weights=_mirror(f"pic-{dataset}"), card=_PIC,
        official_drive=GoogleDriveRelease(_PIC_DRIVE[dataset], container="auto",
                                          files={name: name for name in _PIC_FILES}),
    )


#: Bytes of one MI-GAN release: its parameters and buffers (MODELS.md 11) in float32, as exported.
_MIGAN_BYTES = {"MIGAN256": 25_200_000, "MIGAN512": 29_500_000}


def _migan(model_id: str, name: str, entry: str, released: str, description: str) -> ModelSpec:
    """One MI-GAN release: a bare state dict in the authors' Drive folder, saved as ``migan.pt``."""
    return _neural(
        f"app.models.migan:{entry}", id=model_id, name=name, licence=Licence("MIT (code and weights)", "mit"),
        description=description, weights=_mirror(model_id), card=_MIGAN,
        official_drive=GoogleDriveRelease(_MIGAN_DRIVE, container="folder", size=_MIGAN_BYTES[entry],
                                          files={released: "migan.pt"}),
    )


_MMAGIC_LICENCE = Licence("Apache-2.0 code; the weights carry no licence statement", "other")
_DEEPFILL_AUTHORS = "J. Yu, Z. Lin, J. Yang, X. Shen, X. Lu, T. S. Huang"
_OPENMMLAB = "https://download.openmmlab.com/mmediting/inpainting"


@dataclass(frozen=True)
class _MMagicNet:
    """One network of the mmagic model zoo: what every one of its releases shares."""

    entry: str
    name: str
    authors: str
    paper: str
    folder: str  # its folder under download.openmmlab.com
    description: str  # what it is good at, for a visitor


_MMAGIC_NETS = {
    "deepfillv1": _MMagicNet(
        "app.models.deepfillv1:DeepFillV1", "DeepFill v1", _DEEPFILL_AUTHORS,
        "Generative Image Inpainting with Contextual Attention (CVPR 2018)", "deepfillv1",
        "Copies matching texture from around the hole into it; trained on rectangular holes, so best at boxes."),
    "deepfillv2": _MMagicNet(
        "app.models.deepfillv2:DeepFillV2", "DeepFill v2", _DEEPFILL_AUTHORS,
        "Free-Form Image Inpainting with Gated Convolution (ICCV 2019)", "deepfillv2",
        "Gated convolutions that copy texture from around the hole; trained on free-form strokes, so good at "
        "irregular holes and erased objects."),
    "pconv": _MMagicNet(
        "app.models.pconv:PartialConvNet", "Partial convolution",
        "G. Liu, F. A. Reda, K. J. Shih, T.-C. Wang, A. Tao, B. Catanzaro",
        "Image Inpainting for Irregular Holes Using Partial Convolutions (ECCV 2018)", "pconv",
        "Convolutions that only look at the known pixels; trained on free-form strokes, so made for "
        "scratches and irregular holes. Fills are smooth rather than detailed."),
    "glcic": _MMagicNet(
        "app.models.glcic:GlobalLocalNet", "Global&Local", "S. Iizuka, E. Simo-Serra, H. Ishikawa",
        "Globally and Locally Consistent Image Completion (SIGGRAPH 2017)", "global_local",
        "A small, fast early network trained on square holes: best at small to medium rectangular "
        "gaps; large holes come out blurry."),
}
_DATASETS = {"places2": ("Places2", "Trained on scenes: general photos."),
             "celeba": ("CelebA-HQ faces", "Trained on faces: for portraits.")}


def _mmagic(net: str, dataset: str, file: str) -> ModelSpec:
    """One mmagic release (MODELS.md 5-9), fetched from the authors' server on first use.

    ``file`` is its name under download.openmmlab.com; the 8 hex digits after its last ``-`` are
    the start of its sha256 (mmagic's ``publish_model.py``), the pin it is checked against.
    """
    spec, (label, trained_on) = _MMAGIC_NETS[net], _DATASETS[dataset]
    url = f"{_OPENMMLAB}/{spec.folder}/{file}"
    return _neural(
        spec.entry, id=f"{net}-{dataset}", name=f"{spec.name} ({label})", licence=_MMAGIC_LICENCE,
        description=f"{spec.description} {trained_on}", weights=_mirror(f"{net}-{dataset}"),
        official_download=OfficialDownload(url=url, file=file, sha256_prefix=file.rsplit("-", 1)[1].split(".")[0]),
        card=Card(authors=spec.authors, paper=spec.paper, source="https://github.com/open-mmlab/mmagic",
                  weights_source=url),
    )


NEURAL: tuple[ModelSpec, ...] = (
    # MI-GAN first: the model a CPU-only server offers first for everyday objects (fast: docs/benchmarks).
    _migan("migan-places2", "MI-GAN (Places2, 256 px)", "MIGAN256", "migan_256_places2.pt",
           "A small, fast modern GAN (Picsart, 2023) for everyday objects, quick even on a CPU; works at 256 px."),
    _migan("migan-places2-512", "MI-GAN (Places2, 512 px)", "MIGAN512", "migan_512_places2.pt",
           "The same fast GAN working at 512 px: more detail in larger holes, at about twice the time of the 256 px "
           "one."),
    _migan("migan-ffhq", "MI-GAN (FFHQ faces, 256 px)", "MIGAN256", "migan_256_ffhq.pt",
           "The fast GAN trained on faces: for portraits (remove glasses, blemishes, hands); works at 256 px."),
    _edgeconnect("places2", "Places2", default=True),
    _edgeconnect("celeba", "CelebA faces"),
    _edgeconnect("psv", "Paris StreetView"),
    _rfr("psv", "Paris StreetView"),
    _rfr("celeba", "CelebA faces"),
    _pic("places2", "Places2"),
    _pic("celebahq", "CelebA-HQ faces"),
    _pic("psv", "Paris StreetView"),
    _pic("imagenet", "ImageNet"),
    _neural(
        "app.models.lama:BigLaMa", id="lama", name="LaMa (big-lama)", licence=Licence("Apache-2.0", "apache-2.0"),
        description="Fourier convolutions see the whole crop: the strongest eraser of large objects.",
        weights=_mirror("big-lama"), card=_LAMA,
        # sha256 and size of smartywu/big-lama's big-lama.zip as three independent public pins
        # give them (consistent with the 381 MB in ../shared/reference/MODELS.md).
        official_archive=OfficialArchive(repo="smartywu/big-lama", file="big-lama.zip",
                                         members={"big-lama/models/best.ckpt": "best.ckpt"},
                                         sha256="d7161bba4d68b438f9fa7f09dcb750a223804c300c68d214a5e0be16251fba8d",
                                         size=381_428_720),
    ),
    _mmagic("deepfillv1", "places2", "deepfillv1_256x256_8x2_places_20200619-c00a0e21.pth"),
    _mmagic("deepfillv1", "celeba", "deepfillv1_256x256_4x4_celeba_20200619-dd51a855.pth"),
    _mmagic("deepfillv2", "places2", "deepfillv2_256x256_8x2_places_20200619-10d15793.pth"),
    _mmagic("deepfillv2", "celeba", "deepfillv2_256x256_8x2_celeba_20200619-c96e5f12.pth"),
    _mmagic("pconv", "places2", "pconv_256x256_stage2_4x2_places_20200619-1ffed0e8.pth"),
    _mmagic("pconv", "celeba", "pconv_256x256_stage2_4x2_celeba_20200619-860f8b95.pth"),
    _mmagic("glcic", "places2", "gl_256x256_8x12_places_20200619-52a040a8.pth"),
    _mmagic("glcic", "celeba", "gl_256x256_8x12_celeba_20200619-5af0493f.pth"),
    _neural(
        "app.models.mat:MAT", id="mat-places512", name="MAT (Places512)", licence=_NC, diverse=True,
        description="Mask-aware transformer for large holes: several different plausible fills per hole (512 px).",
        max_batch=2,  # ~1 GB of activations per 512 px crop on a CPU
        # The authors publish only code-carrying network pickles (OneDrive), which are never loaded. Two plain state
        # dicts with the official key names: Acly/MAT's float16 safetensors on the Hub (used by comfyui-inpaint-nodes;
        # its sha256 as a public Nix pin records it; "main": the file is held to that sha256 whatever the branch does)
        # comes first (no pickle, half the download); IOPaint's float32 release, held to the md5 IOPaint's code
        # checks, is what `weights fetch-official`-style setups and a deployment without that mirror use.
        weights=HubWeights(repo="Acly/MAT", revision="main", files={
            "MAT_Places512_G_fp16.safetensors": "309dd6ce6e04034dc4b6b15c7bd2a4844d158e03eb2a139e0eca6b366e40c0de"}),
        card=_MAT,
        official_download=OfficialDownload(
            url="https://github.com/Sanster/models/releases/download/add_mat/Places_512_FullData_G.pth",
            file="Places_512_FullData_G.pth", md5="8ca927835fa3f5e21d65ffcb165377ed"),
    ),
)

#: RORem's LCM LoRA (4-step sampling) in the authors' "RORem-LCM" Drive folder (README, "Run RORem-4S"),
#: under the name diffusers' ``save_lora_weights`` gives it.
_RORem_LCM_DRIVE = "1QK8qcqT7SKRzD2AyGtgfwWwlQrUesAc1"
_RORem_STEPS = 4
#: One 512x512 fill on a 2-core AMD EPYC at 4 steps, float32 (python -m benchmarks.bench_diffusion --device cpu).
_RORem_CPU_SECONDS = 323.0

DIFFUSION: tuple[ModelSpec, ...] = (
    ModelSpec(
        id="rorem", name="RORem (SDXL object remover, 4 steps)", kind="diffusion",
        entry="app.models.diffusion:DiffusionRemover", kwargs={"steps": _RORem_STEPS},
        licence=Licence("Apache-2.0 per its Hub card; built on SDXL inpainting (CreativeML Open RAIL++-M)",
                        "apache-2.0"),
        native_size=512, max_size=1024, size_multiple=8, least_side=512, diverse=True, max_batch=1,
        description="A diffusion model trained to remove objects (2025): the most convincing fills of large "
                    "objects, a different one per seed; needs a GPU.",
        hub_pipeline=HubPipeline(repo="LetsThink/RORem", pipeline="StableDiffusionXLInpaintPipeline", approx_mb=6900,
                                 lora=GoogleDriveRelease(_RORem_LCM_DRIVE, container="folder",
                                                         files={"pytorch_lora_weights.safetensors":
                                                                "lcm_lora.safetensors"}),
                                 lora_file="lcm_lora.safetensors"),
        # ZeroGPU budget: ~0.35 s per UNet step of a 256x256-sized crop, generous next to an H100's ~0.03 s.
        gpu_seconds_per_crop=0.35 * _RORem_STEPS, cpu_seconds_512=_RORem_CPU_SECONDS,
        card=Card(authors="R. Li, T. Yang, S. Guo, L. Zhang",
                  paper="RORem: Training a Robust Object Remover with Human-in-the-Loop (CVPR 2025)",
                  source="https://github.com/leeruibin/RORem",
                  weights_source="https://huggingface.co/LetsThink/RORem (pipeline); Google Drive "
                                 f"{_RORem_LCM_DRIVE} (LCM LoRA)"),
    ),
)

MODELS = CLASSICAL + NEURAL + DIFFUSION

DEFAULT_MODELS: tuple[str, ...] = ("telea", "patchmatch")


def get(model_id: str) -> ModelSpec:
    """The spec of ``model_id``, or an error listing the valid ids."""
    for spec in MODELS:
        if spec.id == model_id:
            return spec
    raise ModelUnavailableError(f"Unknown model '{model_id}'. Choose from: {', '.join(ids())}.")


def ids() -> list[str]:
    return [spec.id for spec in MODELS]


# ------------------------------------------------------------ click to select, find people


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


_PRETRAINED_FILES = {"config.json": None, "model.safetensors": None}
_APACHE = Licence("Apache-2.0", "apache-2.0")

SEGMENTERS: tuple[PretrainedSpec, ...] = (
    PretrainedSpec(
        id="edgetam", name="EdgeTAM", task="segment", architecture="EdgeTamModel", model_type="edgetam",
        published_types=("edgetam_video",), licence=_APACHE, approx_mb=36,
        # The authors publish only edgetam.pt (a pickle); this is the transformers-format conversion
        # the transformers docs use. No commit of it is known here: its first download pins one (pins.json).
        weights=HubWeights(repo="yonigozlan/EdgeTAM-hf", revision="", files=dict(_PRETRAINED_FILES)),
        description="SAM 2 distilled onto a RepViT backbone for phones: the fastest encode (its backbone is built "
                    "by timm, without downloading anything).",
        card=Card(authors="C. Zhou et al. (Meta)", paper="EdgeTAM: On-Device Track Anything Model (CVPR 2025)",
                  source="https://github.com/facebookresearch/EdgeTAM",
                  weights_source="https://huggingface.co/yonigozlan/EdgeTAM-hf"),
    ),
    PretrainedSpec(
        id="sam2.1-hiera-tiny", name="SAM 2.1 (Hiera tiny)", task="segment", architecture="Sam2Model",
        model_type="sam2", published_types=("sam2_video",), licence=_APACHE, approx_mb=156,
        # The commit public code pins for this repo (transformers-format files); confirm it, or record
        # another in pins.json, before deploying: this machine cannot reach the Hub to check.
        weights=HubWeights(repo="facebook/sam2.1-hiera-tiny", revision="de431c4043854a71d8101e17995dfe596bf101a5",
                           files=dict(_PRETRAINED_FILES)),
        description="Segment Anything 2.1, smallest: one encode per photo, then each click in milliseconds.",
        card=Card(authors="N. Ravi et al. (Meta FAIR)", paper="SAM 2: Segment Anything in Images and Videos (2024)",
                  source="https://github.com/facebookresearch/sam2",
                  weights_source="https://huggingface.co/facebook/sam2.1-hiera-tiny"),
    ),
    PretrainedSpec(
        id="slimsam-77", name="SlimSAM (uniform 77%)", task="segment", architecture="SamModel",
        model_type="sam", licence=_APACHE, approx_mb=38,
        weights=HubWeights(repo="Zigeng/SlimSAM-uniform-77", revision="", files=dict(_PRETRAINED_FILES)),
        description="SAM ViT-B pruned to 9 M parameters: the smallest download.",
        card=Card(authors="Z. Chen, G. Fang, X. Ma, X. Wang", paper="SlimSAM: 0.1% Data Makes Segment Anything Slim "
                  "(NeurIPS 2024)", source="https://github.com/czg1225/SlimSAM",
                  weights_source="https://huggingface.co/Zigeng/SlimSAM-uniform-77"),
    ),
)

DETECTORS: tuple[PretrainedSpec, ...] = (
    PretrainedSpec(
        id="rtdetr-v2-r18", name="RT-DETRv2 (ResNet-18)", task="detect", architecture="RTDetrV2ForObjectDetection",
        model_type="rt_detr_v2", licence=_APACHE, approx_mb=81,
        # The commit public code records as verified against the Hub API (April 2026); this machine
        # cannot reach the Hub to check it: confirm it, or record another in pins.json, before deploying.
        weights=HubWeights(repo="PekingU/rtdetr_v2_r18vd", revision="5650961749fa93567c0d46fc7f43ea4f9e914107",
                           files=dict(_PRETRAINED_FILES)),
        description="Real-time COCO detector with its own ResNet backbone (no timm): finds the people in a photo.",
        card=Card(authors="W. Lv, Y. Zhao, Q. Chang, K. Huang, G. Wang, Y. Liu",
                  paper="RT-DETRv2: Improved Baseline with Bag-of-Freebies for Real-Time Detection Transformer (2024)",
                  source="https://github.com/lyuwenyu/RT-DETR",
                  weights_source="https://huggingface.co/PekingU/rtdetr_v2_r18vd"),
    ),
)

#: Clicks use the first of these whose weights are here, or are to be downloaded and the Hub answered
#: for them (:func:`app.segmenters.can_be_had`), fastest encode first (docs/benchmarks/select.json;
#: README, "Click to select"): EdgeTAM meets both latency goals, and its first download pins its commit,
#: so SAM 2.1 serves only where EdgeTAM cannot be had. When none can run, the last is the one messages name.
SEGMENTER_PREFERENCE = ("edgetam", "sam2.1-hiera-tiny")
DEFAULT_DETECTOR = "rtdetr-v2-r18"


def pretrained(model_id: str) -> PretrainedSpec:
    """The segmenter or detector ``model_id``, or an error listing the valid ids."""
    for spec in SEGMENTERS + DETECTORS:
        if spec.id == model_id:
            return spec
    known = ", ".join(spec.id for spec in SEGMENTERS + DETECTORS)
    raise ModelUnavailableError(f"Unknown segmenter or detector '{model_id}'. Choose from: {known}.")
