"""What one fill of the diffusion remover costs: UNet steps and VAE passes of SDXL inpainting, real sizes.

    python -m benchmarks.bench_diffusion --device cpu --size 512 --steps 4 8 --rounds 3
    python -m benchmarks.bench_diffusion --device cpu --tiny --rounds 1      # dry run (tests)

RORem is an SDXL-inpainting UNet (2.6 B parameters) with SDXL's VAE; its weights cannot be
downloaded here, and the time of a forward pass does not depend on the values, so the networks are
built from SDXL-inpainting's published configuration with random weights, in the dtype the app
uses on the device (float32 on the CPU, float16 on CUDA). A fill is: one VAE encode of the masked
photo, ``int(steps * 0.99)`` UNet passes (guidance 1: one pass per step, no classifier-free doubling; the prompt
is encoded once when the model loads) and one VAE decode. ``--tiny`` builds a few-kB network of the
same classes, for the dry run. Medians over ``--rounds``; results in docs/benchmarks/diffusion.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from app.models.diffusion import STRENGTH
from benchmarks import machine
from benchmarks.common import command

JSON = "diffusion.json"
OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / JSON
DEVICES = {"cpu": "CPU (float32)", "cuda": "GPU (float16)"}

#: SDXL-inpainting's UNet (diffusers/stable-diffusion-xl-1.0-inpainting-0.1, unet/config.json): 9 input
#: channels = 4 noisy latents + 1 mask + 4 latents of the masked photo.
SDXL_UNET = dict(in_channels=9, out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D",
                 "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                 block_out_channels=(320, 640, 1280), layers_per_block=2, transformer_layers_per_block=(1, 2, 10),
                 attention_head_dim=(5, 10, 20), cross_attention_dim=2048, use_linear_projection=True,
                 addition_embed_type="text_time", addition_time_embed_dim=256,
                 projection_class_embeddings_input_dim=2816)
SDXL_VAE = dict(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, layers_per_block=2)
TINY_UNET = dict(SDXL_UNET, block_out_channels=(32, 64), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), layers_per_block=1,
                 transformer_layers_per_block=(1, 1), attention_head_dim=(2, 4), cross_attention_dim=64,
                 addition_time_embed_dim=8, projection_class_embeddings_input_dim=80, norm_num_groups=8)
#: Four blocks like SDXL's VAE, so latents are 1/8 of the image as the pipeline assumes.
TINY_VAE = dict(block_out_channels=(8, 8, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, layers_per_block=1, norm_num_groups=8)
TEXT_TOKENS = 77


def build(tiny: bool, device: torch.device, dtype: torch.dtype) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The UNet and VAE with random weights (values do not change the time)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    with torch.device("meta" if not tiny else "cpu"):
        unet = UNet2DConditionModel(**(TINY_UNET if tiny else SDXL_UNET))
        vae = AutoencoderKL(**(TINY_VAE if tiny else SDXL_VAE))
    if not tiny:  # random values without the slow per-layer initialisation of 2.6 B parameters
        unet, vae = (m.to_empty(device="cpu").apply(_fill) for m in (unet, vae))
    return unet.to(device, dtype).eval(), vae.to(device, dtype).eval()


def _fill(module: torch.nn.Module) -> None:
    for tensor in (*module.parameters(recurse=False), *module.buffers(recurse=False)):
        tensor.data.normal_(0, 0.02)


def calls(unet: torch.nn.Module, vae: torch.nn.Module, size: int, device: torch.device,
          dtype: torch.dtype) -> dict[str, Callable[[], object]]:
    """name -> one call at ``size`` x ``size`` (batch 1)."""
    latent = size // 8
    image = torch.rand(1, 3, size, size, device=device, dtype=dtype) * 2 - 1
    sample = torch.randn(1, 9, latent, latent, device=device, dtype=dtype)
    text = torch.randn(1, TEXT_TOKENS, unet.config.cross_attention_dim, device=device, dtype=dtype)
    pooled_dim = unet.config.projection_class_embeddings_input_dim - 6 * unet.config.addition_time_embed_dim
    added = {"text_embeds": torch.randn(1, pooled_dim, device=device, dtype=dtype),
             "time_ids": torch.tensor([[size, size, 0, 0, size, size]], device=device, dtype=dtype)}
    return {"vae encode": lambda: vae.encode(image).latent_dist.mode(),
            "unet step": lambda: unet(sample, 500, encoder_hidden_states=text, added_cond_kwargs=added).sample,
            "vae decode": lambda: vae.decode(torch.randn(1, 4, latent, latent, device=device, dtype=dtype)).sample}


def measure(fns: dict[str, Callable[[], object]], rounds: int, device: torch.device) -> dict[str, float]:
    """Median seconds per call, after one warm-up call each."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    with torch.inference_mode():
        for fn in fns.values():
            fn()
        for _ in range(rounds):
            for name, fn in fns.items():
                _sync(device)
                start = time.perf_counter()
                fn()
                _sync(device)
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def per_fill(parts: dict[str, float], steps: int) -> float:
    """Seconds of one fill: VAE encode + the UNet passes ``steps`` make at the app's strength + VAE decode.

    diffusers runs ``int(steps * strength)`` passes (3 of 4 at RORem's strength 0.99).
    """
    passes = max(1, int(steps * STRENGTH))
    return parts["vae encode"] + passes * parts["unet step"] + parts["vae decode"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, nargs="+", default=[512])
    parser.add_argument("--steps", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="a few-kB network of the same classes (dry run)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    info = machine.describe(str(device))
    unet, vae = build(args.tiny, device, dtype)
    rows = []
    for size in args.size:
        parts = measure(calls(unet, vae, size, device, dtype), args.rounds, device)
        rows += [{"size": size, "steps": steps, "seconds_per_fill": round(per_fill(parts, steps), 3),
                  **{name.replace(" ", "_"): round(value, 3) for name, value in parts.items()}}
                 for steps in args.steps]
        print(f"{size}x{size} on {device} ({dtype}): " + ", ".join(f"{k} {v:.3f} s" for k, v in parts.items()))
    result = {"command": command(argv, "benchmarks.bench_diffusion"), "machine": info, "tiny": args.tiny,
              "dtype": str(dtype).replace("torch.", ""), "rows": rows}
    if not args.tiny:
        _merge(args.out, str(device.type), result)
    print(json.dumps(rows, indent=1))


def _merge(path: Path, key: str, result: dict) -> None:
    """Keep one entry per device type (the CPU run and the GPU run live side by side)."""
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[key] = result
    path.write_text(json.dumps(data, indent=1) + "\n")


def section(data: dict) -> str:
    """The report's part: seconds per fill of the diffusion remover per device; a device never run: "not measured"."""
    lines = ["## The diffusion remover (RORem): seconds per fill",
             "SDXL-inpainting's UNet and VAE at their real sizes with random weights (the time does not depend on "
             "the values): VAE encode + one UNet pass per step (guidance 1) + VAE decode, batch 1. The app offers "
             "the model only where a GPU is, unless `INPAINT_SLOW_ON_CPU=1`."]
    for device, label in DEVICES.items():
        run = data.get(device)
        if not run:
            lines.append(f"**{label}**: not measured.")
            continue
        rows = [f"| {r['size']}x{r['size']} | {r['steps']} | {r['seconds_per_fill']:.1f} | {r['unet_step']:.2f} | "
                f"{r['vae_encode']:.2f} | {r['vae_decode']:.2f} |" for r in run["rows"]]
        header = "| size | steps | s per fill | s per UNet step | s VAE encode | s VAE decode |\n" + "|---|" * 6
        lines.append(f"**{label}** — command: `{run['command']}`  \nMachine: {machine.summary_line(run['machine'])}"
                     f"\n\n{header}\n" + "\n".join(rows))
    return "\n\n".join(lines)


if __name__ == "__main__":
    main()
