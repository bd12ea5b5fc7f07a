"""A few-kB SDXL inpainting pipeline and LCM LoRA, random weights: what RORem's Hub repo and Drive folder hold, small.

Same classes as ``LetsThink/RORem`` (``StableDiffusionXLInpaintPipeline``: a 9-channel
``UNet2DConditionModel``, ``AutoencoderKL``, two CLIP text encoders and tokenizers, a scheduler),
written by diffusers' own ``save_pretrained`` (safetensors), so the app's download, pinning and
loading code runs on it unchanged. The tokenizers get a five-word vocabulary written here.
"""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

import torch

from benchmarks.bench_diffusion import TINY_UNET, TINY_VAE

TEXT = dict(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32, intermediate_size=37,
            num_attention_heads=4, num_hidden_layers=2, vocab_size=1000, hidden_act="gelu", projection_dim=32)
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


def _tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2, "a</w>": 3, "b</w>": 4}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)


def build(seed: int = 0):
    """The tiny pipeline object (LCM-less scheduler, as the base repo ships)."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**TINY_UNET, sample_size=32)
    vae = AutoencoderKL(**TINY_VAE, sample_size=128)
    config = CLIPTextConfig(**TEXT)
    with tempfile.TemporaryDirectory() as tmp:
        return StableDiffusionXLInpaintPipeline(
            vae=vae, text_encoder=CLIPTextModel(config), text_encoder_2=CLIPTextModelWithProjection(config),
            tokenizer=_tokenizer(Path(tmp) / "1"), tokenizer_2=_tokenizer(Path(tmp) / "2"), unet=unet,
            scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                             beta_schedule="scaled_linear", timestep_spacing="leading"),
            requires_aesthetics_score=False)


@functools.cache
def repo_files(seed: int = 0) -> dict[str, bytes]:
    """The pipeline as ``save_pretrained(safe_serialization=True)`` writes it: relative path -> bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        build(seed).save_pretrained(tmp, safe_serialization=True)
        return {str(p.relative_to(tmp)): p.read_bytes() for p in sorted(Path(tmp).rglob("*")) if p.is_file()}


def lora_for_nothing() -> bytes:
    """A LoRA file whose keys name no module of the UNet (another network's LoRA, a truncated conversion)."""
    from safetensors.torch import load, save

    return save({key.replace("unet.", "unet.nowhere.", 1): value for key, value in load(lora_bytes()).items()})


@functools.cache
def lora_bytes(seed: int = 1) -> bytes:
    """A rank-4 LoRA of the tiny UNet in diffusers' ``save_lora_weights`` format (pytorch_lora_weights.safetensors)."""
    from diffusers import StableDiffusionXLInpaintPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    unet = build().unet
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=LORA_TARGETS, init_lora_weights="gaussian"))
    with tempfile.TemporaryDirectory() as tmp:
        StableDiffusionXLInpaintPipeline.save_lora_weights(
            tmp, unet_lora_layers=convert_state_dict_to_diffusers(get_peft_model_state_dict(unet)))
        return (Path(tmp) / "pytorch_lora_weights.safetensors").read_bytes()
