"""Tiny random-weight SAM, SAM 2, EdgeTAM and RT-DETRv2 models, saved as the Hub serves them, for the selection tests.

Real ``transformers`` classes at toy sizes (64 px input, ~0.1 M parameters; EdgeTAM keeps its
real backbone, 4.7 M), written with ``save_pretrained(safe_serialization=True)``: the files
(``config.json``, ``model.safetensors``) go on the loopback Hub (:mod:`tests.hub_server`) and
pins.json names their commit, so the app's real fetch, verify and load path runs. Their masks
and boxes are meaningless (random weights); the tests check plumbing: sizes, coordinates,
caching, messages.
"""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

import torch

from app.specs import PretrainedSpec
from tests.hub_server import HubServer


def toy_heads(prompt_config: type, decoder_config: type) -> dict:
    """The toy prompt encoder and mask decoder every SAM-family model here shares (64 px, width 32)."""
    return {"prompt_encoder_config": prompt_config(hidden_size=32, image_size=64, patch_size=16, mask_input_channels=4),
            "mask_decoder_config": decoder_config(hidden_size=32, mlp_dim=64, num_attention_heads=2,
                                                  iou_head_hidden_dim=32)}


def sam2_model() -> torch.nn.Module:
    from transformers import (
        Sam2Config,
        Sam2HieraDetConfig,
        Sam2MaskDecoderConfig,
        Sam2Model,
        Sam2PromptEncoderConfig,
        Sam2VisionConfig,
    )

    backbone = Sam2HieraDetConfig(hidden_size=8, embed_dim_per_stage=[8, 16, 32, 64], blocks_per_stage=[1, 2, 2, 1],
                                  num_attention_heads_per_stage=[1, 1, 1, 1], window_size_per_stage=[4, 4, 4, 4],
                                  global_attention_blocks=[4], image_size=[64, 64],
                                  window_positional_embedding_background_size=[2, 2])
    vision = Sam2VisionConfig(backbone_config=backbone, backbone_channel_list=[64, 32, 16, 8],
                              backbone_feature_sizes=[[16, 16], [8, 8], [4, 4]], fpn_hidden_size=32)
    config = Sam2Config(vision_config=vision, **toy_heads(Sam2PromptEncoderConfig, Sam2MaskDecoderConfig))
    torch.manual_seed(0)
    return Sam2Model(config)


def edgetam_model() -> torch.nn.Module:
    """EdgeTAM at 64 px: its real RepViT-M1 backbone (timm, ~4.7 M parameters) under a toy decoder."""
    from transformers import (
        EdgeTamConfig,
        EdgeTamMaskDecoderConfig,
        EdgeTamModel,
        EdgeTamPromptEncoderConfig,
        EdgeTamVisionConfig,
        TimmWrapperConfig,
    )

    backbone = TimmWrapperConfig(architecture="repvit_m1",
                                 model_args={"in_chans": 3, "features_only": True, "out_indices": [0, 1, 2, 3]})
    vision = EdgeTamVisionConfig(backbone_config=backbone, backbone_channel_list=[384, 192, 96, 48],
                                 backbone_feature_sizes=[[16, 16], [8, 8], [4, 4]], fpn_hidden_size=32)
    config = EdgeTamConfig(vision_config=vision, **toy_heads(EdgeTamPromptEncoderConfig, EdgeTamMaskDecoderConfig))
    torch.manual_seed(0)
    return EdgeTamModel(config)


def sam_model() -> torch.nn.Module:
    from transformers import SamConfig, SamMaskDecoderConfig, SamModel, SamPromptEncoderConfig, SamVisionConfig

    vision = SamVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_dim=64, image_size=64,
                             patch_size=16, window_size=2, global_attn_indexes=[1], output_channels=32,
                             num_pos_feats=16)
    config = SamConfig(vision_config=vision, **toy_heads(SamPromptEncoderConfig, SamMaskDecoderConfig))
    torch.manual_seed(0)
    return SamModel(config)


def rtdetr_model() -> torch.nn.Module:
    from transformers import RTDetrResNetConfig, RTDetrV2Config, RTDetrV2ForObjectDetection

    backbone = RTDetrResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1],
                                  layer_type="basic", out_features=["stage2", "stage3", "stage4"])
    config = RTDetrV2Config(backbone_config=backbone, encoder_in_channels=[16, 32, 64], encoder_hidden_dim=16,
                            d_model=16, decoder_in_channels=[16, 16, 16], encoder_ffn_dim=32, decoder_ffn_dim=32,
                            num_queries=10, decoder_layers=2, decoder_attention_heads=2, encoder_attention_heads=2,
                            num_denoising=0, id2label={0: "person", 1: "bicycle"}, label2id={"person": 0, "bicycle": 1})
    torch.manual_seed(0)
    return RTDetrV2ForObjectDetection(config)


BUILDERS = {"sam2": sam2_model, "sam": sam_model, "edgetam": edgetam_model, "rt_detr_v2": rtdetr_model}
#: What the published config.json declares instead: facebook/sam2.1-hiera-* hold one checkpoint
#: for the image and the video model and say ``sam2_video`` / ``Sam2VideoModel``.
PUBLISHED_AS = {"sam2": {"model_type": "sam2_video", "architectures": ["Sam2VideoModel"]}}


@functools.cache
def files_of(model_type: str) -> dict[str, bytes]:
    """``config.json`` and ``model.safetensors`` of the tiny ``model_type`` model, as bytes (built once per run),
    with the config labelled as the published repo labels it."""
    with tempfile.TemporaryDirectory() as folder:
        BUILDERS[model_type]().save_pretrained(folder, safe_serialization=True)
        files = {name: (Path(folder) / name).read_bytes() for name in ("config.json", "model.safetensors")}
    config = json.loads(files["config.json"]) | PUBLISHED_AS.get(model_type, {})
    files["config.json"] = json.dumps(config).encode()
    return files


def serve(server: HubServer, spec: PretrainedSpec, pins_file: Path, model_type: str | None = None) -> str:
    """Put ``spec``'s tiny files on ``server`` and pin their commit in ``pins_file``; returns the commit."""
    repo = f"test/{spec.id}"
    commit = server.add(repo, files_of(model_type or spec.model_type))
    pins = json.loads(pins_file.read_text()) if pins_file.is_file() else {}
    pins[spec.id] = {"mirror": {"repo_id": repo, "revision": commit,
                                "files": {"config.json": None, "model.safetensors": None}}}
    pins_file.write_text(json.dumps(pins))
    return commit
