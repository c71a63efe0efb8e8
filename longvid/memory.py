"""Memory planning: how much device memory a task needs, read from its checkpoint's configs, and the cheapest settings
that make it fit.

Light on purpose (no torch, no diffusers): the planner and ``longvid validate --memory`` estimate every task of a
render before any weights are loaded. The figures are estimates of what ``torch.cuda.max_memory_allocated`` reports
(the CUDA context and allocator fragmentation are not in it: `choose` keeps a headroom for them); how close they come
is measured by ``benchmarks/memory.py`` and written up in docs/benchmarks.md.

The model of a task:

- **Phases.** A chunk encodes the prompt (the text and image encoders), encodes its conditioning frames with the
  VAE where the pipeline encodes a whole chunk of them (Wan's image-to-video and VACE; as costly as decoding them),
  denoises (the transformer or UNet, one expert at a time for two-expert models) and decodes (the VAE). Its peak is
  the largest over the phases of the weights on the device during the phase plus the phase's working memory. A
  keyframe is a chunk of one frame of an image model; a chunk that stores its latents (``sample``) skips the
  decode, and a decode task is the decode phase alone.
- **Weights** are parameters times bytes per dtype: counted exactly from the safetensors headers when the weights
  are on disk, else from a formula over the component's config (`parameter_count`). Without offload every
  component stays on the device; ``model`` offload (diffusers' ``enable_model_cpu_offload``) holds the component in
  use; ``sequential`` offload (``enable_sequential_cpu_offload``) moves one module at a time, so it holds about the
  largest single tensor.
- **Denoising** works on latent tokens, latent frames x (H / spatial scale / patch) x (W / spatial scale / patch).
  Attention is assumed to run through PyTorch's SDPA with a memory-efficient or flash kernel, which never forms the
  tokens x tokens matrix (the math kernel, taken with some masks, does; this model does not cover it). The working
  memory is then that of one transformer block, the largest of its phases: the feed-forward's hidden layer (two
  copies of tokens x ffn_dim while the activation runs) or attention (q, k, v, their rotated copies and the output,
  with the rotary embedding's float32 products in 16-bit runs). Classifier-free guidance doubles the batch in
  pipelines that batch it (CogVideoX, LTX, SVD, AnimateDiff) and not in those that run it as a second pass (Wan,
  SkyReels, HunyuanVideo 1.5). UNets (SVD, AnimateDiff, Stable Diffusion) are modelled by their top level: latent pixels times
  its channel count times a constant.
- **Decoding** holds the decoder's widest full-resolution activation (its first channel count, at the resolution
  before the VAE's own patching) for the frames it decodes at once: 4 output frames per latent frame for Wan's causal
  VAE, 8-9 for CogVideoX's 2-latent-frame batches, the pipeline's ``decode_chunk_size`` for SVD and AnimateDiff, every
  frame for LTX; times a constant per VAE class for the layers and caches alive at once, measured on the CPU. Spatial
  tiling replaces the frame's size by the tile's; the decoded video itself (kept twice while the frames are joined)
  comes on top. VAE slicing splits the batch, which is one video in longvid: it costs nothing and saves nothing here.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from longvid.errors import UserError
from longvid.families import FAMILIES, local_model_dir

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float8": 1}
_DTYPE_ALIASES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "fp8": "float8",
                  "float8_e4m3fn": "float8", "float8_e5m2": "float8",
                  "auto": "bfloat16"}  # auto is bfloat16 on CUDA, the only device whose memory is planned
KINDS = ("chunk", "sample", "decode", "keyframe", "reference", "sound", "embed")
OFFLOADS = ("none", "model", "sequential")

# Component roles in a diffusers folder: what runs in which phase.
_ENCODERS = ("text_encoder", "text_encoder_2", "text_encoder_3", "image_encoder", "condition_encoder",
             "projection_model", "language_model")
_DENOISERS = ("transformer", "transformer_2", "unet", "motion_adapter")
# Pipelines that run the unconditional pass as a second call instead of a doubled batch, or have none.
_SEQUENTIAL_CFG = ("Wan", "SkyReels", "HunyuanVideo15", "Flux", "QwenImage")
# Pipelines whose VAE encodes the whole chunk's frames before denoising (Wan's image-to-video pads the image with
# empty frames to the chunk's length; VACE and video-to-video encode a video): a phase as large as the decode.
_ENCODES_FRAMES = ("WanImageToVideo", "WanVACE", "SkyReelsV2ImageToVideo", "VideoToVideo")
_ORDER = {"encode": 0, "condition": 1, "denoise": 2, "decode": 3}
# Tokens the text encoder reads (the largest any supported pipeline pads to); only the encode phase depends on it.
_TEXT_TOKENS = 512


def device_memory(spec: str) -> int:
    """Bytes in a memory size such as ``24GiB``, ``24G``, ``80GB`` or ``24000MiB``.

    Binary units (``KiB``, ``MiB``, ``GiB``, ``TiB``, and the bare ``K``, ``M``, ``G``, ``T``) count in 1024s; ``KB``,
    ``MB``, ``GB`` and ``TB`` count in 1000s, as the SI says (a card sold as 80 GB has 80 GiB, so ``80GB`` plans
    7% short: the safe side).

    Raises:
        UserError: not a positive number followed by one of those units.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT])(i?B)?\s*", str(spec), flags=re.IGNORECASE)
    if not match or float(match[1]) <= 0:
        raise UserError(f"`--device-memory` ({spec!r}) must be a size such as 24GiB, 24G, 80GB or 24000MiB")
    number, prefix, suffix = float(match[1]), match[2].upper(), (match[3] or "").lower()
    base = 1000 if suffix == "b" else 1024
    return int(number * base ** ("KMGT".index(prefix) + 1))


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


# ------------------------------------------------------------------------------------------------ configs and weights


@dataclass(frozen=True)
class Component:
    """One component of a checkpoint with weights.

    Args:
        name: its folder (``transformer``, ``vae``, ``text_encoder`` ...).
        cls: its class (``_class_name``, or a transformers config's first ``architectures`` entry).
        config: its config.json.
        params: its parameter count.
        largest: elements of its largest tensor: what sequential offload holds of it at once.
        exact: True when counted from the weights' safetensors headers, False when from the config.
    """

    name: str
    cls: str
    config: Mapping
    params: int
    largest: int
    exact: bool

    def bytes(self, dtype: str) -> int:
        """Its weights' size on the device when loaded in `dtype`."""
        size = self.params * DTYPE_BYTES[dtype]
        if dtype == "float16" and self.config.get("model_type") in ("t5", "umt5"):
            # transformers keeps T5's feed-forward output layers ("wo") in float32 when asked for float16
            size += self.config["num_layers"] * self.config["d_ff"] * self.config["d_model"] * 2
        return size


@dataclass(frozen=True)
class ModelConfigs:
    """The parsed configs of a diffusers checkpoint: its pipeline class and the components that hold weights."""

    pipeline: str | None
    components: Mapping[str, Component]
    family: str | None = None

    @classmethod
    def from_dicts(cls, model_index: Mapping, configs: Mapping[str, Mapping],
                   family: str | None = None) -> ModelConfigs:
        """From configs on paper: ``model_index.json`` and each component's config.json (by component name)."""
        components = {}
        for name, config in configs.items():
            params, largest = parameter_count(config)
            components[name] = Component(name, _class_of(config), dict(config), params, largest, False)
        return cls(model_index.get("_class_name"), components, family or _family_of(model_index.get("_class_name")))

    @classmethod
    def from_folder(cls, path: str | Path, family: str | None = None) -> ModelConfigs:
        """From a checkpoint folder in diffusers format; weights counted from their safetensors headers when there."""
        path = Path(path)
        try:
            index = json.loads((path / "model_index.json").read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"{path} is not a model in diffusers format ({exc})") from None
        components = {}
        for name, entry in index.items():
            if name.startswith("_") or not isinstance(entry, list) or not (path / name / "config.json").is_file():
                continue  # schedulers and processors have no config.json with weights beside them
            config = json.loads((path / name / "config.json").read_text())
            counted = _count_safetensors(path / name)
            params, largest = counted if counted else parameter_count(config)
            components[name] = Component(name, _class_of(config), config, params, largest, counted is not None)
        return cls(index.get("_class_name"), components, family or _family_of(index.get("_class_name")))

    @classmethod
    def from_transformers_folder(cls, path: str | Path) -> ModelConfigs:
        """From a transformers model folder (a config.json and its weights beside it): one component, ``model``."""
        path = Path(path)
        try:
            config = json.loads((path / "config.json").read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"{path} is not a transformers model ({exc})") from None
        counted = _count_safetensors(path)
        params, largest = counted if counted else parameter_count(config)
        return cls(None, {"model": Component("model", _class_of(config), config, params, largest, counted is not None)})

    @classmethod
    def locate(cls, model: str, base_dir: Path, family: str | None = None) -> ModelConfigs | None:
        """The configs of `model` (a folder, or a hub id in the local hub cache, never the network), or None."""
        folder = local_model_dir(model, base_dir)
        if folder is None and "/" in model:  # the hub cache's layout, as `families.checkpoint` reads it
            hub = Path(os.environ.get("HF_HUB_CACHE") or
                       Path(os.environ.get("HF_HOME", Path.home() / ".cache/huggingface")) / "hub")
            repo = hub / f"models--{model.replace('/', '--')}"
            ref = repo / "refs" / "main"  # the snapshot the hub's main branch pointed to when it was downloaded
            snapshots = sorted(repo.glob("snapshots/*/model_index.json"), key=lambda p: p.stat().st_mtime)
            folder = repo / "snapshots" / ref.read_text().strip() if ref.is_file() else \
                snapshots[-1].parent if snapshots else None
        if folder is not None and not (folder / "model_index.json").is_file() and (folder / "config.json").is_file():
            return cls.from_transformers_folder(folder)  # an image-embedding model (identity QA)
        if folder is None or not (folder / "model_index.json").is_file():
            return published(model, family)
        return cls.from_folder(folder, family)

    def parameters(self) -> dict[str, int]:
        """Parameter count per component."""
        return {name: c.params for name, c in self.components.items()}

    @property
    def denoiser(self) -> Component | None:
        return next((self.components[n] for n in ("transformer", "unet") if n in self.components), None)

    @property
    def vae(self) -> Component | None:
        return self.components.get("vae")


def _class_of(config: Mapping) -> str:
    return config.get("_class_name") or (config.get("architectures") or [config.get("model_type", "?")])[0]


def _family_of(pipeline: str | None) -> str | None:
    return next((f.name for f in FAMILIES.values() if pipeline in f.pipelines), None)


def _count_safetensors(folder: Path) -> tuple[int, int] | None:
    """(parameters, largest tensor) from the JSON headers of the folder's safetensors files (8 bytes of little-endian
    length, then the header): exact, and without reading any weights. Where a folder holds several variants of the
    weights (``diffusion_pytorch_model.safetensors`` and ``.fp16.safetensors``), one is counted."""
    variants: dict[str, list[Path]] = {}
    for path in sorted(folder.glob("*.safetensors")):
        variant = re.fullmatch(r"[^.]+(?:\.([^.-]+))?(?:-\d+-of-\d+)?\.safetensors", path.name)
        variants.setdefault(variant[1] or "" if variant else "", []).append(path)
    if not variants:
        return None
    total = largest = 0
    for path in variants.get("", next(iter(variants.values()))):
        with path.open("rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(length))
        for name, info in header.items():
            if name != "__metadata__":
                n = math.prod(info["shape"])
                total += n
                largest = max(largest, n)
    return total, largest


# ------------------------------------------------------------------------------------- parameter counts from configs


def _lin(i: int, o: int, bias: bool = True) -> int:
    return i * o + (o if bias else 0)


def parameter_count(config: Mapping) -> tuple[int, int]:
    """(parameters, largest tensor) of a component from its config.json alone.

    Exact for the classes drawn below (Wan and SkyReels-V2 transformers, CogVideoX, LTX-Video, T5 and UMT5 encoders,
    CLIP); other transformers get a generic DiT count (12 d^2 per layer), decoder-only language models the Llama
    shape, and VAEs and UNets a published size scaled by their width squared. Used only when the weights are not on
    disk.
    """
    cls = _class_of(config)
    if cls in ("WanTransformer3DModel", "SkyReelsV2Transformer3DModel", "WanVACETransformer3DModel"):
        return _wan_params(config)
    if cls == "CogVideoXTransformer3DModel":
        return _cogvideox_params(config)
    if cls == "LTXVideoTransformer3DModel":
        return _ltx_params(config)
    if cls in ("T5EncoderModel", "UMT5EncoderModel") or config.get("model_type") in ("t5", "umt5"):
        return _t5_params(config)
    if cls.startswith("CLIP"):
        return _clip_params(config)
    if cls in _REFERENCE_SIZES:
        return _scaled_reference(cls, config)
    if "text_config" in config or "num_hidden_layers" in config:
        return _llm_params(config.get("text_config") or config)
    if "num_layers" in config and "num_attention_heads" in config:  # an unknown diffusion transformer
        d = config["num_attention_heads"] * config.get("attention_head_dim", 64)
        layers = config["num_layers"] + config.get("num_single_layers", 0)
        return layers * 12 * d * d, 4 * d * d
    raise UserError(f"cannot count the parameters of a {cls} from its config; put its weights on disk")


def _wan_params(c: Mapping) -> tuple[int, int]:
    d = c["num_attention_heads"] * c["attention_head_dim"]
    ffn, patch = c["ffn_dim"], math.prod(c["patch_size"])
    out = (c.get("out_channels") or c["in_channels"]) * patch
    attn = 4 * _lin(d, d) + 2 * d  # q, k, v, out and the q/k RMS norms
    added = 2 * _lin(c["added_kv_proj_dim"], d) + d if c.get("added_kv_proj_dim") else 0  # I2V image keys/values
    block = 2 * attn + added + (2 * d if c.get("cross_attn_norm", True) else 0) + _lin(d, ffn) + _lin(ffn, d) + 6 * d
    embed = (c["in_channels"] * patch * d + d  # patch embedding
             + _lin(c.get("freq_dim", 256), d) + _lin(d, d) + _lin(d, 6 * d)  # time embedding and projection
             + _lin(c["text_dim"], d) + _lin(d, d))  # text projection
    if c.get("image_dim"):
        i = c["image_dim"]
        embed += 2 * i + _lin(i, i) + _lin(i, d) + 2 * d + (c.get("pos_embed_seq_len") or 0) * i
    head = _lin(d, out) + 2 * d
    total = c["num_layers"] * block + embed + head
    if c.get("vace_layers"):  # VACE: a control block beside each listed layer, with its own patch embedding
        total += len(c["vace_layers"]) * (block + 2 * _lin(d, d)) + c["vace_in_channels"] * patch * d + d
    largest = [d * ffn, 6 * d * d, c["text_dim"] * d, c.get("freq_dim", 256) * d,
               c.get("vace_in_channels", 0) * patch * d]
    return total, max(largest)


def _cogvideox_params(c: Mapping) -> tuple[int, int]:
    hd = c.get("attention_head_dim", 64)
    d, t = c.get("num_attention_heads", 30) * hd, c.get("time_embed_dim", 512)
    p, pt = c.get("patch_size", 2), c.get("patch_size_t") or 1
    inner = 4 * d  # FeedForward's default width
    norm_zero = _lin(t, 6 * d) + 2 * d  # adaptive LayerNorm: modulation and affine LayerNorm
    block = 2 * norm_zero + 4 * _lin(d, d) + 4 * hd + _lin(d, inner) + _lin(inner, d)
    in_ch, out_ch = c.get("in_channels", 16), c.get("out_channels", 16)
    embed = in_ch * p * p * pt * d + d + _lin(c.get("text_embed_dim", 4096), d) + _lin(d, t) + _lin(t, t)
    if c.get("ofs_embed_dim"):
        embed += 2 * _lin(c["ofs_embed_dim"], c["ofs_embed_dim"])
    if c.get("use_learned_positional_embeddings"):
        frames = (c.get("sample_frames", 49) - 1) // c.get("temporal_compression_ratio", 4) + 1
        tokens = c.get("sample_height", 60) * c.get("sample_width", 90) // (p * p) * frames
        embed += (c.get("max_text_seq_length", 226) + tokens) * d
    head = 2 * d + _lin(t, 2 * d) + 2 * d + _lin(d, p * p * pt * out_ch)
    return c.get("num_layers", 30) * block + embed + head, max(d * inner, t * 6 * d)


def _ltx_params(c: Mapping) -> tuple[int, int]:
    d = c.get("num_attention_heads", 32) * c.get("attention_head_dim", 64)
    cross = c.get("cross_attention_dim", 2048)
    affine = 2 * d if c.get("norm_elementwise_affine") else 0
    bias = c.get("attention_bias", True)
    attn1 = 3 * _lin(d, d, bias) + _lin(d, d, c.get("attention_out_bias", True)) + 2 * d
    attn2 = _lin(d, d, bias) + 2 * _lin(cross, d, bias) + _lin(d, d, c.get("attention_out_bias", True)) + 2 * d
    block = affine + attn1 + attn2 + _lin(d, 4 * d) + _lin(4 * d, d) + 6 * d
    embed = (_lin(c.get("in_channels", 128), d) + 2 * d + _lin(256, d) + _lin(d, d) + _lin(d, 6 * d)
             + _lin(c.get("caption_channels", 4096), d) + _lin(d, d))
    head = _lin(d, c.get("out_channels", 128))
    return (c.get("num_layers", 28) * block + embed + head,
            max(6 * d * d, c.get("caption_channels", 4096) * d, 256 * d))


def _t5_params(c: Mapping) -> tuple[int, int]:
    d, inner = c["d_model"], c.get("num_heads", 8) * c.get("d_kv", 64)
    gated = str(c.get("feed_forward_proj", "relu")).startswith("gated")
    buckets = c.get("relative_attention_num_buckets", 32) * c.get("num_heads", 8)
    # UMT5 gives every layer its own relative position bias; T5 only the first
    bias = buckets * (c["num_layers"] if _class_of(c).startswith("UMT5") or c.get("model_type") == "umt5" else 1)
    layer = 4 * d * inner + (3 if gated else 2) * d * c["d_ff"] + 2 * d
    return c["vocab_size"] * d + c["num_layers"] * layer + bias + d, c["vocab_size"] * d


def _clip_params(c: Mapping) -> tuple[int, int]:
    vision = "image_size" in c
    d, ffn = c["hidden_size"], c["intermediate_size"]
    layer = 4 * _lin(d, d) + _lin(d, ffn) + _lin(ffn, d) + 4 * d
    if vision:
        patches = (c["image_size"] // c["patch_size"]) ** 2
        embed = d + 3 * c["patch_size"] ** 2 * d + (patches + 1) * d + 2 * d  # class token, patches, positions, pre-LN
    else:
        embed = (c["vocab_size"] + c.get("max_position_embeddings", 77)) * d
    total = embed + c["num_hidden_layers"] * layer + 2 * d
    if "WithProjection" in _class_of(c):
        total += d * c.get("projection_dim", 512)
    largest = [d * ffn, 3 * c["patch_size"] ** 2 * d, (patches + 1) * d] if vision else [d * ffn, c["vocab_size"] * d]
    return total, max(largest)


def _llm_params(c: Mapping) -> tuple[int, int]:
    d, ffn = c["hidden_size"], c["intermediate_size"]
    head = c.get("head_dim") or d // c["num_attention_heads"]
    kv = c.get("num_key_value_heads", c["num_attention_heads"]) * head
    layer = 2 * d * c["num_attention_heads"] * head + 2 * d * kv + 3 * d * ffn + 2 * d
    embed = c["vocab_size"] * d * (1 if c.get("tie_word_embeddings", True) else 2)
    return embed + c["num_hidden_layers"] * layer + d, c["vocab_size"] * d


# Components without a formula of their own: (parameters of a published checkpoint, its width), scaled by the
# width squared. Parameter counts of the published configs, instantiated on PyTorch's meta device.
_REFERENCE_SIZES = {
    "AutoencoderKLWan": (126_892_531, 96),  # Wan 2.1 VAE, base_dim 96
    "AutoencoderKLCogVideoX": (215_583_907, 128),
    "AutoencoderKLLTXVideo": (419_193_649, 128),  # LTX-Video 0.9
    "AutoencoderKL": (83_653_863, 128),  # Stable Diffusion's VAE
    "AutoencoderKLTemporalDecoder": (97_742_847, 128),  # SVD
    "UNet2DConditionModel": (859_520_964, 320),  # Stable Diffusion 1.5
    "UNetSpatioTemporalConditionModel": (1_524_623_082, 320),  # SVD
    "UNetMotionModel": (1_312_730_244, 320),  # SD 1.5 with AnimateDiff's motion modules
    "MotionAdapter": (453_209_280, 320),
}


def _scaled_reference(cls: str, c: Mapping) -> tuple[int, int]:
    params, width = _REFERENCE_SIZES[cls]
    own = c.get("base_dim") or (c.get("block_out_channels") or [width])[0]
    if cls == "UNet2DConditionModel" and c.get("cross_attention_dim") == 2048:
        params = 2_567_463_684  # SDXL's UNet: the same width, more transformer layers
    params = int(params * (own / width) ** 2)
    return params, params // 50  # no single tensor of a conv net is large; a few percent is generous


# ------------------------------------------------------------------------------------------------ shapes of the work


@dataclass(frozen=True)
class _Decoder:
    """How a VAE class decodes: output frames held at once (an int; ``"chunk"``: the pipeline's decode_chunk_size;
    None: every frame), its default spatial tile (height, width, stride h, stride w) in pixels, and its working memory
    in widest full-resolution activations (measured on the CPU by benchmarks/memory.py)."""

    frames: int | str | None
    tile: tuple[int, int, int, int] | None
    k: float


_DECODERS = {
    "AutoencoderKLWan": _Decoder(4, (256, 256, 192, 192), 13.0),  # one latent frame (4 video frames) at a time
    "AutoencoderKLCogVideoX": _Decoder(9, (240, 360, 200, 288), 20.0),  # 2 latent frames (3 in the first batch)
    # every frame at once, but at a quarter of the size; 5.7 in bfloat16, whose norms compute in float32 (4 in float32)
    "AutoencoderKLLTXVideo": _Decoder(None, (512, 512, 448, 448), 5.7),
    "AutoencoderKLTemporalDecoder": _Decoder("chunk", None, 8.0),
    "AutoencoderKL": _Decoder("chunk", (512, 512, 384, 384), 6.0),
}
_DEFAULT_DECODER = _Decoder(None, (256, 256, 192, 192), 12.0)
# Working memory of a UNet in top-level activations (latent pixels x its first channel count): skip connections of
# every level, the feed-forward and the concatenations of the up path. Measured on the CPU with Stable Diffusion
# 1.5's UNet; the temporal layers of SVD and AnimateDiff are not in it.
_UNET_K = 26.0


def _spatial_scale(vae: Mapping, family: str | None = None, patch: int = 1) -> int:
    """Pixels per latent pixel: from the VAE's config, else the family's size multiple over the patch."""
    if vae.get("scale_factor_spatial") or vae.get("spatial_compression_ratio"):
        return vae.get("scale_factor_spatial") or vae["spatial_compression_ratio"]
    if "spatio_temporal_scaling" in vae:  # LTX: its own patching, then one halving per scaling block
        return vae.get("patch_size", 1) * 2 ** sum(map(bool, vae["spatio_temporal_scaling"]))
    if "block_out_channels" in vae:
        return 2 ** (len(vae["block_out_channels"]) - 1)
    if "base_dim" in vae:  # Wan 2.1's VAE before diffusers wrote its scale into the config
        return 8
    return FAMILIES[family].size_multiple // patch if family in FAMILIES else 8


def _temporal_scale(vae: Mapping, family: str | None) -> int:
    if vae.get("scale_factor_temporal") or vae.get("temporal_compression_ratio"):
        return vae.get("scale_factor_temporal") or vae["temporal_compression_ratio"]
    if "spatio_temporal_scaling" in vae:
        return vae.get("patch_size_t", 1) * 2 ** sum(map(bool, vae["spatio_temporal_scaling"]))
    if "temperal_downsample" in vae:
        return 2 ** sum(map(bool, vae["temperal_downsample"]))
    return FAMILIES[family].temporal_compression if family in FAMILIES and family != "preview" else 1


def _patch(denoiser: Mapping) -> tuple[int, int, int]:
    if _class_of(denoiser).startswith(("Flux", "QwenImage")):
        return 1, 2, 2  # their pipelines pack 2x2 latent pixels into a token before the transformer sees them
    p = denoiser.get("patch_size") or 1
    if isinstance(p, (list, tuple)):
        return tuple(p)  # type: ignore[return-value]
    return denoiser.get("patch_size_t") or 1, p, p


def _full_resolution(vae: Mapping) -> tuple[int, int]:
    """(channels, patch): the decoder's widest activation at the highest resolution it reaches, which is the frame's
    size divided by the VAE's own patching."""
    if "base_dim" in vae:  # Wan: its decoder's first level is base_dim x dim_mult[0] wide
        channels = (vae.get("decoder_base_dim") or vae["base_dim"]) * vae.get("dim_mult", [1])[0]
        return channels, vae.get("patch_size") or 1
    channels = vae.get("decoder_block_out_channels") or vae.get("block_out_channels") or [128]
    return channels[0], vae.get("patch_size") or 1


# -------------------------------------------------------------------------------------------------------- estimates


@dataclass(frozen=True)
class Settings:
    """The memory settings of a pipeline (`storyboard` names): CPU offload, VAE tiling and slicing, frames decoded at
    once (None: the pipeline's default), and classifier-free guidance (on unless the guidance scale is 1 or less)."""

    offload: str = "none"
    vae_tiling: bool = False
    vae_slicing: bool = False
    decode_chunk_size: int | None = None
    guidance: bool = True

    @classmethod
    def of(cls, settings: Settings | Mapping | None) -> Settings:
        if settings is None or isinstance(settings, Settings):
            return settings or cls()
        guidance = settings.get("guidance")
        offload = settings.get("offload", "none")
        offload = "none" if offload == "auto" else offload  # undecided, as without a device size: all on the device
        return cls(offload, bool(settings.get("vae_tiling")),
                   bool(settings.get("vae_slicing")), settings.get("decode_chunk_size"),
                   guidance is None or guidance > 1)


@dataclass(frozen=True)
class Estimate:
    """Estimated device memory of a task, in bytes.

    Args:
        weights_on_device: the weights on the device during the phase that sets the peak.
        activations: the denoiser's working memory (0 for a decode task).
        decode: the VAE decode's working memory, the decoded video included.
        peak: the largest over the phases of weights plus working memory.
        phase: the phase that sets the peak: ``encode`` (the prompt), ``condition`` (the VAE encoding the frames an
            image-to-video or VACE chunk is conditioned on), ``denoise`` or ``decode``.
        explanation: one line for people.
    """

    weights_on_device: int
    activations: int
    decode: int
    peak: int
    phase: str
    explanation: str


def estimate(configs: ModelConfigs, kind: str, width: int, height: int, frames: int, dtype: str = "bfloat16",
             settings: Settings | Mapping | None = None, compute_dtype: str | None = None,
             seconds: float = 0.0) -> Estimate:
    """The peak device memory of one task.

    Args:
        configs: the checkpoint's configs.
        kind: ``chunk`` (encode, denoise, decode), ``sample`` (a chunk that stores its latents: encode, denoise),
            ``decode`` (the VAE alone), ``keyframe`` or ``reference`` (a chunk of one frame of an image model),
            ``sound`` (an audio pipeline making `seconds` of sound) or ``embed`` (an image-embedding model, identity
            QA, embedding `frames` images at once).
        width, height, frames: the output's size.
        dtype: the weights' dtype (``float32``, ``float16``, ``bfloat16``, ``float8``; ``auto``: bfloat16).
        settings: a `Settings`, or a pipeline settings mapping with the same keys.
        compute_dtype: the activations' dtype when it is not the weights' (autocast; float8 weights are computed in
            bfloat16 unless told).
    """
    # 1. check inputs
    if kind not in KINDS:
        raise UserError(f"`kind` ({kind!r}) must be one of {', '.join(KINDS)}")
    dtype = _DTYPE_ALIASES.get(dtype, dtype)
    compute = _DTYPE_ALIASES.get(compute_dtype, compute_dtype) or ("bfloat16" if dtype == "float8" else dtype)
    for name, value in (("dtype", dtype), ("compute_dtype", compute)):
        if value not in DTYPE_BYTES:
            raise UserError(f"`{name}` ({value!r}) must be one of {', '.join(DTYPE_BYTES)}")
    s = Settings.of(settings)
    if s.offload not in OFFLOADS:
        raise UserError(f"`offload` ({s.offload!r}) must be one of {', '.join(OFFLOADS)}")
    frames = 1 if kind in ("keyframe", "reference") else frames
    ab = DTYPE_BYTES[compute]

    # 2. working memory of each phase
    if kind == "sound":
        denoise, decode = _sound_bytes(configs, seconds, ab, s.guidance)
    elif kind == "embed":
        denoise, decode = _embed_bytes(configs, frames, ab), 0
    else:
        denoise = 0 if kind == "decode" else _denoise_bytes(configs, width, height, frames, ab, s.guidance)
        decode = 0 if kind == "sample" else _decode_bytes(configs, width, height, frames, ab, s)
    encode = 0 if kind in ("decode", "embed") else _encode_bytes(configs, ab)

    # 3. weights on the device in each phase: groups of components that run together
    def held(groups: list[tuple[str, ...]]) -> int:
        groups = [[configs.components[n] for n in g if n in configs.components] for g in groups]
        if s.offload == "model":  # diffusers moves each component on when it is called, and the previous one off
            return max((sum(c.bytes(dtype) for c in g) for g in groups), default=0)
        if s.offload == "sequential":  # one module at a time
            return max((c.largest for g in groups for c in g), default=0) * DTYPE_BYTES[dtype]
        return sum(c.bytes(dtype) for c in configs.components.values())

    others = [(n,) for n in configs.components if n not in _ENCODERS + _DENOISERS]
    phases = {} if kind == "sample" else {"decode": (held(others), decode)}
    if kind == "embed":  # one model, one forward
        phases = {"encode": (held([("model",)]), denoise)}
    elif kind != "decode":
        phases["encode"] = (held([(n,) for n in _ENCODERS]), encode)
        # two experts take turns; a motion adapter runs inside the UNet
        phases["denoise"] = (held([("transformer",), ("transformer_2",), ("unet", "motion_adapter")]), denoise)
        if any(name in (configs.pipeline or "") for name in _ENCODES_FRAMES):
            phases["condition"] = (held(others), _decode_bytes(configs, width, height, frames, ab, s))
    phase = max(phases, key=lambda p: sum(phases[p]))
    weights = phases[phase][0]
    peak = sum(phases[phase])

    # 4. explain: the peak, then each phase as weights + working memory
    exact = all(c.exact for c in configs.components.values())
    each = ", ".join(f"{p} {_gib(w)} + {_gib(m)}" for p, (w, m) in sorted(phases.items(), key=lambda i: _ORDER[i[0]]))
    explanation = (f"{_gib(peak)} at {phase} ({s.offload} offload{', VAE tiling' if s.vae_tiling else ''}, {dtype}, "
                   f"weights {'counted' if exact else 'from configs'}): {each}")
    return Estimate(weights, denoise, decode, peak, phase, explanation)


def _denoise_bytes(configs: ModelConfigs, width: int, height: int, frames: int, ab: int, guidance: bool) -> int:
    denoiser, vae = configs.denoiser, configs.vae.config if configs.vae else {}
    if denoiser is None:
        return 0
    c = denoiser.config
    pt, ph, pw = _patch(c)
    spatial, temporal = _spatial_scale(vae, configs.family, ph), _temporal_scale(vae, configs.family)
    latent_frames = (frames - 1) // temporal + 1
    batch = 2 if guidance and not any(configs.pipeline and configs.pipeline.startswith(p) for p in _SEQUENTIAL_CFG) \
        else 1
    if "block_out_channels" in c:  # a UNet: every frame is an image of the batch
        pixels = latent_frames * (height // spatial) * (width // spatial)
        return int(_UNET_K * batch * pixels * c["block_out_channels"][0] * ab)
    tokens = -(-latent_frames // pt) * (height // spatial // ph) * (width // spatial // pw)
    if denoiser.cls == "CogVideoXTransformer3DModel":  # the prompt joins the video tokens in its attention
        tokens += c.get("max_text_seq_length", 226)
    heads, head_dim = c.get("num_attention_heads", 1), c.get("attention_head_dim", 64)
    d = heads * head_dim
    ffn = c.get("ffn_dim") or int(c.get("mlp_ratio", 4) * d)
    # the largest phase of one block: the feed-forward's hidden layer twice (its projection and its activation) and
    # four copies of the hidden states, or attention's eight, plus in 16 bits the float32 products of the rotary
    # embedding; fitted on the CPU to Wan at widths 256, 1536 and 5120 in float32 and bfloat16 (benchmarks/memory.py)
    per_token = max((2 * ffn + 4 * d) * ab, 8 * d * ab + (7 * d if ab < 4 else 0))
    # the rotary embedding's cos and sin, in float32 through the whole forward: full width for LTX, a head for Wan
    per_token += 2 * 4 * (d if denoiser.cls.startswith("LTX") else head_dim)
    return batch * tokens * per_token


def _decode_bytes(configs: ModelConfigs, width: int, height: int, frames: int, ab: int, s: Settings) -> int:
    vae = configs.vae
    if vae is None:
        return 0
    decoder = _DECODERS.get(vae.cls, _DEFAULT_DECODER)
    if decoder.frames == "chunk":  # SVD and AnimateDiff decode decode_chunk_size frames at once (1 for an image)
        at_once = min(frames, s.decode_chunk_size or _default_chunk(configs))
    else:
        at_once = min(frames, decoder.frames or frames)
    area = height * width
    overlap = 1.0
    if s.vae_tiling and decoder.tile and (height > decoder.tile[0] or width > decoder.tile[1]):
        th, tw, sh, sw = decoder.tile
        area = min(height, th) * min(width, tw)
        # every tile's decoded frames are kept until they are blended
        overlap = math.ceil(height / sh) * math.ceil(width / sw) * th * tw / (height * width)
    channels, patch = _full_resolution(vae.config)
    working = decoder.k * channels * at_once * area / patch**2 * ab
    video = 3 * frames * height * width * ab * (1 + overlap)  # the video, and its pieces while they are joined
    return int(working + video)


def _default_chunk(configs: ModelConfigs) -> int:
    """The frames a chunk-decoding pipeline decodes at once by default (`Family.decode_chunk_size`)."""
    family = FAMILIES.get(configs.family or "")
    return family.decode_chunk_size if family and family.decode_chunk_size else 16


def _sound_bytes(configs: ModelConfigs, seconds: float, ab: int, guidance: bool) -> tuple[int, int]:
    """(denoise, decode) working memory of an audio pipeline making `seconds` of sound: a rough bound (audio models
    are small beside their weights, which are counted exactly). A 1-D transformer (Stable Audio, ACE-Step) works on
    the VAE's latent steps, a UNet (AudioLDM2) on a mel spectrogram's latent pixels; the decode holds the waveform
    through the decoder's widest layer."""
    denoiser, vae = configs.denoiser, configs.vae.config if configs.vae else {}
    rate = vae.get("sampling_rate") or 16000
    hop = math.prod(vae.get("downsampling_ratios") or [1]) or 1
    samples = seconds * rate
    batch = 2 if guidance else 1
    denoise = 0
    if denoiser is not None:
        c = denoiser.config
        if "block_out_channels" in c:  # a UNet over a mel spectrogram: 100 frames a second, 64 bins, 4x smaller
            pixels = (seconds * 100 / 4) * (64 / 4)
            denoise = int(_UNET_K * batch * pixels * c["block_out_channels"][0] * ab)
        else:
            d = c.get("hidden_size") or c.get("num_attention_heads", 8) * c.get("attention_head_dim", 64)
            ffn = c.get("intermediate_size") or 4 * d
            tokens = samples / hop / (c.get("patch_size") or 1)
            denoise = int(batch * tokens * (2 * ffn + 8 * d) * ab)
    widest = (vae.get("decoder_channels") or 128) * max(vae.get("channel_multiples") or [1])
    decode = int(samples * widest * ab * 4 + samples * 2 * 4)  # the layers alive at once, and the waveform (float32)
    return denoise, decode


def _embed_bytes(configs: ModelConfigs, images: int, ab: int) -> int:
    """An image-embedding model's working memory: every image's patch tokens through its widest layer."""
    c = configs.components["model"].config if "model" in configs.components else {}
    c = c.get("vision_config") or c
    d, ffn = c.get("hidden_size", 768), c.get("intermediate_size", 3072)
    tokens = (c.get("image_size", 224) // c.get("patch_size", 16)) ** 2 + 1
    return images * tokens * (2 * ffn + 8 * d) * ab


def _encode_bytes(configs: ModelConfigs, ab: int) -> int:
    """The text encoders' working memory: the prompt's tokens through the widest layer, twice for a negative
    prompt. Small beside their weights."""
    widest = 0
    for name in _ENCODERS:
        c = configs.components[name].config if name in configs.components else {}
        c = c.get("text_config") or c
        widest = max(widest, (c.get("d_ff") or c.get("intermediate_size") or 0)
                     + 4 * (c.get("d_model") or c.get("hidden_size") or 0))
    return 2 * _TEXT_TOKENS * widest * ab


# ---------------------------------------------------------------------------------------------------------- choices


@dataclass(frozen=True)
class Choice:
    """The settings `choose` picked, the estimate under them, and whether it fits."""

    offload: str
    vae_tiling: bool
    vae_slicing: bool
    decode_chunk_size: int | None
    estimate: Estimate
    fits: bool

    def settings(self) -> dict:
        """As pipeline settings (the storyboard's keys; decode_chunk_size only where it was lowered)."""
        out = {"offload": self.offload, "vae_tiling": self.vae_tiling, "vae_slicing": self.vae_slicing}
        return out | ({"decode_chunk_size": self.decode_chunk_size} if self.decode_chunk_size else {})


def choose(configs: ModelConfigs, kind: str, width: int, height: int, frames: int, dtype: str,
           device_bytes: int, headroom: float = 0.9, guidance: bool = True, seconds: float = 0.0,
           offload: bool = True) -> Choice:
    """The cheapest settings whose estimated peak fits in `headroom` of `device_bytes`.

    Tried in order of what they cost in speed, each adding to the last: nothing; VAE tiling and slicing (only for
    VAEs that tile: a setting that changes nothing is never chosen); a smaller decode chunk (only for VAEs that
    decode a chunk of frames at once); model offload; sequential offload. When none fits, the one that needs the
    least, with ``fits=False``. Only the task's own steps are tried: a task that decodes nothing gets no VAE setting,
    and without `offload` (workers on the CPU) no offload.
    """
    budget = headroom * device_bytes
    decoder = _DECODERS.get(configs.vae.cls, _DEFAULT_DECODER) if configs.vae is not None else None
    decodes = decoder is not None and kind not in ("sample", "sound", "embed")
    steps = [Settings(guidance=guidance)]
    if decodes and decoder.tile:
        steps.append(replace(steps[-1], vae_tiling=True, vae_slicing=True))
    if decodes and decoder.frames == "chunk" and kind == "chunk":  # a video pipeline's decode_chunk_size
        steps.append(replace(steps[-1], decode_chunk_size=2))
    if kind != "embed" and offload:
        steps.append(replace(steps[-1], offload="model"))
        steps.append(replace(steps[-1], offload="sequential"))
    tried = [(step, estimate(configs, kind, width, height, frames, dtype, step, seconds=seconds)) for step in steps]
    fitting = [(step, e) for step, e in tried if e.peak <= budget]
    # none fits: the least estimated peak, and among equal estimates the most frugal settings (it is an estimate)
    step, e = fitting[0] if fitting else min(reversed(tried), key=lambda t: t[1].peak)
    return Choice(step.offload, step.vae_tiling, step.vae_slicing, step.decode_chunk_size, e, bool(fitting))


__all__ = ["Choice", "Component", "Estimate", "ModelConfigs", "Settings", "choose", "device_memory", "estimate",
           "parameter_count"]


def published(model: str, family: str | None = None) -> ModelConfigs | None:
    """The configs of a well-known hub id from their published values (`published_configs`), or None."""
    from longvid.published_configs import HUB_IDS, PUBLISHED

    if model not in HUB_IDS:
        return None
    pipeline, configs, _ = PUBLISHED[HUB_IDS[model]]
    return ModelConfigs.from_dicts({"_class_name": pipeline}, configs, family)
