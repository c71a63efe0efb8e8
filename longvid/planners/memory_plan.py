"""Step 6 of compiling: every model task's peak device memory, estimated from its checkpoint's configs, and with
``offload: auto`` (the default) the cheapest settings that make it fit the device.

The device's size comes from ``--device-memory`` or from the CUDA devices a render is given; without one, tasks keep
their storyboard's settings and are only estimated. Offload changes no pixel and stays out of the keys; VAE tiling
does change them, so a decode planned with tiling has its own key (`longvid.memory` has the model of a task).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from longvid.families import LATENT_DECODERS
from longvid.memory import Choice, Estimate, ModelConfigs, choose, estimate
from longvid.storyboard import StoryboardSpec
from longvid.tasks import DecodeParams, Task


@dataclass(frozen=True)
class TaskMemory:
    """One task's estimate; `choice` when `offload: auto` picked its settings for a known device."""

    task: str
    kind: str  # as `memory.estimate` names it: chunk, sample, decode, keyframe
    estimate: Estimate
    choice: Choice | None = None


def plan_memory(spec: StoryboardSpec, tasks: list[Task], device_bytes: int | None, notes: list[str]
                ) -> tuple[list[Task], list[TaskMemory]]:
    """The tasks, with `offload: auto` resolved where the device's size is known, and every model task's estimate.

    A model whose configs are not on this machine (a hub id not yet downloaded) is not estimated: a note says so.
    """
    configs: dict[str, ModelConfigs | None] = {}
    memo: dict[tuple, Any] = {}
    out, rows, unknown = [], [], set()
    for task in tasks:
        what = _what(spec, task)
        if what is None:
            out.append(task)
            continue
        kind, path, family, settings, auto = what
        if path not in configs:
            configs[path] = ModelConfigs.locate(path, spec.base_dir, family)
        found = configs[path]
        if found is not None and kind == "decode":  # a decode task loads the VAE alone
            found = dataclasses.replace(found, components={k: v for k, v in found.components.items() if k == "vae"})
        if found is None:
            unknown.add(task.model or path)
            out.append(task)
            continue
        p = task.params
        frames = getattr(p, "frames", 1)
        dtype = settings.pop("dtype")
        size = (kind, path, p.width, p.height, frames, dtype, tuple(sorted(settings.items())), auto, device_bytes)
        if size not in memo:
            if auto and device_bytes:
                chosen = choose(found, kind, p.width, p.height, frames, dtype, device_bytes,
                                guidance=settings["guidance"] > 1)
                memo[size] = (chosen.estimate, chosen)
            else:
                memo[size] = (estimate(found, kind, p.width, p.height, frames, dtype, settings), None)
        est, chosen = memo[size]
        rows.append(TaskMemory(task.id, kind, est, chosen))
        out.append(_applied(task, kind, chosen) if chosen else task)
    if unknown:
        notes.append(f"memory not estimated for {', '.join(sorted(unknown))}: the configs are not on this machine")
    tight = [r.task for r in rows if r.choice and not r.choice.fits]
    if tight:
        notes.append(f"{len(tight)} task(s) may not fit the device's memory even with sequential offload and VAE "
                     f"tiling (first: {tight[0]}); `longvid validate --memory` shows the estimates")
    return out, rows


def _what(spec: StoryboardSpec, task: Task) -> tuple[str, str, str | None, dict, bool] | None:
    """(memory kind, model path, family, settings, offload auto) of a model task; None for the others."""
    p = task.params
    video, keyframes = spec.models.video, spec.models.keyframes
    if isinstance(p, DecodeParams):
        return "decode", p.path, p.family, {"dtype": p.dtype, "vae_tiling": p.tiling, "vae_slicing": p.slicing,
                                            "guidance": 1.0}, video.offload == "auto"
    pipeline = getattr(p, "pipeline", None)
    if pipeline is None or task.kind not in ("keyframe", "reference", "chunk", "refine"):
        return None  # audio models (sound, music) are not estimated
    settings = {"dtype": pipeline.dtype, "offload": pipeline.offload, "vae_tiling": pipeline.vae_tiling,
                "vae_slicing": pipeline.vae_slicing, "guidance": pipeline.guidance}
    if task.kind in ("keyframe", "reference"):
        return "keyframe", pipeline.path, None, settings, keyframes.offload == "auto"
    kind = "sample" if task.kind == "chunk" and pipeline.family in LATENT_DECODERS else "chunk"
    return kind, pipeline.path, pipeline.family, settings, video.offload == "auto"


def _applied(task: Task, kind: str, choice: Choice) -> Task:
    """`task` with the settings `choice` picked (a storyboard's own tiling is kept; a chunk that stores latents
    decodes nothing, so its VAE settings, in its key, stay as they are)."""
    p = task.params
    if isinstance(p, DecodeParams):
        update = {"tiling": p.tiling or choice.vae_tiling, "slicing": p.slicing or choice.vae_slicing}
    else:
        pipeline, vae = p.pipeline, kind != "sample"
        update = {"pipeline": pipeline.model_copy(update={
            "offload": choice.offload, "vae_tiling": pipeline.vae_tiling or (vae and choice.vae_tiling),
            "vae_slicing": pipeline.vae_slicing or (vae and choice.vae_slicing)})}
    return dataclasses.replace(task, params=p.model_copy(update=update))
