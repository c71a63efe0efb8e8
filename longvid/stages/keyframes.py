"""Keyframes and references from an image model through diffusers.

How a keyframe model takes the references of the characters and places a keyframe shows is declared as data
(`families.KEYFRAME_PIPELINES`): an IP-Adapter (SD 1.5, SDXL, SD3, Flux) takes them as image prompts; an image-edit
model (FLUX.1 Kontext) takes one image with the prompt, so several are set side by side; a multi-reference model
(FLUX.2, Qwen-Image-Edit-Plus) takes the list. A later keyframe of a shot starts from the shot's first keyframe, so
it shows the same scene at a later moment: edit models take it as their first image; the others redraw it with the
new prompt (image-to-image at `CONTINUE_STRENGTH`). A character's LoRA is weighed in only for the keyframes it
appears in.

A keyframe that names a user image is that image, fitted to the video's size; no model is loaded for it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np

from longvid.families import KEYFRAME_PIPELINES
from longvid.stages.base import Output, StageSpec
from longvid.stages.pipelines import (
    activate,
    cpu_generator,
    derived,
    hold,
    ran,
    settings_for,
    to_pil,
    to_uint8,
)
from longvid.stages.preview import fit_image, fit_square
from longvid.tasks import KeyframeParams, ReferenceParams, Task

LOW_MEMORY = {"vae_tiling": True, "vae_slicing": True, "offload": "model"}
CONTINUE_STRENGTH = 0.65  # how much of the first keyframe a later one redraws (1: all of it)


def _load(path: str, dtype):
    from diffusers import DiffusionPipeline

    return DiffusionPipeline.from_pretrained(path, dtype=dtype)


def _generate(pipe: Any, settings: Mapping[str, Any], prompt: str, negative: str, width: int, height: int,
              seed: int, images: list[np.ndarray], opening: np.ndarray | None = None) -> np.ndarray:
    """One image from `prompt`, conditioned on `images` the way the pipeline takes them, and continuing `opening`."""
    way = KEYFRAME_PIPELINES.get(type(pipe).__name__, "text")
    if opening is not None and way in ("edit", "edit-list"):
        images = [opening, *images]
    elif opening is not None:
        pipe = derived("image-to-image", _image_to_image)
        extra = {"image": to_pil(opening), "strength": CONTINUE_STRENGTH}
    kwargs: dict[str, Any] = {"prompt": prompt, "negative_prompt": negative or None, "height": height, "width": width,
                              "num_inference_steps": settings["steps"], "guidance_scale": settings["guidance"],
                              "generator": cpu_generator(seed), "output_type": "np"}
    if way == "ip-adapter" and settings.get("ip_adapter"):
        # every call needs an image prompt once an adapter is loaded: without references, a grey one at scale 0
        kwargs["ip_adapter_image"] = [[to_pil(i) for i in images] or [to_pil(np.full((64, 64, 3), 128, np.uint8))]]
        pipe.set_ip_adapter_scale(settings["ip_adapter"]["scale"] if images else 0.0)
    elif way == "edit":  # Kontext: the area asked for, not its default megapixel; the image as it is given
        kwargs["max_area"] = width * height
        if images:
            kwargs |= {"image": to_pil(_side_by_side(images, width, height)), "_auto_resize": False}
    elif way == "edit-list" and images:
        kwargs["image"] = [to_pil(i) for i in images]
    if opening is not None and way not in ("edit", "edit-list"):
        kwargs |= extra
    takes = inspect.signature(type(pipe).__call__).parameters
    out = pipe(**{k: v for k, v in kwargs.items() if k in takes and v is not None})
    image = to_uint8(out.images[0])
    if image.shape != (height, width, 3):
        raise RuntimeError(f"the image model returned {image.shape}, expected ({height}, {width}, 3)")
    return image


def _image_to_image(pipe: Any) -> Any:
    from diffusers import AutoPipelineForImage2Image

    derived_pipe = AutoPipelineForImage2Image.from_pipe(pipe)
    derived_pipe.set_progress_bar_config(disable=True)
    return derived_pipe


def _side_by_side(images: list[np.ndarray], width: int, height: int) -> np.ndarray:
    """Images in a row, each scaled to the same height, the row scaled to the keyframe's area (multiples of 16)."""
    from PIL import Image

    row = [Image.fromarray(i) for i in images]
    tall = max(i.height for i in row)
    row = [i.resize((max(1, round(i.width * tall / i.height)), tall)) for i in row]
    canvas = Image.new("RGB", (sum(i.width for i in row), tall))
    x = 0
    for image in row:
        canvas.paste(image, (x, 0))
        x += image.width
    scale = (width * height / (canvas.width * canvas.height)) ** 0.5
    size = (max(16, round(canvas.width * scale / 16) * 16), max(16, round(canvas.height * scale / 16) * 16))
    return np.asarray(canvas.resize(size))


class DiffusersKeyframe:
    spec = StageSpec(name="diffusers.keyframe", kind="keyframe", code_version="2", params=KeyframeParams,
                     inputs=("reference", "keyframe"), output="image", resources={"gpus": 1}, low_memory={"low_memory": LOW_MEMORY})

    def __call__(self, task: Task, inputs: Mapping[str, Any]) -> np.ndarray | Output:
        # 1. check inputs
        p: KeyframeParams = task.params
        if p.image:
            return fit_image(p.image.path, p.width, p.height)
        settings = settings_for(p)

        # 2. prepare conditioning: every image of every reference, and the shot's first keyframe
        images = [image for r in p.references for image in inputs[r]]
        opening = inputs[p.opening] if p.opening else None

        # 3. load the pipeline (kept while tasks for it remain), with the LoRAs of who is in this keyframe
        pipe = hold(settings, _load)
        activate(pipe, settings, [lora.name for lora in p.loras])

        # 4. generate, from noise drawn on the CPU
        image = _generate(pipe, settings, p.prompt, p.negative_prompt, p.width, p.height, task.seed, images, opening)
        return Output(image, {"ran": ran(pipe, {})})


class DiffusersReference:
    """A character's or place's reference: the user's images, or one generated once with the keyframe model."""

    spec = StageSpec(name="diffusers.reference", kind="reference", code_version="1", params=ReferenceParams,
                     output="frames", resources={"gpus": 1}, low_memory={"low_memory": LOW_MEMORY})

    def __call__(self, task: Task, inputs: Mapping[str, Any]) -> np.ndarray | Output:
        p: ReferenceParams = task.params
        if p.images:
            return np.stack([fit_square(image.path, p.size) for image in p.images])
        settings = settings_for(p)
        pipe = hold(settings, _load)
        activate(pipe, settings, [])
        return Output(_generate(pipe, settings, p.prompt, "", p.size, p.size, task.seed, [])[None],
                      {"ran": ran(pipe, {})})
