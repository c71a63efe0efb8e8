"""Tiny, randomly initialised audio pipelines (Stable Audio for effects, ACE-Step for music), as in diffusers'
own `get_dummy_components`, at a low sampling rate so that a few seconds are a few hundred latent steps."""

from __future__ import annotations

import torch

from tests.tiny_models import t5_text, t5_tokenizer

STABLE_AUDIO_RATE = 1000  # Hz; the VAE's hop is 8, its 256 latent steps make 2.048 s, the model's maximum


def make_stable_audio():
    from diffusers import (
        AutoencoderOobleck,
        EDMDPMSolverMultistepScheduler,
        StableAudioDiTModel,
        StableAudioPipeline,
        StableAudioProjectionModel,
    )

    torch.manual_seed(0)
    transformer = StableAudioDiTModel(sample_size=256, in_channels=3, num_layers=2, attention_head_dim=4,
                                      num_key_value_attention_heads=2, out_channels=3, cross_attention_dim=4,
                                      time_proj_dim=8, global_states_input_dim=8, cross_attention_input_dim=4)
    # Stable Audio ships CosineDPMSolverMultistepScheduler, which needs torchsde (and scipy); its EDM sibling runs
    # the same v-prediction sampling without them
    scheduler = EDMDPMSolverMultistepScheduler(solver_order=2, prediction_type="v_prediction", sigma_data=1.0,
                                               sigma_schedule="exponential")
    torch.manual_seed(0)
    vae = AutoencoderOobleck(encoder_hidden_size=6, downsampling_ratios=[2, 4], decoder_channels=3,
                             decoder_input_channels=3, audio_channels=2, channel_multiples=[2, 4],
                             sampling_rate=STABLE_AUDIO_RATE)
    torch.manual_seed(0)
    text_encoder = t5_text()
    projection = StableAudioProjectionModel(text_encoder_dim=text_encoder.config.d_model, conditioning_dim=4,
                                            min_value=0, max_value=32)
    return StableAudioPipeline(transformer=transformer, scheduler=scheduler, vae=vae, text_encoder=text_encoder,
                               tokenizer=t5_tokenizer(), projection_model=projection)


ACE_STEP_RATE = 1000  # Hz; the VAE's hop of 40 gives ACE-Step's 25 latent frames a second


def make_ace_step():
    from diffusers import AutoencoderOobleck, FlowMatchEulerDiscreteScheduler
    from diffusers.models.transformers.ace_step_transformer import AceStepTransformer1DModel
    from diffusers.pipelines.ace_step import AceStepConditionEncoder, AceStepPipeline
    from transformers import Qwen3Config, Qwen3Model

    from tests.tiny_hunyuan15 import qwen_tokenizer

    tokenizer = qwen_tokenizer()
    torch.manual_seed(0)
    transformer = AceStepTransformer1DModel(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                            num_attention_heads=4, num_key_value_heads=2, head_dim=8, in_channels=24,
                                            audio_acoustic_hidden_dim=8, patch_size=2, rope_theta=10000.0,
                                            sliding_window=16)
    torch.manual_seed(0)
    text_encoder = Qwen3Model(Qwen3Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                          num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                          vocab_size=len(tokenizer), max_position_embeddings=4096))
    torch.manual_seed(0)
    condition_encoder = AceStepConditionEncoder(hidden_size=32, intermediate_size=64, text_hidden_dim=32,
                                                timbre_hidden_dim=8, num_lyric_encoder_hidden_layers=2,
                                                num_timbre_encoder_hidden_layers=2, num_attention_heads=4,
                                                num_key_value_heads=2, head_dim=8, rope_theta=10000.0,
                                                sliding_window=16)
    torch.manual_seed(0)
    vae = AutoencoderOobleck(encoder_hidden_size=6, downsampling_ratios=[4, 10], decoder_channels=3,
                             decoder_input_channels=8, audio_channels=2, channel_multiples=[2, 4],
                             sampling_rate=ACE_STEP_RATE)
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0)
    return AceStepPipeline(transformer=transformer, condition_encoder=condition_encoder, vae=vae,
                           text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)
