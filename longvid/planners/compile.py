"""Lower a validated storyboard into a render graph of typed tasks, one function per step.

1. `resolve_models`: the video family, its legal chunk length, what the checkpoint can be conditioned on, how the
   keyframe model takes references, the pipelines' settings and the interpolation backend: worked out once.
2. `reference_tasks`: one per character and place, from the user's images or generated once.
3. Per shot (`plan_shot`):
   a. `keyframe_tasks`: one per keyframe (an implicit one at 0 s from the shot's prompt, unless one is pinned there,
      and one at the end for a first-last-frame model), conditioned on the references of who and where it shows
      and, after the first, on the shot's first keyframe;
   b. `chunk_tasks`: chunks that cover the shot's rendered range at the base rate, each depending on the keyframes
      (or the chunk) it is anchored on, so chunks anchored on keyframes run in parallel;
   c. `interpolate_task`: when the base rate is below the output rate;
   then `reroll_problems`: a shot's `reroll` (another take of a task: a seed of its own) names only keyframes the
   model draws and chunks the shot has.
4. `encode_tasks`: the output cut into H.264 segments (`planners.segments`), each built from the shots it shows.
5. `audio_task` (a model's own sound, LTX-2) and `mix_task` (the storyboard's soundtrack), then `concat_task`: the
   segments joined into the MP4 with the sound track.
6. `plan_memory` (`planners.memory_plan`): every model task's peak memory estimated; with `offload: auto` and a
   known device size, the cheapest settings that fit.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import longvid.timing as timing
from longvid.errors import Problem, StoryboardError
from longvid.families import LATENT_DECODERS, Family, get_family, keyframe_conditioning, local_model_dir
from longvid.gc_pause import without_gc
from longvid.graph import RenderGraph
from longvid.models import resolve_interpolation
from longvid.planners.memory_plan import TaskMemory, plan_memory
from longvid.planners.segments import encode_segments
from longvid.seeds import derive_seed
from longvid.storyboard import ContinuitySpec, PipelineOptions, ShotSpec, StoryboardSpec
from longvid.tasks import (
    Anchor,
    AudioParams,
    ChunkParams,
    ConcatParams,
    DecodeParams,
    DiffusionForcing,
    EncodeParams,
    EntityLora,
    IdentityParams,
    IdentitySample,
    ImageFile,
    InterpolateParams,
    IPAdapter,
    KeyframeLabel,
    KeyframeParams,
    MixParams,
    Piece,
    Pipeline,
    PreviewChunkParams,
    PreviewLabel,
    ReferenceParams,
    RefineParams,
    SharedNoise,
    ShotFrames,
    ShotSound,
    ShotSource,
    SoundFile,
    SoundParams,
    SoundSource,
    Task,
    TimedKeyframe,
)

AUDIO_STEPS, AUDIO_GUIDANCE = 50, 7.0  # a `prompt` sound's defaults, where the storyboard sets none


@dataclass(frozen=True)
class Output:
    """How the video is encoded, where it goes (None when only planning), whether it is the draft (with
    `models.refine`: the draft pass alone, at the draft's size), and the device memory to plan the tasks for."""

    crf: int = 18
    preset: str = "medium"
    path: str | None = None
    draft: bool = False
    device_memory: int | None = None  # bytes on each device, for `offload: auto` (None: not known)
    audio: bool = True  # False: a silent video (`--no-audio`)
    offload: bool = True  # False: the workers are CPUs, which have nowhere to offload to (the plan says so)


@dataclass(frozen=True)
class ModelPlan:
    """Step 1: what the models can do, worked out once for the whole plan."""

    family: Family
    rule: timing.FrameRule
    chunk: int
    abilities: frozenset[str]
    abilities_source: str | None
    keyframe_stage: str
    keyframe_model: str | None
    keyframe_pipeline: Pipeline | None
    chunk_pipeline: Pipeline | None
    factor: float
    interpolation: str
    interpolation_model: str | None
    references: str  # how keyframes take references: preview, ip-adapter, edit, edit-list or text
    size: tuple[int, int]  # the chunks' (width, height): the draft's with `models.refine`
    out_size: tuple[int, int]  # the video's: the draft's with --draft
    refine_pipeline: Pipeline | None = None  # the refine pass's, unless drafting (None for the preview's)
    draft: bool = False

    @property
    def preview(self) -> bool:
        return self.family.name == "preview"

    @property
    def takes_images(self) -> bool:
        return "first" in self.abilities


@dataclass(frozen=True)
class ShotPlan:
    """One shot's place on the timeline and the work that fills it."""

    shot: ShotSpec
    timing: timing.ShotTiming
    base_frames: int
    windows: list[timing.ChunkWindow]
    keyframe_tasks: list[str]
    chunk_tasks: list[str]
    frame_tasks: list[str]  # the tasks whose outputs are its chunks' frames: the chunks, or their decodes
    interpolate_task: str | None
    continuity: ContinuitySpec
    opening_keyframe: str | None  # the colour anchor's reference, when the shot has one
    source: ShotSource
    chunk_spans: list[timing.ChunkSpan]  # where its chunks lie on the output timeline (seam QA)


@dataclass(frozen=True)
class RenderPlan:
    """What `compile_storyboard` returns: the graph, and the layout the manifest and the QA read."""

    spec: StoryboardSpec
    graph: RenderGraph
    shots: list[ShotPlan]
    models: ModelPlan
    encode_tasks: list[str]
    output: Output
    notes: list[str] = field(default_factory=list)
    memory: list[TaskMemory] = field(default_factory=list)  # every model task's estimate (step 6)

    @property
    def total_frames(self) -> int:
        return self.spec.total_frames

    @property
    def identity_tasks(self) -> list[str]:
        return [t.id for t in self.graph if t.kind == "identity"]

    @property
    def chunk_frames(self) -> int:
        return self.models.chunk

    @property
    def frame_rule(self) -> timing.FrameRule:
        return self.models.rule

    @property
    def factor(self) -> float:
        return self.models.factor


@without_gc
def compile_storyboard(spec: StoryboardSpec, reseed: Mapping[str, int] | None = None,
                       output: Output | None = None) -> RenderPlan:
    """Lower `spec` into typed tasks with explicit dependencies and frame windows.

    Args:
        reseed: chunk or keyframe task id -> how many times the QA has asked for it again; each time gives it a
            new seed (on top of the take the storyboard's `reroll` asks of it).
        output: how the video is encoded (the encode tasks' settings), where it goes, and whether it is the draft.

    Raises:
        StoryboardError: what the storyboard asks of its models that only the plan can see.
    """
    output = output or Output()
    notes: list[str] = []
    models = resolve_models(spec, notes, output.draft)
    tasks: list[Task] = reference_tasks(spec, models, notes)
    shots = [plan_shot(spec, models, i, shot, span, tasks, notes, reseed or {})
             for i, (shot, span) in enumerate(zip(spec.shots, spec.timings(), strict=True))]
    if trimmed := trim_note(shots):
        notes.append(trimmed)
    problems = [p for i, sp in enumerate(shots) for p in reroll_problems(spec, i, sp, tasks)]
    if problems:
        raise StoryboardError(problems)
    tasks += identity_tasks(spec, shots, tasks)
    encodes = encode_tasks(spec, shots, output, models.out_size)
    tasks += encodes
    sound = audio_task(spec, models, shots, encodes) if output.audio else None
    tasks += [sound] if sound else []
    mix = mix_tasks(spec, shots, sound) if output.audio else []
    tasks += mix
    tasks.append(concat_task(spec, encodes, output, mix[-1] if mix else sound))
    tasks, memory = plan_memory(spec, tasks, output.device_memory, notes, output.offload)
    return RenderPlan(spec, RenderGraph(tasks), shots, models, [t.id for t in encodes], output, notes, memory)


# ---------------------------------------------------------------------------------------------------- 1. models


def resolve_models(spec: StoryboardSpec, notes: list[str], draft: bool = False) -> ModelPlan:
    """Family, chunk length, checkpoint abilities, pipeline settings, the draft and refine passes and the
    interpolation backend."""
    video = spec.models.video
    family = get_family(video.family)
    rule = timing.FrameRule.parse(family.frame_rule)
    asked = video.frames_asked
    chunk = rule.at_least(asked)
    if chunk != asked:
        notes.append(f"chunk_frames {asked} -> {chunk}: the {video.family} backend takes {rule} frames")
    abilities, source = spec.video_abilities()
    preview = family.name == "preview"
    if not preview and source is None and len(family.pipelines) > 1:
        notes.append(f"{video.model}: taken for a model that conditions on {', '.join(sorted(abilities - {'needs-last'}))}"
                     f"{' (first-last-frame)' if 'needs-last' in abilities else ''} "
                     f"(its model_index.json is not on this machine); the worker checks when it loads it")
    if "first" not in abilities:
        notes.append(f"{video.model} generates from text only: no keyframes are drawn")
    elif not preview and spec.models.keyframes.engine == "preview":
        notes.append("no keyframe model (models.keyframes.model): chunks start from text or from keyframe images")
    factor = spec.interpolation_factor
    interp = spec.models.interpolation
    backend, interp_model, why = resolve_interpolation(interp.backend, interp.model)
    if interp.backend == "rife-ncnn" and interp_model:
        interp_model = str((spec.base_dir / interp_model).resolve())
    if factor > 1 and why:
        notes.append(why)
    chunk_pipeline = None
    if not preview:
        chunk_pipeline = _pipeline(spec, video, family.steps, family.guidance).model_copy(
            update={"family": family.name, "motion_adapter": video.motion_adapter,
                    "decode_chunk_size": family.decode_chunk_size})
    keyframes = spec.models.keyframes
    references, _ = keyframe_conditioning(keyframes.model, spec.base_dir, keyframes.ip_adapter is not None)
    keyframe_pipeline = _pipeline(spec, keyframes, steps=30, guidance=5.0)
    if keyframe_pipeline is not None:
        keyframe_pipeline = keyframe_pipeline.model_copy(update={
            "ip_adapter": _ip_adapter(spec, keyframes.ip_adapter) if references == "ip-adapter" else None,
            "entity_loras": [_entity_lora(spec, name) for name, e in spec.entities.items() if e.lora]})
    if references == "text" and spec.entities and keyframes.engine == "diffusers":
        notes.append(f"{keyframes.model} takes no reference images (an IP-Adapter, models.keyframes.ip_adapter, or an "
                     f"image-edit model would): identity rests on the descriptions alone")
    size, refine, refine_pipeline = spec.draft_size, spec.models.refine, None
    if refine is None and draft:
        notes.append("--draft without models.refine: the draft is the whole render")
    elif refine is not None:
        notes.append(f"draft at {size[0]}x{size[1]}" + (", stopping there (--draft)" if draft else
                                                          f", refined to {spec.width}x{spec.height}"))
        if chunk_pipeline is not None and not draft:
            folder = local_model_dir(refine.model, spec.base_dir) if refine.model else None
            refine_pipeline = chunk_pipeline.model_copy(update={"steps": refine.steps or chunk_pipeline.steps} | (
                {"path": str(folder) if folder else refine.model} if refine.model else {}))
    return ModelPlan(family, rule, chunk, abilities, source, f"{keyframes.engine}.keyframe", keyframes.model,
                     keyframe_pipeline, chunk_pipeline, factor, backend, interp_model, references, size,
                     size if draft else (spec.width, spec.height), refine_pipeline, draft)


def _ip_adapter(spec: StoryboardSpec, options) -> IPAdapter:
    folder = local_model_dir(options.model, spec.base_dir)
    return IPAdapter(model=options.model, path=str(folder) if folder else options.model, subfolder=options.subfolder,
                     weight_name=options.weight_name, image_encoder=options.image_encoder, scale=options.scale)


def _entity_lora(spec: StoryboardSpec, name: str) -> EntityLora:
    lora = spec.entities[name].lora
    local = spec.base_dir / lora.path
    return EntityLora(name=name, lora=lora.path, path=str(local.resolve()) if local.exists() else lora.path,
                      weight=lora.weight, weight_name=lora.weight_name)


def _pipeline(spec: StoryboardSpec, options: PipelineOptions, steps: int, guidance: float) -> Pipeline | None:
    """The settings a diffusers stage loads and runs its pipeline with; ``_path`` is where the model is here."""
    if not options.model:
        return None
    folder = local_model_dir(options.model, spec.base_dir)
    settings = options.model_dump(mode="json", exclude={"model", "family", "chunk_frames", "motion_adapter", "backend", "pipeline",
                                                         "max_seconds",
                                                         "ip_adapter"})
    if settings["offload"] == "auto":  # planned per task, for the device's memory, in `plan_memory`
        settings["offload"] = "none"
    return Pipeline.model_validate(settings | {
        "steps": options.steps or steps, "guidance": options.guidance if options.guidance is not None else guidance,
        "_path": str(folder) if folder else options.model})


# ---------------------------------------------------------------------------------------------------- 2. references

REFERENCE_SIZE = 512  # the side of a reference (square), at most


def reference_tasks(spec: StoryboardSpec, models: ModelPlan, notes: list[str]) -> list[Task]:
    """Step 2: ``reference:NAME`` for every character and place a shot shows: its images, or one generated with the
    keyframe model (a character sheet, an establishing view), seeded from the storyboard seed and the name. One no
    shot names gets none, and a note says so (it is likely a typo or a cut scene, and would cost a model call)."""
    size = min(REFERENCE_SIZE, max(spec.width, spec.height)) // 16 * 16
    shown = {name for shot in spec.shots for name in spec.mentions(shot)}
    unused = [name for name in spec.entities if name not in shown]
    if unused:
        notes.append(f"{', '.join(_entity(spec, n) for n in unused)}: in no shot's prompt (write `{{{unused[0]}}}` "
                     f"in one), so no reference is {'made' if len(unused) == 1 else 'made for them'}")
    tasks = []
    for name, entity in spec.entities.items():
        if name not in shown:
            continue
        kind = "character" if name in spec.characters else "place"
        prompt = (f"character sheet of {entity.description}, full figure, neutral pose, plain background"
                  if kind == "character" else f"establishing view of {entity.description}, no people")
        images = [_image(spec, path) for path in entity.references]
        params = ReferenceParams(name=name, entity=kind, description=entity.description,
                                 prompt=f"{prompt}, {spec.style}" if spec.style else prompt, images=images, size=size,
                                 pipeline=models.keyframe_pipeline if not images else None)
        model = models.keyframe_model if not images else None
        tasks.append(Task(f"reference:{name}", "reference", models.keyframe_stage.replace(".keyframe", ".reference"),
                          None, 0, derive_seed(spec.seed, name, "reference", 0), (0, 1), "image", model, params))
    return tasks


def _entity(spec: StoryboardSpec, name: str) -> str:
    return f"{'character' if name in spec.characters else 'place'} {name!r}"


# ---------------------------------------------------------------------------------------------------- 3. shots


@dataclass
class _Keyframes:
    """A shot's keyframes: task ids, times in seconds, and frames in the shot's rendered range."""

    ids: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    cards: list[dict] = field(default_factory=list)  # the preview's: what each card shows (none: a user's image)


def plan_shot(spec: StoryboardSpec, models: ModelPlan, index: int, shot: ShotSpec, span: timing.ShotTiming,
              tasks: list[Task], notes: list[str], reseed: Mapping[str, int]) -> ShotPlan:
    """Steps 3a-3c for one shot; its tasks are appended to `tasks`."""
    cont = spec.continuity_for(shot)
    if (moved := spec.overlap_note(shot)) and moved not in notes:
        notes.append(moved)
    if models.preview and cont.strategy in ("shared-noise", "latent-blend", "prefix"):
        notes.append(f"shot {shot.shot_id!r}: the preview draws frames from time alone, so {cont.strategy} acts as "
                     f"overlap-blend")
    keys = keyframe_tasks(spec, models, shot, span, cont, tasks, notes, reseed)
    base_frames = timing.base_frame_count(span.rendered, models.factor)
    opening = keys.ids[0] if keys.ids and keys.times[0] * spec.fps < 0.5 else None
    windows, qa_windows = chunk_tasks(spec, models, index, shot, span, cont, keys, base_frames, opening, tasks, notes,
                                      reseed)
    chunk_ids = [f"chunk:{shot.shot_id}:{w.index}" for w in windows]
    frame_ids = refine_tasks(spec, models, shot, [frames_task(models, c) for c in chunk_ids], tasks)
    # colours are anchored to the keyframes a chunk moves between (at base frames); the preview's chunks agree
    # where they overlap, so they have nothing to align
    anchors = [(k, min(base_frames - 1, round(f / models.factor))) for k, f in zip(keys.ids, keys.frames, strict=True)]
    blended = ShotFrames(chunks=frame_ids, windows=[(w.start, w.frames, w.used, w.overlap) for w in windows],
                         ramp=cont.ramp, align="none" if models.preview else cont.align,
                         colour_anchor=cont.colour_anchor, keyframes=anchors if cont.colour_anchor else [])
    interpolate = interpolate_task(spec, models, shot, span, base_frames, blended, tasks)
    source = ShotSource(shot=shot.shot_id, interpolated=interpolate) if interpolate else \
        ShotSource(shot=shot.shot_id, blended=blended)
    spans = timing.chunk_spans(qa_windows, span.render_start, models.factor, range(span.start, span.end))
    return ShotPlan(shot, span, base_frames, windows, keys.ids, chunk_ids, frame_ids, interpolate, cont, opening,
                    source, spans)


def trim_note(shots: list[ShotPlan], listed: int = 6) -> str | None:
    """One note for every shot whose last chunk generates more frames than the shot keeps (a model's frame rule
    rounds chunks up): which shots, and how many frames each generates and keeps."""
    trims = [(sp.shot.shot_id, sp.windows[-1].frames, sp.windows[-1].used) for sp in shots
             if sum(w.trimmed for w in sp.windows)]
    if not trims:
        return None
    each = ", ".join(f"{sid!r} {frames} -> {used}" for sid, frames, used in trims[:listed])
    more = f" and {len(trims) - listed} more" if len(trims) > listed else ""
    return (f"the last chunk of {len(trims)} shot{'s' * (len(trims) > 1)} generates more frames than it keeps "
            f"(the rest are trimmed to the shot's length): {each}{more}")


def task_seed(seed: int, shot_id: str, kind: str, index: int, take: int = 0, again: int = 0) -> int:
    """The seed of a shot's keyframe or chunk (or of its shared noise): the seeding rule's own for take 0 and no
    QA retry, so existing renders keep their keys; a take (`reroll`) and each QA retry add to the kind, so the two
    compose and every combination draws anew."""
    variant = kind + (f"#take{take}" if take else "") + (f"#qa{again}" if again else "")
    return derive_seed(seed, shot_id, variant, index)


def keyframe_tasks(spec: StoryboardSpec, models: ModelPlan, shot: ShotSpec, span: timing.ShotTiming,
                   cont: ContinuitySpec, tasks: list[Task], notes: list[str], reseed: Mapping[str, int]) -> _Keyframes:
    """Step 3a: keyframes sorted by time; the shot's own prompt opens it unless a keyframe is pinned at 0 s; a model
    that needs a keyframe at the end of every chunk gets one at the shot's end when the storyboard gives none."""
    sid, seed = shot.shot_id, spec.shot_seed(shot)
    pinned = spec.keyframes_of(shot, span.frames)  # their indices are their ids, whichever are drawn
    if pinned[-1].at > 0 and all(kf is not pinned[-1] for kf in shot.keyframes):  # the one at the end is implied
        notes.append(f"shot {sid!r}: a keyframe is drawn at its end ({shot.duration:g} s) for the first-last-frame "
                     f"model {spec.models.video.model}")
    # a real model is anchored only on real images: drawn by an image model, or the user's
    usable = [(k, kf) for k, kf in enumerate(pinned)
              if models.preview or (models.takes_images and (models.keyframe_pipeline or kf.image))]
    if not models.preview and cont.strategy in ("prefix", "diffusion-forcing"):  # autoregressive: the opening only
        usable = [(k, kf) for k, kf in usable if timing.seconds_to_frames(kf.at, spec.fps) == 0]
    keys = _Keyframes()
    negative = _negative(spec, shot)
    shown = spec.mentions(shot)
    references = [f"reference:{name}" for name in shown] if models.references != "text" else []
    loras = [lora for lora in (models.keyframe_pipeline.entity_loras if models.keyframe_pipeline else [])
             if lora.name in shown]
    triggers = ", ".join(t for name in shown if (e := spec.entities[name]).lora and (t := e.lora.trigger))
    for k, kf in usable:
        frame = min(timing.seconds_to_frames(kf.at, spec.fps), span.frames - 1)
        task_id = f"keyframe:{sid}:{k}"
        drawn = not kf.image  # a user's image is used as it is
        prompt = _full_prompt(spec, kf.prompt or shot.prompt)
        params = KeyframeParams(
            width=spec.width, height=spec.height, negative_prompt=negative,
            prompt=f"{triggers}, {prompt}" if triggers and drawn and loras else prompt, image=_image(spec, kf.image),
            label=KeyframeLabel(shot=sid, keyframe=k, timecode=timing.frames_to_timecode(span.start + frame, spec.fps)),
            pipeline=models.keyframe_pipeline if drawn else None, references=references if drawn else [],
            opening=keys.ids[0] if keys.ids and drawn else None,
            loras=loras if drawn else [], camera=shot.camera if models.preview and drawn else None)
        take = shot.take("keyframe", k) if drawn else 0  # a take of a user's image is refused in step 3e
        again = reseed.get(task_id, 0)  # the identity QA asked for it again
        tasks.append(Task(task_id, "keyframe", models.keyframe_stage, sid, k,
                          task_seed(seed, sid, "keyframe", k, take, again),
                          (span.head + frame, span.head + frame + 1), "shot-output", models.keyframe_model, params,
                          tuple(params.reads()), take))
        keys.ids.append(task_id)
        keys.times.append(kf.at)
        keys.frames.append(span.head + frame)
        keys.cards.append({"card": params.prompt, "references": len(params.references)} if drawn else {})
    return keys


def chunk_tasks(spec: StoryboardSpec, models: ModelPlan, index: int, shot: ShotSpec, span: timing.ShotTiming,
                cont: ContinuitySpec, keys: _Keyframes, base_frames: int, opening: str | None, tasks: list[Task],
                notes: list[str], reseed: Mapping[str, int]
                ) -> tuple[list[timing.ChunkWindow], list[tuple[int, int, int]]]:
    """Step 3b: chunks over the rendered range at the base rate.

    Returns:
        The windows of the chunk tasks, and the ``(start, end, overlap)`` of every chunk for the seam QA (they
        differ under latent-blend, where one task denoises all of a shot's chunks).
    """
    sid, seed = shot.shot_id, spec.shot_seed(shot)
    family, rule, chunk, abilities = models.family, models.rule, models.chunk, models.abilities
    overlap = cont.overlap_frames

    def chunk_seed(i: int) -> int:
        return task_seed(seed, sid, "chunk", i, shot.take("chunk", i), reseed.get(f"chunk:{sid}:{i}", 0))

    def noise_seed(i: int) -> int:
        # under shared-noise and latent-blend the initial noise comes from this seed, not the chunk's: another take
        # (or QA retry) of chunk i must draw new noise, or it would come out the same; chunks on the same take
        # still share theirs
        return task_seed(seed, sid, "noise", 0, shot.take("chunk", i), reseed.get(f"chunk:{sid}:{i}", 0))

    # keyframes by the base frame they fall on; later keyframes split the shot where a chunk can end on one.
    # A keyframe on the shot's last frame closes its last chunk: with a crossfade out, at the end of the handle.
    last_frame = span.head + span.frames - 1
    key_at = {base_frames - 1 if f == last_frame else min(base_frames - 1, round(f / models.factor)): keys.ids[i]
              for i, f in enumerate(keys.frames)}
    if not models.preview and abilities & {"last", "any"} and cont.strategy != "prefix":
        spans = timing.span_windows(base_frames, [j for j in key_at if 0 < j < base_frames - 1 and key_at[j]
                                                  != opening], chunk, overlap, rule)
    else:
        spans = [timing.chunk_windows(base_frames, chunk, overlap, rule)]
    windows = [w for group in spans for w in group]
    if "needs-last" in abilities and (open_ended := [w.index for group in spans for w in group
                                                       if w is not group[-1] or key_at.get(w.end - 1) is None]):
        raise StoryboardError([spec.locate(Problem(
            f"{spec.models.video.model} is a first-last-frame model: every chunk must end on a keyframe, but "
            f"chunk(s) {open_ended} of shot {sid!r} do not: its keyframes are more than chunk_frames ({chunk}) "
            f"frames apart. Add keyframes between them, raise chunk_frames, or use an image-to-video model",
            ("shots", index)))])
    negative = _negative(spec, shot)
    base_fps = spec.fps / models.factor
    prompt = _full_prompt(spec, shot.prompt)

    if models.preview:
        t0, dt = -span.head / spec.fps, models.factor / spec.fps
        for w in windows:
            first, last = t0 + w.start * dt, t0 + (w.end - 1) * dt
            lo = max(0, bisect_right(keys.times, first + 1e-9) - 1)
            hi = min(len(keys.ids), bisect_left(keys.times, last - 1e-9) + 1)
            params = PreviewChunkParams(
                width=models.size[0], height=models.size[1], prompt=prompt, camera=shot.camera,
                duration=shot.duration,
                fps=spec.fps, t0=t0, dt=dt, start=w.start, frames=w.frames, used=w.used, overlap=w.overlap,
                keyframes=[TimedKeyframe(task=keys.ids[i], at=keys.times[i], **keys.cards[i]) for i in range(lo, hi)],
                label=PreviewLabel(shot=sid, first_output_frame=span.render_start, factor=models.factor))
            tasks.append(Task(f"chunk:{sid}:{w.index}", "chunk", "preview.chunk", sid, w.index, chunk_seed(w.index),
                              (w.start, w.end), "shot-base", None, params, tuple(keys.ids[lo:hi]),
                              shot.take("chunk", w.index)))
        return windows, [(w.start, w.end, w.overlap) for w in windows]

    look = {"width": models.size[0], "height": models.size[1], "negative_prompt": negative, "fps": base_fps,
            "prompt": prompt + (f", camera {shot.camera}" if shot.camera != "static" else ""),
            "pipeline": models.chunk_pipeline}
    if family.name in LATENT_DECODERS:  # the VAE's decode settings are the decode task's: its key, not the chunk's
        look["pipeline"] = models.chunk_pipeline.model_copy(update={"vae_tiling": False, "vae_slicing": False})
    stage = f"{family.name}.chunk"
    if cont.strategy == "latent-blend":
        # one task denoises the whole shot's chunks together and returns the shot's frames
        params = ChunkParams(**look, start=0, frames=base_frames, used=base_frames, overlap=0, ramp=cont.ramp,
                             windows=[(w.start, w.frames, w.used, w.overlap) for w in windows],
                             noise=SharedNoise(seed=noise_seed(0), mode="repeat", offset=0,
                                               period=family.latent_frames(windows[-1].start + windows[-1].frames)))
        tasks.append(Task(f"chunk:{sid}:0", "chunk", stage, sid, 0, chunk_seed(0), (0, base_frames), "shot-base",
                          spec.models.video.model, params, take=shot.take("chunk", 0)))
        tasks += decode_tasks(models, tasks[-1:])
        return [timing.ChunkWindow(0, 0, base_frames, base_frames, 0)], [(w.start, w.end, w.overlap) for w in windows]
    chunk_ids = [frames_task(models, f"chunk:{sid}:{w.index}") for w in windows]  # what a later chunk reads
    # a model that takes references in the chunk itself (Wan VACE) gets those of who and where the shot shows
    references = [f"reference:{name}" for name in spec.mentions(shot)] if "references" in abilities else []
    for w in windows:
        anchors = _anchors(w, windows, spans, chunk_ids, key_at, opening, abilities) if models.takes_images else []
        if cont.strategy == "prefix":  # continue from the previous chunk's frames at the start of this one
            anchors = [a.model_copy(update={"count": min(cont.prefix_frames, w.overlap or 1),
                                            "strength": cont.prefix_strength, "noise": cont.prefix_noise})
                       if a.frame is not None else a for a in anchors]
        forcing = None
        if cont.strategy == "diffusion-forcing":  # continue the previous chunk's overlap, all of it
            anchors = [a.model_copy(update={"count": w.overlap}) if a.frame is not None else a for a in anchors]
            forcing = DiffusionForcing(addnoise_condition=cont.addnoise_condition, ar_step=cont.ar_step,
                                       causal_block_size=cont.causal_block_size)
        noise = None
        if cont.strategy == "shared-noise":  # latent frame k of the shot has the same noise in every chunk
            noise = SharedNoise(seed=noise_seed(w.index), mode=cont.noise,
                                offset=w.start // family.temporal_compression, period=family.latent_frames(chunk))
        params = ChunkParams(**look, start=w.start, frames=w.frames, used=w.used, overlap=w.overlap, anchors=anchors,
                             references=references, noise=noise, forcing=forcing)
        tasks.append(Task(f"chunk:{sid}:{w.index}", "chunk", stage, sid, w.index, chunk_seed(w.index),
                          (w.start, w.end), "shot-base", spec.models.video.model, params, tuple(params.reads()),
                          shot.take("chunk", w.index)))
        tasks += decode_tasks(models, tasks[-1:])
    return windows, [(w.start, w.end, w.overlap) for w in windows]


def frames_task(models: ModelPlan, chunk: str) -> str:
    """The task whose output is a chunk's frames: its decode, for a family whose chunks store latents."""
    return chunk.replace("chunk:", "decode:", 1) if models.family.name in LATENT_DECODERS else chunk


def decode_tasks(models: ModelPlan, chunks: list[Task]) -> list[Task]:
    """A decode task for each chunk of a family whose chunks store latents: the VAE alone, on any device, with
    the pipeline's VAE settings (tiling and slicing are part of its key)."""
    if models.family.name not in LATENT_DECODERS:
        return []
    out, settings = [], models.chunk_pipeline
    for chunk in chunks:
        p: ChunkParams = chunk.params
        params = DecodeParams(family=models.family.name, latents=chunk.id, path=settings.path, dtype=settings.dtype,
                              tiling=settings.vae_tiling, slicing=settings.vae_slicing, width=p.width,
                              height=p.height, frames=p.frames)
        out.append(Task(frames_task(models, chunk.id), "decode", "decode", chunk.shot, chunk.index, None,
                        chunk.window, chunk.frame_space, chunk.model, params, (chunk.id,)))
    return out


def refine_tasks(spec: StoryboardSpec, models: ModelPlan, shot: ShotSpec, drafts: list[str], tasks: list[Task]
                 ) -> list[str]:
    """Step 3b', with `models.refine` (not drafting): each draft chunk's frames upscaled to the storyboard's size
    and re-denoised there; returns the tasks whose outputs are the shot's chunks' frames."""
    if spec.models.refine is None or models.draft:
        return drafts
    sid, refine = shot.shot_id, spec.models.refine
    by_id = {t.id: t for t in tasks[-2 * len(drafts):]}  # the shot's chunks and their decodes came last
    folder = local_model_dir(refine.upsampler, spec.base_dir) if refine.upsampler else None
    upsampler = str(folder) if folder else refine.upsampler
    out = []
    for i, draft in enumerate(drafts):
        source = by_id[draft]
        chunk = by_id.get(getattr(source.params, "latents", None), source)  # a decode's prompt is its chunk's
        params = RefineParams(source=draft, width=spec.width, height=spec.height, frames=source.params.frames,
                              prompt=chunk.params.prompt, negative_prompt=_negative(spec, shot),
                              strength=refine.strength, pipeline=models.refine_pipeline,
                              fps=spec.fps / models.factor, upsampler=refine.upsampler, upsampler_path=upsampler)
        out.append(Task(f"refine:{sid}:{i}", "refine", "preview.refine" if models.preview else "refine", sid, i,
                        derive_seed(spec.shot_seed(shot), sid, "refine", i), source.window, source.frame_space,
                        None if models.preview else refine.model or spec.models.video.model, params, (draft,)))
    tasks += out
    return [t.id for t in out]


def _anchors(w: timing.ChunkWindow, windows: list[timing.ChunkWindow], spans: list[list[timing.ChunkWindow]],
             chunk_ids: list[str], key_at: dict[int, str], opening: str | None, abilities: frozenset[str]) -> list[Anchor]:
    """What chunk `w` is conditioned on.

    A span's first chunk starts on a keyframe, so it depends on no other chunk; a later chunk of the span starts
    on the previous chunk's frame at its own first frame; where the model takes a last frame, a span's last chunk
    also ends on the keyframe that closes the span.
    """
    span = next(group for group in spans if w in group)
    if w is span[0]:
        start = key_at.get(w.start) if w.start else opening
        anchors = [Anchor(task=start, index=0)] if start else []  # no opening image: the chunk starts from text
    else:
        prev = windows[w.index - 1]
        anchors = [Anchor(task=chunk_ids[prev.index], frame=w.start - prev.start, index=0)]
    closing = key_at.get(w.end - 1)
    if w is span[-1] and abilities & {"last", "any"} and closing and closing not in [a.task for a in anchors]:
        anchors.append(Anchor(task=closing, index=w.used - 1))
    return anchors


def interpolate_task(spec: StoryboardSpec, models: ModelPlan, shot: ShotSpec, span: timing.ShotTiming,
                     base_frames: int, blended: ShotFrames, tasks: list[Task]) -> str | None:
    """Step 3c: the shot's chunks blended and interpolated up to the output rate (None: no interpolation)."""
    if models.factor <= 1:
        return None
    task_id = f"interpolate:{shot.shot_id}"
    params = InterpolateParams(backend=models.interpolation, model=models.interpolation_model, factor=models.factor,
                               base_frames=base_frames, frames=span.rendered,
                               scene_threshold=spec.models.interpolation.scene_threshold, source=blended)
    tasks.append(Task(task_id, "interpolate", "interpolate", shot.shot_id, 0, None, (0, span.rendered), "shot-output",
                      models.interpolation_model, params, tuple(params.reads())))
    return task_id


# ---------------------------------------------------------------------------------------------------- 3d. identity QA

IDENTITY_SAMPLES = 3  # frames scored per chunk: its first, middle and last kept frame


def identity_tasks(spec: StoryboardSpec, shots: list[ShotPlan], tasks: list[Task]) -> list[Task]:
    """Step 3d, with `qa.identity_model`: ``identity:SHOT`` for each shot that shows a character, scoring its
    keyframes and a few frames of each chunk against the references of its characters."""
    model = spec.qa.identity_model
    if not model:
        return []
    folder = local_model_dir(model, spec.base_dir)
    by_id = {t.id: t for t in tasks}
    out = []
    for sp in shots:
        characters = [n for n in spec.mentions(sp.shot) if n in spec.characters]
        if not characters:
            continue
        first = sp.timing.render_start  # the video's frame of the shot's first rendered frame
        samples = [IdentitySample(task=k, frame=0, output_frame=first + by_id[k].window[0]) for k in sp.keyframe_tasks]
        for c in sp.frame_tasks:
            lo, hi = by_id[c].window
            picks = sorted({0, (hi - lo - 1) // 2, hi - lo - 1})[:IDENTITY_SAMPLES]
            samples += [IdentitySample(task=c, frame=j, output_frame=first + round((lo + j) * spec.interpolation_factor))
                        for j in picks]
        params = IdentityParams(shot=sp.shot.shot_id, model=model, path=str(folder) if folder else model,
                                references=[f"reference:{n}" for n in characters], samples=samples)
        out.append(Task(f"identity:{sp.shot.shot_id}", "identity", "identity", sp.shot.shot_id, 0, None, (0, 1),
                        "image", model, params, tuple(params.reads())))
    return out


# ---------------------------------------------------------------------------------------------------- 3e. takes


def reroll_problems(spec: StoryboardSpec, index: int, plan: ShotPlan, tasks: list[Task]) -> list[Problem]:
    """Step 3e: each `reroll` entry of shot `index` must name one of its keyframes the keyframe model draws (a
    user's image is used as it is: it has no other take) or one of its chunks."""
    if not plan.shot.reroll:
        return []
    sid = plan.shot.shot_id
    user_images = {t.id for t in tasks if t.kind == "keyframe" and t.shot == sid and t.params.image is not None}
    takeable = [t for t in plan.keyframe_tasks if t not in user_images] + plan.chunk_tasks
    known = ", ".join(t.replace(f":{sid}:", ":", 1) for t in takeable) or "none"
    problems = []
    for key in plan.shot.reroll:
        kind, i = key.split(":")
        task_id = f"{kind}:{sid}:{i}"
        if task_id in user_images:
            why = f"`{key}` of shot {sid!r} is the user's image, used as it is: it has no other take"
        elif task_id not in takeable:
            why = f"shot {sid!r} has no task `{key}`"
        else:
            continue
        problems.append(spec.locate(Problem(f"`reroll`: {why}; the tasks it can take again: {known}",
                                            ("shots", index, "reroll", key))))
    return problems


# ---------------------------------------------------------------------------------------------------- 4. encode


def encode_tasks(spec: StoryboardSpec, shots: list[ShotPlan], output: Output, size: tuple[int, int]) -> list[Task]:
    """Step 4: one task per H.264 segment; see `planners.segments` for where the boundaries fall.

    Each segment also measures the seams in its frames. A pair of frames across a segment boundary inside a shot
    is measured by exactly one side, the one that already depends on both frames' shots: a solo piece measures
    the pair at its start when the piece before is a solo piece of the same shot (`lead_in`); a crossfade measures
    the pairs at both its ends (`lead_in`, `lead_out`), since it depends on both of its shots.
    """
    timings = [s.timing for s in shots]
    # where a chunk takes over alone, for shots whose frames are blended straight from their chunks
    takeovers = {i: [s.timing.render_start + w.start + w.overlap for w in s.windows[1:]]
                 for i, s in enumerate(shots) if s.interpolate_task is None}
    segments = encode_segments(timing.timeline_segments(timings), timings, takeovers, spec.fps)
    cuts = [t.start for t in timings] + [timings[-1].end]
    # warp errors (optical flow, the costly measure) on the first, middle and last pairs of each seam
    seam_frames = {t for s in shots for c in s.chunk_spans if c.seam_pairs
                   for t in {c.seam_pairs[0], c.seam_pairs[len(c.seam_pairs) // 2], c.seam_pairs[-1]}}
    tasks, solo_count = [], dict.fromkeys(range(len(shots)), 0)
    for n, seg in enumerate(segments):
        before = segments[n - 1] if n else None
        after = segments[n + 1] if n + 1 < len(segments) else None
        lead_in = lead_out = None
        if before is not None and before.b is None and _shot_at(cuts, seg.start - 1) == _shot_at(cuts, seg.start):
            lead_in = _piece(shots, before.a, before.a_offset + before.frames - 1, 1)
        if seg.b is not None and after is not None and after.b is None and \
                _shot_at(cuts, seg.end) == _shot_at(cuts, seg.end - 1):
            lead_out = _piece(shots, after.a, after.a_offset, 1)
        first = seg.start - (lead_in is not None)
        stop = seg.end + (lead_out is not None)
        runs: list[list] = []
        for t in range(first, stop):
            sid = shots[_shot_at(cuts, t)].shot.shot_id
            if runs and runs[-1][0] == sid:
                runs[-1][1] += 1
            else:
                runs.append([sid, 1])
        params = EncodeParams(width=size[0], height=size[1], fps=spec.fps, crf=output.crf, preset=output.preset,
                              pieces=[_piece(shots, seg.a, seg.a_offset, seg.frames, seg.b, seg.b_offset)],
                              lead_in=lead_in, lead_out=lead_out, qa_shots=[(sid, k) for sid, k in runs],
                              qa_seams=[t - first for t in range(first + 1, stop) if t in seam_frames])
        shot_a = shots[seg.a].shot.shot_id
        if seg.b is None:
            task_id = f"encode:{shot_a}:{solo_count[seg.a]}"
            solo_count[seg.a] += 1
        else:
            task_id = f"encode:{shot_a}>{shots[seg.b].shot.shot_id}"
        tasks.append(Task(task_id, "encode", "encode", shot_a, n, None, (seg.start, seg.end), "output", None, params,
                          tuple(params.reads())))
    return tasks


def _shot_at(cuts: list[int], frame: int) -> int:
    return bisect_right(cuts, frame) - 1


def _piece(shots: list[ShotPlan], a: int, a_offset: int, frames: int, b: int | None = None, b_offset: int = 0) -> Piece:
    # each side carries only the chunks its frames need: a segment's size (and its key) does not grow with the shot
    source_a = shots[a].source.over(a_offset, a_offset + frames)
    if b is None:
        return Piece(frames=frames, a=source_a, a_offset=a_offset)
    return Piece(frames=frames, a=source_a, a_offset=a_offset, b=shots[b].source.over(b_offset, b_offset + frames),
                 b_offset=b_offset, weights=timing.ramp(frames, "linear"))


# ---------------------------------------------------------------------------------------------------- 5. concat


def audio_task(spec: StoryboardSpec, models: ModelPlan, shots: list[ShotPlan], encodes: list[Task]) -> Task | None:
    """Step 5a, for a model that makes sound with its picture (LTX-2): the sound track, laid out by the segments'
    pieces, each shot's sound blended from its chunks' with the picture's ramps."""
    if "sound" not in models.abilities or models.preview:
        return None
    sounds = [ShotSound(shot=sp.shot.shot_id, factor=models.factor,
                        blend=ShotFrames(chunks=sp.chunk_tasks, windows=[(w.start, w.frames, w.used, w.overlap)
                                                                         for w in sp.windows],
                                         ramp=sp.continuity.ramp)) for sp in shots]
    params = AudioParams(fps=spec.fps, frames=spec.total_frames, shots=sounds,
                         pieces=[piece for task in encodes for piece in task.params.pieces])
    return Task("audio", "audio", "audio", None, 0, None, (0, spec.total_frames), "output", None, params,
                tuple(params.reads()))


def mix_tasks(spec: StoryboardSpec, shots: list[ShotPlan], sound: Task | None) -> list[Task]:
    """Step 5b, for a storyboard with sound of its own: a task per `prompt` sound, then the soundtrack (`mix`, last),
    every source placed in samples on the timeline. A shot's sound starts on its first rendered frame and crossfades
    over the same frames as its picture; a voice line starts `at` seconds after its shot's cut; the music runs under
    the whole video. The model's own sound (LTX-2), where there is one, is one more source."""
    if not spec.has_sound:
        return []
    audio = spec.audio
    generated: list[Task] = []

    def origin(role: str, owner: str, s, seconds: float) -> dict:
        """Where a sound comes from: its file, or a task that generates it (added to `generated`)."""
        if s.file is not None:
            return {"file": _sound_file(spec, s.file)}
        options = spec.models.audio if role == "sound" else spec.models.music
        task_id = f"sound:{owner}" if role == "sound" else "music"
        params = SoundParams(role=role, owner=owner, base_seed=spec.seed, prompt=spec.expand(s.prompt),
                             negative_prompt=spec.negative_prompt, seconds=seconds,
                             lyrics=getattr(s, "lyrics", None), bpm=getattr(s, "bpm", None),
                             pipeline=_pipeline(spec, options, AUDIO_STEPS, AUDIO_GUIDANCE),
                             pipeline_class=options.pipeline, max_seconds=options.max_seconds)
        generated.append(Task(task_id, "sound", "diffusers.sound", owner if role == "sound" else None, 0,
                              derive_seed(spec.seed, owner, role, 0), (0, 1), "output", options.model, params))
        return {"task": task_id}

    rate = audio.sample_rate

    def sample(frame: int) -> int:  # frame boundaries land on whole samples, the same ones everywhere
        return round(frame * rate / spec.fps)

    total = sample(spec.total_frames)
    sources: list[SoundSource] = []
    if sound is not None:
        sources.append(SoundSource(name="video", role="video", task=sound.id, start=0, span=total))
    if audio.music is not None:
        m = audio.music
        sources.append(SoundSource(name="music", role="music", **origin("music", "music", m, total / rate),
                                   start=0, span=total,
                                   gain_db=m.gain_db, fade_in=round(m.fade_in * rate), fade_out=round(m.fade_out * rate),
                                   loop=m.loop))
    for k, sp in enumerate(shots):
        t, shot = sp.timing, sp.shot
        if shot.sound is not None:
            first, last = sample(t.render_start), sample(t.render_end)
            where = origin("sound", shot.shot_id, shot.sound, (last - first) / rate)
            before = shots[k - 1].timing if k and t.head else None  # a crossfade in: over [render_start, end+tail)
            after = shots[k + 1].timing if k + 1 < len(shots) and t.tail else None
            sources.append(SoundSource(
                name=f"sound:{shot.shot_id}", role="sound", **where, start=first,
                span=last - first, gain_db=shot.sound.gain_db, fade_in=round(shot.sound.fade_in * rate),
                fade_out=round(shot.sound.fade_out * rate), loop=shot.sound.loop,
                xfade_in=sample(before.render_end) - first if before else 0,
                xfade_out=last - sample(after.render_start) if after else 0))
        for i, line in enumerate(shot.voice):
            start = sample(t.start) + round(line.at * rate)
            sources.append(SoundSource(name=f"voice:{shot.shot_id}:{i}", role="voice", file=_sound_file(spec, line.file),
                                       start=start, span=total - start, gain_db=line.gain_db))
    clicks = [sample(sp.timing.start) for sp in shots[1:]] if audio.preview_clicks else []
    params = MixParams(rate=rate, samples=total, loudness=audio.loudness, duck_db=audio.duck_db, clicks=clicks,
                       sources=sources)
    return [*generated, Task("mix", "mix", "mix", None, 0, None, (0, spec.total_frames), "output", None, params,
                             tuple(params.reads()))]


def concat_task(spec: StoryboardSpec, encodes: list[Task], output: Output, sound: Task | None = None) -> Task:
    """Step 5: the segments joined into the MP4 by stream copy, with the sound track where there is one."""
    params = ConcatParams(segments=[t.id for t in encodes], frames=spec.total_frames, fps=spec.fps,
                          audio=sound.id if sound else None, output=output.path)
    return Task("concat", "concat", "concat", None, 0, None, (0, spec.total_frames), "output", None, params,
                tuple(params.reads()))


# ---------------------------------------------------------------------------------------------------- helpers


def _negative(spec: StoryboardSpec, shot: ShotSpec) -> str:
    return shot.negative_prompt if shot.negative_prompt is not None else spec.negative_prompt


def _full_prompt(spec: StoryboardSpec, prompt: str) -> str:
    text = spec.expand(prompt)
    return f"{text}, {spec.style}" if spec.style else text


def _sound_file(spec: StoryboardSpec, file: str) -> SoundFile:
    # as for images: the content decides the mix, so a moved file keeps its cache entry
    path = (spec.base_dir / file).resolve()
    return SoundFile(path=str(path), sha256=_sha256(path))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _image(spec: StoryboardSpec, image: str | None) -> ImageFile | None:
    # The image's content, not its path, decides the keyframe: a moved file keeps its cache entries.
    if image is None:
        return None
    path = (spec.base_dir / image).resolve()
    return ImageFile(path=str(path), sha256=hashlib.sha256(Path(path).read_bytes()).hexdigest())
