"""Every model the studio can run, declared in one place.

Adding a model = one module with its network (a :class:`app.models.base.NeuralNetwork`
declaring its :class:`~app.models.base.NetworkFacts`) + one :class:`ModelSpec` below + its
fixture test. The UI choices, the CLI's ``--model`` values, the API and the weights tooling
are all derived from this list; nothing else names a model. A network's sizes are read
from its class here, once, so the registry cannot disagree with the network: on the first use of
``NEURAL`` or ``MODELS``, not at import. The dataclasses these entries are written in live in
:mod:`app.specs`, the ground floor that imports nothing of the app.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from app.errors import ModelUnavailableError
from app.specs import HUB_NAMESPACE_ENV as HUB_NAMESPACE_ENV  # read as registry.HUB_NAMESPACE_ENV too
from app.specs import (
    WEIGHTS_LICENCE_NOT_STATED,
    Card,
    GoogleDriveRelease,
    HubPipeline,
    HubWeights,
    Licence,
    ModelSpec,
    OfficialArchive,
    OfficialDownload,
    PretrainedSpec,
    import_entry,
)


def _neural(entry: str, **fields: Any) -> ModelSpec:
    """A neural spec whose sizes come from its network's :class:`NetworkFacts` (declared once, on the class)."""
    facts = import_entry(entry).FACTS
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


def _neural_catalogue() -> tuple[ModelSpec, ...]:
    """The neural models, in the order the page lists them (built on first use: see :func:`__getattr__`)."""
    return (
        # MI-GAN first: the model a CPU-only server offers first for everyday objects (fast: docs/benchmarks).
        _migan("migan-places2", "MI-GAN (Places2, 256 px)", "MIGAN256", "migan_256_places2.pt",
               "A small, fast modern GAN (Picsart, 2023) for everyday objects, quick even on a CPU; works at "
               "256 px."),
        _migan("migan-places2-512", "MI-GAN (Places2, 512 px)", "MIGAN512", "migan_512_places2.pt",
               "The same fast GAN working at 512 px: more detail in larger holes, at about twice the time of the "
               "256 px one."),
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
            # The authors publish only network pickles that carry code (OneDrive): never loaded. Two plain state dicts
            # have the official key names: Acly/MAT's float16 safetensors on the Hub (comfyui-inpaint-nodes' source;
            # sha256 from a public Nix pin; at "main", held to that sha256 whatever the branch does) is fetched on
            # first use (no pickle, half the download); IOPaint's float32 release (md5 as IOPaint checks it) is the
            # file to put in checkpoints/ for float32 weights.
            weights=HubWeights(repo="Acly/MAT", revision="main", files={"MAT_Places512_G_fp16.safetensors":
                               "309dd6ce6e04034dc4b6b15c7bd2a4844d158e03eb2a139e0eca6b366e40c0de"}),
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
_RORem_CPU_SECONDS = 146.0

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



def __getattr__(name: str) -> tuple[ModelSpec, ...]:
    """``NEURAL``, ``MODELS`` and ``TEXT_FINDERS``, built on first use: a network's sizes are read from its class,
    which imports torch and the network's module, so ``import app.registry`` alone stays light (specs, CLI help,
    tooling)."""
    if name not in ("NEURAL", "MODELS", "TEXT_FINDERS"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = sys.modules[__name__]
    if name == "TEXT_FINDERS":
        module.TEXT_FINDERS = module.__dict__.get("TEXT_FINDERS") or _text_catalogue()
        return module.TEXT_FINDERS
    if "NEURAL" not in module.__dict__:
        module.NEURAL = _neural_catalogue()
    if "MODELS" not in module.__dict__:
        module.MODELS = CLASSICAL + module.NEURAL + DIFFUSION
    return module.__dict__[name]

DEFAULT_MODELS: tuple[str, ...] = ("telea", "patchmatch")


def get(model_id: str) -> ModelSpec:
    """The spec of ``model_id``, or an error listing the valid ids."""
    for spec in __getattr__("MODELS"):
        if spec.id == model_id:
            return spec
    raise ModelUnavailableError(f"Unknown model '{model_id}'. Choose from: {', '.join(ids())}.")


def ids() -> list[str]:
    return [spec.id for spec in __getattr__("MODELS")]


# ------------------------------------------------------------ click to select, find people


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
#: for them (:func:`app.selection.segmenters.can_be_had`), fastest encode first (docs/benchmarks/select.json;
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


# ------------------------------------------------------------------------------- find text


#: The comic text segmenter's release: one file on the author's Drive (checkpoints/ReadME.md of the repo).
_TEXTSEG_DRIVE = "1iiWjf-PKBq_nfD9lqKtuyU4bqEbUaq_5"
_TEXTSEG_FILE = "text_seg_model_681epos.pt"
_TEXTSEG = Card(
    authors="yu45020",
    paper="Text_Segmentation_Image_Inpainting (2019): comic text segmentation, Xception encoder with a "
          "DeepLab v3+ style decoder",
    source="https://github.com/yu45020/Text_Segmentation_Image_Inpainting",
    weights_source=f"https://drive.google.com/file/d/{_TEXTSEG_DRIVE} ({_TEXTSEG_FILE})",
)


def _text_catalogue() -> tuple[ModelSpec, ...]:
    """The text finders: networks that find lettering (not inpainters: *Find text*, ``/text``, ``--find-text``).

    Their weights come through the same machinery as the inpainters' (Drive, first-use pins, strict load).
    """
    return (
        _neural(
            "app.models.textseg:XceptionTextSegmenter", id="textseg-xception",
            name="Comic text segmenter (Xception, yu45020)",
            # Our own network: the authors' GPL-3.0 code is not used; their README states no licence for the weights.
            licence=Licence("our own code (the authors' GPL-3.0 code is not used); the weights carry no licence "
                            "statement", WEIGHTS_LICENCE_NOT_STATED),
            description="Finds the lettering of comic and manga pages (speech balloons, captions, sound effects) "
                        "so any model can erase it.",
            weights=_mirror("textseg-xception"), card=_TEXTSEG,
            official_drive=GoogleDriveRelease(_TEXTSEG_DRIVE, container="file", size=64_800_000,
                                              files={_TEXTSEG_FILE: _TEXTSEG_FILE}),
        ),
    )


#: What *Find text* runs unless told otherwise.
DEFAULT_TEXT_FINDER = "textseg-xception"


def text_finder(model_id: str = DEFAULT_TEXT_FINDER) -> ModelSpec:
    """The text finder ``model_id``, or an error listing the valid ids."""
    for spec in __getattr__("TEXT_FINDERS"):
        if spec.id == model_id:
            return spec
    known = ", ".join(spec.id for spec in __getattr__("TEXT_FINDERS"))
    raise ModelUnavailableError(f"Unknown text finder '{model_id}'. Choose from: {known}.")


def with_weights(model_id: str) -> ModelSpec:
    """Any model the ``weights`` commands handle: an inpainter (:func:`get`) or a text finder."""
    if any(spec.id == model_id for spec in __getattr__("TEXT_FINDERS")):
        return text_finder(model_id)
    return get(model_id)
