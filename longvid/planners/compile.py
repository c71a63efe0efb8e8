"""Lower a validated storyboard into a render graph of tasks.

Per shot: one keyframe task per keyframe (an implicit one at 0 s from the shot's prompt, unless the storyboard
pins one there), chunk tasks that cover the shot's rendered range at the base rate, an interpolate task when the
base rate is below the output rate; then one stitch task for the whole video. A chunk depends on the keyframes
that bound its time span, so chunks of one shot do not depend on each other and can run in parallel.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from pathlib import Path

from longvid import timing
from longvid.graph import RenderGraph, Task
from longvid.models import resolve_interpolation
from longvid.seeds import derive_seed
from longvid.storyboard import PREVIEW_FRAME_RULE, KeyframeSpec, ShotSpec, StoryboardSpec


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


def compile_storyboard(spec: StoryboardSpec) -> RenderPlan:
    """Lower `spec` into tasks with explicit dependencies and frame windows."""
    notes: list[str] = []
    rule = timing.FrameRule.parse(PREVIEW_FRAME_RULE)
    asked = spec.models.video.chunk_frames
    chunk = rule.at_least(asked)
    if chunk != asked:
        notes.append(f"chunk_frames {asked} -> {chunk}: the {spec.models.video.family} backend takes {rule} frames")
    factor = spec.interpolation_factor
    interp = spec.models.interpolation
    backend, interp_model, why = resolve_interpolation(interp.backend, interp.model)
    if interp.backend == "rife-ncnn" and interp_model:
        interp_model = str((spec.base_dir / interp_model).resolve())
    if factor > 1 and why:
        notes.append(why)
    overlap = spec.continuity.overlap_frames
    base_fps = spec.fps / factor

    tasks: list[Task] = []
    shot_plans: list[ShotPlan] = []
    shot_timings = spec.timings()
    for shot, span in zip(spec.shots, shot_timings, strict=True):
        sid, seed = shot.shot_id, spec.shot_seed(shot)
        prompt = _full_prompt(spec, shot.prompt)
        negative = shot.negative_prompt if shot.negative_prompt is not None else spec.negative_prompt
        look = {"width": spec.width, "height": spec.height, "negative_prompt": negative}

        # 1. keyframes, sorted by time; the shot's own prompt opens it unless a keyframe is pinned at 0 s
        pinned = sorted(shot.keyframes, key=lambda kf: kf.at)
        if not pinned or timing.seconds_to_frames(pinned[0].at, spec.fps) > 0:
            pinned.insert(0, KeyframeSpec(at=0.0))
        key_times, key_ids = [], []
        for k, kf in enumerate(pinned):
            frame = min(timing.seconds_to_frames(kf.at, spec.fps), span.frames - 1)
            task_id = f"keyframe:{sid}:{k}"
            params = look | {
                "prompt": _full_prompt(spec, kf.prompt) if kf.prompt else prompt,
                "image": _image_param(spec, kf.image),
                "label": {"shot": sid, "keyframe": k, "timecode": timing.frames_to_timecode(span.start + frame, spec.fps)},
            }
            tasks.append(Task(task_id, "keyframe", f"{spec.models.keyframes.backend}.keyframe", sid, k,
                              derive_seed(seed, sid, "keyframe", k), (span.head + frame, span.head + frame + 1),
                              "shot-output", spec.models.keyframes.model, params))
            key_times.append(kf.at)
            key_ids.append(task_id)

        # 2. chunks over the rendered range at the base rate
        base_frames = timing.base_frame_count(span.rendered, factor)
        windows = timing.chunk_windows(base_frames, chunk, overlap, rule)
        trimmed = sum(w.trimmed for w in windows)
        if trimmed:
            notes.append(f"shot {sid!r}: the last chunk generates {windows[-1].frames} frames and keeps "
                         f"{windows[-1].used} ({trimmed} trimmed to the shot's length)")
        t0, dt = -span.head / spec.fps, factor / spec.fps
        chunk_ids = []
        for w in windows:
            first, last = t0 + w.start * dt, t0 + (w.end - 1) * dt
            lo = max(0, bisect_right(key_times, first + 1e-9) - 1)
            hi = min(len(key_ids), bisect_left(key_times, last - 1e-9) + 1)
            task_id = f"chunk:{sid}:{w.index}"
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
            tasks.append(Task(task_id, "chunk", f"{spec.models.video.family}.chunk", sid, w.index,
                              derive_seed(seed, sid, "chunk", w.index), (w.start, w.end), "shot-base",
                              spec.models.video.model, params, tuple(key_ids[lo:hi])))
            chunk_ids.append(task_id)

        # 3. interpolation up to the output rate
        interpolate_id = None
        if factor > 1:
            interpolate_id = f"interpolate:{sid}"
            params = {"backend": backend, "model": interp_model, "factor": factor, "base_frames": base_frames,
                      "frames": span.rendered, "scene_threshold": interp.scene_threshold,
                      "ramp": spec.continuity.ramp, "chunks": chunk_ids,
                      "windows": [[w.start, w.frames, w.used, w.overlap] for w in windows]}
            tasks.append(Task(interpolate_id, "interpolate", "interpolate", sid, 0, None, (0, span.rendered),
                              "shot-output", interp_model, params, tuple(chunk_ids)))
        shot_plans.append(ShotPlan(shot, span, base_frames, windows, key_ids, chunk_ids, interpolate_id))

    # 4. one stitch over the whole timeline
    stitch_deps = tuple(d for p in shot_plans for d in ([p.interpolate_task] if p.interpolate_task else p.chunk_tasks))
    stitch_params = {"ramp": spec.continuity.ramp, "strategy": spec.continuity.strategy, "overlap": overlap,
                     "fps": spec.fps, "frames": spec.total_frames}
    tasks.append(Task("stitch", "stitch", "stitch", None, 0, None, (0, spec.total_frames), "output", None,
                      stitch_params, stitch_deps))
    return RenderPlan(spec, RenderGraph(tasks), shot_plans, timing.timeline_segments(shot_timings),
                      chunk, rule, factor, notes)


def _full_prompt(spec: StoryboardSpec, prompt: str) -> str:
    text = spec.expand(prompt)
    return f"{text}, {spec.style}" if spec.style else text


def _image_param(spec: StoryboardSpec, image: str | None) -> dict | None:
    # The image's content, not its path, decides the keyframe: a moved file keeps its cache entries.
    if image is None:
        return None
    path = (spec.base_dir / image).resolve()
    return {"_path": str(path), "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest()}

