"""Click to select: which segmenter to ship, and how well the offline GrabCut fallback selects.

``python -m benchmarks.bench_select`` writes ``docs/benchmarks/select.json`` and prints a table:

* per segmenter candidate, at its **real architecture** (the published config; random weights,
  since this machine cannot reach the Hub: speed and memory do not depend on the values):
  photo encode time at the preview size (1024 px long side), per-click decoder latency (median
  of 20 clicks), peak memory above the start (build + encode + clicks), parameters and download
  size (parameters x 4 bytes: the float32 ``model.safetensors``);
* the person detector the same way (one detection at 640 x 640);
* GrabCut IoU on the evaluation photos' ``object`` masks (a synthetic blob, not a real object,
  so a weak test of the colour model) and on objects made by construction: a region of
  another photo, cut with the blob mask, pasted onto the photo, so its boundary is known
  exactly. Prompts: one click at the object's most interior pixel, and its box (+4 px).

The registry's :data:`~app.registry.SEGMENTER_PREFERENCE` puts first the candidate :func:`choose` picks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from app.selection.grabcut import grabcut_select
from app.selection.people import DETECT_SIDE
from benchmarks.common import evalset_dir, mask_path, photos, require_evalset
from benchmarks.machine import cpu_name
from benchmarks.memory import cpu_peak_extra

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "select.json"
GOALS = {"encode_s": 2.0, "click_ms": 150.0}


def sam21_tiny() -> torch.nn.Module:
    """facebook/sam2.1-hiera-tiny: transformers' Sam2Config defaults are this checkpoint's architecture."""
    from transformers import Sam2Config, Sam2Model

    return Sam2Model(Sam2Config())


def slimsam_77() -> torch.nn.Module:
    """Zigeng/SlimSAM-uniform-77: SAM ViT-B pruned uniformly to width 168 (MLP 696), 12 layers, 12 heads."""
    from transformers import SamConfig, SamModel, SamVisionConfig

    vision = SamVisionConfig(hidden_size=168, mlp_dim=696, num_hidden_layers=12, num_attention_heads=12)
    return SamModel(SamConfig(vision_config=vision))


def rtdetr_v2_r18() -> torch.nn.Module:
    """PekingU/rtdetr_v2_r18vd: ResNet-18-vd backbone, 3 decoder layers, 80 COCO classes."""
    from transformers import RTDetrResNetConfig, RTDetrV2Config, RTDetrV2ForObjectDetection

    backbone = RTDetrResNetConfig(embedding_size=64, hidden_sizes=[64, 128, 256, 512], depths=[2, 2, 2, 2],
                                  layer_type="basic", out_features=["stage2", "stage3", "stage4"])
    return RTDetrV2ForObjectDetection(RTDetrV2Config(backbone_config=backbone, encoder_in_channels=[128, 256, 512],
                                                     hidden_expansion=0.5, decoder_layers=3, num_labels=80))


def edgetam() -> torch.nn.Module:
    """EdgeTAM's image path (transformers' EdgeTamModel): SAM 2's decoder on a RepViT-M1 backbone built by timm."""
    from transformers import EdgeTamConfig, EdgeTamModel

    config = EdgeTamConfig()  # transformers 5.24's default misspells the backbone's name and builds a ResNet-50
    config.vision_config.backbone_config.architecture = "repvit_m1.dist_in1k"
    return EdgeTamModel(config)


#: The candidates, the better segmenter first (SAM 2.1's own decoder and encoder; EdgeTAM distils it).
SEGMENTERS = {"sam2.1-hiera-tiny": sam21_tiny, "edgetam": edgetam, "slimsam-77": slimsam_77}


def parameters(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def measure_segmenter(model_id: str, clicks: int, encodes: int) -> dict:
    """Encode and click timings of one candidate through the app's own Segmenter wrapper."""
    from app.registry import pretrained
    from app.selection.segmenters import Segmenter

    build = SEGMENTERS[model_id]
    photo = np.random.default_rng(0).integers(0, 255, (768, 1024, 3), np.uint8)  # a 4:3 preview
    times: dict[str, list[float]] = {"encode": [], "click": []}
    box: dict[str, object] = {}

    def run() -> None:
        torch.manual_seed(0)
        segmenter = Segmenter(pretrained(model_id), build().eval())
        box["params"] = parameters(segmenter.net)
        for _ in range(encodes):
            started = time.perf_counter()
            embedding = segmenter.encode(photo)
            times["encode"].append(time.perf_counter() - started)
        rng = np.random.default_rng(1)
        for _ in range(clicks):
            point = [(float(rng.uniform(0, 1024)), float(rng.uniform(0, 768)), 1)]
            started = time.perf_counter()
            segmenter.decode(embedding, point)
            times["click"].append(time.perf_counter() - started)

    peak = cpu_peak_extra(run)
    params = int(box["params"])
    return {"id": model_id, "params_m": round(params / 1e6, 2), "download_mb": round(params * 4 / 1e6),
            "encode_s": round(statistics.median(times["encode"][1:] or times["encode"]), 2),
            "encode_first_s": round(times["encode"][0], 2),
            "click_ms": round(1000 * statistics.median(times["click"]), 1),
            "peak_mb": round(peak / 2**20) if peak is not None else None}


def measure_detector(runs: int) -> dict:
    net = rtdetr_v2_r18().eval()
    pixels = torch.rand(1, 3, DETECT_SIDE, DETECT_SIDE)
    seconds = []

    def run() -> None:
        with torch.inference_mode():
            for _ in range(runs):
                started = time.perf_counter()
                net(pixel_values=pixels)
                seconds.append(time.perf_counter() - started)

    peak = cpu_peak_extra(run)
    params = parameters(net)
    return {"id": "rtdetr-v2-r18", "params_m": round(params / 1e6, 2), "download_mb": round(params * 4 / 1e6),
            "detect_s": round(statistics.median(seconds[1:] or seconds), 2),
            "peak_mb": round(peak / 2**20) if peak is not None else None}


def prompts(mask: np.ndarray) -> tuple[list[tuple[float, float, int]], list[float]]:
    """One click at the most interior pixel of ``mask``, and its box widened by 4 px."""
    distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    y, x = np.unravel_index(int(distance.argmax()), distance.shape)
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    return [(float(x), float(y), 1)], [max(xs.min() - 4, 0), max(ys.min() - 4, 0), min(xs.max() + 4, w),
                                       min(ys.max() + 4, h)]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def grabcut_scores(root: Path, limit: int | None) -> dict:
    """GrabCut IoU per prompt on the evalset's object masks, as given and pasted by construction."""
    files = [p for p in photos(root, "images", limit) if mask_path(root, "object", p).is_file()]
    scores: dict[str, list[float]] = {"blob_point": [], "blob_box": [], "pasted_point": [], "pasted_box": []}
    seconds = []
    for i, photo_file in enumerate(files):
        rgb = cv2.cvtColor(cv2.imread(str(photo_file)), cv2.COLOR_BGR2RGB)
        mask = cv2.imread(str(mask_path(root, "object", photo_file)), cv2.IMREAD_GRAYSCALE) > 127
        if not mask.any():
            continue
        donor = cv2.cvtColor(cv2.imread(str(files[(i + len(files) // 2) % len(files)])), cv2.COLOR_BGR2RGB)
        pasted = rgb.copy()
        pasted[mask] = cv2.resize(donor, (rgb.shape[1], rgb.shape[0]))[mask]
        for name, image in (("blob", rgb), ("pasted", pasted)):
            point, box = prompts(mask)
            started = time.perf_counter()
            scores[f"{name}_point"].append(iou(grabcut_select(image, point), mask))
            seconds.append(time.perf_counter() - started)
            scores[f"{name}_box"].append(iou(grabcut_select(image, (), box), mask))
    summary = {key: {"mean": round(float(np.mean(v)), 3), "median": round(float(np.median(v)), 3)}
               for key, v in scores.items() if v}
    return {"photos": len(files), "iou": summary, "seconds_median": round(statistics.median(seconds), 2)}


def machine() -> dict:
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu_name(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "torch": torch.__version__, "transformers": __import__("transformers").__version__,
            "load_average": round(os.getloadavg()[0], 2)}


def choose(candidates: list[dict]) -> dict:
    """The first choice: of the candidates meeting both latency goals the better model, else the fastest."""
    meets = [c for c in candidates if c["encode_s"] <= GOALS["encode_s"] and c["click_ms"] <= GOALS["click_ms"]]
    preference = list(SEGMENTERS)
    if meets:
        return min(meets, key=lambda c: preference.index(c["id"]))
    return min(candidates, key=lambda c: c["encode_s"])


COMMAND = "python -m benchmarks.bench_select --encodes 3 --clicks 20 --photos 20"


def section(data: dict, heading: str = "##") -> str:
    """The report's Markdown of one run: the candidates against the goals, the detector, GrabCut's IoU."""
    goals = data["goals"]
    rows = ["| model | params | download | encode 1024 px | click (median) | peak memory | encode goal | click goal |",
            "|---|---|---|---|---|---|---|---|"]
    for r in data["segmenters"]:
        met = ["yes" if r[key] <= goals[key] else "no" for key in ("encode_s", "click_ms")]
        default = " (first choice)" if r["id"] == data["default"] else ""
        rows.append(f"| `{r['id']}`{default} | {r['params_m']} M | ~{r['download_mb']} MB | {r['encode_s']:.2f} s | "
                    f"{r['click_ms']:.0f} ms | {r['peak_mb']} MB | {met[0]} | {met[1]} |")
    d, g = data["detector"], data["grabcut"]
    iou = g["iou"]
    m = data["machine"]
    return "\n\n".join([
        f"{heading} Click to select and find people",
        f"Command: `{COMMAND}`  \nMachine: {m['cpu']}, {m['cpu_count']} cores, torch {m['torch']}, "
        f"transformers {m['transformers']}, {m['date']}, load average {m['load_average']} at the start and "
        f"{m.get('load_average_end', '?')} at the end. Weights: {data['weights']}. Goals: encode ≤ "
        f"{goals['encode_s']} s, click ≤ {goals['click_ms']:.0f} ms on 2 CPU cores.",
        "\n".join(rows),
        "The page encodes the photo in the background as soon as the panel is open on it (weights already "
        "here): the first click waits only for what is left of the encode, every later one for the click alone.",
        f"Person detector `{d['id']}`: {d['params_m']} M parameters, ~{d['download_mb']} MB, {d['detect_s']} s per "
        f"photo at 640², peak {d['peak_mb']} MB.",
        f"GrabCut (the offline method) on {g['photos']} evaluation photos, IoU mean / median: objects pasted by "
        f"construction (a real, known edge) {iou['pasted_point']['mean']} / {iou['pasted_point']['median']} from "
        f"one click, {iou['pasted_box']['mean']} / {iou['pasted_box']['median']} from a box; the evaluation set's "
        f"synthetic `object` blobs (no real edge) {iou['blob_point']['mean']} / {iou['blob_point']['median']} and "
        f"{iou['blob_box']['mean']} / {iou['blob_box']['median']}; {g['seconds_median']} s per selection (median)."])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--encodes", type=int, default=3)
    parser.add_argument("--photos", type=int, default=None, help="at most this many evalset photos for GrabCut")
    parser.add_argument("--evalset", default=None)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    report = {"machine": machine(), "goals": GOALS, "weights": "random (real architectures); speed and memory only"}
    report["segmenters"] = [measure_segmenter(model_id, args.clicks, args.encodes) for model_id in SEGMENTERS]
    report["default"] = choose(report["segmenters"])["id"]
    report["detector"] = measure_detector(args.encodes)
    report["grabcut"] = grabcut_scores(require_evalset(evalset_dir(args.evalset)), args.photos)
    report["machine"]["load_average_end"] = round(os.getloadavg()[0], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for row in report["segmenters"]:
        print(f"{row['id']:<20} encode {row['encode_s']:5.2f} s  click {row['click_ms']:6.1f} ms  "
              f"peak {row['peak_mb']} MB  {row['params_m']} M params ~{row['download_mb']} MB")
    print(f"default: {report['default']}; detector: {report['detector']}")
    print(f"grabcut: {report['grabcut']}")


if __name__ == "__main__":
    main()
