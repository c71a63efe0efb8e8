"""`render()`: compile -> whole-graph check -> execute -> seam QA -> manifest; and `status()`, what it would redo.

Orchestration only: the plan comes from `planners.compile`, the check from `stages.check`, the work from
`execution`, the manifest from `manifest`. Every task's output goes to the content-addressed cache first, the
output's segments included; the MP4 is their stream-copy join, so a killed render resumes where it stopped and a
render with everything cached encodes nothing.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from longvid.cache import (
    BYTES_PER_PIXEL,
    ArtifactStore,
    TaskStatus,
    default_cache_dir,
    disk_full_message,
    explain_change,
    human_bytes,
    write_atomic,
)
from longvid.errors import DiskFullError, OutputPathError, TaskFailedError, TaskUserError, UserError
from longvid.execution.events import Event, Reporter, ignore
from longvid.execution.executor import Execution, execute, plan_low_memory, task_record
from longvid.execution.pools import device_memory as pool_memory
from longvid.execution.pools import make_pool, resolve_devices
from longvid.gc_pause import without_gc
from longvid.manifest import build_manifest, manifest_path
from longvid.planners.compile import Output, RenderPlan, compile_storyboard
from longvid.stages import get_spec
from longvid.stages.check import check_graph
from longvid.stitching.colour import LabStats
from longvid.stitching.encode import check_settings, write_wav
from longvid.stitching.seams import SeamReport, ShotSpan
from longvid.storyboard import StoryboardSpec, load_storyboard


def as_spec(storyboard: Any) -> StoryboardSpec:
    """A validated `StoryboardSpec` from a path, a scene-API `Storyboard` or a spec."""
    if isinstance(storyboard, StoryboardSpec):
        return storyboard
    if isinstance(storyboard, str | Path):
        return load_storyboard(storyboard)
    if hasattr(storyboard, "build"):
        return storyboard.build()
    raise TypeError(f"`storyboard` must be a path, a longvid.Storyboard or a StoryboardSpec, not {type(storyboard).__name__}")


def check_output(output: str | Path) -> Path:
    """The output path, or an `OutputPathError` saying why it cannot be used."""
    path = Path(output)
    if path.suffix.lower() != ".mp4":
        raise OutputPathError(f"output must be an .mp4 file (got {str(output)!r})")
    return check_writable(path)


def check_writable(path: Path) -> Path:
    """`path`, if a file can be written there (not a folder, in a folder that is not a file); else an
    `OutputPathError`."""
    if path.is_dir():
        raise OutputPathError(f"output {str(path)!r} is a directory")
    if path.parent.exists() and not path.parent.is_dir():
        raise OutputPathError(f"output folder {str(path.parent)!r} is a file")
    return path


def project_id(spec: StoryboardSpec) -> str:
    """The namespace of a storyboard's task history: its file, or its title for storyboards built in Python."""
    return spec.source or f"title:{spec.title}"


# The cache's history keeps, beside each task's last record, the file the storyboard's last render wrote.
LAST_OUTPUT = "render:output"


def last_output(storyboard: Any, cache_dir: str | Path | None = None) -> Path | None:
    """The video the storyboard's last finished render wrote, as the cache's history knows it, if it is still
    there (None: never rendered with this cache, or the file is gone)."""
    store = ArtifactStore(cache_dir if cache_dir is not None else default_cache_dir())
    record = store.last(project_id(as_spec(storyboard)), LAST_OUTPUT)
    path = Path(record["path"]) if record and record.get("path") else None
    return path if path is not None and path.is_file() else None


def prepare(spec: StoryboardSpec, output: Output, reseed: dict[str, int] | None = None,
            last: Callable[[str], dict | None] | None = None) -> tuple[RenderPlan, dict[str, str]]:
    """The plan, checked as a whole before any device work, and the cache key of every task.

    Args:
        last: a task's last record in the cache's history: a task that ran out of memory last time, under the
            key it has now, starts with its low-memory parameters.

    Raises:
        PlanError: every task that breaks its stage's declaration.
    """
    plan = compile_storyboard(spec, reseed, output)
    check_graph(plan.graph)
    keys: dict[str, str] = {}
    plan_low_memory(plan.graph, keys, last or (lambda task_id: None))
    return plan, keys


def render(storyboard: Any, output: str | Path, *, cache_dir: str | Path | None = None, workers: int = 1,
           devices: list[str] | None = None, executor: str = "local", ray_address: str | None = None,
           max_attempts: int = 3, crf: int = 18, preset: str = "medium", qa_retry: int = 0,
           qa_threshold: float = 2.0, cpu_workers: int | None = None, audio: bool = True, draft: bool = False,
           device_memory: int | None = None, report: Reporter = ignore) -> dict:
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
            seed (0: never); every attempt is recorded in the manifest's ``qa``, and the video is made of each
            chunk's (and keyframe's) best attempt, not its last.
        qa_threshold: the seam score above which a seam counts as visible (1.0 is invisible).
        cpu_workers: threads of this process that encode segments and draw previews (default: one per core).
        audio: False writes a silent video (no sound is generated or mixed).
        draft: with `models.refine`, stop after the draft pass and write the video at the draft's size (the full
            render later reuses it).
        device_memory: bytes on each device, for `offload: auto` (default: the smallest CUDA device's in
            `devices`; none known: the storyboard's settings as they are).
        report: called with each progress `Event`; the plan's notes come first, as ``note`` events.

    Returns:
        The manifest, as written.

    Raises:
        StoryboardError, UserError: bad input, or a user error raised inside a task; nothing is written.
        PlanError: tasks that break their stages' declarations (found before any device work).
        TaskFailedError: tasks failed after their retries; no file appears at `output`.
        DiskFullError: the cache's disk is full; the render stopped at once.
    """
    # 1. check inputs
    began = time.perf_counter()
    spec = as_spec(storyboard)
    output = check_output(output)
    try:
        check_settings(crf, preset)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    device_list = resolve_devices(workers, devices)
    store = ArtifactStore(cache_dir if cache_dir is not None else default_cache_dir())
    project = project_id(spec)
    settings = Output(crf, preset, str(output.resolve()), draft, device_memory or pool_memory(device_list), audio,
                      offload=any(d.startswith("cuda") for d in device_list))

    # 2. plan: compiled once, checked as a whole, keyed; its notes first
    remembered = functools.partial(store.last, project)
    plan, keys = prepare(spec, settings, last=remembered)
    for note in plan.notes:
        report(Event("note", message=note))
    _warn_if_the_disk_is_small(plan, keys, store, report)
    gpus = max((get_spec(t.stage).resources.get("gpus", 0) for t in plan.graph), default=0) or 1

    def run(targets: list[str] | None) -> Execution:
        pool = make_pool(executor, device_list, store.root, ray_address, gpus=gpus, lanes=cpu_workers)
        done = execute(plan.graph, keys, store, pool, project=project, report=report, max_attempts=max_attempts,
                       targets=targets)
        _raise_failures(done, store)
        return done

    # 3. execute; with --qa-retry, the segments (and identity scores) first, measured, and chunks with visible
    #    seams and keyframes unlike their characters made again; the video is made of each one's best attempt
    reseed: dict[str, int] = {}
    tried: dict[str, dict[int, float]] = {}  # task -> its attempt (reseed count) -> how bad it was (lower: better)
    attempts: list[dict] = []
    executions: list[Execution] = []
    while qa_retry:
        executions.append(run(plan.encode_tasks + plan.identity_tasks))
        qa, identity = seam_qa(plan, keys, store), identity_qa(plan, keys, store)
        for task, badness in _badness(plan, qa, identity).items():
            tried.setdefault(task, {})[reseed.get(task, 0)] = badness
        visible = [s for s in qa["seams"] if s["score"] is not None and s["score"] > qa_threshold]
        unlike = [k for shot in (identity or {"shots": []})["shots"] for k in shot["below"]
                  if plan.graph[k["task"]].params.image is None]  # a user's keyframe is kept as it is
        attempts.append({"round": len(attempts), "summary": qa["summary"], "regenerate": [
            {"shot": s["shot"], "chunk": s["chunk"], "score": s["score"], "task": _seam_task(plan, s),
             "seed": plan.graph[_seam_task(plan, s)].seed} for s in visible] + [
            k | {"seed": plan.graph[k["task"]].seed} for k in unlike]})
        if len(attempts) > qa_retry or not visible and not unlike:
            break
        for seam in visible:
            task = _seam_task(plan, seam)
            reseed[task] = reseed.get(task, 0) + 1
            report(Event("qa", task=task, message=f"seam score {seam['score']:.2f} > {qa_threshold:g}: generating "
                                                  f"it again with a new seed"))
        for key in unlike:
            reseed[key["task"]] = reseed.get(key["task"], 0) + 1
            report(Event("qa", task=key["task"], message=f"likeness to {key['character']} {key['score']:.2f} < "
                                                         f"{spec.qa.identity_threshold:g}: drawing it again with a "
                                                         f"new seed"))
        plan, keys = prepare(spec, settings, reseed, remembered)
    best = {task: min(tried[task], key=tried[task].get) for task in reseed}
    if best != reseed:  # an earlier attempt did better than the last: back to it (it is in the cache)
        reseed = best
        plan, keys = prepare(spec, settings, reseed, remembered)
    executions.append(run(None))
    qa, identity = seam_qa(plan, keys, store), identity_qa(plan, keys, store)

    # 4. manifest
    seconds = time.perf_counter() - began
    manifest = build_manifest(plan, keys, store, _combined(executions), output, crf=crf, preset=preset,
                              render_seconds=seconds, devices=device_list, executor=executor, reseed=reseed)
    manifest["qa"] = qa | {"threshold": qa_threshold, "attempts": attempts if qa_retry else None,
                           "kept": {task: plan.graph[task].seed for task in reseed} if qa_retry else None,
                           "identity": identity}
    write_atomic(manifest_path(output), json.dumps(manifest, indent=2) + "\n")
    store.remember(project, LAST_OUTPUT, {"path": str(output.resolve()), "finished": time.time()})
    report(Event("finished", seconds=seconds, done=plan.total_frames, total=plan.total_frames, message=str(output)))
    return manifest


def render_audio(storyboard: Any, output: str | Path, *, cache_dir: str | Path | None = None, workers: int = 1,
                 devices: list[str] | None = None, executor: str = "local", max_attempts: int = 3,
                 cpu_workers: int | None = None, report: Reporter = ignore) -> dict:
    """Render only a storyboard's soundtrack, to a WAV file (24 bits): the mix task and what it needs, cached like
    a full render's, so a later render of the video reuses it.

    Returns:
        The mix's record: rate, samples, sources and the measured loudness.

    Raises:
        OutputPathError: `output` is not a .wav file; UserError: the storyboard has no sound.
    """
    spec = as_spec(storyboard)
    output = Path(output)
    if output.suffix.lower() != ".wav" or output.is_dir():
        raise OutputPathError(f"--audio-only writes a .wav file (got {str(output)!r})")
    device_list = resolve_devices(workers, devices)
    plan, keys = prepare(spec, Output(device_memory=pool_memory(device_list),
                                      offload=any(d.startswith("cuda") for d in device_list)))
    target = "mix" if "mix" in keys else "audio" if "audio" in keys else None
    if target is None:
        raise UserError("the storyboard has no sound: give `audio.music`, a shot's `sound` or `voice`, or a video "
                        "model that makes sound")
    for note in plan.notes:
        report(Event("note", message=note))
    store = ArtifactStore(cache_dir if cache_dir is not None else default_cache_dir())
    pool = make_pool(executor, device_list, store.root, None, gpus=1, lanes=cpu_workers)
    _raise_failures(execute(plan.graph, keys, store, pool, project=project_id(spec), report=report,
                            max_attempts=max_attempts, targets=[target]), store)
    write_wav(store.path(keys[target]), output)
    return {"path": str(output), "task": target} | (store.record(keys[target]) or {})


def status(storyboard: Any, *, cache_dir: str | Path | None = None, crf: int = 18, preset: str = "medium",
           draft: bool = False, device_memory: int | None = None) -> list[TaskStatus]:
    """Every task of the storyboard, fresh, stale or missing in the cache, with the reasons it would run again.

    A task whose output is not stored (a preview chunk) is fresh while the tasks that read it are; the concat is
    fresh when it last ran with the same key and nothing before it runs again. `crf` and `preset` are those of
    the render to compare with (they decide the segments' keys).
    """
    return plan_status(as_spec(storyboard), ArtifactStore(cache_dir if cache_dir is not None else default_cache_dir()),
                       Output(crf, preset, draft=draft, device_memory=device_memory))[2]


@without_gc
def plan_status(spec: StoryboardSpec, store: ArtifactStore, output: Output
                ) -> tuple[RenderPlan, dict[str, str], list[TaskStatus]]:
    """`status`, with the plan and the keys it compared (the studio draws them)."""
    project = project_id(spec)
    plan, keys = prepare(spec, output, last=functools.partial(store.last, project))
    order = list(plan.graph)
    records = {t.id: task_record(t, get_spec(t.stage).code_version, keys) | {"key": keys[t.id]} for t in order}
    rows: dict[str, TaskStatus] = {}
    for task in order:
        if get_spec(task.stage).cache:
            rows[task.id] = store.status(project, task.id, keys[task.id], records[task.id])
    # not stored: first those read by other tasks (after their readers), then the concat, which sees everything
    later = [t for t in reversed(order) if t.id not in rows]
    for task in sorted(later, key=lambda t: not plan.graph.consumers(t.id)):
        consumers = plan.graph.consumers(task.id)
        rerun = [c for c in consumers if rows[c].state != "fresh"] if consumers else \
            [t for t, row in rows.items() if row.state != "fresh"]
        last = store.last(project, task.id)
        if consumers and not rerun:  # drawn only inside its readers: none runs, so neither does it (back to a take)
            rows[task.id] = TaskStatus(task.id, "fresh")
        elif last is None:
            rows[task.id] = TaskStatus(task.id, "missing", ("never_rendered",))
        elif last.get("key") != keys[task.id]:
            rows[task.id] = TaskStatus(task.id, "stale", tuple(explain_change(last, records[task.id]))
                                       or ("key_changed",))
        elif rerun:
            reason = f"needed_by: {', '.join(rerun)}" if consumers else f"inputs_rerun: {len(rerun)} tasks"
            rows[task.id] = TaskStatus(task.id, "stale", (reason,))
        else:
            rows[task.id] = TaskStatus(task.id, "fresh")
    return plan, keys, [rows[t.id] for t in order]


def seam_qa(plan: RenderPlan, keys: dict[str, str], store: ArtifactStore) -> dict:
    """The seam report of a render, from the measures its encode tasks kept in their cache records."""
    shots = []
    for sp in plan.shots:
        anchors = [(sp.timing.render_start + plan.graph[k].window[0], LabStats.of(store.load(keys[k])))
                   for k in sp.keyframe_tasks]
        shots.append(ShotSpan(sp.shot.shot_id, range(sp.timing.start, sp.timing.end), sp.chunk_spans, anchors))
    report = SeamReport(shots, measured_on="frames")
    for task_id in plan.encode_tasks:
        report.add(plan.graph[task_id].window[0], store.record(keys[task_id])["qa"])
    return report.report()


def identity_qa(plan: RenderPlan, keys: dict[str, str], store: ArtifactStore) -> dict | None:
    """Each shot's likeness to its characters, from the scores its identity task kept in its cache record; None
    without `qa.identity_model` (nothing is claimed)."""
    spec = plan.spec
    if not spec.qa.identity_model:
        return None
    threshold = spec.qa.identity_threshold
    shots = []
    for task_id in plan.identity_tasks:
        samples = store.record(keys[task_id])["identity"]["samples"]
        names = list(samples[0]["scores"])
        below = [{"shot": plan.graph[task_id].shot, "task": s["task"], "character": name, "score": score}
                 for s in samples if s["task"].startswith("keyframe:")
                 for name, score in [min(s["scores"].items(), key=lambda kv: kv[1])] if score < threshold]
        shots.append({"shot": plan.graph[task_id].shot, "task": task_id, "cache_key": keys[task_id],
                      "characters": {n: {"mean": _mean([s["scores"][n] for s in samples]),
                                         "worst": min(s["scores"][n] for s in samples)} for n in names},
                      "samples": samples, "below": below})
    scores = [v for shot in shots for s in shot["samples"] for v in s["scores"].values()]
    path = plan.graph[plan.identity_tasks[0]].params.path if plan.identity_tasks else spec.qa.identity_model
    return {"model": spec.qa.identity_model, "path": path, "threshold": threshold, "shots": shots,
            "summary": {"shots": len(shots), "mean": _mean(scores), "worst": min(scores, default=None),
                        "keyframes_below": sum(len(shot["below"]) for shot in shots)}}


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _seam_task(plan: RenderPlan, seam: dict) -> str:
    """The task that generated the chunk after a seam (for latent-blend, the shot's one task)."""
    shot = next(sp for sp in plan.shots if sp.shot.shot_id == seam["shot"])
    return shot.chunk_tasks[min(seam["chunk"], len(shot.chunk_tasks) - 1)]


def _badness(plan: RenderPlan, qa: dict, identity: dict | None) -> dict[str, float]:
    """How bad each task's output was in one attempt, by the QA that can ask for it again (lower is better): a
    chunk's seam score (under latent-blend, the shot's worst), a keyframe's lowest likeness, negated."""
    out: dict[str, float] = {}
    for seam in qa["seams"]:
        if seam["score"] is not None:
            task = _seam_task(plan, seam)
            out[task] = max(out.get(task, seam["score"]), seam["score"])
    for shot in (identity or {"shots": []})["shots"]:
        for sample in shot["samples"]:
            if sample["task"].startswith("keyframe:"):
                out[sample["task"]] = max(out.get(sample["task"], -1.0), -min(sample["scores"].values()))
    return out


def _raise_failures(execution: Execution, store: ArtifactStore) -> None:
    fatal = execution.fatal
    if fatal and fatal["disk_full"]:
        raise DiskFullError(f"{fatal['task']}: {disk_full_message(store.root)}")
    if fatal:
        raise TaskUserError(fatal["task"], fatal["exception"], fatal["message"])
    if execution.failed:
        raise TaskFailedError({t: execution.failures[t] for t in execution.failed}, len(execution.blocked), execution)


def _warn_if_the_disk_is_small(plan: RenderPlan, keys: dict[str, str], store: ArtifactStore, report: Reporter) -> None:
    """Before any work: the space the render's new artifacts will take, against the free space of the cache."""
    pixels = plan.models.out_size[0] * plan.models.out_size[1]
    drawn = 0.2 if plan.models.preview else 1.0  # drawn previews compress far better than footage
    need = sum(BYTES_PER_PIXEL[spec.output] * pixels * task.frames * (drawn if spec.output == "segment" else 1.0)
               for task in plan.graph if (spec := get_spec(task.stage)).cache and not store.has(keys[task.id]))
    free = store.free_bytes()
    if need > free:
        report(Event("warning", message=f"this render needs about {human_bytes(need)} in the cache at {store.root}, "
                                        f"which has {human_bytes(free)} free: free some with `longvid cache clean "
                                        f"--older-than 7d`, or use --cache DIR on a larger disk"))


def _combined(executions: list[Execution]) -> Execution:
    """One account of several rounds of execution (`--qa-retry`)."""
    out = Execution()
    for e in executions:
        out.ran += [t for t in e.ran if t not in out.ran]
        out.records |= e.records
        out.failures |= e.failures
        out.damaged += e.damaged
        for task, by in e.inline.items():
            out.inline.setdefault(task, []).extend(by)
    out.cached = [t for t in executions[0].cached if t not in out.ran]
    return out
