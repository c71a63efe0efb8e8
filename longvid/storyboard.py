"""The storyboard schema (pydantic), YAML loading with ``file:line:col`` errors, and the JSON Schema.

Validation runs in two passes and reports every root cause it finds, never just the first:

1. structure: types, ranges and unknown keys, checked by pydantic field by field;
2. meaning, once the structure is sound: duplicate shot ids, unknown ``{character}`` references, keyframes outside
   their shot, crossfades that do not fit, shots too short to hold a frame, an overlap too long for the chunks.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from longvid import timing
from longvid.errors import Problem, StoryboardError, format_path
from longvid.families import Family, checkpoint_abilities, get_family, model_problem, pipeline_class

Camera = Literal["static", "push-in", "pull-out", "zoom-in", "zoom-out", "pan-left", "pan-right", "tilt-up", "tilt-down"]
CHARACTER_REF = re.compile(r"\{([^{}]*)\}")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class KeyframeSpec(_Spec):
    """A moment a shot must pass through: a prompt for the image model, or a user image."""

    at: float = Field(ge=0, description="Seconds from the start of the shot.")
    prompt: str | None = Field(None, min_length=1, description="Defaults to the shot's prompt.")
    image: str | None = Field(None, description="A user image, relative to the storyboard file; used as is.")


class TransitionSpec(_Spec):
    """How a shot ends: a cut, or a crossfade into the next shot centred on the cut."""

    type: Literal["cut", "crossfade"] = "cut"
    duration: float | None = Field(None, gt=0, description="Seconds; crossfade only.")

    @model_validator(mode="after")
    def _duration_matches_type(self) -> TransitionSpec:
        if self.type == "crossfade" and self.duration is None:
            raise ValueError("a crossfade needs a `duration` in seconds, e.g. {type: crossfade, duration: 0.5}")
        if self.type == "cut" and self.duration is not None:
            raise ValueError(f"a cut has no `duration` (got {self.duration}); use type: crossfade")
        return self


def _transition_shorthand(value: Any) -> Any:
    # `transition: cut` is the common case; allow it as a bare word.
    return {"type": value} if isinstance(value, str) else value


class ContinuitySpec(_Spec):
    """How consecutive chunks of a shot join (storyboard-wide, and per shot where a shot sets its own)."""

    strategy: Literal["cut", "overlap-blend", "shared-noise", "latent-blend", "prefix", "keyframe-anchored"] = Field(
        "overlap-blend", description="cut: no overlap; overlap-blend: blend overlapping frames; shared-noise: "
        "overlapping frames also share their initial noise; latent-blend: a shot's chunks are denoised together, "
        "their shared latent frames averaged after every step; prefix: each chunk continues from the previous "
        "one's frames; keyframe-anchored: chunks run from keyframe to keyframe (Wan FLF2V, LTX).")
    overlap: int = Field(8, ge=0, description="Frames shared by consecutive chunks.")
    ramp: Literal["linear", "cosine", "pyramid"] = "cosine"
    noise: Literal["repeat", "shuffle"] = Field(
        "repeat", description="shared-noise: later chunks reuse the first chunk's noise frames in order, or "
        "shuffled within each window (FreeNoise).")
    prefix_frames: int = Field(1, ge=1, le=64, description="prefix: frames of the previous chunk to continue "
                                                           "from (more than 1 needs ltx).")
    prefix_strength: float = Field(1.0, ge=0, le=1, description="prefix: how strongly they hold (ltx).")
    prefix_noise: float = Field(0.0, ge=0, le=1, description="prefix: Gaussian noise added to them, as a fraction "
                                                            "of the pixel range (0.03 is light).")
    colour_anchor: float = Field(0.0, ge=0, le=1, description="Match each chunk's Lab mean and spread to the "
                                                             "shot's opening keyframe, this much (0: off).")

    @property
    def overlap_frames(self) -> int:
        return 0 if self.strategy == "cut" else self.overlap


class ShotSpec(_Spec):
    """One continuous shot."""

    id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Stable name; seeds and cache keys derive from it. Defaults to shot01, shot02, ...",
    )
    prompt: str = Field(min_length=1)
    duration: float = Field(gt=0, description="Seconds.")
    camera: Camera = "static"
    negative_prompt: str | None = None
    keyframes: list[KeyframeSpec] = Field(default_factory=list)
    transition: Annotated[TransitionSpec, Field(default_factory=TransitionSpec)]
    seed: int | None = Field(None, ge=0, lt=2**63, description="Overrides the storyboard seed for this shot.")
    continuity: ContinuitySpec | None = Field(None, description="Overrides the storyboard's, key by key.")

    _transition = field_validator("transition", mode="before")(_transition_shorthand)

    @property
    def shot_id(self) -> str:
        assert self.id is not None, "ids are filled in by StoryboardSpec"
        return self.id


class LoraSpec(_Spec):
    """A LoRA applied to the pipeline."""

    path: str = Field(description="Hub id, folder or .safetensors file.")
    weight: float = Field(1.0, ge=-10, le=10)
    weight_name: str | None = Field(None, description="The file inside a hub repo or folder, when it holds several.")


class SchedulerSpec(_Spec):
    """Replace the pipeline's scheduler: a diffusers scheduler class, built from the pipeline's config."""

    name: str = Field(description="A diffusers scheduler class, e.g. UniPCMultistepScheduler.")
    config: dict[str, Any] = Field(default_factory=dict, description="Overrides, e.g. {flow_shift: 3.0}.")


class PipelineOptions(_Spec):
    """How a diffusers pipeline is loaded and run (shared by the keyframe and the video model)."""

    model: str | None = Field(None, description="Hub id or local folder in diffusers format.")
    steps: int | None = Field(None, ge=1, le=1000, description="num_inference_steps; default per model.")
    guidance: float | None = Field(None, ge=0, le=50, description="guidance_scale; default per model.")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="auto: bfloat16 on CUDA, float32 on the CPU.")
    offload: Literal["none", "model", "sequential"] = Field(
        "none", description="CPU offload: whole models (some slowdown) or layer by layer (slow, least memory).")
    vae_tiling: bool = False
    vae_slicing: bool = False
    attention: Literal["sdpa", "xformers"] = Field("sdpa", description="xformers needs CUDA and longvid[xformers].")
    loras: list[LoraSpec] = Field(default_factory=list)
    scheduler: SchedulerSpec | None = None


class VideoModelSpec(PipelineOptions):
    """The model that generates each shot's chunks. ``preview`` needs no weights."""

    family: Literal["preview", "svd", "cogvideox", "wan", "ltx", "animatediff"] = "preview"
    chunk_frames: int | None = Field(None, ge=1, le=1025, description="Frames per chunk at the base rate; "
                                                                      "default per family, made legal for it.")
    motion_adapter: str | None = Field(None, description="animatediff: a MotionAdapter hub id or folder, when "
                                                         "`model` is a plain Stable Diffusion model.")

    @property
    def frames_asked(self) -> int:
        return self.chunk_frames or get_family(self.family).chunk_frames


class KeyframeModelSpec(PipelineOptions):
    """The image model that draws keyframes: ``preview`` (no weights), or diffusers when `model` is given."""

    backend: Literal["preview", "diffusers"] | None = Field(None, description="Default: diffusers when `model` "
                                                                                "is given, else preview.")

    @property
    def engine(self) -> str:
        return self.backend or ("diffusers" if self.model else "preview")


class InterpolationSpec(_Spec):
    """Raise the frame rate: chunks are generated at a base rate and interpolated up to ``fps``.

    Give `factor` (output over base rate; 1.5 turns 16 fps into 24) or `base_fps` (the rate to generate at).
    """

    backend: Literal["auto", "rife", "rife-ncnn", "flow", "linear"] = Field(
        "auto", description="auto: rife if its weights are fetched, else flow (OpenCV), else linear.")
    model: str | None = Field(None, description="rife: a fetched model name or a flownet.pkl path; "
                                                "rife-ncnn: a RIFE ncnn model folder.")
    factor: float | None = Field(None, ge=1, le=16)
    base_fps: float | None = Field(None, gt=0)
    scene_threshold: float | None = Field(0.4, ge=0, le=2, description="Frames whose colour histograms differ "
                                          "more than this (0 same, 2 disjoint) are a cut: never blended. null: off")

    @model_validator(mode="after")
    def _one_rate(self) -> InterpolationSpec:
        if self.factor is not None and self.base_fps is not None:
            raise ValueError(f"give `factor` ({self.factor:g}) or `base_fps` ({self.base_fps:g}), not both")
        if self.backend == "rife-ncnn" and not self.model:
            raise ValueError("the rife-ncnn backend needs `model`: the folder of a RIFE ncnn model")
        return self


class ModelsSpec(_Spec):
    keyframes: KeyframeModelSpec = Field(default_factory=KeyframeModelSpec)
    video: VideoModelSpec = Field(default_factory=VideoModelSpec)
    interpolation: InterpolationSpec = Field(default_factory=InterpolationSpec)


class StoryboardSpec(_Spec):
    """A whole video: global settings, characters, and the shots in order."""

    model_config = ConfigDict(title="longvid storyboard")

    title: str = "Untitled"
    fps: float = Field(24, ge=1, le=120)
    width: int = Field(832, ge=64, le=4096)
    height: int = Field(480, ge=64, le=4096)
    seed: int = Field(0, ge=0, lt=2**63)
    style: str = ""
    negative_prompt: str = ""
    characters: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")], str] = Field(default_factory=dict)
    models: ModelsSpec = Field(default_factory=ModelsSpec)
    continuity: ContinuitySpec = Field(default_factory=ContinuitySpec)
    shots: list[ShotSpec] = Field(min_length=1)

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _source: str | None = PrivateAttr(None)

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_16(cls, value: int) -> int:
        if value % 16:
            nearest = max(64, round(value / 16) * 16)
            raise ValueError(f"must be a multiple of 16, as video models need (got {value}; try {nearest})")
        return value

    @model_validator(mode="after")
    def _default_shot_ids(self) -> StoryboardSpec:
        for i, shot in enumerate(self.shots):
            if shot.id is None:
                shot.id = f"shot{i + 1:02d}"
        return self

    @property
    def base_dir(self) -> Path:
        """The folder relative keyframe image paths are resolved against."""
        return self._base_dir

    @property
    def source(self) -> str | None:
        """The file the storyboard was loaded from, if any."""
        return self._source

    @property
    def duration(self) -> float:
        return sum(shot.duration for shot in self.shots)

    @property
    def interpolation_factor(self) -> float:
        """Output rate over the rate chunks are generated at (1: no interpolation)."""
        interp = self.models.interpolation
        if interp.base_fps is not None:
            return self.fps / interp.base_fps
        if interp.factor is not None:
            return interp.factor
        native = get_family(self.models.video.family).native_fps
        return self.fps / native if native and native < self.fps else 1.0

    @property
    def total_frames(self) -> int:
        return timing.seconds_to_frames(self.duration, self.fps)

    def expand(self, text: str) -> str:
        """Replace each ``{name}`` with that character's description."""
        return CHARACTER_REF.sub(lambda m: self.characters.get(m[1], m[0]), text)

    def continuity_for(self, shot: ShotSpec) -> ContinuitySpec:
        """The shot's continuity: the storyboard's, with the keys the shot sets replaced."""
        if shot.continuity is None:
            return self.continuity
        return self.continuity.model_copy(update={k: getattr(shot.continuity, k) for k in shot.continuity.model_fields_set})

    def shot_seed(self, shot: ShotSpec) -> int:
        return self.seed if shot.seed is None else shot.seed

    def timings(self) -> list[timing.ShotTiming]:
        return timing.plan_shots(
            [s.duration for s in self.shots],
            [s.transition.duration or 0.0 for s in self.shots],
            self.fps,
        )

    def content_hash(self) -> str:
        """sha256 of the canonical JSON of the validated storyboard."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude_defaults=True)
        data.setdefault("shots", [])
        for shot, src in zip(data["shots"], self.shots, strict=True):
            shot["id"] = src.id  # ids are always written, so seeds survive re-ordering
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


# --------------------------------------------------------------------------------------------------------------
# Pass 2: meaning


def check_semantics(spec: StoryboardSpec) -> list[Problem]:
    """Every problem that needs the whole storyboard to see, as `Problem`s with paths."""
    problems: list[Problem] = []

    def add(path: tuple, message: str) -> None:
        problems.append(Problem(message, path))

    names = sorted(spec.characters)
    seen: dict[str, int] = {}
    for i, shot in enumerate(spec.shots):
        if shot.shot_id in seen:
            add(("shots", i, "id"), f"duplicate shot id {shot.shot_id!r} (first used by shots[{seen[shot.shot_id]}])")
        seen.setdefault(shot.shot_id, i)
        prompts = [(("shots", i, "prompt"), shot.prompt)]
        prompts += [(("shots", i, "keyframes", k, "prompt"), kf.prompt) for k, kf in enumerate(shot.keyframes)]
        for path, prompt in prompts:
            for ref in CHARACTER_REF.findall(prompt or ""):
                if ref not in spec.characters:
                    known = ", ".join(names) if names else "none are defined under `characters`"
                    add(path, f"unknown character `{{{ref}}}`{_did_you_mean(ref, names, '{', '}')}; characters: {known}")
        frames_at: dict[int, int] = {}
        for k, kf in enumerate(shot.keyframes):
            if kf.at > shot.duration + 1e-9:
                add(
                    ("shots", i, "keyframes", k, "at"),
                    f"`at` ({kf.at:g}) is outside shot {shot.shot_id!r}, which lasts {shot.duration:g} s",
                )
            frame = timing.seconds_to_frames(kf.at, spec.fps)
            if frame in frames_at:
                add(("shots", i, "keyframes", k, "at"), f"two keyframes at frame {frame} (at {kf.at:g} s)")
            frames_at[frame] = k
            if kf.image is not None and not (spec.base_dir / kf.image).is_file():
                add(("shots", i, "keyframes", k, "image"), f"image file not found: {spec.base_dir / kf.image}")

    last = len(spec.shots) - 1
    for i, shot in enumerate(spec.shots):
        fade = shot.transition.duration
        if fade is None:
            continue
        if i == last:
            add(("shots", i, "transition"), "the last shot has no next shot to crossfade into; use a cut")
            continue
        nxt = spec.shots[i + 1]
        for neighbour in (shot, nxt):
            if fade > neighbour.duration:
                add(
                    ("shots", i, "transition", "duration"),
                    f"crossfade ({fade:g} s) is longer than shot {neighbour.shot_id!r} ({neighbour.duration:g} s)",
                )
                break

    if not problems:
        shot_timings = spec.timings()
        for i, t in enumerate(shot_timings):
            if t.frames < 1:
                add(("shots", i, "duration"), f"`duration` ({spec.shots[i].duration:g}) is under one frame at {spec.fps:g} fps")
        for i in range(1, len(shot_timings) - 1):
            t = shot_timings[i]
            if shot_timings[i - 1].tail + shot_timings[i + 1].head > t.frames:
                add(
                    ("shots", i, "duration"),
                    f"the crossfades into and out of shot {spec.shots[i].shot_id!r} overlap: "
                    f"together they need more than its {t.frames} frames",
                )

    interp = spec.models.interpolation
    if interp.base_fps is not None and interp.base_fps > spec.fps:
        add(("models", "interpolation", "base_fps"),
            f"`base_fps` ({interp.base_fps:g}) must not exceed the output `fps` ({spec.fps:g})")
    if interp.backend == "rife-ncnn" and interp.model and not (spec.base_dir / interp.model).is_dir():
        add(("models", "interpolation", "model"), f"RIFE ncnn model folder not found: {spec.base_dir / interp.model}")
    video = spec.models.video
    family = get_family(video.family)
    legal = timing.FrameRule.parse(family.frame_rule).at_least(video.frames_asked)
    for where, cont in [(("continuity",), spec.continuity)] + [
            (("shots", i, "continuity"), spec.continuity_for(shot)) for i, shot in enumerate(spec.shots) if shot.continuity]:
        if cont.overlap_frames > (legal - 1) // 2:
            add((*where, "overlap"), f"`overlap` ({cont.overlap}) must be less than half the chunk length "
                                     f"({legal} frames), at most {(legal - 1) // 2}")
    problems += _model_problems(spec)
    return problems


def _model_problems(spec: StoryboardSpec) -> list[Problem]:
    """The models section against the shots: loadable models, sizes, and what the video family can condition on."""
    problems: list[Problem] = []
    video, keyframes = spec.models.video, spec.models.keyframes
    family = get_family(video.family)
    if keyframes.engine == "diffusers" and not keyframes.model:
        problems.append(Problem("the diffusers keyframe backend needs `model`: a hub id or a diffusers folder",
                                ("models", "keyframes")))
    for where, options in (("keyframes", keyframes), ("video", video)):
        if options.model and (why := model_problem(options.model, spec.base_dir)):
            problems.append(Problem(why, ("models", where, "model")))
    if family.name == "preview":
        return problems
    if not video.model:
        problems.append(Problem(f"family {family.name!r} needs `model`: a hub id such as "
                                f"{family.known_models[0]!r} or a local folder in diffusers format",
                                ("models", "video")))
        return problems
    for side in ("width", "height"):
        if getattr(spec, side) % family.size_multiple:
            problems.append(Problem(f"`{side}` ({getattr(spec, side)}) must be a multiple of "
                                    f"{family.size_multiple} for {family.name}", (side,)))
    declared = pipeline_class(video.model, spec.base_dir)
    if declared and declared not in family.pipelines:
        problems.append(Problem(f"{video.model} is a {declared}, not a {family.name} model "
                                f"({', '.join(family.pipelines)}); check `family`", ("models", "video", "model")))
        return problems
    abilities, source = checkpoint_abilities(family, video.model, spec.base_dir)
    what = f"{video.model} ({source})" if source else video.model
    drawn = keyframes.engine == "diffusers"
    for where, cont in [(("continuity",), spec.continuity)] + [
            (("shots", i, "continuity"), spec.continuity_for(shot)) for i, shot in enumerate(spec.shots) if shot.continuity]:
        problems += _strategy_problems(where, cont, family, abilities, what, drawn)
    for i, shot in enumerate(spec.shots):
        opening = next((kf for kf in shot.keyframes if timing.seconds_to_frames(kf.at, spec.fps) == 0), None)
        if "text" not in abilities and not drawn and not (opening and opening.image):
            problems.append(Problem(f"{what} needs an image to start each shot: set models.keyframes.model (an "
                                    f"image model) or give shot {shot.shot_id!r} a keyframe `image:` at 0 s",
                                    ("shots", i)))
        for k, kf in enumerate(shot.keyframes):
            later = timing.seconds_to_frames(kf.at, spec.fps) > 0
            if "first" not in abilities:
                problems.append(Problem(f"{what} generates from text only: it cannot start from or pass through a "
                                        f"keyframe; remove it or use an image-to-video model", ("shots", i, "keyframes", k)))
            elif later and not abilities & {"last", "any"}:
                problems.append(Problem(f"{what} conditions on the first frame only: it cannot pass through a "
                                        f"keyframe at {kf.at:g} s (last-frame anchoring needs wan image-to-video or "
                                        f"ltx); move it to a new shot", ("shots", i, "keyframes", k, "at")))
    return problems


def _strategy_problems(where: tuple, cont: ContinuitySpec, family: Family, abilities: frozenset[str], what: str,
                       drawn: bool) -> list[Problem]:
    """What a continuity strategy needs from the model family."""
    strategy, tc = cont.strategy, family.temporal_compression
    if strategy == "keyframe-anchored" and not abilities & {"last", "any"}:
        return [Problem(f"{what} cannot end a chunk on a keyframe: keyframe-anchored needs a first-last-frame "
                        f"model (wan FLF2V, ltx)", (*where, "strategy"))]
    if strategy == "keyframe-anchored" and not drawn:
        return [Problem("keyframe-anchored needs keyframe images: set models.keyframes.model", (*where, "strategy"))]
    if strategy == "prefix" and "first" not in abilities:
        return [Problem(f"{what} generates from text only: prefix needs a model that continues from an image",
                        (*where, "strategy"))]
    if strategy == "prefix" and cont.prefix_frames > 1 and "any" not in abilities:
        return [Problem(f"`prefix_frames` ({cont.prefix_frames}): {what} continues from one image; only ltx "
                        f"takes several frames", (*where, "prefix_frames"))]
    if strategy in ("shared-noise", "latent-blend") and family.name == "ltx":
        return [Problem(f"ltx draws its own noise for conditioned chunks: {strategy} cannot set it; use "
                        f"overlap-blend or prefix", (*where, "strategy"))]
    if strategy == "latent-blend" and "text" not in abilities:
        return [Problem(f"latent-blend denoises a shot's chunks side by side, so none can start from another; "
                        f"{what} needs an image for every chunk: use prefix or overlap-blend", (*where, "strategy"))]
    if strategy in ("shared-noise", "latent-blend") and (cont.overlap < 1 or (cont.overlap - 1) % tc):
        near = sorted({max(1, cont.overlap - (cont.overlap - 1) % tc), cont.overlap - (cont.overlap - 1) % tc + tc} - {0})
        return [Problem(f"`overlap` ({cont.overlap}) must be 1 more than a multiple of {tc} for {family.name}, so "
                        f"that overlapping frames share whole latent frames (try {' or '.join(map(str, near))})",
                        (*where, "overlap"))]
    return []


def _did_you_mean(word: str, choices: list[str], left: str = "`", right: str = "`") -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {left}{close[0]}{right}?)" if close else ""


# --------------------------------------------------------------------------------------------------------------
# Loading


def validate_data(data: Any, *, file: str | None = None, marks: _Marks | None = None,
                  base_dir: Path | None = None) -> StoryboardSpec:
    """Validate plain data (from YAML, JSON or the scene API) into a `StoryboardSpec`.

    Raises:
        StoryboardError: with every problem found, located in `file` when `marks` are given.
    """
    marks = marks or _Marks()
    if not isinstance(data, dict):
        raise StoryboardError([marks.locate(Problem("a storyboard is a mapping of settings with a `shots` list"), file)])
    try:
        spec = StoryboardSpec.model_validate(data)
    except ValidationError as exc:
        raise StoryboardError([marks.locate(p, file) for p in _structure_problems(exc)]) from None
    if base_dir is not None:
        spec._base_dir = base_dir
    problems = check_semantics(spec)
    if problems:
        raise StoryboardError([marks.locate(p, file) for p in problems])
    return spec


def load_storyboard(path: str | Path) -> StoryboardSpec:
    """Read and validate a storyboard YAML (or JSON) file.

    Raises:
        StoryboardError: every problem, as ``file:line:col: message``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StoryboardError([Problem(f"storyboard file not found: {path}")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoryboardError([Problem(f"cannot read storyboard {path}: {exc}")]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = f"YAML syntax error: {exc.problem or exc.context}"
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise StoryboardError([Problem(message, (), str(path), line, col)]) from None
    marks = _Marks()
    duplicates = marks.walk(node, ())
    if duplicates:
        raise StoryboardError([marks.locate(p, str(path)) for p in duplicates])
    spec = validate_data(data, file=str(path), marks=marks, base_dir=path.resolve().parent)
    spec._source = str(path.resolve())
    return spec


def json_schema() -> dict:
    """The JSON Schema of the storyboard format, for editors' autocompletion."""
    schema = StoryboardSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    # The loader also takes the bare word `cut` for a transition; say so, or editors flag valid files.
    shot = schema["$defs"]["ShotSpec"]["properties"]
    shot["transition"] = {"anyOf": [{"$ref": "#/$defs/TransitionSpec"}, {"enum": ["cut"]}],
                          "description": TransitionSpec.__doc__}
    return schema


class _Marks:
    """Source positions of every key and value in a YAML document, by path."""

    def __init__(self) -> None:
        self.values: dict[tuple, yaml.Mark] = {}
        self.keys: dict[tuple, yaml.Mark] = {}

    def walk(self, node: yaml.Node | None, path: tuple) -> list[Problem]:
        """Record positions below `node`; return duplicate keys, which PyYAML would silently drop."""
        if node is None:
            return []
        self.values[path] = node.start_mark
        problems = []
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, value_node in node.value:
                key = key_node.value
                if key in seen:
                    dup = path + (key, "#dup")
                    self.keys[dup] = key_node.start_mark
                    problems.append(Problem(f"duplicate key `{key}`: the later value would silently win", dup))
                    continue
                seen.add(key)
                self.keys[path + (key,)] = key_node.start_mark
                problems += self.walk(value_node, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                problems += self.walk(item, path + (i,))
        return problems

    def locate(self, problem: Problem, file: str | None) -> Problem:
        """Attach file:line:col: the key for unknown and duplicate keys, else the deepest known value."""
        path = problem.path
        mark = self.keys.get(path) if problem.message.startswith(("unknown key", "duplicate key")) else None
        while mark is None and path:
            mark = self.values.get(path)
            path = path[:-1]
        mark = mark or self.values.get(())
        clean = tuple(p for p in problem.path if p != "#dup")
        if mark is None or file is None:
            return Problem(problem.message, clean, file)
        return Problem(problem.message, clean, file, mark.line + 1, mark.column + 1)


def _structure_problems(exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        field = str(loc[-1]) if loc else "storyboard"
        kind, msg, value = error["type"], error["msg"], error.get("input")
        if kind == "extra_forbidden":
            allowed = sorted(_model_at(loc[:-1]).model_fields)
            message = f"unknown key `{field}`{_did_you_mean(field, allowed)}; allowed: {', '.join(allowed)}"
        elif kind == "missing":
            message = f"`{field}` is required"
        elif kind == "literal_error":
            choices = re.findall(r"'([^']*)'", error["ctx"]["expected"])
            message = f"`{field}` must be one of {', '.join(choices)} (got {value!r}){_did_you_mean(str(value), choices)}"
        elif kind in ("value_error", "assertion_error"):
            message = msg.removeprefix("Value error, ")
            message = message if message.startswith(("a ", "the ")) else f"`{field}` {message}"
        elif kind == "string_pattern_mismatch" and loc[:1] == ("characters",):
            message = f"character name {field!r} must be letters, digits, '_' or '-', starting with a letter"
        else:
            message = f"`{field}` {msg[0].lower()}{msg[1:]} (got {value!r})".replace("Input should", "should")
            message = message.replace("` input should", "` should")
        problems.append(Problem(message, loc))
    return problems


def _model_at(loc: tuple) -> type[BaseModel]:
    """The pydantic model class found at `loc` inside a storyboard (for the list of allowed keys)."""
    cls: type[BaseModel] = StoryboardSpec
    for part in loc:
        if isinstance(part, int) or part not in cls.model_fields:
            continue
        cls = _first_model(cls.model_fields[part].annotation) or cls
    return cls


def _first_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _first_model(arg)
        if found:
            return found
    return None


__all__ = [
    "ContinuitySpec",
    "InterpolationSpec",
    "KeyframeModelSpec",
    "KeyframeSpec",
    "ModelsSpec",
    "ShotSpec",
    "StoryboardSpec",
    "TransitionSpec",
    "VideoModelSpec",
    "check_semantics",
    "format_path",
    "json_schema",
    "load_storyboard",
    "validate_data",
]
