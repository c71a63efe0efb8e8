"""Tiny, randomly initialised audio pipelines (Stable Audio for effects, ACE-Step for music), as in diffusers'
own `get_dummy_components`, at a low sampling rate so that a few seconds are a few hundred latent steps."""

from __future__ import annotations

import torch

from tests.tiny_models import t5_text, t5_tokenizer

STABLE_AUDIO_RATE = 1000  # Hz; the VAE's hop is 8, its 256 latent steps make 2.048 s, the model's maximum


def make_stable_audio():
    from diffusers import (
        AutoencoderOobleck,
        CosineDPMSolverMultistepScheduler,
        StableAudioDiTModel,
        StableAudioPipeline,
        StableAudioProjectionModel,
    )

    torch.manual_seed(0)
    transformer = StableAudioDiTModel(sample_size=256, in_channels=3, num_layers=2, attention_head_dim=4,
                                      num_key_value_attention_heads=2, out_channels=3, cross_attention_dim=4,
                                      time_proj_dim=8, global_states_input_dim=8, cross_attention_input_dim=4)
    # the scheduler Stable Audio ships (it draws its noise through torchsde: the `audio` extra)
    scheduler = CosineDPMSolverMultistepScheduler(solver_order=2, prediction_type="v_prediction", sigma_data=1.0,
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


def make_audioldm2():
    """AudioLDM2 at diffusers' test sizes; its Roberta tokenizer reads the CLIP BPE files (a byte-level BPE too)."""
    from diffusers import (
        AudioLDM2Pipeline,
        AudioLDM2ProjectionModel,
        AudioLDM2UNet2DConditionModel,
        AutoencoderKL,
        DDIMScheduler,
    )
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapTextConfig,
        GPT2Config,
        GPT2LMHeadModel,
        RobertaTokenizer,
        SpeechT5HifiGan,
        SpeechT5HifiGanConfig,
        T5Config,
        T5EncoderModel,
    )

    from tests.tiny_models import VOCAB

    tokenizer = RobertaTokenizer(vocab_file=str(VOCAB / "clip-vocab.json"), merges_file=str(VOCAB / "clip-merges.txt"),
                                 model_max_length=77)
    torch.manual_seed(0)
    unet = AudioLDM2UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=2, sample_size=32,
                                         in_channels=4, out_channels=4,
                                         down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                         up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                         cross_attention_dim=([None, 16, 32], [None, 16, 32]))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False)
    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=[32, 64], in_channels=1, out_channels=1,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        latent_channels=4)
    torch.manual_seed(0)
    text = ClapTextConfig(bos_token_id=0, eos_token_id=2, hidden_size=16, intermediate_size=37, layer_norm_eps=1e-05,
                          num_attention_heads=2, num_hidden_layers=2, pad_token_id=1, vocab_size=len(tokenizer),
                          projection_dim=16)
    audio = ClapAudioConfig(spec_size=64, window_size=4, num_mel_bins=64, intermediate_size=37, layer_norm_eps=1e-05,
                            depths=[2, 2], num_attention_heads=[2, 2], num_hidden_layers=2, hidden_size=192,
                            projection_dim=16, patch_size=2, patch_stride=2, patch_embed_input_channels=4)
    clap = ClapModel(ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=16))
    torch.manual_seed(0)
    t5_tok = t5_tokenizer()
    t5 = T5EncoderModel(T5Config(vocab_size=len(t5_tok), d_model=32, d_ff=37, d_kv=8, num_heads=2, num_layers=2))
    torch.manual_seed(0)
    language_model = GPT2LMHeadModel(GPT2Config(n_embd=16, n_head=2, n_layer=2, vocab_size=1000, n_ctx=99,
                                                n_positions=99))
    language_model.config.max_new_tokens = 8
    torch.manual_seed(0)
    projection = AudioLDM2ProjectionModel(text_encoder_dim=16, text_encoder_1_dim=32, langauge_model_dim=16)
    vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(model_in_dim=8, sampling_rate=16000, upsample_initial_channel=16,
                                                    upsample_rates=[2, 2], upsample_kernel_sizes=[4, 4],
                                                    resblock_kernel_sizes=[3, 7],
                                                    resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]],
                                                    normalize_before=False))
    return AudioLDM2Pipeline(vae=vae, text_encoder=clap, text_encoder_2=t5, projection_model=projection,
                             language_model=language_model, tokenizer=tokenizer, tokenizer_2=t5_tok,
                             feature_extractor=ClapFeatureExtractor(hop_length=7900), unet=unet, scheduler=scheduler,
                             vocoder=vocoder)
