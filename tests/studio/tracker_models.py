"""Tiny SAM 2 family trackers with random weights, saved as real ones are (``save_pretrained``), for tests."""
from __future__ import annotations

from pathlib import Path

SIDE = 128


def tiny_sam2_config(side: int = SIDE, num_maskmem: int = 3, max_pointers: int = 4):
    """A ``Sam2VideoConfig`` of about a million parameters at a ``side`` x ``side`` input; memory of
    ``num_maskmem`` frames and ``max_pointers`` object pointers (small, so tests reach past them)."""
    from transformers import Sam2VideoConfig

    backbone = dict(model_type="sam2_hiera_det_model", hidden_size=16, num_attention_heads=1,
                    blocks_per_stage=[1, 1, 2, 1], embed_dim_per_stage=[16, 32, 64, 128],
                    num_attention_heads_per_stage=[1, 1, 1, 1], window_size_per_stage=[4, 4, 4, 4],
                    global_attention_blocks=[3], window_positional_embedding_background_size=[2, 2],
                    image_size=[side, side])
    vision = dict(model_type="sam2_vision_model", backbone_config=backbone, backbone_channel_list=[128, 64, 32, 16],
                  backbone_feature_sizes=[[side // 4] * 2, [side // 8] * 2, [side // 16] * 2], fpn_hidden_size=128)
    return Sam2VideoConfig(
        vision_config=vision, image_size=side, num_maskmem=num_maskmem, max_object_pointers_in_encoder=max_pointers,
        prompt_encoder_config=dict(hidden_size=128, image_size=side, patch_size=16, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=128, mlp_dim=64, num_hidden_layers=1, num_attention_heads=2,
                                 iou_head_hidden_dim=64),
        memory_attention_hidden_size=128, memory_attention_num_layers=1, memory_attention_feed_forward_hidden_size=64,
        memory_attention_rope_feat_sizes=[side // 16] * 2, memory_encoder_hidden_size=128,
        memory_encoder_output_channels=64, mask_downsampler_embed_dim=128, memory_fuser_embed_dim=128,
        memory_fuser_intermediate_dim=64)


def save_tiny_sam2(folder: Path, seed: int = 0, side: int = SIDE) -> Path:
    """Model + ``Sam2VideoProcessor`` of :func:`tiny_sam2_config` in ``folder`` (``save_pretrained`` layout)."""
    import torch
    from transformers import Sam2VideoModel

    torch.manual_seed(seed)
    Sam2VideoModel(tiny_sam2_config(side)).eval().save_pretrained(folder)
    _save_processor(folder, side)
    return folder


def tiny_edgetam_config(side: int = SIDE, num_maskmem: int = 3, max_pointers: int = 4):
    """An ``EdgeTamVideoConfig`` as small as :func:`tiny_sam2_config` (same Hiera vision encoder; EdgeTAM's
    perceiver resampler with 16 latents)."""
    from transformers import EdgeTamVideoConfig

    return EdgeTamVideoConfig(
        vision_config=tiny_sam2_config(side).vision_config.to_dict(), image_size=side, num_maskmem=num_maskmem,
        max_object_pointers_in_encoder=max_pointers,
        prompt_encoder_config=dict(hidden_size=128, image_size=side, patch_size=16, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=128, mlp_dim=64, num_hidden_layers=1, num_attention_heads=2,
                                 iou_head_hidden_dim=64),
        memory_attention_hidden_size=128, memory_attention_num_layers=1, memory_attention_mlp_hidden_size=64,
        memory_attention_rope_feat_sizes=[side // 16] * 2, memory_attention_rope_k_sizes=[4, 4],
        perceiver_resampler_num_latents=16, perceiver_resampler_num_latents_2d=16,
        perceiver_resampler_mlp_intermediate_size=64, perceiver_resampler_num_layers=1, memory_encoder_hidden_size=128,
        memory_encoder_output_channels=64, mask_downsampler_embed_dim=128, memory_fuser_embed_dim=128,
        memory_fuser_intermediate_dim=64)


def save_tiny_edgetam(folder: Path, seed: int = 0, side: int = SIDE) -> Path:
    """Model + ``Sam2VideoProcessor`` of :func:`tiny_edgetam_config` in ``folder``."""
    import torch
    from transformers import EdgeTamVideoModel

    torch.manual_seed(seed)
    EdgeTamVideoModel(tiny_edgetam_config(side)).eval().save_pretrained(folder)
    _save_processor(folder, side)
    return folder


def _save_processor(folder: Path, side: int) -> None:
    from transformers import Sam2ImageProcessor, Sam2VideoProcessor, Sam2VideoVideoProcessor

    size = {"height": side, "width": side}
    Sam2VideoProcessor(Sam2ImageProcessor(size=size), Sam2VideoVideoProcessor(size=size)).save_pretrained(folder)
