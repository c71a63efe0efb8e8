"""Draft, then refine: a draft chunk's frames upscaled to the storyboard's size and re-denoised there.

The draft (chunks at 1/scale of the size, `models.refine`) fixes layout and motion cheaply; the refine pass keeps
them and repairs detail at full size, SDEdit-style: the upscaled frames are noised to `strength` and denoised by
the family's video-to-video pipeline (Wan, CogVideoX), built from the loaded model's modules (`from_pipe`, no second
copy). LTX instead doubles the draft's latents with its latent upsampler and re-denoises them from `strength` with
its condition pipeline. A
refine task reads only its draft chunk's frames, so changing the refine settings re-runs the refine tasks and
what reads them, never the draft.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from longvid.families import get_family
from longvid.stages.base import Output, StageSpec
from longvid.stages.pipelines import cpu_generator, derived, ran, settings_for, to_pil, to_uint8
from longvid.stages.video import LOW_MEMORY, _hold, _sibling
from longvid.storyboard.schema import REFINERS
from longvid.tasks import RefineParams, Task
from longvid.timing import FrameRule


def upscaled(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.LANCZOS))


class Refine:
    spec = StageSpec(name="refine", kind="refine", code_version="1", params=RefineParams,
                     inputs=("chunk", "decode"), output="frames", resources={"gpus": 1},
                     low_memory={"low_memory": LOW_MEMORY})

    def __call__(self, task: Task, inputs: Mapping[str, Any]) -> Output:
        p: RefineParams = task.params
        settings = settings_for(p)
        family = get_family(settings["family"])
        draft = inputs[p.source]
        if len(draft) != p.frames:
            raise RuntimeError(f"{p.source} has {len(draft)} frames, {p.frames} were expected")
        _hold(settings)  # loaded (or kept): the pipelines below are built from its modules
        # a legal frame count for the model: the last frame repeated, cut off again after
        legal = FrameRule.parse(family.frame_rule).at_least(len(draft))
        frames = [*draft, *[draft[-1]] * (legal - len(draft))]
        if family.name == "ltx":
            pipe, kwargs = _sibling("LTXConditionPipeline"), {"latents": _upsampled(p, frames, task.seed),
                                                             "denoise_strength": p.strength, "num_frames": legal,
                                                             "frame_rate": p.fps}
        else:
            pipe = _sibling(REFINERS[family.name])
            kwargs = {"video": [to_pil(upscaled(f, p.width, p.height)) for f in frames], "strength": p.strength}
        kwargs |= {"prompt": p.prompt, "negative_prompt": p.negative_prompt or None, "height": p.height,
                   "width": p.width, "guidance_scale": settings["guidance"], "generator": cpu_generator(task.seed),
                   "output_type": "np",
                   # the pipeline runs int(steps * strength) of its steps: at least one, whatever the settings
                   "num_inference_steps": max(settings["steps"], math.ceil(1 / p.strength))}
        if family.name == "cogvideox":
            kwargs["max_sequence_length"] = pipe.transformer.config.max_text_seq_length
        takes = inspect.signature(type(pipe).__call__).parameters
        call = {k: v for k, v in kwargs.items() if k in takes}
        out = to_uint8(pipe(**call).frames[0])[:p.frames]
        if out.shape != (p.frames, p.height, p.width, 3):
            raise RuntimeError(f"{type(pipe).__name__} returned {out.shape}, expected ({p.frames}, {p.height}, "
                               f"{p.width}, 3)")
        return Output(out, {"ran": ran(pipe, call)})


def _upsampled(p: RefineParams, frames: list[np.ndarray], seed: int):
    """LTX: the draft's latents, doubled on each side by its latent upsampler (loaded once, kept with the model)."""
    def make(pipe):
        from diffusers import LTXLatentUpsamplePipeline
        from diffusers.pipelines.ltx.modeling_latent_upsampler import LTXLatentUpsamplerModel

        path = Path(p.upsampler_path)
        # a folder of the upsampler alone, or of its pipeline (hub repos ship it so)
        sub = {"subfolder": "latent_upsampler"} if (path / "latent_upsampler").is_dir() or not path.exists() \
            else {}
        model = LTXLatentUpsamplerModel.from_pretrained(p.upsampler_path, dtype=pipe.transformer.dtype, **sub)
        return LTXLatentUpsamplePipeline(vae=pipe.vae, latent_upsampler=model.to(pipe._execution_device))

    upsample = derived(f"upsampler:{p.upsampler_path}", make)
    height, width = frames[0].shape[:2]
    return upsample(video=[to_pil(f) for f in frames], height=height, width=width, generator=cpu_generator(seed),
                    output_type="latent").frames


class PreviewRefine:
    """The preview's refine pass: its draft frames upscaled, nothing re-denoised (it has no model). Not stored:
    upscaling costs less than reading back, and a reader asks only for the frames it needs (`window`)."""

    spec = StageSpec(name="preview.refine", kind="refine", code_version="1", params=RefineParams, inputs=("chunk",),
                     output="frames", cache=False)

    def __call__(self, task: Task, inputs: Any) -> np.ndarray:
        return np.stack(self.window(task, inputs, 0, task.params.frames))

    def window(self, task: Task, inputs: Any, lo: int, hi: int) -> list[np.ndarray]:
        p: RefineParams = task.params
        return [upscaled(f, p.width, p.height) for f in inputs.frames(p.source, lo, hi)]
