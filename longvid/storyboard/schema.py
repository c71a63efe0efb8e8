"""The storyboard schema: pydantic models, field by field, with the JSON Schema editors read.

Structure only (types, ranges, unknown keys); what needs the whole storyboard to see is in `checks`, and reading a
file with positions in `load`.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

import longvid.timing as timing
from longvid.errors import Problem
from longvid.families import Checkpoint, checkpoint, get_family

Camera = Literal["static", "push-in", "pull-out", "zoom-in", "zoom-out", "pan-left", "pan-right", "tilt-up", "tilt-down"]
CHARACTER_REF = re.compile(r"\{([^{}]*)\}")
# continuity strategies whose overlapping frames are latent frames: shared noise, averaged or continued
WHOLE_LATENT_OVERLAP = ("shared-noise", "latent-blend", "diffusion-forcing")
REROLL_TASK = r"^(keyframe|chunk):\d+$"  # a task of one shot: its kind and its index among the shot's tasks of that kind
# A take: 0 is the original seed; strict, so `true` or `1.5` is an error rather than take 1
Take = Annotated[int, Field(ge=0, strict=True)]


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

    strategy: Literal["cut", "overlap-blend", "shared-noise", "latent-blend", "prefix", "keyframe-anchored",
                      "diffusion-forcing"] = Field(
        "overlap-blend", description="cut: no overlap; overlap-blend: blend overlapping frames; shared-noise: "
        "overlapping frames also share their initial noise; latent-blend: a shot's chunks are denoised together, "
        "their shared latent frames averaged after every step; prefix: each chunk continues from the previous "
        "one's frames; keyframe-anchored: chunks run from keyframe to keyframe (Wan FLF2V, LTX); "
        "diffusion-forcing: each chunk continues the previous one's last `overlap` frames through SkyReels-V2's "
        "diffusion-forcing video-to-video pipeline.")
    overlap: int = Field(8, ge=0, description="Frames shared by consecutive chunks.")
    ramp: Literal["linear", "cosine", "pyramid"] = "cosine"
    align: Literal["flow", "none"] = Field(
        "flow", description="flow: before the ramp mixes two overlapping chunks, optical flow aligns them, so chunks "
        "a few pixels apart do not ghost (needs OpenCV; the preview, whose chunks agree, skips it); none: the ramp "
        "alone.")
    noise: Literal["repeat", "shuffle"] = Field(
        "repeat", description="shared-noise: later chunks reuse the first chunk's noise frames in order, or "
        "shuffled within each window (FreeNoise).")
    prefix_frames: int = Field(1, ge=1, le=64, description="prefix: frames of the previous chunk to continue "
                                                           "from (more than 1 needs ltx).")
    prefix_strength: float = Field(1.0, ge=0, le=1, description="prefix: how strongly they hold (ltx).")
    prefix_noise: float = Field(0.0, ge=0, le=1, description="prefix: Gaussian noise added to them, as a fraction "
                                                            "of the pixel range (0.03 is light).")
    colour_anchor: float = Field(0.0, ge=0, le=1, description="Match each chunk's Lab mean and spread to the "
                                 "shot's keyframes around it, interpolated at its middle, this much (0: off).")
    addnoise_condition: float = Field(20.0, ge=0, le=100, description="diffusion-forcing: noise added to the "
                                      "frames a chunk continues, so it does not copy their artefacts (SkyReels "
                                      "recommends 20, at most 50).")
    ar_step: int = Field(0, ge=0, le=64, description="diffusion-forcing: 0 denoises a chunk's frames in step; more "
                                                     "(5 is usual) denoises later frames later (slower).")
    causal_block_size: int | None = Field(None, ge=1, le=64, description="diffusion-forcing: latent frames per "
                                          "causal block (default: the model's; 5 with ar_step).")

    @property
    def overlap_frames(self) -> int:
        return 0 if self.strategy == "cut" else self.overlap


class SoundSpec(_Spec):
    """A sound under a shot (effects, ambience) or the music bed: a file, or a prompt for an audio model."""

    file: str | None = Field(None, description="A sound file (WAV, FLAC, MP3, ...), relative to the storyboard.")
    prompt: str | None = Field(None, min_length=1, description="Generated by `models.audio` (`models.music` for "
                                                               "the music bed).")
    gain_db: float = Field(0.0, ge=-60, le=24, description="Gain in dB before the loudness normalisation.")
    fade_in: float = Field(0.0, ge=0, description="Seconds of linear fade at its start.")
    fade_out: float = Field(0.0, ge=0, description="Seconds of linear fade at its end.")
    loop: bool = Field(False, description="Repeat the sound to fill its span; otherwise it plays once, trimmed.")

    @model_validator(mode="after")
    def _one_source(self) -> SoundSpec:
        if (self.file is None) == (self.prompt is None):
            raise ValueError("give a sound `file` or a `prompt`, one of them")
        return self


class MusicSpec(SoundSpec):
    """The music bed, under the whole video; it ducks under voice."""

    lyrics: str | None = Field(None, description="prompt: lyrics for the music model (ACE-Step).")
    bpm: int | None = Field(None, ge=30, le=300, description="prompt: tempo for the music model.")


class VoiceSpec(_Spec):
    """A voice line: a file that starts `at` seconds into its shot."""

    file: str = Field(description="A sound file, relative to the storyboard.")
    at: float = Field(0.0, ge=0, description="Seconds from the shot's first frame (its cut).")
    gain_db: float = Field(0.0, ge=-60, le=24)


class AudioSpec(_Spec):
    """The soundtrack: the music bed, how the mix is levelled, and its sample rate."""

    music: MusicSpec | None = None
    loudness: float | None = Field(-14.0, ge=-70, le=-5, description="Integrated loudness of the final mix in LUFS "
                                   "(EBU R128), true peak at most -1 dBTP; null leaves the levels as they are.")
    sample_rate: int = Field(48000, ge=8000, le=192000)
    duck_db: float = Field(12.0, ge=0, le=60, description="How far the music is lowered while a voice line plays.")
    preview_clicks: bool = Field(False, description="A short click at every cut, to time an animatic by ear.")


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
    sound: SoundSpec | None = Field(None, description="Starts on the shot's first frame; trimmed to the shot or "
                                                      "looped; crossfades with the shot's transitions.")
    voice: list[VoiceSpec] = Field(default_factory=list, description="Voice lines; the music ducks under them.")
    reroll: dict[Annotated[str, Field(pattern=REROLL_TASK)], Take] | None = Field(
        None, description="Another take of some of the shot's tasks: `keyframe:I` or `chunk:I` (the task's index in "
        "the shot, as in the task id `chunk:SHOT:I`) -> a take number; take n > 0 draws that task with a seed of "
        "its own, and only it and what depends on it run again. 0 (or no entry) is the original seed, and every "
        "take stays in the cache, so going back to one is instant. E.g. {\"chunk:2\": 1, \"keyframe:0\": 3}.")

    _transition = field_validator("transition", mode="before")(_transition_shorthand)

    @property
    def shot_id(self) -> str:
        assert self.id is not None, "ids are filled in by StoryboardSpec"
        return self.id

    def take(self, kind: str, index: int) -> int:
        """The take asked of the shot's `kind` task `index` (0: the original)."""
        return (self.reroll or {}).get(f"{kind}:{index}", 0)


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
    offload: Literal["auto", "none", "model", "sequential"] = Field(
        "auto", description="CPU offload: whole models (some slowdown) or layer by layer (slow, least memory); auto: "
                            "the least that fits the device's memory (`--device-memory`), with VAE tiling and "
                            "slicing where the decode needs them.")
    vae_tiling: bool = False
    vae_slicing: bool = False
    attention: Literal["sdpa", "xformers"] = Field("sdpa", description="xformers needs CUDA and longvid[xformers].")
    loras: list[LoraSpec] = Field(default_factory=list)
    scheduler: SchedulerSpec | None = None


class VideoModelSpec(PipelineOptions):
    """The model that generates each shot's chunks. ``preview`` needs no weights."""

    family: Literal["preview", "svd", "cogvideox", "wan", "ltx", "ltx2", "animatediff", "skyreels",
                    "hunyuanvideo15"] = "preview"
    chunk_frames: int | None = Field(None, ge=1, le=1025, description="Frames per chunk at the base rate; "
                                                                      "default per family, made legal for it.")
    motion_adapter: str | None = Field(None, description="animatediff: a MotionAdapter hub id or folder, when "
                                                         "`model` is a plain Stable Diffusion model.")
    guidance_2: float | None = Field(None, ge=0, description="Two-expert models (Wan 2.2 A14B): the guidance of the "
                                                             "low-noise expert (default: `guidance`).")

    @property
    def frames_asked(self) -> int:
        return self.chunk_frames or get_family(self.family).chunk_frames


class IPAdapterSpec(_Spec):
    """An IP-Adapter for the keyframe model (SD 1.5, SDXL, SD3, Flux), through which references condition keyframes."""

    model: str = Field(description="Hub id or folder of the adapter, e.g. h94/IP-Adapter.")
    subfolder: str = Field("", description="Where the weights are inside it, e.g. sdxl_models.")
    weight_name: str = Field(description="The weights file, e.g. ip-adapter_sdxl.safetensors.")
    image_encoder: str | None = Field(None, description="Its image encoder: a subfolder of `subfolder`, a hub id "
                                                        "or a folder (default: `image_encoder` inside `subfolder`).")
    scale: float = Field(0.6, ge=0, le=2, description="How strongly the references hold.")


class KeyframeModelSpec(PipelineOptions):
    """The image model that draws keyframes: ``preview`` (no weights), or diffusers when `model` is given."""

    ip_adapter: IPAdapterSpec | None = None

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


class QASpec(_Spec):
    """What a render measures of itself beyond its seams."""

    identity_model: str | None = Field(None, description=(
        "An image-embedding model (a CLIP vision model, or any transformers image model with a saved image "
        "processor): a hub id or a folder relative to the storyboard. Each shot's keyframes and chunks are scored "
        "against its characters' references. Without one, no likeness is claimed."))
    identity_threshold: float = Field(0.65, gt=0, le=1, description=(
        "Cosine similarity below which a keyframe counts as off-model; `--qa-retry` draws it again with a new "
        "seed. What a good score is depends on the model."))


class RefineSpec(_Spec):
    """Draft, then refine: chunks are generated at 1/`scale` of the storyboard's size (the draft, which
    ``longvid render --draft`` stops after), then upscaled and re-denoised at full size, video to video."""

    model: str | None = Field(None, description="Hub id or folder of the refine model (default: the video model).")
    scale: float = Field(2.0, gt=1, le=4, description="The draft is this many times smaller on each side.")
    strength: float = Field(0.5, gt=0, le=1, description="How much of the upscaled draft is re-denoised.")
    steps: int | None = Field(None, ge=1, le=1000, description="Of the refine pass (default: the video model's).")
    upsampler: str | None = Field(None, description="ltx: hub id or folder of its latent upsampler (e.g. "
                                                    "Lightricks/ltxv-spatial-upscaler-0.9.7); it doubles each side.")


REFINERS = {"preview": "upscaled (no model)", "wan": "WanVideoToVideoPipeline",
            "cogvideox": "CogVideoXVideoToVideoPipeline",
            "ltx": "LTXLatentUpsamplePipeline, then LTXConditionPipeline"}  # how each family refines
class AudioModelSpec(PipelineOptions):
    """A diffusers audio model for `prompt` sounds."""

    pipeline: str | None = Field(None, description="A diffusers pipeline class (default: AutoPipelineForText2Audio "
                                                   "for effects, the folder's own class, e.g. ACE-Step, for music).")
    max_seconds: float | None = Field(None, gt=0, description="The longest piece generated in one go; longer ones are "
                                      "made in sections joined by crossfades (default: the model's own limit; "
                                      "240 s for ACE-Step).")


class ModelsSpec(_Spec):
    keyframes: KeyframeModelSpec = Field(default_factory=KeyframeModelSpec)
    video: VideoModelSpec = Field(default_factory=VideoModelSpec)
    interpolation: InterpolationSpec = Field(default_factory=InterpolationSpec)
    refine: RefineSpec | None = Field(None, description="Draft at a fraction of the size, then refine at full size.")
    audio: AudioModelSpec | None = Field(None, description="Text-to-audio model for shots' `prompt` sounds.")
    music: AudioModelSpec | None = Field(None, description="Music model for a `prompt` music bed.")


class EntityLora(_Spec):
    """A LoRA that carries a character's (or a place's) look; active only in the keyframes where it appears."""

    path: str = Field(description="Hub id, folder or .safetensors file (relative to the storyboard).")
    weight: float = Field(1.0, ge=-10, le=10)
    trigger: str | None = Field(None, description="The LoRA's trigger word, put before the prompts it is active in.")
    weight_name: str | None = Field(None, description="The file inside a hub repo or folder, when it holds several.")


class EntitySpec(_Spec):
    """A character or a place: what it looks like, and optionally reference images and a LoRA.

    A plain string is the description alone.
    """

    description: str = Field(min_length=1)
    reference: str | list[str] | None = Field(None, description="An image or a list, relative to the storyboard. "
                                              "Without one, a reference is generated once with the keyframe model.")
    lora: EntityLora | None = None

    @property
    def references(self) -> list[str]:
        return [self.reference] if isinstance(self.reference, str) else list(self.reference or [])


def _entity_shorthand(value: Any) -> Any:
    # `dog: a scruffy brown terrier` is the common case
    if isinstance(value, dict):
        return {name: {"description": v} if isinstance(v, str) else v for name, v in value.items()}
    return value


Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")]


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
    characters: dict[Name, EntitySpec] = Field(default_factory=dict, description="name -> a description, or "
                                               "{description, reference, lora}; {name} in a prompt refers to it.")
    places: dict[Name, EntitySpec] = Field(default_factory=dict, description="Sets and locations, as characters.")
    models: ModelsSpec = Field(default_factory=ModelsSpec)
    continuity: ContinuitySpec = Field(default_factory=ContinuitySpec)
    qa: QASpec = Field(default_factory=QASpec)
    audio: AudioSpec = Field(default_factory=AudioSpec)
    shots: list[ShotSpec] = Field(min_length=1)

    _characters = field_validator("characters", "places", mode="before")(_entity_shorthand)

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _source: str | None = PrivateAttr(None)
    _file: str | None = PrivateAttr(None)  # the path as given, for messages
    _marks: Any = PrivateAttr(None)  # source positions by path (`load.Marks`), to locate later problems
    _checkpoint: Checkpoint | None = PrivateAttr(None)

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

    def video_checkpoint(self) -> Checkpoint:
        """What the video model can do and needs (abilities, size multiple, native rate, experts).

        Worked out once per storyboard (it may read the checkpoint's configs) and reused by the checks and the plan.
        """
        if self._checkpoint is None:
            video = self.models.video
            self._checkpoint = checkpoint(get_family(video.family), video.model, self.base_dir)
        return self._checkpoint

    @property
    def draft_size(self) -> tuple[int, int]:
        """(width, height) of the chunks: the storyboard's, or with `models.refine` 1/scale of it, in the video
        model's size multiple."""
        refine = self.models.refine
        if refine is None:
            return self.width, self.height
        multiple = self.video_checkpoint().size_multiple if self.models.video.model else 16
        return tuple(max(multiple, round(side / refine.scale / multiple) * multiple)
                     for side in (self.width, self.height))

    def video_abilities(self) -> tuple[frozenset[str], str | None]:
        """What the video model can be conditioned on, and the pipeline class that says so (None: assumed)."""
        found = self.video_checkpoint()
        return found.abilities, found.pipeline

    def locate(self, problem: Problem) -> Problem:
        """`problem` with the file, line and column of its path, when the storyboard came from a file."""
        if self._marks is None:
            return problem if problem.file or not self._file else Problem(problem.message, problem.path, self._file)
        return self._marks.locate(problem, self._file)

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
        native = self.video_checkpoint().native_fps
        return self.fps / native if native and native < self.fps else 1.0

    @property
    def total_frames(self) -> int:
        return timing.seconds_to_frames(self.duration, self.fps)

    @property
    def has_sound(self) -> bool:
        """Whether the storyboard asks for a soundtrack of its own (files, prompts or cut clicks)."""
        return bool(self.audio.music or self.audio.preview_clicks or any(s.sound or s.voice for s in self.shots))

    @property
    def entities(self) -> dict[str, EntitySpec]:
        """Characters and places together, by name (a name is one or the other)."""
        return self.characters | self.places

    def expand(self, text: str) -> str:
        """Replace each ``{name}`` with that character's or place's description."""
        entities = self.entities
        return CHARACTER_REF.sub(lambda m: entities[m[1]].description if m[1] in entities else m[0], text)

    def mentions(self, shot: ShotSpec) -> list[str]:
        """The characters and places a shot refers to (in its prompt or its keyframes'), characters first."""
        texts = [shot.prompt, *(kf.prompt or "" for kf in shot.keyframes)]
        named = {name for text in texts for name in CHARACTER_REF.findall(text)}
        return [n for n in self.characters if n in named] + [n for n in self.places if n in named]

    def continuity_for(self, shot: ShotSpec | None = None) -> ContinuitySpec:
        """The shot's continuity (None: the storyboard's): the storyboard's, with the keys the shot sets replaced.

        An `overlap` nobody wrote is the legal one nearest the default for the family and strategy in use (see
        `overlap_latent`); `overlap_note` says when that moved it.
        """
        cont = self.continuity
        if shot is not None and shot.continuity is not None:
            cont = cont.model_copy(update={k: getattr(shot.continuity, k) for k in shot.continuity.model_fields_set})
        if not self._overlap_written(shot):
            legal = timing.nearest_overlap(cont.overlap, self.chunk_length, self.overlap_latent(cont.strategy))
            cont = cont.model_copy(update={"overlap": legal}) if legal != cont.overlap else cont
        return cont

    def _overlap_written(self, shot: ShotSpec | None) -> bool:
        return "overlap" in self.continuity.model_fields_set or (
            shot is not None and shot.continuity is not None and "overlap" in shot.continuity.model_fields_set)

    def overlap_note(self, shot: ShotSpec | None = None) -> str | None:
        """What moved the default overlap for this shot's family and strategy, or None."""
        cont = self.continuity_for(shot)
        default = ContinuitySpec.model_fields["overlap"].default
        if self._overlap_written(shot) or cont.overlap == default or cont.strategy == "cut":
            return None
        latent = self.overlap_latent(cont.strategy)
        why = (f"overlapping frames must be whole latent frames (1 more than a multiple of {latent})" if latent
               else f"it must be less than half the chunk length ({self.chunk_length} frames)")
        return (f"continuity.overlap {default} -> {cont.overlap}: the default is not legal for "
                f"{self.models.video.family} with {cont.strategy}: {why}; set `overlap` to choose another")

    @property
    def chunk_length(self) -> int:
        """The video model's chunk length: `chunk_frames` (or the family's default) made legal for the family."""
        video = self.models.video
        return timing.FrameRule.parse(get_family(video.family).frame_rule).at_least(video.frames_asked)

    def overlap_latent(self, strategy: str) -> int | None:
        """Video frames per latent frame when `strategy` needs overlaps of whole latent frames with this family
        (shared noise, averaged latents, continued latents), else None. The preview draws frames from time alone."""
        family = get_family(self.models.video.family)
        if strategy in WHOLE_LATENT_OVERLAP and family.name != "preview":
            return family.temporal_compression
        return None

    def keyframes_of(self, shot: ShotSpec, frames: int) -> list[KeyframeSpec]:
        """A shot of `frames` frames' keyframes in time order, as every id names them (``keyframe:SHOT:I`` is the
        I-th here, in the shot graph, the render graph, the manifest and `status`): the shot's own, one at 0 s from
        the shot's prompt unless one is pinned there, and for a first-last-frame model one at the shot's end unless
        one is pinned there."""
        pinned = sorted(shot.keyframes, key=lambda kf: kf.at)
        if not pinned or timing.seconds_to_frames(pinned[0].at, self.fps) > 0:
            pinned.insert(0, KeyframeSpec(at=0.0))
        if self.models.video.family != "preview" and "needs-last" in self.video_abilities()[0] and \
                min(timing.seconds_to_frames(pinned[-1].at, self.fps), frames - 1) < frames - 1:
            pinned.append(KeyframeSpec(at=shot.duration))  # a first-last-frame model ends every chunk on a keyframe
        return pinned

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
        for group in ("characters", "places"):
            for name, entity in data.get(group, {}).items():
                if set(entity) == {"description"}:  # the short form
                    data[group][name] = entity["description"]
        data.setdefault("shots", [])
        for shot, src in zip(data["shots"], self.shots, strict=True):
            shot["id"] = src.id  # ids are always written, so seeds survive re-ordering
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
