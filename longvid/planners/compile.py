"""Lower a validated storyboard into a render graph of tasks.

Per shot: one keyframe task per keyframe (an implicit one at 0 s from the shot's prompt, unless the storyboard
pins one there), chunk tasks that cover the shot's rendered range at the base rate, an interpolate task when the
base rate is below the output rate; then one stitch task for the whole video. A chunk depends on the keyframes
that bound its time span, so chunks of one shot do not depend on each other and can run in parallel.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from longvid import timing
from longvid.errors import Problem, StoryboardError
from longvid.families import checkpoint_abilities, get_family, local_model_dir
from longvid.graph import RenderGraph, Task
from longvid.models import resolve_interpolation
from longvid.seeds import derive_seed
from longvid.storyboard import ContinuitySpec, KeyframeSpec, PipelineOptions, ShotSpec, StoryboardSpec


@dataclass(frozen=True)
class ShotPlan:
    """One shot's place on the timeline and the work that fills it."""

    shot: ShotSpec
    timing: timing.ShotTiming
    base_frames: int
    windows: list[timing.ChunkWindow]
    keyframe_tasks: list[str]
    chunk_tasks: list[str]
    interpolate_task: str | None
    continuity: ContinuitySpec
    opening_keyframe: str | None  # the colour anchor's reference, when the shot has one


@dataclass(frozen=True)
class RenderPlan:
    """What `compile_storyboard` returns: the graph plus what the stitcher needs to assemble its outputs."""

    spec: StoryboardSpec
    graph: RenderGraph
    shots: list[ShotPlan]
    segments: list[timing.Segment]
    chunk_frames: int
    frame_rule: timing.FrameRule
    factor: float
    notes: list[str] = field(default_factory=list)

    @property
    def total_frames(self) -> int:
        return self.spec.total_frames


def compile_storyboard(spec: StoryboardSpec, reseed: Mapping[str, int] | None = None) -> RenderPlan:
    """Lower `spec` into tasks with explicit dependencies and frame windows.

    Args:
        reseed: chunk task id -> how many times the QA has asked for it again; each time gives it a new seed.
    """
    reseed = reseed or {}

    def chunk_seed(seed: int, sid: str, index: int) -> int:
        again = reseed.get(f"chunk:{sid}:{index}", 0)
        return derive_seed(seed, sid, "chunk" if not again else f"chunk#qa{again}", index)

    notes: list[str] = []
    video = spec.models.video
    family = get_family(video.family)
    rule = timing.FrameRule.parse(family.frame_rule)
    asked = video.frames_asked
    chunk = rule.at_least(asked)
    if chunk != asked:
        notes.append(f"chunk_frames {asked} -> {chunk}: the {video.family} backend takes {rule} frames")
    abilities, source = checkpoint_abilities(family, video.model, spec.base_dir)
    preview = family.name == "preview"
    takes_images = "first" in abilities
    if not preview and source is None and len(family.pipelines) > 1:
        notes.append(f"{video.model}: taken for a model that conditions on {', '.join(sorted(abilities - {'needs-last'}))}"
                     f"{' (first-last-frame)' if 'needs-last' in abilities else ''} "
                     f"(its model_index.json is not on this machine); the worker checks when it loads it")
    if not takes_images:
        notes.append(f"{video.model} generates from text only: no keyframes are drawn")
    elif not preview and spec.models.keyframes.engine == "preview":
        notes.append("no keyframe model (models.keyframes.model): chunks start from text or from keyframe images")
    keyframe_stage = f"{spec.models.keyframes.engine}.keyframe"
    keyframe_model = spec.models.keyframes.model
    keyframe_pipeline = _pipeline_params(spec, spec.models.keyframes, steps=30, guidance=5.0)
    chunk_pipeline = None if preview else _pipeline_params(spec, video, family.steps, family.guidance) | {
        "family": family.name, "motion_adapter": video.motion_adapter}
    factor = spec.interpolation_factor
    interp = spec.models.interpolation
    backend, interp_model, why = resolve_interpolation(interp.backend, interp.model)
    if interp.backend == "rife-ncnn" and interp_model:
        interp_model = str((spec.base_dir / interp_model).resolve())
    if factor > 1 and why:
        notes.append(why)
    base_fps = spec.fps / factor

    tasks: list[Task] = []
    shot_plans: list[ShotPlan] = []
    shot_timings = spec.timings()
    for shot_index, (shot, span) in enumerate(zip(spec.shots, shot_timings, strict=True)):
        sid, seed = shot.shot_id, spec.shot_seed(shot)
        prompt = _full_prompt(spec, shot.prompt)
        negative = shot.negative_prompt if shot.negative_prompt is not None else spec.negative_prompt
        look = {"width": spec.width, "height": spec.height, "negative_prompt": negative}
        cont = spec.continuity_for(shot)
        overlap = cont.overlap_frames
        if preview and cont.strategy in ("shared-noise", "latent-blend", "prefix"):
            notes.append(f"shot {sid!r}: the preview draws frames from time alone, so {cont.strategy} acts as "
                         f"overlap-blend")

        # 1. keyframes, sorted by time; the shot's own prompt opens it unless a keyframe is pinned at 0 s
        pinned = sorted(shot.keyframes, key=lambda kf: kf.at)
        if not pinned or timing.seconds_to_frames(pinned[0].at, spec.fps) > 0:
            pinned.insert(0, KeyframeSpec(at=0.0))
        key_times, key_ids, key_frames = [], [], []
        # a real model is anchored only on real images: drawn by an image model, or the user's
        usable = [kf for kf in pinned if preview or (takes_images and (keyframe_pipeline or kf.image))]
        if not preview and cont.strategy == "prefix":  # autoregressive: only the opening keyframe is used
            usable = [kf for kf in usable if timing.seconds_to_frames(kf.at, spec.fps) == 0]
        for k, kf in enumerate(usable):
            frame = min(timing.seconds_to_frames(kf.at, spec.fps), span.frames - 1)
            task_id = f"keyframe:{sid}:{k}"
            params = look | {
                "prompt": _full_prompt(spec, kf.prompt) if kf.prompt else prompt,
                "image": _image_param(spec, kf.image),
                "label": {"shot": sid, "keyframe": k, "timecode": timing.frames_to_timecode(span.start + frame, spec.fps)},
            }
            if keyframe_pipeline and not kf.image:
                params["pipeline"] = keyframe_pipeline
            tasks.append(Task(task_id, "keyframe", keyframe_stage, sid, k,
                              derive_seed(seed, sid, "keyframe", k), (span.head + frame, span.head + frame + 1),
                              "shot-output", keyframe_model, params))
            key_times.append(kf.at)
            key_ids.append(task_id)
            key_frames.append(span.head + frame)

        # 2. chunks over the rendered range at the base rate
        base_frames = timing.base_frame_count(span.rendered, factor)
        # keyframes by the base frame they fall on; later keyframes split the shot where a chunk can end on one
        # A keyframe on the shot's last frame closes its last chunk: with a crossfade out, at the end of the handle
        last_frame = span.head + span.frames - 1
        key_at = {base_frames - 1 if f == last_frame else min(base_frames - 1, round(f / factor)): key_ids[i]
                  for i, f in enumerate(key_frames)}
        opening = key_ids[0] if key_ids and usable[0].at * spec.fps < 0.5 else None
        if not preview and abilities & {"last", "any"} and cont.strategy != "prefix":
            spans = timing.span_windows(base_frames, [j for j in key_at if 0 < j < base_frames - 1 and key_at[j]
                                                      != opening], chunk, overlap, rule)
        else:
            spans = [timing.chunk_windows(base_frames, chunk, overlap, rule)]
        windows = [w for group in spans for w in group]
        if "needs-last" in abilities and (open_ended := [w.index for group in spans for w in group
                                                           if w is not group[-1] or key_at.get(w.end - 1) is None]):
            raise StoryboardError([Problem(
                f"{video.model} is a first-last-frame model: every chunk must end on a keyframe, but chunk(s) "
                f"{open_ended} of shot {sid!r} do not. Give the shot a keyframe at its end (at: {shot.duration:g}), "
                f"keep the frames between keyframes within chunk_frames ({chunk}), or use an image-to-video model",
                ("shots", shot_index), spec.source)])
        trimmed = sum(w.trimmed for w in windows)
        if trimmed:
            notes.append(f"shot {sid!r}: the last chunk generates {windows[-1].frames} frames and keeps "
                         f"{windows[-1].used} ({trimmed} trimmed to the shot's length)")
        t0, dt = -span.head / spec.fps, factor / spec.fps
        if not preview and cont.strategy == "latent-blend":
            # one task denoises the whole shot's chunks together and returns the shot's frames
            sub, windows = windows, [timing.ChunkWindow(0, 0, base_frames, base_frames, 0)]
            total_latents = family.latent_frames(sub[-1].start + sub[-1].frames)
            params = look | {"prompt": prompt + (f", camera {shot.camera}" if shot.camera != "static" else ""),
                             "fps": base_fps, "start": 0, "frames": base_frames, "used": base_frames, "overlap": 0,
                             "anchors": [], "pipeline": chunk_pipeline, "ramp": cont.ramp,
                             "windows": [[w.start, w.frames, w.used, w.overlap] for w in sub],
                             "noise": {"seed": derive_seed(seed, sid, "noise", 0), "mode": "repeat", "offset": 0,
                                       "period": total_latents}}
            tasks.append(Task(f"chunk:{sid}:0", "chunk", f"{family.name}.chunk", sid, 0,
                              chunk_seed(seed, sid, 0), (0, base_frames), "shot-base", video.model, params))
        chunk_ids = [f"chunk:{sid}:{w.index}" for w in windows]
        for w in windows if preview or cont.strategy != "latent-blend" else []:
            task_id = chunk_ids[w.index]
            if not preview:
                anchors = _anchors(w, windows, spans, chunk_ids, key_at, opening, abilities) if takes_images else []
                if cont.strategy == "prefix":
                    for a in anchors:
                        if "frame" in a:  # continue from the previous chunk's frames at the start of this one
                            a |= {"count": min(cont.prefix_frames, w.overlap or 1), "strength": cont.prefix_strength,
                                  "noise": cont.prefix_noise}
                camera = f", camera {shot.camera}" if shot.camera != "static" else ""
                params = look | {"prompt": prompt + camera, "fps": base_fps, "start": w.start, "frames": w.frames,
                                 "used": w.used, "overlap": w.overlap, "anchors": anchors, "pipeline": chunk_pipeline}
                if cont.strategy == "shared-noise":  # latent frame k of the shot has the same noise in every chunk
                    tc = family.temporal_compression
                    params["noise"] = {"seed": derive_seed(seed, sid, "noise", 0), "mode": cont.noise,
                                       "offset": w.start // tc, "period": family.latent_frames(chunk)}
                tasks.append(Task(task_id, "chunk", f"{family.name}.chunk", sid, w.index,
                                  chunk_seed(seed, sid, w.index), (w.start, w.end), "shot-base",
                                  video.model, params, tuple(dict.fromkeys(a["task"] for a in anchors))))
                continue
            first, last = t0 + w.start * dt, t0 + (w.end - 1) * dt
            lo = max(0, bisect_right(key_times, first + 1e-9) - 1)
            hi = min(len(key_ids), bisect_left(key_times, last - 1e-9) + 1)
            params = look | {
                "prompt": prompt,
                "camera": shot.camera,
                "duration": shot.duration,
                "fps": spec.fps,
                "base_fps": base_fps,
                "t0": t0,
                "dt": dt,
                "start": w.start,
                "frames": w.frames,
                "used": w.used,
                "overlap": w.overlap,
                "keyframes": [{"task": key_ids[i], "at": key_times[i]} for i in range(lo, hi)],
                "label": {"shot": sid, "first_output_frame": span.render_start, "factor": factor},
            }
            tasks.append(Task(task_id, "chunk", "preview.chunk", sid, w.index,
                              chunk_seed(seed, sid, w.index), (w.start, w.end), "shot-base",
                              video.model, params, tuple(key_ids[lo:hi])))

        # 3. interpolation up to the output rate
        interpolate_id = None
        if factor > 1:
            interpolate_id = f"interpolate:{sid}"
            params = {"backend": backend, "model": interp_model, "factor": factor, "base_frames": base_frames,
                      "frames": span.rendered, "scene_threshold": interp.scene_threshold,
                      "ramp": cont.ramp, "colour_anchor": cont.colour_anchor, "reference": opening,
                      "chunks": chunk_ids,
                      "windows": [[w.start, w.frames, w.used, w.overlap] for w in windows]}
            deps = tuple(chunk_ids) + ((opening,) if cont.colour_anchor and opening else ())
            tasks.append(Task(interpolate_id, "interpolate", "interpolate", sid, 0, None, (0, span.rendered),
                              "shot-output", interp_model, params, deps))
        shot_plans.append(ShotPlan(shot, span, base_frames, windows, key_ids, chunk_ids, interpolate_id, cont, opening))

    # 4. one stitch over the whole timeline
    stitch_deps = tuple(d for p in shot_plans for d in ([p.interpolate_task] if p.interpolate_task else p.chunk_tasks))
    stitch_params = {"continuity": [p.continuity.model_dump() for p in shot_plans],
                     "fps": spec.fps, "frames": spec.total_frames}
    tasks.append(Task("stitch", "stitch", "stitch", None, 0, None, (0, spec.total_frames), "output", None,
                      stitch_params, stitch_deps))
    return RenderPlan(spec, RenderGraph(tasks), shot_plans, timing.timeline_segments(shot_timings),
                      chunk, rule, factor, notes)


def _anchors(w: timing.ChunkWindow, windows: list[timing.ChunkWindow], spans: list[list[timing.ChunkWindow]],
             chunk_ids: list[str], key_at: dict[int, str], opening: str | None, abilities: frozenset[str]) -> list[dict]:
    """What chunk `w` is conditioned on: ``{"task", "index"}`` (and ``"frame"`` when the task is a chunk).

    A span's first chunk starts on a keyframe, so it depends on no other chunk; a later chunk of the span starts
    on the previous chunk's frame at its own first frame; where the model takes a last frame, a span's last chunk
    also ends on the keyframe that closes the span.
    """
    span = next(group for group in spans if w in group)
    if w is span[0]:
        start = key_at.get(w.start) if w.start else opening
        anchors = [{"task": start, "index": 0}] if start else []  # no opening image: the chunk starts from text
    else:
        prev = windows[w.index - 1]
        anchors = [{"task": chunk_ids[prev.index], "frame": w.start - prev.start, "index": 0}]
    closing = key_at.get(w.end - 1)
    if w is span[-1] and abilities & {"last", "any"} and closing and closing not in [a["task"] for a in anchors]:
        anchors.append({"task": closing, "index": w.used - 1})
    return anchors


def _pipeline_params(spec: StoryboardSpec, options: PipelineOptions, steps: int, guidance: float) -> dict | None:
    """The settings a diffusers stage loads and runs its pipeline with; ``_path`` is where the model is here."""
    if not options.model:
        return None
    folder = local_model_dir(options.model, spec.base_dir)
    return options.model_dump(mode="json", exclude={"model", "family", "chunk_frames", "motion_adapter", "backend"}) | {
        "steps": options.steps or steps, "guidance": options.guidance if options.guidance is not None else guidance,
        "_path": str(folder) if folder else options.model}


def _full_prompt(spec: StoryboardSpec, prompt: str) -> str:
    text = spec.expand(prompt)
    return f"{text}, {spec.style}" if spec.style else text


def _image_param(spec: StoryboardSpec, image: str | None) -> dict | None:
    # The image's content, not its path, decides the keyframe: a moved file keeps its cache entries.
    if image is None:
        return None
    path = (spec.base_dir / image).resolve()
    return {"_path": str(path), "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest()}

