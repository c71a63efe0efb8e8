"""`render()`: validate -> compile -> execute -> stitch -> manifest.

Frames stream from the stages through blending, interpolation and crossfades into the encoder; nothing holds
more than a couple of chunks, so a ten-minute render needs the memory of a ten-second one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from longvid import __version__, cache
from longvid.errors import OutputPathError, RenderError
from longvid.execution.events import Event, Reporter, ignore
from longvid.execution.local import InProcessRunner
from longvid.planners.compile import RenderPlan, compile_storyboard
from longvid.stages import get_stage
from longvid.stitching.blend import blend_chunks, stitch_timeline
from longvid.stitching.encode import Mp4Writer, write_atomic
from longvid.storyboard import StoryboardSpec, load_storyboard

ENCODE_EVENT_EVERY = 24  # frames between encoding progress events


def as_spec(storyboard: Any) -> StoryboardSpec:
    """A validated `StoryboardSpec` from a path, a scene-API `Storyboard` or a spec."""
    if isinstance(storyboard, StoryboardSpec):
        return storyboard
    if isinstance(storyboard, str | Path):
        return load_storyboard(storyboard)
    if hasattr(storyboard, "build"):
        return storyboard.build()
    raise TypeError(f"`storyboard` must be a path, a longvid.Storyboard or a StoryboardSpec, not {type(storyboard).__name__}")


def manifest_path(output: str | Path) -> Path:
    """``OUT.mp4`` -> ``OUT.manifest.json``."""
    return Path(output).with_suffix(".manifest.json")


def check_output(output: str | Path) -> Path:
    """The output path, or an `OutputPathError` saying why it cannot be used."""
    path = Path(output)
    if path.suffix.lower() != ".mp4":
        raise OutputPathError(f"output must be an .mp4 file (got {str(output)!r})")
    if path.is_dir():
        raise OutputPathError(f"output {str(output)!r} is a directory")
    if path.parent.exists() and not path.parent.is_dir():
        raise OutputPathError(f"output folder {str(path.parent)!r} is a file")
    return path


def render(storyboard: Any, output: str | Path, *, crf: int = 18, preset: str = "medium",
           report: Reporter = ignore) -> dict:
    """Render a storyboard to an MP4 and write its manifest beside it.

    Args:
        storyboard: a storyboard file path, a `longvid.Storyboard` (scene API) or a `StoryboardSpec`.
        output: the ``.mp4`` to write; ``OUT.manifest.json`` is written beside it.
        crf: x264 quality, 0 (lossless) to 51; 18 is visually lossless.
        preset: x264 speed preset, ``ultrafast`` to ``veryslow``.
        report: called with each progress `Event`.

    Returns:
        The manifest, as written.

    Raises:
        StoryboardError, OutputPathError: bad input; nothing is written.
        RenderError: the render failed; no file appears at `output`.
    """
    # 1. check inputs
    began = time.perf_counter()
    spec = as_spec(storyboard)
    output = check_output(output)
    Mp4Writer(output, spec.width, spec.height, spec.fps, crf=crf, preset=preset)  # validates crf and preset

    # 2. compile and prepare stages
    plan = compile_storyboard(spec)
    work = [t for t in plan.graph if t.kind in ("keyframe", "chunk")]
    stages = {t.stage: get_stage(t.stage) for t in work}
    interpolators = {t.stage: get_stage(t.stage) for t in plan.graph.of_kind("interpolate")}
    keys = _cache_keys(plan, {**stages, **interpolators})
    for task in work:
        report(Event("queued", task.kind, task.id))
    runner = InProcessRunner(plan.graph, stages, report)

    def shot_frames(i: int):
        shot = plan.shots[i]
        frames = blend_chunks(shot.windows, lambda c: runner.output(shot.chunk_tasks[c]), spec.continuity.ramp)
        if shot.interpolate_task is None:
            return frames
        task = plan.graph[shot.interpolate_task]
        return interpolators[task.stage](task, {"frames": frames})

    # 3. generate, stitch and encode, streaming
    output.parent.mkdir(parents=True, exist_ok=True)
    total = plan.total_frames
    with Mp4Writer(output, spec.width, spec.height, spec.fps, crf=crf, preset=preset) as writer:
        for frame in stitch_timeline(plan.segments, shot_frames):
            writer.write(frame)
            if writer.frames % ENCODE_EVENT_EVERY == 0 or writer.frames == total:
                report(Event("frames", "encode", done=writer.frames, total=total))
        if writer.frames != total:
            raise RenderError(f"stitched {writer.frames} frames, the storyboard needs {total}")

    # 4. manifest
    seconds = time.perf_counter() - began
    manifest = build_manifest(plan, keys, runner.seconds, output, crf=crf, preset=preset, render_seconds=seconds)
    write_atomic(manifest_path(output), _json(manifest))
    report(Event("finished", seconds=seconds, done=total, total=total, message=str(output)))
    return manifest


def _cache_keys(plan: RenderPlan, stages: dict) -> dict[str, str]:
    keys: dict[str, str] = {}
    for task in plan.graph:  # topological order: inputs first
        version = stages[task.stage].spec.code_version if task.stage in stages else "1"
        keys[task.id] = cache.task_key(task.stage, version, task.params, task.seed, task.model,
                                       [keys[d] for d in task.deps])
    return keys


def build_manifest(plan: RenderPlan, keys: dict[str, str], task_seconds: dict[str, float], output: Path, *,
                   crf: int, preset: str, render_seconds: float) -> dict:
    """The manifest contract of ARCHITECTURE.md: what was rendered, from what, with which seeds and keys."""
    spec, graph = plan.spec, plan.graph
    shots = []
    for sp in plan.shots:
        t = sp.timing
        shots.append({
            "id": sp.shot.shot_id,
            "frames": [t.start, t.end],
            "rendered": [t.render_start, t.render_end],
            "handles": {"head": t.head, "tail": t.tail},
            "seed": spec.shot_seed(sp.shot),
            "transition": sp.shot.transition.model_dump(exclude_none=True),
            "base_frames": sp.base_frames,
            "keyframes": [
                {"task": k, "timecode": graph[k].params["label"]["timecode"], "frame": graph[k].window[0],
                 "prompt": graph[k].params["prompt"], "image": graph[k].params["image"], "seed": graph[k].seed,
                 "cache_key": keys[k], "seconds": _round(task_seconds.get(k))}
                for k in sp.keyframe_tasks
            ],
            "chunks": [
                {"task": c, "window": [w.start, w.end], "frames": w.frames, "used": w.used, "trimmed": w.trimmed,
                 "overlap": w.overlap, "seed": graph[c].seed, "keyframes": list(graph[c].deps),
                 "cache_key": keys[c], "seconds": _round(task_seconds.get(c))}
                for c, w in zip(sp.chunk_tasks, sp.windows, strict=True)
            ],
        })
    return {
        "longvid_version": __version__,
        "storyboard_hash": spec.content_hash(),
        "title": spec.title,
        "video": {"path": output.name, "fps": spec.fps, "width": spec.width, "height": spec.height,
                  "frames": plan.total_frames, "duration": plan.total_frames / spec.fps,
                  "codec": "h264", "pix_fmt": "yuv420p", "crf": crf, "preset": preset},
        "backends": {
            "keyframes": spec.models.keyframes.model_dump(),
            "video": spec.models.video.model_dump() | {"frame_rule": str(plan.frame_rule), "chunk_frames": plan.chunk_frames},
            "interpolation": spec.models.interpolation.model_dump(),
        },
        "continuity": spec.continuity.model_dump(),
        "notes": plan.notes,
        "shots": shots,
        "stitch": {"task": "stitch", "cache_key": keys["stitch"]},
        "render_seconds": _round(render_seconds),
        "qa": None,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2) + "\n"
