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
from longvid.tasks import DecodeParams, IdentityParams, ReferenceParams, SoundParams, Task


@dataclass(frozen=True)
class TaskMemory:
    """One task's estimate; `choice` when `offload: auto` picked its settings for a known device."""

    task: str
    kind: str  # as `memory.estimate` names it: chunk, sample, decode, keyframe
    estimate: Estimate
    choice: Choice | None = None


def plan_memory(spec: StoryboardSpec, tasks: list[Task], device_bytes: int | None, notes: list[str],
                offload: bool = True) -> tuple[list[Task], list[TaskMemory]]:
    """The tasks, with `offload: auto` resolved where the device's size is known, and every model task's estimate.

    A model whose configs are not on this machine (a hub id not yet downloaded) is not estimated: a note says so.
    With `offload` False (workers on the CPU) no task is offloaded, whatever the storyboard asks: the plan is what
    runs.
    """
    if not offload:
        tasks, asked = _without_offload(tasks)
        if asked:
            notes.append(f"offload: the workers are on the CPU, which has nowhere to offload to; {asked} task(s) run "
                         f"with their weights in memory")
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
        width, height, frames, seconds = _shape(task)
        dtype = settings.pop("dtype")
        size = (kind, path, width, height, frames, seconds, dtype, tuple(sorted(settings.items())), auto,
                device_bytes)
        if size not in memo:
            if auto and device_bytes:
                chosen = choose(found, kind, width, height, frames, dtype, device_bytes,
                                guidance=settings["guidance"] > 1, seconds=seconds, offload=offload)
                memo[size] = (chosen.estimate, chosen)
            else:
                memo[size] = (estimate(found, kind, width, height, frames, dtype, settings, seconds=seconds), None)
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


def _without_offload(tasks: list[Task]) -> tuple[list[Task], int]:
    """The tasks with every pipeline's offload off, and how many asked for one."""
    out, asked = [], 0
    for task in tasks:
        pipeline = getattr(task.params, "pipeline", None)
        if pipeline is not None and pipeline.offload != "none":
            asked += 1
            task = dataclasses.replace(task, params=task.params.model_copy(update={
                "pipeline": pipeline.model_copy(update={"offload": "none"})}))
        out.append(task)
    return out, asked


def _shape(task: Task) -> tuple[int, int, int, float]:
    """(width, height, frames, seconds) of what a model task makes: a reference is square, a sound has a length, an
    identity check embeds its samples at once."""
    p = task.params
    if isinstance(p, ReferenceParams):
        return p.size, p.size, 1, 0.0
    if isinstance(p, SoundParams):
        return 0, 0, 1, p.seconds
    if isinstance(p, IdentityParams):
        return 0, 0, len(p.samples), 0.0
    return p.width, p.height, getattr(p, "frames", 1), 0.0


def _what(spec: StoryboardSpec, task: Task) -> tuple[str, str, str | None, dict, bool] | None:
    """(memory kind, model path, family, settings, offload auto) of a model task; None for the others."""
    p = task.params
    video, keyframes = spec.models.video, spec.models.keyframes
    if isinstance(p, DecodeParams):
        return "decode", p.path, p.family, {"dtype": p.dtype, "vae_tiling": p.tiling, "vae_slicing": p.slicing,
                                            "guidance": 1.0}, video.offload == "auto"
    if isinstance(p, IdentityParams):  # the embedding model runs on the device as it is, in float32
        return "embed", p.path, None, {"dtype": "float32", "guidance": 1.0}, False
    pipeline = getattr(p, "pipeline", None)
    if pipeline is None:
        return None  # the preview, a user's image, a refine without a model
    settings = {"dtype": pipeline.dtype, "offload": pipeline.offload, "vae_tiling": pipeline.vae_tiling,
                "vae_slicing": pipeline.vae_slicing, "decode_chunk_size": pipeline.decode_chunk_size,
                "guidance": pipeline.guidance}
    if task.kind in ("keyframe", "reference"):
        return "keyframe", pipeline.path, None, settings, keyframes.offload == "auto"
    if isinstance(p, SoundParams):
        options = spec.models.audio if p.role == "sound" else spec.models.music
        return "sound", pipeline.path, None, settings, options is not None and options.offload == "auto"
    kind = "sample" if task.kind == "chunk" and pipeline.family in LATENT_DECODERS else "chunk"
    return kind, pipeline.path, pipeline.family, settings, video.offload == "auto"


def _applied(task: Task, kind: str, choice: Choice) -> Task:
    """`task` with the settings `choice` picked (a storyboard's own tiling is kept; `choose` offers a task only
    the settings it has: a chunk that stores latents decodes nothing, so its VAE settings, in its key, stay)."""
    p = task.params
    if isinstance(p, DecodeParams):
        update = {"tiling": p.tiling or choice.vae_tiling, "slicing": p.slicing or choice.vae_slicing}
    else:
        pipeline = p.pipeline
        update = {"pipeline": pipeline.model_copy(update={
            "offload": choice.offload, "vae_tiling": pipeline.vae_tiling or choice.vae_tiling,
            "vae_slicing": pipeline.vae_slicing or choice.vae_slicing,
            "decode_chunk_size": choice.decode_chunk_size or pipeline.decode_chunk_size})}
    return dataclasses.replace(task, params=p.model_copy(update=update))


def planned_settings(task: Task) -> dict[str, Any]:
    """The memory settings a model task will run with, as the worker reads them (`stages.pipelines.ran` reports
    what it did): where the weights are, the VAE's tiling and slicing, the frames a video pipeline decodes at once."""
    p = task.params
    if isinstance(p, DecodeParams):
        return {"vae_tiling": p.tiling, "vae_slicing": p.slicing}
    pipeline = getattr(p, "pipeline", None)
    if pipeline is None:
        return {}
    settings = {"offload": pipeline.offload, "vae_tiling": pipeline.vae_tiling, "vae_slicing": pipeline.vae_slicing,
                "decode_chunk_size": pipeline.decode_chunk_size}
    # after running out of memory, the stage's low-memory settings on top (`execution.executor.with_low_memory`)
    return settings | {k: v for k, v in getattr(p, "low_memory", {}).items() if k in settings}


def settings_text(settings: dict[str, Any]) -> str:
    """`planned_settings` for people: ``offload model, tiling on, slicing on, decode 2 frames at once``."""
    words = [f"offload {settings['offload']}"] if "offload" in settings else []
    words += [f"{name} {'on' if settings[key] else 'off'}" for key, name in (("vae_tiling", "tiling"),
                                                                          ("vae_slicing", "slicing")) if key in settings]
    if settings.get("decode_chunk_size"):
        words.append(f"decode {settings['decode_chunk_size']} frames at once")
    return ", ".join(words)
