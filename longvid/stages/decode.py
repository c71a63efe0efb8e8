"""Latents into frames: a video model's VAE alone, on whichever device runs the task.

A chunk of a family with a decoder here (Wan and its checkpoints, CogVideoX) stores its final latents
(`cache.Latents`, as the pipeline returns them with ``output_type="latent"``); a ``decode`` task turns them into
frames. Decoding is where long renders run out of memory: as its own task, an out-of-memory failure retries the
decode alone, with tiling and slicing, and the sampling is never redone. Tiling, slicing and the dtype are the
task's parameters, so frames decoded with tiling never share a key with frames decoded without.

Under latent-blend the chunk task stores the shot's whole latent timeline and one decode turns it into the shot's
frames: both VAEs are causal and decode a latent frame (Wan) or two (CogVideoX) at a time with a cache of the
previous ones, so the timeline is decoded in temporal tiles by construction, and frames that neighbouring chunks
share come out once, identical for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from longvid.families import LATENT_DECODERS as DECODERS
from longvid.stages.base import Output, StageSpec
from longvid.stages.pipelines import held_vae, to_uint8
from longvid.tasks import DecodeParams, Task

LOW_MEMORY = {"tiling": True, "slicing": True}


def retimed(frames: np.ndarray, used: int) -> np.ndarray:
    """A first-last-frame chunk's frames retimed onto its first `used` (nearest frame, both ends exact): its last
    image is its last generated frame, which must land on the last frame the shot keeps."""
    count = len(frames)
    picks = np.rint(np.arange(count) * (count - 1) / max(used - 1, 1)).astype(int)
    return frames[np.minimum(picks, count - 1)]


class Decode:
    spec = StageSpec(name="decode", kind="decode", code_version="1", params=DecodeParams, inputs=("chunk",),
                     output="frames", resources={"gpus": 1}, low_memory=LOW_MEMORY)

    def __call__(self, task: Task, inputs: Mapping[str, Any]) -> Output:
        import torch

        p: DecodeParams = task.params
        if p.family not in DECODERS:
            raise ValueError(f"no decoder for the {p.family} family here; its chunks decode themselves")
        stored = inputs.latents(p.latents)
        from diffusers.utils.torch_utils import get_module_execution_device
        from diffusers.video_processor import VideoProcessor

        vae = held_vae(p.path, p.dtype)
        latents = torch.from_numpy(np.ascontiguousarray(stored.array))
        latents = latents.to(get_module_execution_device(vae), vae.dtype)
        axis = 2 if p.family == "wan" else 1
        latents = latents.narrow(axis, stored.meta.get("drop", 0), latents.shape[axis] - stored.meta.get("drop", 0))
        # the VAE may be the held pipeline's, whose own settings (it encodes images too) come back afterwards
        was = {name: getattr(vae, name, False) for name in ("use_tiling", "use_slicing")}
        try:
            vae.use_tiling, vae.use_slicing = p.tiling, p.slicing
            facts = {"ran": {"vae_tiling": bool(vae.use_tiling), "vae_slicing": bool(vae.use_slicing)}}
            with torch.no_grad():
                video = (_wan if p.family == "wan" else _cogvideox)(vae, latents)
        finally:
            for name, value in was.items():
                setattr(vae, name, value)
        frames = to_uint8(VideoProcessor(vae_scale_factor=8).postprocess_video(video.float(), output_type="np")[0])
        if stored.meta.get("retime_to"):
            frames = retimed(frames, stored.meta["retime_to"])
        frames = frames[:p.frames]
        if frames.shape != (p.frames, p.height, p.width, 3):
            raise RuntimeError(f"decoding {p.latents} gave {frames.shape}, expected ({p.frames}, {p.height}, "
                               f"{p.width}, 3)")
        return Output(frames, facts)


def _wan(vae, latents):
    """Wan's (and SkyReels') latents are normalised per channel: undone, then decoded."""
    import torch

    z = vae.config.z_dim
    mean = torch.tensor(vae.config.latents_mean).view(1, z, 1, 1, 1).to(latents.device, latents.dtype)
    std = torch.tensor(vae.config.latents_std).view(1, z, 1, 1, 1).to(latents.device, latents.dtype)
    return vae.decode(latents * std + mean, return_dict=False)[0]


def _cogvideox(vae, latents):
    """CogVideoX's latents are ``[B, F, C, h, w]``, scaled by the VAE's factor."""
    return vae.decode(latents.permute(0, 2, 1, 3, 4) / vae.config.scaling_factor).sample
