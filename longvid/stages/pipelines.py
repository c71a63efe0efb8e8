"""Diffusers pipelines inside a worker: loaded once, configured from the storyboard, released on a switch.

A worker holds one pipeline at a time. A task that needs another model (or the same model with other settings,
such as the low-memory retry) releases the held one first, so two large models never share a device.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from longvid._imports import require
from longvid.errors import ModelLoadError

Loader = Callable[[str, Any], Any]  # (model path or hub id, torch dtype) -> pipeline

_held: dict[str, Any] = {"key": None, "pipe": None, "derived": {}, "settings": {}, "vae": None, "offload": "none"}


def device() -> str:
    """The worker's device: ``LONGVID_DEVICE`` (set by the executor), else CUDA when present, else the CPU."""
    torch = require("torch", extra="diffusers", feature="diffusers models")
    return os.environ.get("LONGVID_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")


def torch_dtype(name: str, where: str):
    import torch

    if name == "auto":
        return torch.bfloat16 if where.startswith("cuda") else torch.float32
    return getattr(torch, name)


def hold(settings: Mapping[str, Any], load: Loader) -> Any:
    """The pipeline for `settings` (``pipeline`` task params, plus ``low_memory`` ones), loading it if needed."""
    key = json.dumps(settings, sort_keys=True, default=str)
    if _held["key"] == key:
        return _held["pipe"]
    release()
    require("diffusers", extra="diffusers", feature="diffusers models")
    import diffusers
    import transformers

    # longvid shows its own progress; loading bars from every worker would bury it
    diffusers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    where = device()
    path = settings["_path"]
    try:
        pipe = load(path, torch_dtype(settings["dtype"], where))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load {path!r}: {exc}. Is it a hub id this machine can reach (set HF_TOKEN "
                             f"for gated models) or a folder in diffusers format?") from exc
    offload = configure(pipe, settings, where)
    _held.update(key=key, pipe=pipe, derived={}, settings=dict(settings), offload=offload)
    return pipe


def ran(pipe: Any, call: Mapping[str, Any]) -> dict[str, Any]:
    """The memory settings a task really ran with, read back from the held pipeline and its call: where the
    weights were, the VAE's tiling and slicing, the frames decoded at once (None: the pipeline's default)."""
    vae = getattr(pipe, "vae", None)
    return {"offload": _held.get("offload", "none"), "vae_tiling": bool(getattr(vae, "use_tiling", False)),
            "vae_slicing": bool(getattr(vae, "use_slicing", False)),
            "decode_chunk_size": call.get("decode_chunk_size")}


def held_vae(path: str, dtype: str) -> Any:
    """The VAE of the model at `path`: the held pipeline's when it is that model in that dtype (a worker that
    just sampled a chunk decodes it without loading anything), else loaded alone and kept for the next decode."""
    held = _held["settings"]
    if _held["pipe"] is not None and held.get("_path") == path and held.get("dtype") == dtype:
        return _held["pipe"].vae
    if _held["vae"] is not None and _held["vae"][0] == (path, dtype):
        return _held["vae"][1]
    require("diffusers", extra="diffusers", feature="diffusers models")
    from diffusers import AutoModel

    where = device()
    try:
        vae = AutoModel.from_pretrained(path, subfolder="vae", dtype=torch_dtype(dtype, where))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the VAE of {path!r}: {exc}") from exc
    _held["vae"] = ((path, dtype), vae.to(where))
    return vae


def derived(name: str, make: Callable[[Any], Any]) -> Any:
    """A pipeline built from the held one's modules (e.g. with ``from_pipe``), kept with it and released with it."""
    if name not in _held["derived"]:
        _held["derived"][name] = make(_held["pipe"])
    return _held["derived"][name]


def release() -> None:
    """Drop the held pipeline and give its memory back to the device."""
    if _held["pipe"] is None and _held["vae"] is None:
        return
    _held.update(key=None, pipe=None, derived={}, settings={}, vae=None, offload="none")
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def configure(pipe: Any, s: Mapping[str, Any], where: str) -> str:
    """Scheduler, LoRAs (the storyboard's and its characters' and places'), the IP-Adapter, attention, VAE memory
    settings and placement, in that order. Returns the offload applied (on the CPU there is nowhere to offload to:
    none)."""
    import diffusers

    if s.get("scheduler"):
        cls = getattr(diffusers, s["scheduler"]["name"], None)
        if cls is None or not hasattr(cls, "from_config") or "Scheduler" not in cls.__name__:
            raise ModelLoadError(f"scheduler {s['scheduler']['name']!r} is not a diffusers scheduler class")
        pipe.scheduler = cls.from_config(pipe.scheduler.config, **s["scheduler"]["config"])
    if s.get("loras") or s.get("_entity_loras"):
        require("peft", extra="diffusers", feature="LoRAs")
        for name, lora in adapters(s):
            kwargs = {"weight_name": lora["weight_name"]} if lora.get("weight_name") else {}
            pipe.load_lora_weights(lora["_path"] if "_path" in lora else lora["path"], adapter_name=name, **kwargs)
        activate(pipe, s, [])
    if s.get("ip_adapter"):
        load_ip_adapter(pipe, s["ip_adapter"])
    if s.get("attention") == "xformers":
        if not where.startswith("cuda"):
            raise ModelLoadError("attention: xformers needs a CUDA device; use sdpa (the default) here")
        require("xformers", extra="xformers", feature="attention: xformers")
        pipe.enable_xformers_memory_efficient_attention()
    vae = getattr(pipe, "vae", None)
    if s.get("vae_tiling") and hasattr(vae, "enable_tiling"):
        vae.enable_tiling()
    if s.get("vae_slicing") and hasattr(vae, "enable_slicing"):
        vae.enable_slicing()
    offload = s.get("offload") or s.get("_offload", "none")  # the low-memory retry's, else the plan's
    if offload != "none" and where.startswith("cuda"):  # on the CPU there is nowhere to offload to
        (pipe.enable_model_cpu_offload if offload == "model" else pipe.enable_sequential_cpu_offload)(device=where)
    else:
        pipe.to(where)
        offload = "none"
    pipe.set_progress_bar_config(disable=True)
    return offload


def adapters(s: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """The LoRAs of pipeline settings by adapter name: the storyboard's, then every character's and place's."""
    return [(f"lora{i}", lora) for i, lora in enumerate(s.get("loras") or [])] + \
        [(f"entity_{lora['name']}", lora) for lora in s.get("_entity_loras") or []]


def activate(pipe: Any, s: Mapping[str, Any], entities: list[str]) -> None:
    """Weigh the storyboard's LoRAs as set, the LoRAs of `entities` as set, every other entity's LoRA at 0."""
    named = adapters(s)
    if named:
        pipe.set_adapters([name for name, _ in named],
                          [lora["weight"] if name.startswith("lora") or lora["name"] in entities else 0.0
                           for name, lora in named])


def load_ip_adapter(pipe: Any, adapter: Mapping[str, Any]) -> None:
    """Load an IP-Adapter as its pipeline family's loader wants it (SD and SDXL, SD3 and Flux name things apart)."""
    import inspect

    if not hasattr(pipe, "load_ip_adapter"):
        raise ModelLoadError(f"{type(pipe).__name__} takes no IP-Adapter: models.keyframes.ip_adapter needs SD 1.5, "
                             f"SDXL, SD3 or Flux")
    takes = inspect.signature(pipe.load_ip_adapter).parameters
    kwargs: dict[str, Any] = {"weight_name": adapter["weight_name"]}
    if "subfolder" in takes:
        kwargs["subfolder"] = adapter["subfolder"]
    encoder = adapter.get("image_encoder")
    if "image_encoder_folder" in takes:
        kwargs["image_encoder_folder"] = encoder or "image_encoder"
    elif encoder and "image_encoder_pretrained_model_name_or_path" in takes:
        kwargs["image_encoder_pretrained_model_name_or_path"] = encoder
    try:
        pipe.load_ip_adapter(adapter["_path"], **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"cannot load the IP-Adapter {adapter['model']!r} ({adapter['weight_name']}): {exc}") from exc
    pipe.set_ip_adapter_scale(adapter["scale"])


def settings_for(params: Any) -> dict[str, Any]:
    """A task's pipeline settings (``_path`` and all) with its low-memory overrides (set by the executor's
    out-of-memory retry)."""
    return params.pipeline.model_dump(mode="json", by_alias=True) | dict(params.low_memory)


def cpu_generator(seed: int):
    """Noise is drawn on the CPU from the task's seed, so a chunk is the same on any device."""
    import torch

    return torch.Generator("cpu").manual_seed(seed % 2**63)


def cpu_noise(shape: tuple[int, ...], seed: int):
    import torch

    return torch.randn(shape, generator=cpu_generator(seed), dtype=torch.float32)


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Pipeline output in [0, 1] (``output_type="np"``) as uint8."""
    return np.clip(np.rint(np.asarray(frames, dtype=np.float32) * 255), 0, 255).astype(np.uint8)


def to_pil(image: np.ndarray):
    from PIL import Image

    return Image.fromarray(image)
