"""Keyframes from a text-to-image model through diffusers (``AutoPipelineForText2Image``: SD, SDXL, SD3, FLUX).

A keyframe that names a user image is that image, fitted to the video's size; no model is loaded for it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from longvid.stages.base import StageSpec
from longvid.stages.pipelines import cpu_generator, hold, settings_for, to_uint8
from longvid.stages.preview import fit_image
from longvid.tasks import KeyframeParams, Task

LOW_MEMORY = {"vae_tiling": True, "vae_slicing": True, "offload": "model"}


def _load(path: str, dtype):
    from diffusers import AutoPipelineForText2Image

    return AutoPipelineForText2Image.from_pretrained(path, dtype=dtype)


class DiffusersKeyframe:
    spec = StageSpec(name="diffusers.keyframe", kind="keyframe", code_version="1", params=KeyframeParams,
                     output="image", resources={"gpus": 1}, low_memory=LOW_MEMORY)

    def __call__(self, task: Task, inputs: Mapping[str, object]) -> np.ndarray:
        # 1. check inputs
        p: KeyframeParams = task.params
        if p.image:
            return fit_image(p.image.path, p.width, p.height)
        settings = settings_for(p)

        # 2. load the pipeline (kept while tasks for it remain)
        pipe = hold(settings, _load)

        # 3. generate, from noise drawn on the CPU
        out = pipe(prompt=p.prompt, negative_prompt=p.negative_prompt or None, height=p.height, width=p.width,
                   num_inference_steps=settings["steps"], guidance_scale=settings["guidance"],
                   generator=cpu_generator(task.seed), output_type="np")
        image = to_uint8(out.images[0])
        if image.shape != (p.height, p.width, 3):
            raise RuntimeError(f"the image model returned {image.shape}, expected ({p.height}, {p.width}, 3)")
        return image
