"""Tiny, randomly initialised, real diffusers pipelines, built offline and saved in diffusers format.

Sizes follow diffusers' own `get_dummy_components`; tokenizers come from the small vocab files in
fixtures/tokenizers. `build(kind, root)` saves one pipeline under ``root/kind`` with `save_pretrained`, so a
storyboard's ``model:`` can point at the folder and longvid loads it through `from_pretrained`, as users do.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

VOCAB = Path(__file__).parent / "fixtures" / "tokenizers"
KINDS = ("sd", "sdxl", "svd", "cogvideox", "cogvideox-i2v", "wan", "wan-i2v", "wan-flf2v", "wan-vace", "wan22-t2v",
         "wan22-t2v-other-expert", "wan22-i2v", "wan22-ti2v", "skyreels-df", "skyreels-t2v", "skyreels-i2v",
         "hunyuan15", "hunyuan15-i2v", "ltx", "ltx2", "animatediff", "flux-kontext", "stable-audio", "ace-step",
         "audioldm2")


def clip_tokenizer():
    from transformers import CLIPTokenizer

    vocab = json.loads((VOCAB / "clip-vocab.json").read_text())
    merges = [tuple(line.split()) for line in (VOCAB / "clip-merges.txt").read_text().splitlines()[1:]]
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def t5_tokenizer():
    from transformers import T5Tokenizer

    pieces = [tuple(p) for p in json.loads((VOCAB / "t5-vocab.json").read_text())]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=64)


def clip_text(hidden: int = 32, projection: bool = False, projection_dim: int = 32):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(bos_token_id=0, eos_token_id=2, hidden_size=hidden, intermediate_size=37,
                            layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=2, pad_token_id=1,
                            vocab_size=1000, hidden_act="gelu", projection_dim=projection_dim)
    torch.manual_seed(0)
    return CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)


def t5_text(umt5: bool = False):
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    kwargs = dict(vocab_size=128, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                  relative_attention_num_buckets=8, decoder_start_token_id=0)
    torch.manual_seed(0)
    return UMT5EncoderModel(UMT5Config(**kwargs)) if umt5 else T5EncoderModel(T5Config(**kwargs))


def clip_vision(image_size: int, patch_size: int, hidden: int = 32, projection: int = 32, with_projection=True):
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModel,
        CLIPVisionModelWithProjection,
    )

    config = CLIPVisionConfig(hidden_size=hidden, projection_dim=projection, num_hidden_layers=2,
                              num_attention_heads=4, image_size=image_size, intermediate_size=37, patch_size=patch_size)
    torch.manual_seed(0)
    model = (CLIPVisionModelWithProjection if with_projection else CLIPVisionModel)(config)
    return model, CLIPImageProcessor(crop_size=image_size, size=image_size)


def sd_vae(channels=(8, 8), groups=2):
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(block_out_channels=list(channels), in_channels=3, out_channels=3,
                         down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                         latent_channels=4, norm_num_groups=groups)


def _sd():
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(4, 8), layers_per_block=1, sample_size=32, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                norm_num_groups=2)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False)
    return StableDiffusionPipeline(vae=sd_vae((4, 8)), text_encoder=clip_text(), tokenizer=clip_tokenizer(), unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def _sdxl():
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(2, 4), layers_per_block=1, sample_size=32, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
                                use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
                                transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=80,
                                cross_attention_dim=64, norm_num_groups=1)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                       beta_schedule="scaled_linear", timestep_spacing="leading")
    return StableDiffusionXLPipeline(vae=sd_vae((4, 8)), text_encoder=clip_text(), tokenizer=clip_tokenizer(),
                                     text_encoder_2=clip_text(projection=True), tokenizer_2=clip_tokenizer(),
                                     unet=unet, scheduler=scheduler)


def _svd():
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        StableVideoDiffusionPipeline,
        UNetSpatioTemporalConditionModel,
    )

    torch.manual_seed(0)
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=8, out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"), cross_attention_dim=32,
        num_attention_heads=8, projection_class_embeddings_input_dim=96, addition_time_embed_dim=32)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       interpolation_type="linear", num_train_timesteps=1000,
                                       prediction_type="v_prediction", sigma_max=700.0, sigma_min=0.002,
                                       steps_offset=1, timestep_spacing="leading", timestep_type="continuous",
                                       use_karras_sigmas=True)
    torch.manual_seed(0)
    vae = AutoencoderKLTemporalDecoder(block_out_channels=[32, 64], in_channels=3, out_channels=3,
                                       down_block_types=["DownEncoderBlock2D"] * 2, latent_channels=4)
    # The pipeline resizes the image to 224 px before its encoder; under transformers 5 the encoder must match.
    encoder, processor = clip_vision(image_size=224, patch_size=32)
    return StableVideoDiffusionPipeline(vae=vae, image_encoder=encoder, unet=unet, scheduler=scheduler,
                                        feature_extractor=processor)


def _cogvideox(image: bool):
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXImageToVideoPipeline,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
    )

    torch.manual_seed(0)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=8 if image else 4, out_channels=4, time_embed_dim=2,
        text_embed_dim=32, num_layers=1, sample_width=8, sample_height=8, sample_frames=9, patch_size=2,
        temporal_compression_ratio=4, max_text_seq_length=16, use_rotary_positional_embeddings=image)
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
                                 up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8),
                                 latent_channels=4, layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4)
    cls = CogVideoXImageToVideoPipeline if image else CogVideoXPipeline
    return cls(tokenizer=t5_tokenizer(), text_encoder=t5_text(), vae=vae, transformer=transformer,
               scheduler=CogVideoXDDIMScheduler())


def _wan_vae():
    """The Wan 2.1 VAE at tiny size: 16 latent channels, 4x8x8 compression."""
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    return AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                            temperal_downsample=[False, True, True])


def _wan_transformer(in_channels: int, out_channels: int = 16, seed: int = 0, cls: str = "WanTransformer3DModel",
                     **extra):
    """A two-layer transformer of Wan's shapes; `cls` names its class (SkyReels-V2 and VACE share the shapes)."""
    import diffusers

    torch.manual_seed(seed)
    return getattr(diffusers, cls)(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                                   in_channels=in_channels, out_channels=out_channels, text_dim=32, freq_dim=256,
                                   ffn_dim=32, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                                   rope_max_seq_len=32, **extra)


def _wan(kind: str):
    from diffusers import FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline, WanPipeline

    vae = _wan_vae()
    image = kind != "wan"
    extra = {}
    if image:  # image tokens: 16 patches + CLS per image; first-last-frame models embed two images
        extra = {"image_dim": 32, "pos_embed_seq_len": 2 * 17 if kind == "wan-flf2v" else None}
    transformer = _wan_transformer(36 if image else 16, **extra)
    common = dict(tokenizer=t5_tokenizer(), text_encoder=t5_text(umt5=True), vae=vae, transformer=transformer,
                  scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0))
    if not image:
        return WanPipeline(**common)
    encoder, processor = clip_vision(image_size=32, patch_size=8, with_projection=False)
    return WanImageToVideoPipeline(**common, image_encoder=encoder, image_processor=processor)


def _wan22_experts(image: bool, second_seed: int = 1):
    """Wan 2.2 A14B's shapes: two experts (`transformer` for high noise, `transformer_2` for low) switched at
    `boundary_ratio`, the Wan 2.1 VAE; I2V without an image encoder. `second_seed` varies only the second expert."""
    from diffusers import FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline, WanPipeline

    vae = _wan_vae()
    channels = 36 if image else 16
    common = dict(tokenizer=t5_tokenizer(), text_encoder=t5_text(umt5=True), vae=vae,
                  transformer=_wan_transformer(channels), transformer_2=_wan_transformer(channels, seed=second_seed),
                  scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0))
    if image:
        return WanImageToVideoPipeline(**common, boundary_ratio=0.9)
    return WanPipeline(**common, boundary_ratio=0.875)


def _wan22_ti2v():
    """Wan 2.2 TI2V-5B's shapes: the 48-channel VAE (4x16x16: 2x2 patches in and out of it), one expert,
    `expand_timesteps`; it loads as WanPipeline, for text and (through the I2V pipeline) an image."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=48, in_channels=12, out_channels=12, is_residual=True, patch_size=2,
                           dim_mult=[1, 1, 1, 1], num_res_blocks=1, latents_mean=[0.0] * 48, latents_std=[1.0] * 48,
                           scale_factor_spatial=16, temperal_downsample=[False, True, True])
    return WanPipeline(tokenizer=t5_tokenizer(), text_encoder=t5_text(umt5=True), vae=vae,
                       transformer=_wan_transformer(48, 48), scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),
                       expand_timesteps=True)


def _skyreels(kind: str):
    """SkyReels-V2: Wan 2.1's shapes with its own transformer (diffusion forcing: a timestep per latent frame) and
    a flow-matching UniPC scheduler, as published. `kind`: df (the diffusion-forcing text-to-video pipeline, from
    which the image- and video-to-video ones derive), t2v or i2v (with a CLIP image encoder)."""
    import diffusers
    from diffusers import UniPCMultistepScheduler

    vae = _wan_vae()
    image = {"image_dim": 32} if kind == "i2v" else {}
    transformer = _wan_transformer(36 if image else 16, cls="SkyReelsV2Transformer3DModel", **image)
    common = dict(tokenizer=t5_tokenizer(), text_encoder=t5_text(umt5=True), vae=vae, transformer=transformer,
                  scheduler=UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                                    flow_shift=8.0))
    if kind == "i2v":
        encoder, processor = clip_vision(image_size=32, patch_size=8)
        return diffusers.SkyReelsV2ImageToVideoPipeline(**common, image_encoder=encoder, image_processor=processor)
    return getattr(diffusers, "SkyReelsV2DiffusionForcingPipeline" if kind == "df" else "SkyReelsV2Pipeline")(**common)


def _wan_vace():
    """Wan VACE: the Wan 2.1 shapes, with a control branch at layer 0 that reads the video, the mask and the
    reference images (32 latent channels of the conditioning video and 8x8 of the mask: 96)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, WanVACEPipeline

    vae = _wan_vae()
    transformer = _wan_transformer(16, cls="WanVACETransformer3DModel", vace_layers=[0], vace_in_channels=96)
    return WanVACEPipeline(tokenizer=t5_tokenizer(), text_encoder=t5_text(umt5=True), vae=vae, transformer=transformer,
                           scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0))


def _ltx():
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )

    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(in_channels=8, out_channels=8, patch_size=1, patch_size_t=1,
                                             num_attention_heads=4, attention_head_dim=8, cross_attention_dim=32,
                                             num_layers=1, caption_channels=32)
    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
                                decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
                                decoder_layers_per_block=(1, 1, 1, 1, 1),
                                spatio_temporal_scaling=(True, True, False, False),
                                decoder_spatio_temporal_scaling=(True, True, False, False),
                                decoder_inject_noise=(False, False, False, False, False),
                                upsample_residual=(False, False, False, False), upsample_factor=(1, 1, 1, 1),
                                timestep_conditioning=False, patch_size=1, patch_size_t=1, encoder_causal=True,
                                decoder_causal=False)
    return LTXPipeline(transformer=transformer, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(),
                       text_encoder=t5_text(), tokenizer=t5_tokenizer())


def _animatediff():
    from diffusers import AnimateDiffPipeline, DDIMScheduler, MotionAdapter, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(8, 8), layers_per_block=1, sample_size=8, in_channels=4,
                                out_channels=4, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                                norm_num_groups=2)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="linear", clip_sample=False)
    torch.manual_seed(0)
    adapter = MotionAdapter(block_out_channels=(8, 8), motion_layers_per_block=1, motion_norm_num_groups=2,
                            motion_num_attention_heads=4)
    return AnimateDiffPipeline(unet=unet, scheduler=scheduler, vae=sd_vae(), motion_adapter=adapter,
                               text_encoder=clip_text(), tokenizer=clip_tokenizer(), feature_extractor=None,
                               image_encoder=None)


def _flux_kontext():
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxKontextPipeline,
        FluxTransformer2DModel,
    )

    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=4, num_layers=1, num_single_layers=1,
                                         attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                         pooled_projection_dim=32, axes_dims_rope=[4, 4, 8])
    torch.manual_seed(0)
    vae = AutoencoderKL(sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1,
                        latent_channels=1, norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False,
                        shift_factor=0.0609, scaling_factor=1.5035)
    return FluxKontextPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), text_encoder=clip_text(),
                               tokenizer=clip_tokenizer(), text_encoder_2=t5_text(), tokenizer_2=t5_tokenizer(),
                               transformer=transformer, vae=vae, image_encoder=None, feature_extractor=None)


def make(kind: str):
    """The tiny pipeline called `kind` (one of KINDS), in memory."""
    builders = {"sd": _sd, "sdxl": _sdxl, "svd": _svd, "cogvideox": lambda: _cogvideox(False),
                "cogvideox-i2v": lambda: _cogvideox(True), "wan": lambda: _wan("wan"),
                "wan-i2v": lambda: _wan("wan-i2v"), "wan-flf2v": lambda: _wan("wan-flf2v"), "wan-vace": _wan_vace,
                "wan22-t2v": lambda: _wan22_experts(False), "wan22-t2v-other-expert": lambda: _wan22_experts(False, 7),
                "wan22-i2v": lambda: _wan22_experts(True), "wan22-ti2v": _wan22_ti2v,
                "skyreels-df": lambda: _skyreels("df"), "skyreels-t2v": lambda: _skyreels("t2v"),
                "skyreels-i2v": lambda: _skyreels("i2v"), "ltx": _ltx,
                "animatediff": _animatediff, "flux-kontext": _flux_kontext}
    if kind.startswith("hunyuan15"):
        from tests.tiny_hunyuan15 import make_hunyuan15

        return make_hunyuan15(kind)
    if kind.startswith("ltx2"):
        from tests.tiny_ltx2 import make_ltx2

        return make_ltx2(kind)
    if kind in ("stable-audio", "ace-step", "audioldm2"):
        from tests import tiny_audio

        return {"stable-audio": tiny_audio.make_stable_audio, "ace-step": tiny_audio.make_ace_step,
                "audioldm2": tiny_audio.make_audioldm2}[kind]()
    return builders[kind]()


def build(kind: str, root: Path) -> Path:
    """Save the tiny `kind` pipeline under ``root/kind`` (once) and return the folder."""
    folder = Path(root) / kind
    if not (folder / "model_index.json").exists():
        make(kind).save_pretrained(folder)
    return folder


def build_ltx_upsampler(root: Path) -> Path:
    """A latent upsampler for the tiny LTX (8 latent channels), saved as its own model, as the hub ships it inside
    a ``latent_upsampler`` folder."""
    from diffusers.pipelines.ltx.modeling_latent_upsampler import LTXLatentUpsamplerModel

    folder = Path(root) / "ltx-upsampler"
    if not (folder / "latent_upsampler" / "config.json").exists():
        torch.manual_seed(0)
        LTXLatentUpsamplerModel(in_channels=8, mid_channels=32, num_blocks_per_stage=1, dims=3,
                                spatial_upsample=True).save_pretrained(folder / "latent_upsampler")
    return folder


def build_lora(root: Path) -> Path:
    """A LoRA for the tiny SD UNet, with random (not zero) up-projections so that it changes the output."""
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    folder = Path(root) / "sd-lora"
    if not (folder / "pytorch_lora_weights.safetensors").exists():
        unet = make("sd").unet
        torch.manual_seed(1)
        unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                    target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
        StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=get_peft_model_state_dict(unet))
    return folder


def build_embedder(root: Path) -> Path:
    """A tiny CLIP vision model with its image processor, saved as a user's identity-QA model would be."""
    folder = Path(root) / "clip-embedder"
    if not (folder / "config.json").exists():
        model, processor = clip_vision(image_size=32, patch_size=4)
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
    return folder


def build_ip_adapter(root: Path) -> Path:
    """An IP-Adapter for the tiny SD UNet, laid out as published ones are (``models/ip-adapter.safetensors`` with
    ``models/image_encoder``), with random weights strong enough that the image prompt shows."""
    from safetensors.torch import save_file

    folder = Path(root) / "sd-ip-adapter"
    weights = folder / "models" / "ip-adapter.safetensors"
    if not weights.exists():
        unet = make("sd").unet
        cross, embed = unet.config.cross_attention_dim, 32
        encoder, _ = clip_vision(image_size=32, patch_size=4, projection=embed)
        torch.manual_seed(2)
        tensors = {"image_proj.proj.weight": torch.randn(4 * cross, embed), "image_proj.proj.bias": torch.zeros(4 * cross),
                   "image_proj.norm.weight": torch.ones(cross), "image_proj.norm.bias": torch.zeros(cross)}
        key_id = 1  # the numbering of published IP-Adapters: every other attention layer, the cross-attentions
        for name in unet.attn_processors:
            if name.endswith("attn1.processor"):
                continue
            blocks = unet.config.block_out_channels
            hidden = blocks[-1] if name.startswith("mid_block") else list(reversed(blocks))[int(name[10])] \
                if name.startswith("up_blocks") else blocks[int(name[12])]
            tensors[f"ip_adapter.{key_id}.to_k_ip.weight"] = torch.randn(hidden, cross)
            tensors[f"ip_adapter.{key_id}.to_v_ip.weight"] = torch.randn(hidden, cross)
            key_id += 2
        weights.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, weights)
        encoder.save_pretrained(folder / "models" / "image_encoder")
    return folder
