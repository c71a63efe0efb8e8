"""Tiny, randomly initialised, real LTX-2 pipelines of diffusers (video with audio), built offline.

`make_ltx2(kind)` builds one in memory: "ltx2" (`LTX2Pipeline`, text to video), "ltx2-i2v"
(`LTX2ImageToVideoPipeline`) or "ltx2-condition" (`LTX2ConditionPipeline`). All three are built from the same
components with the same seeds, so their weights are identical and one saved folder serves all three (load it with
`DiffusionPipeline.from_pretrained`, then `LTX2ConditionPipeline.from_pipe(pipe)` and so on). `build_ltx2(kind, root)`
saves one with `save_pretrained` under ``root/kind`` (about 1.7 MB).

The shapes keep the real model's arithmetic where it matters to callers: the video VAE compresses 32x in space and 8x
in time (`num_frames` is 8k+1, `height`/`width` multiples of 32; 9x64x64 is 2x2x2 latents of 8 channels), the audio
VAE reads 16 kHz mel frames at a hop of 160 (100 mel frames, 25 audio latents a second; latents of 2 channels x 4 mel
bins) and the vocoder upsamples each mel frame 240x into a 24 kHz stereo waveform, as LTX-2's does. The text encoder is
a two-layer Gemma 3 (`Gemma3ForConditionalGeneration`, with a two-layer SigLIP vision tower it never uses here),
tokenised by a `GemmaTokenizer` whose small vocabulary (special tokens, printable ASCII and the 256 byte-fallback
pieces, so any text encodes) is made here, offline, without any file.

A call that takes well under a second on a CPU::

    pipe(prompt="a fox", height=64, width=64, num_frames=9, num_inference_steps=2, max_sequence_length=16,
         generator=torch.Generator().manual_seed(0), output_type="np", **FAST)

It returns `LTX2PipelineOutput(frames, audio)`: frames as output_type asks, audio always a torch tensor
(batch, 2, samples) at ``pipe.vocoder.config.output_sampling_rate`` (24000; ``pipe.audio_sampling_rate`` is the mel
rate, 16000). `FAST` turns off the extra guidance passes of the LTX-2.3 defaults (STG at block 28, which this
two-layer transformer does not have, and modality guidance); CFG stays unless `guidance_scale` and
`audio_guidance_scale` are 1. The defaults run too, with three transformer passes a step.

Image conditions are re-compressed with H.264 (CRF 33) by default, which needs PyAV: pass `image_crf=0` to the I2V
pipeline and `crf=0` on each `LTX2VideoCondition` where PyAV is not installed. `LTX2VideoCondition.index` is a
*latent* index: 0 replaces the first latent frame (pixel frame 0); k > 0 (or negative, from the end) appends the
frame as keyframe tokens placed at pixel frame 8(k-1)+1, so index=-1 on 9 frames sits at pixel frame 1.
"""

from __future__ import annotations

import string
from pathlib import Path

import torch

LTX2_KINDS = ("ltx2", "ltx2-i2v", "ltx2-condition")

# Turns off STG (whose default blocks, [28], this transformer does not have) and modality-isolation guidance, and the
# guidance rescale, leaving one CFG pass: the cheapest call the LTX-2.3 defaults allow.
FAST = dict(stg_scale=0.0, audio_stg_scale=0.0, spatio_temporal_guidance_blocks=None, modality_scale=1.0,
            audio_modality_scale=1.0, guidance_rescale=0.0, audio_guidance_rescale=0.0)

TEXT_HIDDEN = 32  # Gemma hidden size = the connectors' width = the transformer's caption_channels
TEXT_LAYERS = 2
SAMPLE_RATE, HOP, MEL_BINS = 16000, 160, 16  # the audio VAE's mel frames: 100 a second
AUDIO_LATENT_CHANNELS = 2
VOCODER_RATE = 24000  # 240 waveform samples per mel frame


def gemma_vocab() -> dict[str, int]:
    """Special tokens, "▁" (Gemma's space), printable ASCII and the 256 byte-fallback pieces."""
    pieces = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>", "▁"]
    pieces += list(string.ascii_letters + string.digits + string.punctuation)
    pieces += [f"<0x{i:02X}>" for i in range(256)]
    return {piece: i for i, piece in enumerate(pieces)}


def gemma_tokenizer():
    from transformers import GemmaTokenizer

    return GemmaTokenizer(vocab=gemma_vocab(), merges=[], add_bos_token=True, model_max_length=1024)


def gemma3_text_encoder():
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    vocab_size = len(gemma_vocab())
    text = dict(vocab_size=vocab_size, hidden_size=TEXT_HIDDEN, intermediate_size=37, num_hidden_layers=TEXT_LAYERS,
                num_attention_heads=2, num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=16,
                sliding_window=64, max_position_embeddings=2048, pad_token_id=0, eos_token_id=1, bos_token_id=2)
    vision = dict(hidden_size=16, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2, image_size=8,
                  patch_size=4, num_channels=3)
    # The image tokens are placed past the text vocabulary, as Gemma 3's are; the projector pools the 2x2 patches of
    # an 8 px image into mm_tokens_per_image=4 tokens.
    config = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4,
                          boi_token_index=vocab_size, eoi_token_index=vocab_size + 1,
                          image_token_index=vocab_size + 2)
    torch.manual_seed(0)
    return Gemma3ForConditionalGeneration(config).eval()


def _components() -> dict:
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors, LTX2Vocoder

    text_encoder = gemma3_text_encoder()
    latent_mel_bins = MEL_BINS // 4  # the audio VAE's fixed 4x mel compression
    audio_tokens = AUDIO_LATENT_CHANNELS * latent_mel_bins  # one audio token per latent frame: channels x mel bins

    torch.manual_seed(0)
    transformer = LTX2VideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=2, attention_head_dim=8,
        cross_attention_dim=16, vae_scale_factors=(8, 32, 32), audio_in_channels=audio_tokens,
        audio_out_channels=audio_tokens, audio_num_attention_heads=2, audio_attention_head_dim=4,
        audio_cross_attention_dim=8, audio_sampling_rate=SAMPLE_RATE, audio_hop_length=HOP, num_layers=2,
        qk_norm="rms_norm_across_heads", caption_channels=TEXT_HIDDEN, rope_double_precision=False,
        rope_type="split")

    torch.manual_seed(0)
    connectors = LTX2TextConnectors(
        caption_channels=TEXT_HIDDEN, text_proj_in_factor=TEXT_LAYERS + 1, video_connector_num_attention_heads=4,
        video_connector_attention_head_dim=8, video_connector_num_layers=1,
        video_connector_num_learnable_registers=None, audio_connector_num_attention_heads=4,
        audio_connector_attention_head_dim=8, audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None, connector_rope_base_seq_len=32, rope_theta=10000.0,
        rope_double_precision=False, causal_temporal_positioning=False, rope_type="split")

    # LTX-2's layout at toy widths: 4x4 patches, then space, time and twice space-time halved: 32x in space, 8x in time.
    torch.manual_seed(0)
    vae = AutoencoderKLLTX2Video(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 16, 32), layers_per_block=(1, 1, 1, 1, 1), decoder_layers_per_block=(1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, True), decoder_spatio_temporal_scaling=(True, True, True),
        decoder_inject_noise=(False, False, False, False),
        downsample_type=("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
        upsample_type=("spatiotemporal", "spatiotemporal", "spatiotemporal"), upsample_residual=(True, True, True),
        upsample_factor=(2, 2, 2), timestep_conditioning=False, patch_size=4, patch_size_t=1, encoder_causal=True,
        decoder_causal=False, spatial_compression_ratio=32, temporal_compression_ratio=8)

    torch.manual_seed(0)
    audio_vae = AutoencoderKLLTX2Audio(
        base_channels=audio_tokens, output_channels=2, ch_mult=(1, 1, 1), num_res_blocks=1, attn_resolutions=None,
        in_channels=2, resolution=32, latent_channels=AUDIO_LATENT_CHANNELS, norm_type="pixel",
        causality_axis="height", dropout=0.0, mid_block_add_attention=False, sample_rate=SAMPLE_RATE,
        mel_hop_length=HOP, is_causal=True, mel_bins=MEL_BINS)

    torch.manual_seed(0)
    vocoder = LTX2Vocoder(
        in_channels=2 * MEL_BINS, hidden_channels=32, out_channels=2, upsample_kernel_sizes=[12, 11, 16],
        upsample_factors=[6, 5, 8], resnet_kernel_sizes=[3], resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1, output_sampling_rate=VOCODER_RATE)

    return dict(transformer=transformer, vae=vae, audio_vae=audio_vae, scheduler=FlowMatchEulerDiscreteScheduler(),
                text_encoder=text_encoder, tokenizer=gemma_tokenizer(), connectors=connectors, vocoder=vocoder)


def make_ltx2(kind: str):
    """The tiny LTX-2 pipeline called `kind` (one of LTX2_KINDS), in memory."""
    from diffusers import LTX2ConditionPipeline, LTX2ImageToVideoPipeline, LTX2Pipeline

    classes = {"ltx2": LTX2Pipeline, "ltx2-i2v": LTX2ImageToVideoPipeline, "ltx2-condition": LTX2ConditionPipeline}
    if kind not in classes:
        raise ValueError(f"unknown LTX-2 kind {kind!r}: one of {', '.join(LTX2_KINDS)}")
    return classes[kind](**_components())


def build_ltx2(kind: str, root: Path) -> Path:
    """Save the tiny `kind` pipeline under ``root/kind`` (once) and return the folder."""
    folder = Path(root) / kind
    if not (folder / "model_index.json").exists():
        make_ltx2(kind).save_pretrained(folder)
    return folder
