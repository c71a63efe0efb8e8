"""`render()`: validate -> compile -> execute -> stitch -> manifest; and `status()`, what a render would redo.

Every task's output goes to the content-addressed cache first; the stitch then streams frames out of the cache
through blending and crossfades into the encoder, so nothing holds more than a couple of chunks and a killed
render resumes where it stopped.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from longvid import __version__
from longvid.cache import ArtifactStore, TaskStatus, default_cache_dir, explain_change, task_key, write_atomic
from longvid.errors import OutputPathError, RenderError, UserError
from longvid.execution.events import Event, Reporter, ignore
from longvid.execution.executor import Execution, execute, task_record
from longvid.planners.compile import RenderPlan, compile_storyboard
from longvid.stages import get_stage
from longvid.stitching.blend import anchored, blend_chunks, stitch_timeline
from longvid.stitching.colour import LabStats
from longvid.stitching.encode import Mp4Writer
from longvid.stitching.qa import SeamMeter, ShotSpan, chunk_spans, layout, measure
from longvid.storyboard import StoryboardSpec, load_storyboard

ENCODE_EVENT_EVERY = 24  # frames between encoding progress events
STITCH_VERSION = "2"
DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


class TaskFailedError(RenderError):
    """Tasks failed after their retries; `failures` holds each one's records (task, exception, traceback, hint)."""

    def __init__(self, execution: Execution):
        self.execution = execution
        self.failures = {task: execution.failures[task] for task in execution.failed}
        lines = [f"{len(execution.failed)} task(s) failed; {len(execution.blocked)} task(s) depending on them did not run"]
        for task, records in self.failures.items():
            last = records[-1]
            lines.append(f"  {task}: {last['exception']}: {last['message']} after {len(records)} attempt(s); "
                         f"hint: {last['hint']}")
        super().__init__("\n".join(lines))


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


def resolve_devices(workers: int, devices: list[str] | None) -> list[str]:
    """One entry per worker: `devices` as given (``cuda:0``, ``cuda:1``, ``cpu``), else `workers` CPU workers."""
    if devices:
        bad = [d for d in devices if not DEVICE.match(d)]
        if bad:
            raise UserError(f"`devices` ({','.join(bad)}) must be cpu, cuda or cuda:N, e.g. --devices cuda:0,cuda:1")
        return list(devices)
    if workers < 1:
        raise UserError(f"`workers` ({workers}) must be at least 1")
    return ["cpu"] * workers


def project_id(spec: StoryboardSpec) -> str:
    """The namespace of a storyboard's task history: its file, or its title for storyboards built in Python."""
    return spec.source or f"title:{spec.title}"


def _prepare(spec: StoryboardSpec, reseed: dict[str, int] | None = None
             ) -> tuple[RenderPlan, dict[str, str], dict[str, str], float]:
    """The plan, code version per stage, cache key per task, and GPUs a GPU worker should reserve."""
    plan = compile_storyboard(spec, reseed)
    specs = {task.stage: get_stage(task.stage).spec for task in plan.graph if task.stage != "stitch"}
    versions = {"stitch": STITCH_VERSION} | {name: s.code_version for name, s in specs.items()}
    gpus = max((s.resources.get("gpus", 0) for s in specs.values()), default=0) or 1
    keys: dict[str, str] = {}
    for task in plan.graph:  # topological order: inputs first
        keys[task.id] = task_key(task.stage, versions[task.stage], task.params, task.seed, task.model,
                                 [keys[d] for d in task.deps])
    return plan, versions, keys, gpus


def make_pool(executor: str, devices: list[str], cache_root: Path, ray_address: str | None = None, gpus: float = 1):
    """The pool that runs tasks: this process, worker processes, or Ray actors (`gpus` per GPU actor)."""
    if executor == "ray":
        from longvid.execution.ray import RayPool

        return RayPool(devices, cache_root, address=ray_address, gpus=gpus)
    if executor != "local":
        raise UserError(f"`executor` ({executor!r}) must be local or ray")
    from longvid.execution.local import InProcessPool, ProcessPool

    if len(devices) == 1 and devices[0] == "cpu":
        return InProcessPool(cache_root)
    return ProcessPool(devices, cache_root)


def render(storyboard: Any, output: str | Path, *, cache_dir: str | Path | None = None, workers: int = 1,
           devices: list[str] | None = None, executor: str = "local", ray_address: str | None = None,
           max_attempts: int = 3, crf: int = 18, preset: str = "medium", qa_retry: int = 0,
           qa_threshold: float = 2.0, report: Reporter = ignore) -> dict:
    """Render a storyboard to an MP4 and write its manifest beside it.

    Args:
        storyboard: a storyboard file path, a `longvid.Storyboard` (scene API) or a `StoryboardSpec`.
        output: the ``.mp4`` to write; ``OUT.manifest.json`` is written beside it.
        cache_dir: the artifact cache (default `default_cache_dir()`); finished tasks are never redone.
        workers: worker processes on the CPU (1: run in this process); ignored when `devices` is given.
        devices: one worker per entry, e.g. ``["cuda:0", "cuda:1"]``.
        executor: ``local`` or ``ray`` (one Ray actor per device; the cache must be shared storage).
        ray_address: an existing Ray cluster to join (default: start a local one).
        max_attempts: tries per task before the render fails.
        crf: x264 quality, 0 (lossless) to 51; 18 is visually lossless.
        preset: x264 speed preset, ``ultrafast`` to ``veryslow``.
        qa_retry: rounds in which a chunk whose seam scores above `qa_threshold` is generated again with a new
            seed (0: never); every attempt is recorded in the manifest's ``qa``.
        qa_threshold: the seam score above which a seam counts as visible (1.0 is invisible).
        report: called with each progress `Event`.

    Returns:
        The manifest, as written.

    Raises:
        StoryboardError, UserError: bad input; nothing is written.
        TaskFailedError: tasks failed after their retries; no file appears at `output`.
    """
    # 1. check inputs
    began = time.perf_counter()
    spec = as_spec(storyboard)
    output = check_output(output)
    Mp4Writer(output, spec.width, spec.height, spec.fps, crf=crf, preset=preset)  # validates crf and preset
    device_list = resolve_devices(workers, devices)

    store = ArtifactStore(cache_dir if cache_dir is not None else default_cache_dir())
    project = project_id(spec)
    reseed: dict[str, int] = {}
    attempts: list[dict] = []
    while True:
        # 2. compile: tasks, code versions, cache keys (chunks regenerated by the QA get new seeds)
        plan, versions, keys, gpus = _prepare(spec, reseed)

        # 3. execute everything but the stitch; finished work comes from the cache
        pool = make_pool(executor, device_list, store.root, ray_address, gpus=gpus)
        execution = execute(plan, keys, versions, store, pool, project=project, report=report,
                            max_attempts=max_attempts)
        if execution.failed:
            raise TaskFailedError(execution)

        # 4. stitch from the cache, encode and measure the seams, streaming
        qa = _stitch(plan, keys, store, output, crf=crf, preset=preset, report=report)
        stitch = plan.graph["stitch"]
        store.remember(project, "stitch", task_record(stitch, STITCH_VERSION, keys) | {"key": keys["stitch"]})
        visible = [seam for seam in qa["seams"] if seam["score"] is not None and seam["score"] > qa_threshold]
        attempts.append({"round": len(attempts), "summary": qa["summary"], "regenerate": [
            {"shot": seam["shot"], "chunk": seam["chunk"], "score": seam["score"],
             "task": _seam_task(plan, seam), "seed": plan.graph[_seam_task(plan, seam)].seed} for seam in visible]})
        if not visible or len(attempts) > qa_retry:
            break
        for seam in visible:
            task = _seam_task(plan, seam)
            reseed[task] = reseed.get(task, 0) + 1
            report(Event("qa", task=task, message=f"seam score {seam['score']:.2f} > {qa_threshold:g}: generating "
                                                  f"it again with a new seed"))

    # 5. manifest
    seconds = time.perf_counter() - began
    manifest = build_manifest(plan, keys, store, execution, output, crf=crf, preset=preset, render_seconds=seconds,
                              devices=device_list, executor=executor)
    manifest["qa"] = qa | {"threshold": qa_threshold, "attempts": attempts if qa_retry else None}
    write_atomic(manifest_path(output), json.dumps(manifest, indent=2) + "\n")
    report(Event("finished", seconds=seconds, done=plan.total_frames, total=plan.total_frames, message=str(output)))
    return manifest


def status(storyboard: Any, *, cache_dir: str | Path | None = None) -> list[TaskStatus]:
    """Every task of the storyboard, fresh, stale or missing in the cache, with the reasons it would run again."""
    spec = as_spec(storyboard)
    plan, versions, keys, _ = _prepare(spec)
    store = ArtifactStore(cache_dir if cache_dir is not None else default_cache_dir())
    project = project_id(spec)
    out = []
    for task in plan.graph:
        now = task_record(task, versions[task.stage], keys) | {"key": keys[task.id]}
        if task.kind != "stitch":
            out.append(store.status(project, task.id, keys[task.id], now))
            continue
        last = store.last(project, task.id)
        rerun = [row.task for row in out if row.state != "fresh"]
        if last is None:
            out.append(TaskStatus(task.id, "missing", ("never_rendered",)))
        elif last["key"] == keys[task.id] and not rerun:
            out.append(TaskStatus(task.id, "fresh"))
        elif last["key"] == keys[task.id]:
            out.append(TaskStatus(task.id, "stale", (f"inputs_rerun: {len(rerun)} tasks",)))
        else:
            out.append(TaskStatus(task.id, "stale", tuple(explain_change(last, now)) or ("key_changed",)))
    return out


def interpolate_video(source: str | Path, output: str | Path, *, fps: float | None = None,
                      factor: float | None = None, backend: str = "auto", model: str | None = None,
                      scene_threshold: float | None = 0.4, crf: int = 18, preset: str = "medium",
                      report: Reporter = ignore) -> dict:
    """Raise the frame rate of an existing video: ``fps`` (the target) or ``factor``.

    A clip of n frames becomes ``floor((n - 1) * factor) + 1`` frames: the first and last frames stay where they
    are. Cuts inside the clip are detected (`scene_threshold`) and never blended.

    Returns:
        A summary: input and output frame counts and rates, the backend used.
    """
    import imageio_ffmpeg

    from longvid.models import resolve_interpolation
    from longvid.stages.interpolate import make_interpolator, resample

    # 1. check inputs
    source, output = Path(source), check_output(output)
    if not source.is_file():
        raise UserError(f"input video not found: {source}")
    if (fps is None) == (factor is None):
        raise UserError("give the target `--fps` or the `--factor`, one of them")
    try:
        frames_in, _ = imageio_ffmpeg.count_frames_and_secs(str(source))
        reader = imageio_ffmpeg.read_frames(str(source), pix_fmt="rgb24")
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as exc:
        raise UserError(f"cannot read {source} as a video: {exc}") from None
    in_fps = float(meta["fps"])
    factor = fps / in_fps if fps is not None else factor
    if factor < 1:
        raise UserError(f"the target rate ({in_fps * factor:g} fps) is below the input's ({in_fps:g} fps)")
    if frames_in < 2:
        raise UserError(f"{source} has {frames_in} frame(s); interpolation needs two")
    # 2. prepare the interpolator
    backend, model, why = resolve_interpolation(backend, model)
    between = make_interpolator(backend, model)
    width, height = meta["size"]
    frames = (np.frombuffer(raw, np.uint8).reshape(height, width, 3) for raw in reader)
    total = math.floor((frames_in - 1) * factor + 1e-9) + 1
    # 3. interpolate and encode, streaming
    began = time.perf_counter()
    output.parent.mkdir(parents=True, exist_ok=True)
    with Mp4Writer(output, width, height, in_fps * factor, crf=crf, preset=preset) as writer:
        for frame in resample(frames, total, factor, between, scene_threshold):
            writer.write(frame)
            if writer.frames % ENCODE_EVENT_EVERY == 0 or writer.frames == total:
                report(Event("frames", "interpolate", done=writer.frames, total=total))
    return {"input_frames": frames_in, "input_fps": in_fps, "frames": total, "fps": in_fps * factor,
            "factor": factor, "backend": backend, "model": model, "note": why,
            "seconds": round(time.perf_counter() - began, 3)}


def _stitch(plan: RenderPlan, keys: dict[str, str], store: ArtifactStore, output: Path, *, crf: int, preset: str,
            report: Reporter) -> dict:
    """Blend, crossfade and encode the video from the cache, measuring its seams on the way; the QA report."""
    spec = plan.spec

    def shot_frames(i: int):
        shot = plan.shots[i]
        if shot.interpolate_task is not None:
            return store.frames(keys[shot.interpolate_task])
        cont = shot.continuity
        reference = store.load(keys[shot.opening_keyframe]) if cont.colour_anchor and shot.opening_keyframe else None
        chunk = anchored(lambda c: store.load(keys[shot.chunk_tasks[c]]), cont.colour_anchor, reference)
        return blend_chunks(shot.windows, chunk, cont.ramp)

    output.parent.mkdir(parents=True, exist_ok=True)
    total = plan.total_frames
    meter = SeamMeter(qa_layout(plan, keys, store))
    with Mp4Writer(output, spec.width, spec.height, spec.fps, crf=crf, preset=preset) as writer:
        for frame in stitch_timeline(plan.segments, shot_frames):
            writer.write(frame)
            meter.add(frame)
            if writer.frames % ENCODE_EVENT_EVERY == 0 or writer.frames == total:
                report(Event("frames", "encode", done=writer.frames, total=total))
        if writer.frames != total:
            raise RenderError(f"stitched {writer.frames} frames, the storyboard needs {total}")
    return meter.report()


def _seam_task(plan: RenderPlan, seam: dict) -> str:
    """The task that generated the chunk after a seam (for latent-blend, the shot's one task)."""
    shot = next(sp for sp in plan.shots if sp.shot.shot_id == seam["shot"])
    return shot.chunk_tasks[min(seam["chunk"], len(shot.chunk_tasks) - 1)]


def qa_layout(plan: RenderPlan, keys: dict[str, str], store: ArtifactStore) -> list[ShotSpan]:
    """Where the chunks of each shot lie on the output timeline, with the colour anchor of each shot."""
    shots = []
    for sp in plan.shots:
        frames = range(sp.timing.start, sp.timing.end)
        sub = plan.graph[sp.chunk_tasks[0]].params.get("windows")  # latent-blend: one task, several chunks
        windows = [(a, a + used, o) for a, _, used, o in sub] if sub else [(w.start, w.end, w.overlap) for w in sp.windows]
        anchor = None
        if sp.opening_keyframe:
            anchor = LabStats.of(store.load(keys[sp.opening_keyframe]))
        shots.append(ShotSpan(sp.shot.shot_id, frames, chunk_spans(windows, sp.timing.render_start, plan.factor,
                                                                   frames), anchor))
    return shots


def qa_video(video: str | Path, cache_dir: str | Path | None = None) -> dict:
    """Seam QA of a rendered video, from its frames and its manifest (the colour anchors from the cache if there).

    Raises:
        UserError: when the video or its manifest is missing.
    """
    video = Path(video)
    path = manifest_path(video)
    if not video.is_file() or not path.is_file():
        raise UserError(f"{video if not video.is_file() else path} not found: `longvid qa` reads a video longvid "
                        f"rendered and the manifest written beside it")
    manifest = json.loads(path.read_text())
    store = ArtifactStore(cache_dir or default_cache_dir())
    shots = layout(manifest)
    for shot, entry in zip(shots, manifest["shots"], strict=True):
        opening = next((k for k in entry["keyframes"] if k["frame"] == entry["handles"]["head"]), None)
        if opening and store.has(opening["cache_key"]):
            shot.anchor = LabStats.of(store.load(opening["cache_key"]))
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(video))
    width, height = next(reader)["size"]
    return measure((np.frombuffer(raw, np.uint8).reshape(height, width, 3) for raw in reader), shots)


def build_manifest(plan: RenderPlan, keys: dict[str, str], store: ArtifactStore, execution: Execution, output: Path,
                   *, crf: int, preset: str, render_seconds: float, devices: list[str], executor: str) -> dict:
    """The manifest contract of ARCHITECTURE.md: what was rendered, from what, with which seeds and keys."""
    spec, graph = plan.spec, plan.graph
    cached = set(execution.cached)

    def run_info(task_id: str) -> dict:
        record = execution.records.get(task_id) or store.record(keys[task_id]) or {}
        return {"cache_key": keys[task_id], "cached": task_id in cached, "seconds": record.get("seconds"),
                "worker": record.get("worker"), "attempts": len(execution.failures.get(task_id, [])) + 1}

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
            "factor": plan.factor,
            "continuity": sp.continuity.model_dump(),
            "keyframes": [
                {"task": k, "timecode": graph[k].params["label"]["timecode"], "frame": graph[k].window[0],
                 "prompt": graph[k].params["prompt"], "image": graph[k].params["image"], "seed": graph[k].seed}
                | run_info(k)
                for k in sp.keyframe_tasks
            ],
            "chunks": [
                {"task": c, "window": [w.start, w.end], "frames": w.frames, "used": w.used, "trimmed": w.trimmed,
                 "overlap": w.overlap, "seed": graph[c].seed,
                 "keyframes": [d for d in graph[c].deps if graph[d].kind == "keyframe"],
                 "anchors": graph[c].params.get("anchors"),
                 "windows": graph[c].params.get("windows")} | run_info(c)
                for c, w in zip(sp.chunk_tasks, sp.windows, strict=True)
            ],
            "interpolation": run_info(sp.interpolate_task) | {"task": sp.interpolate_task}
            if sp.interpolate_task else None,
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
        "execution": {"executor": executor, "devices": devices, "ran": len(execution.ran),
                      "cached": len(execution.cached), "retried": sorted(execution.failures)},
        "notes": plan.notes,
        "shots": shots,
        "stitch": {"task": "stitch", "cache_key": keys["stitch"]},
        "render_seconds": round(render_seconds, 4),
        "qa": None,
    }
