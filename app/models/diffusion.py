"""A diffusion remover (RORem): a diffusers inpainting pipeline behind the studio's one interface.

Samplers, UNet and VAE are diffusers' own; this class only turns a :class:`Batch` into pipeline
calls and the results back. What it decides:

* The prompt is fixed (the authors' content-free quality words), so it is encoded once at load and
  every call passes the embeddings: a fill costs VAE encode + ``steps`` UNet passes + VAE decode.
* Sample ``k`` of seed ``s`` draws all its noise from its own CPU generator seeded by (s, k), so it is
  the same fill whatever the number of samples, the other crops or the device's kernels; the
  samples of one crop go through the pipeline together (one batch on a GPU).
* The pipeline's output replaces the whole crop, but the VAE alters every pixel slightly: the
  studio's paste-back keeps only the hole (feathered), so the photo outside it is bit-identical.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch

from app.models.base import Batch, Prediction, sample_done

#: The authors' prompt for removal ("content-irrelevant prompts ... further enhance removal", RORem README).
PROMPT = "4K, high quality, masterpiece, Highly detailed, Sharp focus, Professional, photorealistic, realistic"
#: How much of the hole's latents is noised: the authors' "strength below 1.0" (diffusers then runs int(steps * 0.99)).
STRENGTH = 0.99
NEGATIVE = "low quality, worst, bad proportions, blurry, extra finger, Deformed, disfigured, unclear background"


def generator(seed: int, k: int) -> torch.Generator:
    """The CPU generator of sample ``k`` of ``seed``: its own stream, so sample k never depends on the others."""
    digest = hashlib.sha256(f"diffusion|{int(seed)}|{int(k)}".encode()).digest()
    return torch.Generator("cpu").manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


class DiffusionRemover:
    """Runs a loaded diffusers inpainting pipeline as an :class:`~app.models.base.Inpainter`."""

    def __init__(self, pipe: Any, steps: int = 4, guidance: float = 1.0, strength: float = STRENGTH) -> None:
        self.pipe, self.steps, self.guidance, self.strength = pipe, steps, guidance, strength
        with torch.inference_mode():
            embeds = pipe.encode_prompt(PROMPT, device=pipe.device, num_images_per_prompt=1,
                                        do_classifier_free_guidance=guidance > 1, negative_prompt=NEGATIVE)
        names = ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds", "negative_pooled_prompt_embeds")
        self.prompt = {name: value for name, value in zip(names, embeds, strict=True) if value is not None}

    @property
    def device(self) -> torch.device:
        return self.pipe.device

    def networks(self) -> list[torch.nn.Module]:
        """The pipeline's networks: what keeping it loaded costs (the model cache's memory budget)."""
        return [part for part in self.pipe.components.values() if isinstance(part, torch.nn.Module)]

    def inpaint(self, batch: Batch, *, samples: int = 1, seed: int = 0) -> Prediction:
        """``samples`` fills of every crop (raw pipeline output in [0, 1]; the studio composites)."""
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        _, height, width, _ = batch.images.shape
        fills = []
        for image, hole in zip(batch.images, batch.holes, strict=True):
            prompt = {name: value.expand(samples, *value.shape[1:]) for name, value in self.prompt.items()}
            out = self.pipe(
                image=torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255,
                mask_image=torch.from_numpy(hole)[None, None].float(), height=height, width=width,
                num_inference_steps=self.steps, guidance_scale=self.guidance, strength=self.strength,
                generator=[generator(seed, k) for k in range(samples)], output_type="np", **prompt).images
            fills.append(np.clip(out, 0.0, 1.0).astype(np.float32))
        for k in range(samples):
            sample_done(k)
        return Prediction(samples=np.stack(fills))
