"""Tiny, randomly initialised, real HunyuanVideo 1.5 pipelines of diffusers, built offline.

`make_hunyuan15(kind)` builds one in memory: "hunyuan15" (`HunyuanVideo15Pipeline`, text to video) or
"hunyuan15-i2v" (`HunyuanVideo15ImageToVideoPipeline`). Both are built from the same seeds, so the components they
share have identical weights (as the real 480p T2V and I2V checkpoints share an architecture). `build_hunyuan15(kind,
root)` saves one with `save_pretrained` under ``root/kind``; `DiffusionPipeline.from_pretrained` loads it back offline.

The VAE keeps HunyuanVideo 1.5's shape facts: 16x spatial and 4x temporal compression and 32 latent channels (five
blocks, the last of 64 = 2 x 32 channels, as its encoder's shortcut requires), with patch size 1 in the transformer
(in 65 = 32 noise + 32 image-condition + 1 mask channels, out 32). So `num_frames` is 4k+1, height and width are
multiples of 16, and `latents` are ``(batch, 32, (num_frames - 1) // 4 + 1, height // 16, width // 16)``.

The text encoders are the real kinds: a two-layer `Qwen2_5_VLTextModel` tokenised by a `Qwen2Tokenizer` (a
byte-level BPE from fixtures/tokenizers/qwen25vl, whose merges make each piece of the pipeline's system prompt one
token, so the templated prefix is 108 tokens and the pipeline's ``crop_start=108`` cuts exactly at the user's prompt,
as with the real tokenizer), and a two-layer `T5EncoderModel` with the byte-level `ByT5Tokenizer` (which needs no
vocabulary file) for quoted glyph text. The pipelines pad the prompt to 1000 Qwen and 256 ByT5 tokens whatever its
length: those lengths are fixed in the pipeline, not in any config. The I2V image encoder is a two-layer SigLIP at
32 px (16 image tokens; T2V passes 729 zero tokens instead, as the real one does).

Guidance is not a call argument: it is the `guider` component (`ClassifierFreeGuidance(guidance_scale=6.0)` here, the
scale the published guider is reported to use); change it with ``pipe.guider = pipe.guider.new(guidance_scale=...)``. With CFG on, `negative_prompt` is
used and each step runs the transformer twice. The I2V pipeline takes no height/width: it picks the bucket nearest the
image's aspect ratio with the area of ``transformer.config.target_size`` squared (64 here, so a square image gives
64x64), and centre-crops the image to it; `image` must be a PIL image. Without torchvision, transformers makes
the SigLIP processor a `SiglipImageProcessorPil`, and saves it under that name. A call that takes about two
seconds on two CPU cores (under one and a half with CFG off; the Qwen pass over 1108 tokens and the
transformer's fixed 2048-wide ByT5 projection take most of it, and that projection makes each saved folder
about 27 MB)::

    pipe(prompt="a fox", height=64, width=64, num_frames=9, num_inference_steps=2,
         generator=torch.Generator().manual_seed(0), output_type="np")

The Qwen vocabulary was made with `tokenizers`' `BpeTrainer` (byte-level alphabet, Qwen2's pre-tokenizer regex)
trained on the pipeline's system message and "system\\nuser\\nassistant\\n" until every piece was one token.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

VOCAB = Path(__file__).parent / "fixtures" / "tokenizers"
HUNYUAN15_KINDS = ("hunyuan15", "hunyuan15-i2v")

QWEN_HIDDEN = 16  # the Qwen text model's width = the transformer's text_embed_dim
BYT5_HIDDEN = 32  # the T5 encoder's d_model = the transformer's text_embed_2_dim
SIGLIP_HIDDEN = 32  # SigLIP's width = the transformer's image_embed_dim
TARGET_SIZE = 64  # the transformer's target_size: the default (T2V) and bucket (I2V) area is 64x64 pixels

# Qwen2-VL's chat template, reduced to the string messages the pipeline sends.
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def qwen_tokenizer():
    from transformers import Qwen2Tokenizer

    folder = VOCAB / "qwen25vl"
    vocab = json.loads((folder / "vocab.json").read_text())
    merges = [tuple(line.split()) for line in (folder / "merges.txt").read_text().splitlines()[1:]]
    return Qwen2Tokenizer(vocab=vocab, merges=merges, model_max_length=32768, chat_template=QWEN_CHAT_TEMPLATE,
                          additional_special_tokens=["<|im_start|>", "<|im_end|>"])


def byt5_tokenizer():
    from transformers import ByT5Tokenizer

    return ByT5Tokenizer()  # 3 special tokens, 256 bytes and 125 extra ids: 384, all built in


def qwen_text():
    from transformers import Qwen2_5_VLTextConfig, Qwen2_5_VLTextModel

    config = Qwen2_5_VLTextConfig(vocab_size=len(qwen_tokenizer()), hidden_size=QWEN_HIDDEN, intermediate_size=32,
                                  num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                  max_position_embeddings=2048, bos_token_id=0, eos_token_id=2, pad_token_id=0,
                                  rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                                                   "mrope_section": [1, 1, 2]})
    torch.manual_seed(0)
    return Qwen2_5_VLTextModel(config).eval()


def byt5_text():
    from transformers import T5Config, T5EncoderModel

    config = T5Config(vocab_size=len(byt5_tokenizer()), d_model=BYT5_HIDDEN, d_kv=8, d_ff=37, num_layers=2,
                      num_heads=4, relative_attention_num_buckets=8, decoder_start_token_id=0)
    torch.manual_seed(0)
    return T5EncoderModel(config).eval()


def siglip_vision():
    from transformers import SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    config = SiglipVisionConfig(hidden_size=SIGLIP_HIDDEN, intermediate_size=37, num_hidden_layers=2,
                                num_attention_heads=4, image_size=32, patch_size=8)
    torch.manual_seed(0)
    processor = SiglipImageProcessor(size={"height": 32, "width": 32})
    return SiglipVisionModel(config).eval(), processor


def hunyuan15_vae():
    from diffusers import AutoencoderKLHunyuanVideo15

    torch.manual_seed(0)
    return AutoencoderKLHunyuanVideo15(in_channels=3, out_channels=3, latent_channels=32,
                                       block_out_channels=(8, 8, 16, 32, 64), layers_per_block=1,
                                       spatial_compression_ratio=16, temporal_compression_ratio=4).eval()


def hunyuan15_transformer(task_type: str):
    from diffusers import HunyuanVideo15Transformer3DModel

    torch.manual_seed(0)
    return HunyuanVideo15Transformer3DModel(
        in_channels=65, out_channels=32, num_attention_heads=2, attention_head_dim=8, num_layers=1,
        num_refiner_layers=1, mlp_ratio=2.0, patch_size=1, patch_size_t=1, text_embed_dim=QWEN_HIDDEN,
        text_embed_2_dim=BYT5_HIDDEN, image_embed_dim=SIGLIP_HIDDEN, rope_axes_dim=(2, 2, 4),
        target_size=TARGET_SIZE, task_type=task_type).eval()


def make_hunyuan15(kind: str):
    """The tiny `kind` pipeline (one of HUNYUAN15_KINDS), in memory."""
    from diffusers import (
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideo15ImageToVideoPipeline,
        HunyuanVideo15Pipeline,
    )
    from diffusers.guiders import ClassifierFreeGuidance

    if kind not in HUNYUAN15_KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {HUNYUAN15_KINDS}")
    image = kind == "hunyuan15-i2v"
    common = dict(text_encoder=qwen_text(), tokenizer=qwen_tokenizer(), text_encoder_2=byt5_text(),
                  tokenizer_2=byt5_tokenizer(), transformer=hunyuan15_transformer("i2v" if image else "t2v"),
                  vae=hunyuan15_vae(), scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
                  guider=ClassifierFreeGuidance(guidance_scale=6.0))
    if not image:
        return HunyuanVideo15Pipeline(**common)
    encoder, processor = siglip_vision()
    return HunyuanVideo15ImageToVideoPipeline(**common, image_encoder=encoder, feature_extractor=processor)


def build_hunyuan15(kind: str, root: Path) -> Path:
    """Save the tiny `kind` pipeline under ``root/kind`` (once) and return the folder."""
    folder = Path(root) / kind
    if not (folder / "model_index.json").exists():
        make_hunyuan15(kind).save_pretrained(folder)
    return folder
