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
