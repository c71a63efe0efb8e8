"""What each video model family can do, as data: frame rules, rates, latent layout, conditioning.

Light on purpose (no torch, no diffusers): the storyboard validator and the planner read these declarations to
legalise chunk lengths and to check that a family can do what a storyboard asks, without loading a model. The
adapters that drive the pipelines live in `longvid.stages.video`.

Conditioning abilities:
    ``text``: a chunk from the prompt alone; ``first``: an image as the first frame; ``last``: an image as the
    last frame; ``any``: an image at any frame index. A model without ``text`` needs an image for every chunk;
    ``needs-last`` (Wan FLF2V checkpoints) needs a keyframe at the end of every chunk too; ``sound``: the model
    makes the picture's sound with it (LTX-2); ``forcing``: a chunk
    continues the previous chunk's last frames by diffusion forcing (SkyReels-V2 DF); ``references``: the
    chunk also takes the reference images of the characters and places it shows (Wan VACE's ``reference_images``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Family:
    """A video model family.

    Args:
        name: the storyboard's ``models.video.family``.
        frame_rule: the frame counts it generates (`timing.FrameRule` syntax).
        chunk_frames: the default chunk length (a legal count).
        native_fps: the rate it was trained at; chunks are generated there and interpolated up (None: any rate).
        temporal_compression: video frames per latent frame after the first.
        latent_layout: the shape of its initial noise.
        size_multiple: width and height must be multiples of it.
        pipelines: diffusers pipeline class -> the conditioning that pipeline takes.
        steps, guidance: defaults for ``models.video.steps`` and ``guidance``.
        known_models: hub ids known to work.
        vram: what the model's authors publish about memory.
        decode_chunk_size: frames its pipeline decodes at once by default, for a family that decodes in chunks
            (None: it decodes otherwise); `offload: auto` may lower it.
    """

    name: str
    frame_rule: str
    chunk_frames: int
    native_fps: float | None
    temporal_compression: int
    latent_layout: str
    size_multiple: int
    pipelines: dict[str, tuple[str, ...]]
    steps: int = 30
    guidance: float = 5.0
    known_models: tuple[str, ...] = ()
    vram: str = ""
    decode_chunk_size: int | None = None

    @property
    def abilities(self) -> frozenset[str]:
        """What at least one checkpoint of the family can be conditioned on."""
        return frozenset(a for abilities in self.pipelines.values() for a in abilities)

    def latent_frames(self, frames: int) -> int:
        return (frames - 1) // self.temporal_compression + 1

    @property
    def strategies(self) -> list[str]:
        """The continuity strategies some checkpoint of the family supports (the validator checks the one used)."""
        able: set[str] = set()
        for abilities in self.pipelines.values():
            own_noise = self.name in ("ltx", "ltx2") or "forcing" in abilities  # conditioned chunks draw their own
            able |= {"cut", "overlap-blend"} | ({"shared-noise"} if not own_noise else set())
            able |= {"latent-blend"} if not own_noise and "text" in abilities else set()
            able |= {"prefix"} if "first" in abilities else set()
            able |= {"keyframe-anchored"} if {"last", "any"} & set(abilities) else set()
            able |= {"diffusion-forcing"} if "forcing" in abilities else set()
        order = ("cut", "overlap-blend", "shared-noise", "latent-blend", "prefix", "keyframe-anchored",
                 "diffusion-forcing")
        return [name for name in order if name in able]


# Families whose chunks store their latents, decoded by a task of their own (`stages.decode`).
LATENT_DECODERS = ("wan", "cogvideox")

# LTX-2: text, images at latent indices, and sound with the picture.
_LTX2 = ("text", "first", "last", "any", "sound")
# SkyReels-V2 diffusion forcing: text or a first frame, and a chunk that continues the previous one's frames.
_SKYREELS_DF = ("text", "first", "forcing")
# Wan VACE: frames at any index through `video` and `mask` (black: keep), and reference images of who and where.
_WAN_VACE = ("text", "first", "last", "any", "references")

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("preview", "4k+1", 33, None, 4, "none (drawn)", 16,
               {"preview": ("text", "first", "last", "any")}),
        Family("svd", "14,25", 25, 7, 1, "[B,F,C,h,w]", 64,
               {"StableVideoDiffusionPipeline": ("first",)}, steps=25, guidance=3.0,
               known_models=("stabilityai/stable-video-diffusion-img2vid-xt", "stabilityai/stable-video-diffusion-img2vid"),
               vram="not published as one figure; diffusers documents `decode_chunk_size` and CPU offload to fit 8-16 GB",
               decode_chunk_size=8),
        Family("cogvideox", "8k+1", 49, 8, 4, "[B,F,C,h,w]", 16,
               {"CogVideoXPipeline": ("text",), "CogVideoXImageToVideoPipeline": ("first",)},
               steps=50, guidance=6.0,
               known_models=("THUDM/CogVideoX-2b", "THUDM/CogVideoX-5b", "THUDM/CogVideoX-5b-I2V"),
               vram="CogVideoX README: 2B 12.5 GB, 5B 5 GB with diffusers' memory optimisations (18 / 26 GB without)"),
        Family("wan", "4k+1", 81, 16, 4, "[B,16,F,h,w]", 16,
               {"WanPipeline": ("text",), "WanImageToVideoPipeline": ("first",),
                "WanVACEPipeline": _WAN_VACE},
               steps=50, guidance=5.0,
               known_models=("Wan-AI/Wan2.1-T2V-1.3B-Diffusers", "Wan-AI/Wan2.1-T2V-14B-Diffusers",
                             "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers", "Wan-AI/Wan2.1-I2V-14B-720P-Diffusers",
                             "Wan-AI/Wan2.1-FLF2V-14B-720P-Diffusers", "Wan-AI/Wan2.1-VACE-1.3B-diffusers",
                             "Wan-AI/Wan2.1-VACE-14B-diffusers", "Wan-AI/Wan2.2-T2V-A14B-Diffusers",
                             "Wan-AI/Wan2.2-I2V-A14B-Diffusers", "Wan-AI/Wan2.2-TI2V-5B-Diffusers"),
               # FLF2V checkpoints also take a last frame: see _WAN_FLF2V
               vram="Wan2.1 README: T2V-1.3B needs 8.19 GB; the 14B models are published for 80 GB GPUs or offload"),
        # Every LTX checkpoint loads into LTXConditionPipeline, which takes images at any frame index.
        Family("ltx", "8k+1", 97, 24, 8, "packed tokens [B,S,C] from [B,128,F,h,w]", 32,
               {"LTXPipeline": ("text", "first", "last", "any"),
                "LTXImageToVideoPipeline": ("text", "first", "last", "any"),
                "LTXConditionPipeline": ("text", "first", "last", "any")},
               steps=40, guidance=3.0,
               known_models=("Lightricks/LTX-Video", "Lightricks/LTX-Video-0.9.5", "Lightricks/LTX-Video-0.9.7-dev"),
               vram="not published as one figure; the 2B models run on consumer GPUs with offload"),
        # SkyReels-V2: Wan 2.1's shapes at 24 fps. Diffusion-forcing (DF) checkpoints load as the DF text-to-video
        # pipeline; the adapter derives the image-to-video and video-to-video ones from its modules.
        Family("skyreels", "4k+1", 97, 24, 4, "[B,16,F,h,w]", 16,
               {"SkyReelsV2Pipeline": ("text",), "SkyReelsV2ImageToVideoPipeline": ("first",),
                "SkyReelsV2DiffusionForcingPipeline": _SKYREELS_DF,
                "SkyReelsV2DiffusionForcingImageToVideoPipeline": _SKYREELS_DF,
                "SkyReelsV2DiffusionForcingVideoToVideoPipeline": _SKYREELS_DF},
               steps=50, guidance=6.0,
               known_models=("Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers", "Skywork/SkyReels-V2-DF-14B-540P-Diffusers",
                             "Skywork/SkyReels-V2-DF-14B-720P-Diffusers", "Skywork/SkyReels-V2-T2V-14B-540P-Diffusers",
                             "Skywork/SkyReels-V2-I2V-1.3B-540P-Diffusers", "Skywork/SkyReels-V2-I2V-14B-540P-Diffusers"),
               vram="SkyReels-V2 README: the 1.3B models are the single consumer-GPU ones at 540P; the 14B models "
                    "need a large GPU or offload"),
        # LTX-2: video with its sound; every checkpoint loads into LTX2ConditionPipeline for keyframes.
        Family("ltx2", "8k+1", 121, 24, 8, "[B,128,F,h,w] and sound [B,8,L,16]", 32,
               {"LTX2Pipeline": _LTX2, "LTX2ImageToVideoPipeline": _LTX2, "LTX2ConditionPipeline": _LTX2},
               steps=30, guidance=3.0, known_models=("Lightricks/LTX-2",),
               vram="LTX-2 README: the 19B model is published for large GPUs, with FP8 and offload for less"),
        # HunyuanVideo 1.5: a 4x16x16 VAE with 32 latent channels, patch 1; separate T2V and I2V checkpoints.
        Family("hunyuanvideo15", "4k+1", 121, 24, 4, "[B,32,F,h,w]", 16,
               {"HunyuanVideo15Pipeline": ("text",), "HunyuanVideo15ImageToVideoPipeline": ("first",)},
               steps=50, guidance=6.0,
               known_models=("hunyuanvideo-community/HunyuanVideo-1.5-480p_t2v",
                             "hunyuanvideo-community/HunyuanVideo-1.5-720p_t2v",
                             "hunyuanvideo-community/HunyuanVideo-1.5-480p_i2v",
                             "hunyuanvideo-community/HunyuanVideo-1.5-720p_i2v"),
               vram="HunyuanVideo 1.5 report: 8.3B parameters, for consumer GPUs with offload and VAE tiling"),
        Family("animatediff", "16", 16, 8, 1, "[B,C,F,h,w]", 8,
               {"AnimateDiffPipeline": ("text",)}, steps=25, guidance=7.5,
               known_models=("an SD 1.5 model plus `motion_adapter: guoyww/animatediff-motion-adapter-v1-5-2`",),
               vram="SD 1.5 class: runs in 8-12 GB at 512 px", decode_chunk_size=16),
    )
}


# Wan first-last-frame checkpoints load as WanImageToVideoPipeline too; only they take a last image, and they
# need one for every chunk.
_WAN_FLF2V = frozenset({"first", "last", "needs-last"})


def get_family(name: str) -> Family:
    return FAMILIES[name]


def local_model_dir(model: str, base_dir: Path) -> Path | None:
    """`model` as a local folder (absolute, or relative to the storyboard), or None for a hub id."""
    for candidate in (Path(model).expanduser(), base_dir / model):
        if candidate.is_dir():
            return candidate.resolve()
    return None


def looks_like_path(model: str) -> bool:
    return model.startswith((".", "/", "~")) or model.count("/") > 1 or os.sep in model.replace("/", "")


def model_problem(model: str, base_dir: Path) -> str | None:
    """Why `model` cannot be loaded, as far as can be told without downloading anything; None when it may be."""
    folder = local_model_dir(model, base_dir)
    if folder is not None:
        if not (folder / "model_index.json").is_file():
            return (f"{folder} is not a model in diffusers format (no model_index.json); convert it or give its "
                    f"hub id")
        return None
    if looks_like_path(model):
        return f"model folder not found: {model}"
    return None


def _config(model: str, base_dir: Path, name: str) -> dict | None:
    """A config file of `model` (``model_index.json``, ``transformer/config.json``) when it is on this machine."""
    folder = local_model_dir(model, base_dir)
    candidates = [folder / name] if folder else []
    if folder is None and "/" in model:  # a hub id: look in the local hub cache, never on the network
        hub = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache/huggingface")) / "hub")
        candidates = sorted((hub / f"models--{model.replace('/', '--')}" / "snapshots").glob(f"*/{name}"))
    for path in candidates:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return None


def pipeline_class(model: str, base_dir: Path) -> str | None:
    """The pipeline class a model declares in its model_index.json, when that file is on this machine."""
    return (_config(model, base_dir, "model_index.json") or {}).get("_class_name")


@dataclass(frozen=True)
class Checkpoint:
    """What one checkpoint of a family can do and needs.

    Args:
        abilities: what it can be conditioned on (see the module docstring).
        pipeline: the pipeline class this was read from (its model_index.json, or the known hub id); None: assumed.
        size_multiple: width and height must be multiples of it (the VAE's spatial scale times the patch size).
        native_fps: the rate it was trained at (None: any rate).
        experts: denoising transformers (Wan 2.2 A14B: 2, switched at ``boundary_ratio``).
    """

    abilities: frozenset[str]
    pipeline: str | None
    size_multiple: int
    native_fps: float | None
    experts: int = 1


# Published checkpoints, classified by their whole hub id when their configs are not on this machine:
# (pipeline class, abilities when not the pipeline's own, size multiple, native fps, experts); None: the family's.
KNOWN_CHECKPOINTS: dict[str, tuple[str, tuple[str, ...] | None, int | None, float | None, int]] = {
    "stabilityai/stable-video-diffusion-img2vid-xt": ("StableVideoDiffusionPipeline", None, None, None, 1),
    "stabilityai/stable-video-diffusion-img2vid": ("StableVideoDiffusionPipeline", None, None, None, 1),
    "THUDM/CogVideoX-2b": ("CogVideoXPipeline", None, None, None, 1),
    "THUDM/CogVideoX-5b": ("CogVideoXPipeline", None, None, None, 1),
    "THUDM/CogVideoX-5b-I2V": ("CogVideoXImageToVideoPipeline", None, None, None, 1),
    "Wan-AI/Wan2.1-T2V-1.3B-Diffusers": ("WanPipeline", None, None, None, 1),
    "Wan-AI/Wan2.1-T2V-14B-Diffusers": ("WanPipeline", None, None, None, 1),
    "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers": ("WanImageToVideoPipeline", None, None, None, 1),
    "Wan-AI/Wan2.1-I2V-14B-720P-Diffusers": ("WanImageToVideoPipeline", None, None, None, 1),
    "Wan-AI/Wan2.1-FLF2V-14B-720P-Diffusers": ("WanImageToVideoPipeline", ("first", "last", "needs-last"), None, None, 1),
    "Wan-AI/Wan2.1-VACE-1.3B-diffusers": ("WanVACEPipeline", None, None, None, 1),
    "Wan-AI/Wan2.1-VACE-14B-diffusers": ("WanVACEPipeline", None, None, None, 1),
    "Wan-AI/Wan2.2-T2V-A14B-Diffusers": ("WanPipeline", None, None, 16, 2),
    "Wan-AI/Wan2.2-I2V-A14B-Diffusers": ("WanImageToVideoPipeline", None, None, 16, 2),
    "Wan-AI/Wan2.2-TI2V-5B-Diffusers": ("WanPipeline", ("text", "first"), 32, 24, 1),
    "Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers": ("SkyReelsV2DiffusionForcingPipeline", None, None, None, 1),
    "Skywork/SkyReels-V2-DF-14B-540P-Diffusers": ("SkyReelsV2DiffusionForcingPipeline", None, None, None, 1),
    "Skywork/SkyReels-V2-DF-14B-720P-Diffusers": ("SkyReelsV2DiffusionForcingPipeline", None, None, None, 1),
    "Skywork/SkyReels-V2-T2V-14B-540P-Diffusers": ("SkyReelsV2Pipeline", None, None, None, 1),
    "Skywork/SkyReels-V2-I2V-1.3B-540P-Diffusers": ("SkyReelsV2ImageToVideoPipeline", None, None, None, 1),
    "Skywork/SkyReels-V2-I2V-14B-540P-Diffusers": ("SkyReelsV2ImageToVideoPipeline", None, None, None, 1),
    "hunyuanvideo-community/HunyuanVideo-1.5-480p_t2v": ("HunyuanVideo15Pipeline", None, None, None, 1),
    "hunyuanvideo-community/HunyuanVideo-1.5-720p_t2v": ("HunyuanVideo15Pipeline", None, None, None, 1),
    "hunyuanvideo-community/HunyuanVideo-1.5-480p_i2v": ("HunyuanVideo15ImageToVideoPipeline", None, None, None, 1),
    "hunyuanvideo-community/HunyuanVideo-1.5-720p_i2v": ("HunyuanVideo15ImageToVideoPipeline", None, None, None, 1),
    "Lightricks/LTX-2": ("LTX2Pipeline", None, None, None, 1),
    "Lightricks/LTX-Video": ("LTXPipeline", None, None, None, 1),
    "Lightricks/LTX-Video-0.9.5": ("LTXConditionPipeline", None, None, None, 1),
    "Lightricks/LTX-Video-0.9.7-dev": ("LTXConditionPipeline", None, None, None, 1),
}
# Name tokens of an unknown hub id that say what it takes (whole tokens: "TI2V" is not "I2V").
_IMAGE_TOKENS = {"I2V", "IMG2VID", "IMAGE2VIDEO"}


def checkpoint(family: Family, model: str | None, base_dir: Path) -> Checkpoint:
    """What this checkpoint can do: from its own configs when they are on this machine (the model folder, or the
    local hub cache), else from its whole hub id (`KNOWN_CHECKPOINTS`, then the id's name tokens); the worker checks
    again when it loads the model."""
    if family.name == "preview" or model is None:
        return Checkpoint(family.abilities, None, family.size_multiple, family.native_fps)
    index = _config(model, base_dir, "model_index.json")
    if index and index.get("_class_name") in family.pipelines:
        return _from_configs(family, model, base_dir, index)
    if model in KNOWN_CHECKPOINTS:
        cls, abilities, multiple, fps, experts = KNOWN_CHECKPOINTS[model]
        return Checkpoint(frozenset(abilities or family.pipelines[cls]), cls, multiple or family.size_multiple,
                          fps or family.native_fps, experts)
    if len(family.pipelines) == 1:
        return Checkpoint(family.abilities, None, family.size_multiple, family.native_fps)
    tokens = set(re.split(r"[-_/.]", model.upper()))
    if family.name == "skyreels" and "DF" in tokens:
        return Checkpoint(frozenset(_SKYREELS_DF), None, family.size_multiple, family.native_fps)
    if family.name == "wan" and tokens & {"FLF2V", "VACE", "TI2V"}:
        abilities = _WAN_FLF2V if "FLF2V" in tokens else frozenset(_WAN_VACE) if "VACE" in tokens else \
            frozenset({"text", "first"})
        return Checkpoint(abilities, None, family.size_multiple, family.native_fps)
    image = bool(tokens & _IMAGE_TOKENS)
    pick = next((c for c, a in family.pipelines.items() if ("first" in a) == image), next(iter(family.pipelines)))
    return Checkpoint(frozenset(family.pipelines[pick]), None, family.size_multiple, family.native_fps)


def _from_configs(family: Family, model: str, base_dir: Path, index: dict) -> Checkpoint:
    cls = index["_class_name"]
    abilities = frozenset(family.pipelines[cls])
    transformer = _config(model, base_dir, "transformer/config.json") or {}
    vae = _config(model, base_dir, "vae/config.json") or {}
    if cls == "WanImageToVideoPipeline" and transformer.get("pos_embed_seq_len"):
        abilities = _WAN_FLF2V  # its image embedding is sized for two images
    if cls == "WanPipeline" and index.get("expand_timesteps"):
        abilities = frozenset({"text", "first"})  # Wan 2.2 TI2V: text, or an image through the I2V pipeline
    # the size multiple: the VAE's spatial scale times the transformer's spatial patch
    spatial = vae.get("scale_factor_spatial") or vae.get("spatial_compression_ratio")
    patch = transformer.get("patch_size")
    patch = patch[-1] if isinstance(patch, list) else patch
    multiple = spatial * patch if spatial and patch else family.size_multiple
    # Wan 2.2's 48-channel VAE (TI2V-5B) was trained at 24 fps; the others of the family at the family's rate
    fps = 24.0 if family.name == "wan" and vae.get("z_dim") == 48 else family.native_fps
    experts = 2 if index.get("transformer_2", [None])[0] and index.get("boundary_ratio") is not None else 1
    return Checkpoint(abilities, cls, multiple, fps, experts)


# ------------------------------------------------------------------------------------------------ keyframe models

# How a keyframe model's pipeline takes the references of the characters and places a keyframe shows:
#   ``ip-adapter``: through an IP-Adapter (``models.keyframes.ip_adapter``), several images at once;
#   ``edit``: an image-edit model that takes one image with the prompt (several references are set side by side);
#   ``edit-list``: a multi-reference model that takes a list of images with the prompt;
#   ``text``: text alone (identity rests on the descriptions).
KEYFRAME_PIPELINES: dict[str, str] = {
    "StableDiffusionPipeline": "ip-adapter",
    "StableDiffusionXLPipeline": "ip-adapter",
    "StableDiffusion3Pipeline": "ip-adapter",
    "FluxPipeline": "ip-adapter",
    "FluxKontextPipeline": "edit",
    "Flux2Pipeline": "edit-list",
    "QwenImageEditPlusPipeline": "edit-list",
}
# Hub ids known to work, as keyframe models, and the whole name that says which kind (never a substring of it).
KEYFRAME_MODELS: dict[str, str] = {
    "stabilityai/stable-diffusion-xl-base-1.0": "StableDiffusionXLPipeline",
    "stable-diffusion-v1-5/stable-diffusion-v1-5": "StableDiffusionPipeline",
    "stabilityai/stable-diffusion-3.5-medium": "StableDiffusion3Pipeline",
    "black-forest-labs/FLUX.1-dev": "FluxPipeline",
    "black-forest-labs/FLUX.1-schnell": "FluxPipeline",
    "black-forest-labs/FLUX.1-Kontext-dev": "FluxKontextPipeline",
    "black-forest-labs/FLUX.2-dev": "Flux2Pipeline",
    "Qwen/Qwen-Image-Edit-2509": "QwenImageEditPlusPipeline",
}


def keyframe_conditioning(model: str | None, base_dir: Path, ip_adapter: bool) -> tuple[str, str | None]:
    """How the keyframe model takes references (see `KEYFRAME_PIPELINES`; ``preview`` without a model), and the
    pipeline class that says so (None: not known here, so text alone is assumed)."""
    if model is None:
        return "preview", None
    cls = pipeline_class(model, base_dir) or KEYFRAME_MODELS.get(model)
    way = KEYFRAME_PIPELINES.get(cls or "", "text")
    if way == "ip-adapter" and not ip_adapter:
        way = "text"
    return way, cls
