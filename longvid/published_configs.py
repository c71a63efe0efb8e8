"""The key fields of the published configs of well-known checkpoints, so that memory is planned (`longvid validate
--memory`) before their weights are downloaded. The other fields are at their diffusers defaults; the component
sizes come from `memory.parameter_count` (checked against the same configs built on PyTorch's meta device).
"""

from __future__ import annotations

# Wan-AI/Wan2.1-T2V-1.3B-Diffusers and -14B-Diffusers (the dimensions of the Wan 2.1 README's table),
# Wan-AI/Wan2.1-I2V-14B-720P-Diffusers, THUDM/CogVideoX-2b and -5b, Lightricks/LTX-Video (0.9.0, as diffusers'
# scripts/convert_ltx_to_diffusers.py writes it).

UMT5_XXL = {"architectures": ["UMT5EncoderModel"], "model_type": "umt5", "vocab_size": 256384, "d_model": 4096,
            "d_kv": 64, "d_ff": 10240, "num_layers": 24, "num_heads": 64, "relative_attention_num_buckets": 32,
            "feed_forward_proj": "gated-gelu"}
T5_XXL = UMT5_XXL | {"architectures": ["T5EncoderModel"], "model_type": "t5", "vocab_size": 32128}
WAN_VAE = {"_class_name": "AutoencoderKLWan", "base_dim": 96, "z_dim": 16, "dim_mult": [1, 2, 4, 4],
           "num_res_blocks": 2, "temperal_downsample": [False, True, True]}
COGVIDEOX_VAE = {"_class_name": "AutoencoderKLCogVideoX", "block_out_channels": [128, 256, 256, 512],
                 "latent_channels": 16, "layers_per_block": 3, "temporal_compression_ratio": 4,
                 "sample_height": 480, "sample_width": 720}
LTX_VAE = {"_class_name": "AutoencoderKLLTXVideo", "block_out_channels": [128, 256, 512, 512], "latent_channels": 128,
           "layers_per_block": [4, 3, 3, 3, 4], "patch_size": 4, "patch_size_t": 1,
           "spatio_temporal_scaling": [True, True, True, False], "decoder_causal": False, "encoder_causal": True}
# CLIP ViT-H/14, the image encoder of Wan's image-to-video models
CLIP_VIT_H = {"architectures": ["CLIPVisionModel"], "model_type": "clip_vision_model", "hidden_size": 1280,
              "intermediate_size": 5120, "num_hidden_layers": 32, "num_attention_heads": 16, "image_size": 224,
              "patch_size": 14}


def wan_transformer(heads: int, layers: int, ffn: int, **extra) -> dict:
    return {"_class_name": "WanTransformer3DModel", "patch_size": [1, 2, 2], "num_attention_heads": heads,
            "attention_head_dim": 128, "in_channels": 16, "out_channels": 16, "text_dim": 4096, "freq_dim": 256,
            "ffn_dim": ffn, "num_layers": layers, "cross_attn_norm": True, "qk_norm": "rms_norm_across_heads"} | extra


def cogvideox_transformer(heads: int, layers: int, rope: bool) -> dict:
    return {"_class_name": "CogVideoXTransformer3DModel", "num_attention_heads": heads, "attention_head_dim": 64,
            "num_layers": layers, "in_channels": 16, "out_channels": 16, "time_embed_dim": 512,
            "text_embed_dim": 4096, "patch_size": 2, "sample_frames": 49, "sample_height": 60, "sample_width": 90,
            "max_text_seq_length": 226, "use_rotary_positional_embeddings": rope}


LTX_TRANSFORMER = {"_class_name": "LTXVideoTransformer3DModel", "num_attention_heads": 32, "attention_head_dim": 64,
                   "num_layers": 28, "in_channels": 128, "out_channels": 128, "cross_attention_dim": 2048,
                   "caption_channels": 4096, "patch_size": 1, "patch_size_t": 1, "activation_fn": "gelu-approximate",
                   "attention_bias": True, "attention_out_bias": True, "norm_elementwise_affine": False,
                   "qk_norm": "rms_norm_across_heads"}

# name -> (pipeline class, component configs, the size in its name)
PUBLISHED = {
    "Wan2.1-T2V-1.3B": ("WanPipeline", {"transformer": wan_transformer(12, 30, 8960), "text_encoder": UMT5_XXL,
                                        "vae": WAN_VAE}, 1.3e9),
    "Wan2.1-T2V-14B": ("WanPipeline", {"transformer": wan_transformer(40, 40, 13824), "text_encoder": UMT5_XXL,
                                       "vae": WAN_VAE}, 14e9),
    "Wan2.1-I2V-14B-720P": ("WanImageToVideoPipeline",
                            {"transformer": wan_transformer(40, 40, 13824, in_channels=36, image_dim=1280,
                                                 added_kv_proj_dim=5120),
                             "text_encoder": UMT5_XXL, "image_encoder": CLIP_VIT_H, "vae": WAN_VAE}, 14e9),
    "CogVideoX-2b": ("CogVideoXPipeline", {"transformer": cogvideox_transformer(30, 30, False), "text_encoder": T5_XXL,
                                           "vae": COGVIDEOX_VAE}, 2e9),
    "CogVideoX-5b": ("CogVideoXPipeline", {"transformer": cogvideox_transformer(48, 42, True), "text_encoder": T5_XXL,
                                           "vae": COGVIDEOX_VAE}, 5e9),
    "LTX-Video 0.9": ("LTXPipeline", {"transformer": LTX_TRANSFORMER, "text_encoder": T5_XXL, "vae": LTX_VAE}, 2e9),
}

# hub id -> a name in PUBLISHED
HUB_IDS = {"Wan-AI/Wan2.1-T2V-1.3B-Diffusers": "Wan2.1-T2V-1.3B", "Wan-AI/Wan2.1-T2V-14B-Diffusers": "Wan2.1-T2V-14B",
           "Wan-AI/Wan2.1-I2V-14B-720P-Diffusers": "Wan2.1-I2V-14B-720P",
           "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers": "Wan2.1-I2V-14B-720P",  # the same shapes
           "THUDM/CogVideoX-2b": "CogVideoX-2b", "THUDM/CogVideoX-5b": "CogVideoX-5b",
           "Lightricks/LTX-Video": "LTX-Video 0.9"}
