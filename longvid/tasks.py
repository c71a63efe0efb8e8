"""The plan's vocabulary: a `Task`, and the typed parameters of every stage.

Compiling a storyboard produces tasks whose ``params`` are instances of these models; each stage names its model in
its `StageSpec`, and the whole-graph check validates every task against it before any device work. The models are
frozen: a task's parameters and the keys of its inputs make its cache key.

Fields aliased with a leading ``_`` (``_path``, ``_output``) say *where* something is on this machine, not what it
is: they travel to the worker but stay out of cache keys, so moving a project keeps its cache. `reads()` names the
tasks whose outputs a task reads; the check matches them against the task's dependencies.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from longvid.timing import between

Window = tuple[int, int, int, int]  # a chunk window: (start, frames, used, overlap), see `timing.ChunkWindow`


class Params(BaseModel):
    """Base of every stage's parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    # fields added after tasks were cached, left out of the content (so of the key) at their default: a task that
    # does not use one keeps the key it had, and nobody's cache is spent on a field their stage never reads
    OMITTED_AT_DEFAULT: ClassVar[frozenset[str]] = frozenset()

    def content(self) -> dict[str, Any]:
        """JSON-ready, as stored in cache records (location fields under their ``_`` names)."""
        return _without_late_defaults(self, self.model_dump(mode="json", by_alias=True))

    def reads(self) -> list[str]:
        """Ids of the tasks whose outputs this task reads."""
        return []


def _without_late_defaults(value: Any, dumped: Any) -> Any:
    """`dumped` (the JSON of `value`) without the `OMITTED_AT_DEFAULT` fields left at their default, at any depth."""
    if isinstance(value, Params):
        fields = type(value).model_fields
        for name, field in fields.items():
            key = field.alias or name
            if key not in dumped:
                continue
            if name in value.OMITTED_AT_DEFAULT and getattr(value, name) == field.default:
                del dumped[key]
            else:
                dumped[key] = _without_late_defaults(getattr(value, name), dumped[key])
    elif isinstance(value, list | tuple) and isinstance(dumped, list):
        return [_without_late_defaults(v, d) for v, d in zip(value, dumped, strict=True)]
    return dumped


# ---------------------------------------------------------------------------------------------------- models


class Lora(Params):
    path: str
    weight: float = 1.0
    weight_name: str | None = None


class Scheduler(Params):
    name: str
    config: dict[str, Any] = Field(default_factory=dict)


class EntityLora(Params):
    """A character's or place's LoRA: loaded with the pipeline, active only where its entity appears."""

    name: str
    lora: str = Field(description="As the storyboard names it.")
    path: str = Field(alias="_path", description="Where it is here.")
    weight: float = 1.0
    weight_name: str | None = None


class IPAdapter(Params):
    """An IP-Adapter for the keyframe model: references condition every keyframe through it."""

    model: str = Field(description="Hub id or folder of the adapter weights.")
    path: str = Field(alias="_path", description="Where it is here.")
    subfolder: str = ""
    weight_name: str
    image_encoder: str | None = Field(None, description="Its image encoder: a subfolder of the adapter, a hub id or "
                                                        "a folder (default: the adapter's own).")
    scale: float = Field(0.6, ge=0, le=2)


class Pipeline(Params):
    """How a worker loads and runs a diffusers pipeline; the model id itself is the task's `model`."""

    path: str = Field(alias="_path", description="Where the model is here: a folder, or the hub id.")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    # where the weights live changes no pixel: out of the key, so a render on a smaller device reuses the cache
    offload: Literal["none", "model", "sequential"] = Field("none", alias="_offload")
    vae_tiling: bool = False
    vae_slicing: bool = False
    decode_chunk_size: int | None = Field(None, ge=1, description="Frames a video pipeline that decodes in chunks "
                                          "(SVD, AnimateDiff) decodes at once (None: its default). It changes pixels.")
    attention: Literal["sdpa", "xformers"] = "sdpa"
    loras: list[Lora] = Field(default_factory=list)
    scheduler: Scheduler | None = None
    steps: int = Field(ge=1)
    guidance: float = Field(ge=0)
    guidance_2: float | None = Field(None, ge=0, description="The low-noise expert's (two-expert models).")
    family: str | None = None
    motion_adapter: str | None = None
    ip_adapter: IPAdapter | None = None
    # Every entity LoRA is loaded with the pipeline (so one pipeline serves every keyframe); which are active is the
    # task's `loras`, part of its key: the full list stays out of keys, or editing one would redo every keyframe.
    entity_loras: list[EntityLora] = Field(default_factory=list, alias="_entity_loras")

    OMITTED_AT_DEFAULT: ClassVar[frozenset[str]] = frozenset({"decode_chunk_size"})


# ---------------------------------------------------------------------------------------------------- keyframes


class ImageFile(Params):
    """A user's image: its content decides the output, its path only where to read it."""

    path: str = Field(alias="_path")
    sha256: str = Field(min_length=64, max_length=64)


class KeyframeLabel(Params):
    shot: str
    keyframe: int = Field(ge=0)
    timecode: str


class KeyframeParams(Params):
    width: int = Field(ge=16)
    height: int = Field(ge=16)
    prompt: str
    negative_prompt: str = ""
    image: ImageFile | None = None
    label: KeyframeLabel
    pipeline: Pipeline | None = None
    references: list[str] = Field(default_factory=list, description="reference:NAME tasks of who and where it shows.")
    opening: str | None = Field(None, description="The shot's first keyframe: later keyframes show the same scene.")
    loras: list[EntityLora] = Field(default_factory=list, description="The entity LoRAs active in it.")
    camera: str | None = Field(None, description="The preview's: the shot's camera move, which its card must "
                                                 "stay inside of.")
    low_memory: dict[str, Any] = Field(default_factory=dict)

    OMITTED_AT_DEFAULT: ClassVar[frozenset[str]] = frozenset({"camera"})

    def reads(self) -> list[str]:
        return [*self.references, *([self.opening] if self.opening else [])]


class ReferenceParams(Params):
    """What a character or a place looks like: the user's images, or one generated once."""

    name: str
    entity: Literal["character", "place"]
    description: str
    prompt: str = Field(description="What a generated reference shows: a character sheet, or an establishing view.")
    images: list[ImageFile] = Field(default_factory=list)
    size: int = Field(ge=16, description="References are square, the images fitted inside.")
    pipeline: Pipeline | None = None
    low_memory: dict[str, Any] = Field(default_factory=dict)


class IdentitySample(Params):
    """A frame the identity QA scores: frame `frame` of task `task`'s output, frame `output_frame` of the video."""

    task: str
    frame: int = Field(ge=0)
    output_frame: int = Field(ge=0)


class IdentityParams(Params):
    """A shot's likeness to its characters: its keyframes and sampled chunk frames against their references."""

    shot: str
    model: str
    path: str = Field(alias="_path", description="Where the model is here: a folder, or the hub id.")
    references: list[str] = Field(min_length=1, description="reference:NAME tasks of the shot's characters.")
    samples: list[IdentitySample] = Field(min_length=1)
    thumbnail: int = Field(64, ge=16, description="The side of a picture on the contact sheet it stores.")

    def reads(self) -> list[str]:
        return list(dict.fromkeys([*self.references, *(s.task for s in self.samples)]))


# ---------------------------------------------------------------------------------------------------- chunks


class TimedKeyframe(Params):
    task: str
    at: float = Field(ge=0)
    card: str | None = Field(None, description="The preview's: the prompt its card shows (None: a user's image).")
    references: int = Field(0, ge=0, description="The preview's: the reference thumbnails above its card.")


class PreviewLabel(Params):
    shot: str
    first_output_frame: int
    factor: float = Field(ge=1)


class PreviewChunkParams(Params):
    """A preview chunk: frames drawn from the shot's keyframes and camera move, a pure function of time."""

    width: int = Field(ge=16)
    height: int = Field(ge=16)
    prompt: str
    camera: str
    duration: float = Field(gt=0)
    fps: float = Field(gt=0)
    t0: float
    dt: float = Field(gt=0)
    start: int = Field(ge=0)
    frames: int = Field(ge=1)
    used: int = Field(ge=1)
    overlap: int = Field(ge=0)
    keyframes: list[TimedKeyframe] = Field(min_length=1)
    label: PreviewLabel
    low_memory: dict[str, Any] = Field(default_factory=dict)

    def reads(self) -> list[str]:
        return [k.task for k in self.keyframes]


class Anchor(Params):
    """An image a chunk is conditioned on at frame `index`: a keyframe, or frames of the previous chunk."""

    task: str
    index: int = Field(ge=0)
    frame: int | None = Field(None, ge=0, description="Set when `task` is a chunk: its frame to start from.")
    count: int = Field(1, ge=1, description="prefix: how many frames of the previous chunk.")
    strength: float = Field(1.0, ge=0, le=1)
    noise: float = Field(0.0, ge=0, le=1)


class SharedNoise(Params):
    """shared-noise and latent-blend: latent frame k of the shot has the same noise in every chunk."""

    seed: int
    mode: Literal["repeat", "shuffle"] = "repeat"
    offset: int = Field(ge=0)
    period: int = Field(ge=1)


class DiffusionForcing(Params):
    """SkyReels-V2 diffusion forcing: how a chunk continues the frames it is given (see ContinuitySpec)."""

    addnoise_condition: float = Field(ge=0)
    ar_step: int = Field(ge=0)
    causal_block_size: int | None = None


class ChunkParams(Params):
    """A chunk of a diffusers video model (or, with `windows`, a shot's chunks denoised together)."""

    width: int = Field(ge=16)
    height: int = Field(ge=16)
    prompt: str
    negative_prompt: str = ""
    fps: float = Field(gt=0)
    start: int = Field(ge=0)
    frames: int = Field(ge=1)
    used: int = Field(ge=1)
    overlap: int = Field(ge=0)
    anchors: list[Anchor] = Field(default_factory=list)
    references: list[str] = Field(default_factory=list, description="reference:NAME tasks, for a model that takes "
                                                                     "them in the chunk itself.")
    pipeline: Pipeline
    noise: SharedNoise | None = None
    forcing: DiffusionForcing | None = None
    windows: list[Window] = Field(default_factory=list, description="latent-blend: the chunks in this task.")
    ramp: Literal["linear", "cosine", "pyramid"] = "cosine"
    low_memory: dict[str, Any] = Field(default_factory=dict)

    def reads(self) -> list[str]:
        return list(dict.fromkeys([*(a.task for a in self.anchors), *self.references]))


class DecodeParams(Params):
    """A model's latents into frames, with its VAE alone. Everything that changes the pixels (tiling, slicing, the
    dtype) is a parameter, so it is part of the key; the out-of-memory retry turns tiling and slicing on."""

    family: str
    latents: str = Field(description="The chunk task whose latents it decodes.")
    path: str = Field(alias="_path", description="Where the model is here: a folder, or the hub id.")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    tiling: bool = False
    slicing: bool = False
    width: int = Field(ge=16)
    height: int = Field(ge=16)
    frames: int = Field(ge=1, description="Frames it returns: the chunk's, or under latent-blend the shot's.")

    def reads(self) -> list[str]:
        return [self.latents]


class RefineParams(Params):
    """A draft chunk's frames upscaled to full size and re-denoised (`models.refine`), video to video."""

    source: str = Field(description="The task whose output is the draft frames.")
    width: int = Field(ge=16)
    height: int = Field(ge=16)
    frames: int = Field(ge=1)
    prompt: str
    negative_prompt: str = ""
    strength: float = Field(gt=0, le=1)
    pipeline: Pipeline | None = Field(None, description="None: the preview's, an upscale alone.")
    upsampler: str | None = Field(None, description="LTX: its latent upsampler, as the storyboard names it.")
    upsampler_path: str | None = Field(None, alias="_upsampler", description="Where it is here.")
    fps: float = Field(24, gt=0)
    low_memory: dict[str, Any] = Field(default_factory=dict)

    def reads(self) -> list[str]:
        return [self.source]


# ---------------------------------------------------------------------------------------------------- shots


class ShotFrames(Params):
    """A shot's frames at its base rate, blended from its chunks over their overlaps."""

    chunks: list[str] = Field(min_length=1)
    windows: list[Window] = Field(min_length=1)
    ramp: Literal["linear", "cosine", "pyramid"] = "cosine"
    align: Literal["none", "flow"] = Field("none", description="flow: each chunk moved by the shift optical flow "
                                           "finds against the one before it, added up along the shot (`stitching."
                                           "blend.Alignment`).")
    colour_anchor: float = Field(0.0, ge=0, le=1)
    keyframes: list[tuple[str, int]] = Field(default_factory=list, description=(
        "The colour anchor's keyframes and their base frames, in order: each chunk is anchored to those around its "
        "frames, interpolated over them (none: to chunk 0)."))

    def reads(self) -> list[str]:
        return self.reads_range(0, self.windows[-1][0] + self.windows[-1][2])

    def _over(self, start: int, stop: int) -> range:
        """The chunks whose kept frames meet ``[start, stop)``: a run of them, found by bisection (windows are in
        order, their starts and ends rising), so a long shot's segments cost what they show, not the shot."""
        lo = bisect.bisect_right(self.windows, start, key=lambda w: w[0] + w[2])  # the first kept past `start`
        hi = lo
        while hi < len(self.windows) and self.windows[hi][0] < stop:
            hi += 1
        return range(lo, hi)

    def over(self, start: int, stop: int) -> ShotFrames:
        """The same frames ``[start, stop)`` from only the chunks they need (windows keep their shot positions):
        what a segment of a long shot carries. Whole when every chunk matters (flow alignment adds up every
        chunk's shift before; a colour anchor on chunk 0 reads it)."""
        if self.align == "flow" or (self.colour_anchor and not self.keyframes):
            return self
        run = self._over(start, stop)
        if not run or (run.start == 0 and run.stop == len(self.windows)):
            return self
        keyframes = []
        if self.colour_anchor:
            needed = {kf for i in run for kf in self.colour_keyframes(i)}
            keyframes = [kf for kf in self.keyframes if kf in needed]
        return self.model_copy(update={"chunks": self.chunks[run.start:run.stop],
                                       "windows": self.windows[run.start:run.stop], "keyframes": keyframes})

    def reads_range(self, start: int, stop: int) -> list[str]:
        """The tasks that frames ``[start, stop)`` of the shot need: the chunks over them (aligned: and those
        before them), and their colour anchors (the keyframes around each, else the first chunk)."""
        over = list(self._over(start, stop))
        anchors = []
        if self.colour_anchor:
            anchors = [task for i in over for task, _ in self.colour_keyframes(i)] if self.keyframes else [self.chunks[0]]
        if self.align == "flow" and over:  # a chunk's move adds up the shifts of every chunk before it
            over = list(range(over[-1] + 1))
        return list(dict.fromkeys([*anchors, *(self.chunks[i] for i in over)]))

    def kept(self, i: int) -> range:
        """The base frames chunk i keeps, over which its colour anchor is interpolated."""
        first, _, used, _ = self.windows[i]
        return range(first, first + used)

    def colour_keyframes(self, i: int) -> list[tuple[str, int]]:
        """The keyframes chunk i's colours are anchored to: those around each of its frames."""
        frames, positions = self.kept(i), [f for _, f in self.keyframes]
        around = {k for f in (frames[0], frames[-1]) for k, _ in between(positions, f)}
        return [kf for k, kf in enumerate(self.keyframes) if min(around) <= k <= max(around)]


class InterpolateParams(Params):
    backend: Literal["rife", "rife-ncnn", "flow", "linear"]
    model: str | None = None
    factor: float = Field(gt=1)
    base_frames: int = Field(ge=1)
    frames: int = Field(ge=1)
    scene_threshold: float | None = None
    source: ShotFrames

    def reads(self) -> list[str]:
        return self.source.reads()


class ShotSource(Params):
    """Where a shot's rendered frames at the output rate come from: its interpolation, or its chunks blended."""

    shot: str
    interpolated: str | None = None
    blended: ShotFrames | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ShotSource:
        if (self.interpolated is None) == (self.blended is None):
            raise ValueError("give `interpolated` (a task id) or `blended` (the shot's chunks), one of them")
        return self

    def reads_range(self, start: int, stop: int) -> list[str]:
        """The tasks that the shot's rendered frames ``[start, stop)`` need."""
        return [self.interpolated] if self.interpolated else self.blended.reads_range(start, stop)

    def over(self, start: int, stop: int) -> ShotSource:
        """This source, carrying only what its rendered frames ``[start, stop)`` need (see `ShotFrames.over`)."""
        return self if self.interpolated else self.model_copy(update={"blended": self.blended.over(start, stop)})


class Piece(Params):
    """A run of output frames: frames of one shot, or a crossfade of shot `a` into shot `b`."""

    frames: int = Field(ge=1)
    a: ShotSource
    a_offset: int = Field(ge=0, description="The first of `a`'s rendered frames it takes.")
    b: ShotSource | None = None
    b_offset: int = Field(0, ge=0)
    weights: list[float] = Field(default_factory=list, description="Crossfade: the weight of `b`, per frame.")

    def reads(self) -> list[str]:
        b = self.b.reads_range(self.b_offset, self.b_offset + self.frames) if self.b else []
        return [*self.a.reads_range(self.a_offset, self.a_offset + self.frames), *b]


class EncodeParams(Params):
    """One H.264 segment of the output, opening on an IDR frame, measured for seam QA as it is encoded.

    The QA looks at the sequence ``lead_in + pieces + lead_out``: the lead frames are not encoded, they let the
    pairs of frames across the segment's ends be measured here (see `stitching.seams`).
    """

    width: int = Field(ge=16)
    height: int = Field(ge=16)
    fps: float = Field(gt=0)
    crf: int = Field(ge=0, le=51)
    preset: str
    pieces: list[Piece] = Field(min_length=1)
    lead_in: Piece | None = None
    lead_out: Piece | None = None
    qa_shots: list[tuple[str, int]] = Field(default_factory=list, description="Runs of (shot, frames).")
    qa_seams: list[int] = Field(default_factory=list, description="Positions t whose pair (t-1, t) is a seam.")

    @property
    def frames(self) -> int:
        return sum(p.frames for p in self.pieces)

    def reads(self) -> list[str]:
        pieces = [*self.pieces, *([self.lead_in] if self.lead_in else []), *([self.lead_out] if self.lead_out else [])]
        return list(dict.fromkeys(t for p in pieces for t in p.reads()))


class ShotSound(Params):
    """A shot's sound: its chunks' sound, blended over their overlaps like their frames."""

    shot: str
    blend: ShotFrames
    factor: float = Field(gt=0, description="Output frames per generated frame.")


class AudioParams(Params):
    """The video's sound track: every shot's sound, laid out by the same pieces as the picture (crossfades mixed
    with the picture's weights)."""

    fps: float = Field(gt=0)
    frames: int = Field(ge=1)
    shots: list[ShotSound] = Field(min_length=1)
    pieces: list[Piece] = Field(min_length=1)

    def reads(self) -> list[str]:
        return list(dict.fromkeys(c for shot in self.shots for c in shot.blend.chunks))


class SoundParams(Params):
    """A generated sound: a shot's effects (a text-to-audio pipeline) or the music bed (ACE-Step), `seconds` long.

    A piece longer than the model's maximum is generated in sections joined by crossfades; section i draws its
    noise from ``derive_seed(base_seed, owner, role, i)`` (section 0's is the task's seed).
    """

    role: Literal["sound", "music"]
    owner: str = Field(description="The shot id (a shot's sound), or `music`.")
    base_seed: int = Field(ge=0)
    prompt: str = Field(min_length=1)
    negative_prompt: str = ""
    seconds: float = Field(gt=0)
    lyrics: str | None = None
    bpm: int | None = None
    pipeline: Pipeline
    pipeline_class: str | None = Field(None, description="A diffusers class; default: AutoPipelineForText2Audio for "
                                                         "effects, the folder's own class for music.")
    max_seconds: float | None = Field(None, gt=0, description="The longest section (default: the model's limit).")
    low_memory: dict[str, Any] = Field(default_factory=dict)


class SoundFile(Params):
    """A user's sound file: its content decides the mix, its path only where to read it."""

    path: str = Field(alias="_path")
    sha256: str = Field(min_length=64, max_length=64)


class SoundSource(Params):
    """One sound in the mix, placed on the timeline in samples at the mix's rate.

    It plays from `start` for at most `span` samples (once, or looped to fill the span), with its gain and fades;
    `xfade_in` and `xfade_out` are the crossfades with the shots before and after it, linear over the same samples
    as the picture's crossfade frames, so two crossfading sounds sum to one.
    """

    name: str = Field(description="`music`, `sound:SHOT`, `voice:SHOT:I` or `video` (the video model's sound).")
    role: Literal["music", "sound", "voice", "video"]
    file: SoundFile | None = None
    task: str | None = Field(None, description="The task whose output is the sound (instead of a file).")
    start: int = Field(ge=0)
    span: int = Field(ge=1)
    gain_db: float = 0.0
    fade_in: int = Field(0, ge=0)
    fade_out: int = Field(0, ge=0)
    xfade_in: int = Field(0, ge=0)
    xfade_out: int = Field(0, ge=0)
    loop: bool = False

    @model_validator(mode="after")
    def _one_origin(self) -> SoundSource:
        if (self.file is None) == (self.task is None):
            raise ValueError("give `file` or `task`, one of them")
        return self


class MixParams(Params):
    """The soundtrack: every source summed with its gains and fades, the music ducked under voice, clicks at the
    cuts when asked, normalised to a loudness with a true-peak ceiling; exactly `samples` long."""

    rate: int = Field(ge=8000)
    channels: int = Field(2, ge=1, le=8)
    samples: int = Field(ge=1)
    loudness: float | None = Field(None, description="Target integrated loudness, LUFS (None: levels as they are).")
    true_peak: float = Field(-1.0, description="dBTP ceiling of the normalisation.")
    duck_db: float = Field(12.0, ge=0)
    clicks: list[int] = Field(default_factory=list, description="Samples where a click marks a cut.")
    sources: list[SoundSource] = Field(default_factory=list)

    def reads(self) -> list[str]:
        return list(dict.fromkeys(s.task for s in self.sources if s.task))


class ConcatParams(Params):
    """The MP4: the segments joined by stream copy, with the index first (+faststart), and the sound track."""

    segments: list[str] = Field(min_length=1)
    frames: int = Field(ge=1)
    fps: float = Field(gt=0)
    audio: str | None = Field(None, description="The sound track's task, encoded to AAC beside the picture.")
    output: str | None = Field(None, alias="_output", description="Where the MP4 goes (not part of the key).")

    def reads(self) -> list[str]:
        return [*self.segments, *([self.audio] if self.audio else [])]


# ---------------------------------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class Task:
    """One unit of work in the render graph: everything a stage needs to run it, as data.

    Args:
        id: unique, e.g. ``chunk:climb:2``.
        kind: ``keyframe``, ``chunk``, ``interpolate``, ``encode`` or ``concat``.
        stage: the stage that runs it, e.g. ``preview.chunk``.
        shot: the shot it belongs to (None for tasks of the whole video).
        index: its position among the shot's tasks of its kind.
        seed: from the seeding rule (None where nothing random is drawn).
        window: ``[start, end)`` frames it covers; see `frame_space`.
        frame_space: ``output`` (the timeline), ``shot-output`` (the shot's rendered frames at the output rate) or
            ``shot-base`` (the shot's rendered frames at the base rate).
        model: the model id it loads, if any.
        params: the stage's typed parameters; they and the inputs' keys make the cache key.
        deps: ids of the tasks whose outputs it reads.
        take: a keyframe's or chunk's take (`reroll` in the storyboard; 0: the original seed), for the manifest
            and `status` (the seed already holds it).
    """

    id: str
    kind: str
    stage: str
    shot: str | None
    index: int
    seed: int | None
    window: tuple[int, int]
    frame_space: str
    model: str | None = None
    params: Params = field(default_factory=Params)
    deps: tuple[str, ...] = ()
    take: int = 0

    @property
    def frames(self) -> int:
        return self.window[1] - self.window[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``longvid graph --format json``."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return data | {"window": list(self.window), "deps": list(self.deps), "params": self.params.content()}
