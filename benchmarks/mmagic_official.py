"""The official mmagic generators (DeepFill v1/v2, PConv, GLCIC), built from mmagic's own configs, to time beside ours.

mmagic cannot be installed into this project's environment as a package: mmagic 1.2.0 (the last
release) imports diffusers, transformers, mediapipe and more at ``import mmagic.models``, uses
numpy's ``np.bool8`` (gone in numpy 2), and full mmcv has no wheel for torch 2.11. The four
generators need none of that (MODELS.md section 5: mmengine + mmcv-lite suffice), so this module
imports only their own modules, as the reference harness does, in a venv of its own that also
sees this project's packages (same torch, same process, same run)::

    python -m venv /tmp/mmagic-venv
    python -c "import site; print(site.getsitepackages()[0])" > /tmp/mmagic-venv/lib/python3.11/site-packages/app.pth
    /tmp/mmagic-venv/bin/pip install --no-deps mmagic==1.2.0 mmengine==0.10.7 mmcv-lite==2.1.0
    /tmp/mmagic-venv/bin/pip install addict yapf rich termcolor
    /tmp/mmagic-venv/bin/python -m benchmarks.bench_mmagic --official
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

#: The config of each Places release (MODELS.md sections 6-9), under mmagic's packaged ``.mim/configs``.
CONFIGS = {
    "deepfillv1-places2": "deepfillv1/deepfillv1_8xb2_places-256x256.py",
    "deepfillv2-places2": "deepfillv2/deepfillv2_8xb2_places-256x256.py",
    "pconv-places2": "partial_conv/pconv_stage2_4xb2_places-256x256.py",
    "glcic-places2": "global_local/gl_8xb12_places-256x256.py",
}
_EDITORS = "mmagic.models.editors"
#: The generator modules, in import order (each registers its classes with mmagic's MODELS).
_MODULES = ("global_local.gl_encoder", "global_local.gl_decoder", "global_local.gl_dilation",
            "global_local.gl_encoder_decoder", "pconv.partial_conv", "pconv.mask_conv_module",
            "pconv.pconv_encoder", "pconv.pconv_decoder", "pconv.pconv_encoder_decoder",
            "deepfillv1.contextual_attention", "deepfillv1.contextual_attention_neck",
            "deepfillv1.deepfill_encoder", "deepfillv1.deepfill_decoder", "deepfillv1.deepfill_refiner",
            "deepfillv2.two_stage_encoder_decoder")


def unavailable() -> str | None:
    """Why the official code cannot be timed here, or None when it can."""
    missing = [name for name in ("mmagic", "mmengine", "mmcv") if importlib.util.find_spec(name) is None]
    return f"{', '.join(missing)} not importable (see benchmarks/mmagic_official.py)" if missing else None


def _bare_package(name: str) -> None:
    """Register package ``name`` without running its ``__init__`` (which imports what these nets do not need)."""
    module = types.ModuleType(name)
    module.__path__ = list(importlib.util.find_spec(name).submodule_search_locations)
    sys.modules[name] = module


def _registry():
    """mmagic's MODELS with only the four generators (and the ``Deconv`` and gated-conv blocks) registered."""
    if not hasattr(np, "bool8"):
        np.bool8 = np.bool_  # mmagic.utils still names it; numpy 2 removed the alias
    import mmagic  # noqa: F401  (the real top package: registry, utils)
    from mmengine.registry import init_default_scope

    for name in ("mmagic.models", _EDITORS, "mmagic.models.archs",
                 *{f"{_EDITORS}.{m.split('.')[0]}" for m in _MODULES}):
        if name not in sys.modules:
            _bare_package(name)
    archs = sys.modules["mmagic.models.archs"]
    importlib.import_module("mmagic.models.archs.conv")  # registers 'Deconv' (GLCIC's decoder)
    archs.SimpleGatedConvModule = importlib.import_module(
        "mmagic.models.archs.gated_conv_module").SimpleGatedConvModule
    for module in _MODULES:
        importlib.import_module(f"{_EDITORS}.{module}")
    init_default_scope("mmagic")
    from mmagic.registry import MODELS
    return MODELS


def build(model_id: str, state: dict[str, Tensor]) -> nn.Module:
    """The official generator of ``model_id`` (its Places config), ``state`` loaded strictly, in eval mode."""
    from mmengine import Config

    configs = Path(importlib.util.find_spec("mmagic").submodule_search_locations[0]) / ".mim" / "configs"
    generator = _registry().build(Config.fromfile(configs / CONFIGS[model_id]).model.encdec)
    generator.load_state_dict(state, strict=True)
    return generator.eval().requires_grad_(False)


def forward(model_id: str, generator: nn.Module, masked: Tensor, hole: Tensor) -> Callable[[], object]:
    """The official generator call on the inpaintor's input (``forward_tensor``), ready to time."""
    if model_id.startswith("pconv"):
        known = (1 - hole).repeat(1, 3, 1, 1)
        return lambda: generator(masked, known)
    ones = [torch.ones_like(hole)] if model_id.startswith("deepfill") else []
    x = torch.cat([masked, *ones, hole], dim=1)
    return lambda: generator(x)


def fill(model_id: str, output: object) -> Tensor:
    """The raw fill in what the official generator returns: (stage 1, stage 2), (fill, mask) or the fill."""
    if model_id.startswith("deepfill"):
        return output[1]
    return output[0] if model_id.startswith("pconv") else output
