"""Generated sound: a shot's effects or ambience from a text-to-audio pipeline (Stable Audio, Stable Audio 3,
AudioLDM2, through `AutoPipelineForText2Audio` or a chosen class), and the music bed from ACE-Step (prompt, lyrics,
bpm). Each is one `sound` task, stored as FLAC at the model's rate; the mix places it like a file.

A piece longer than the model's maximum is generated in sections that overlap by `SECTION_OVERLAP` seconds and are
joined by linear crossfades; each section has its own seed from the seeding rule, so a section is the same whatever
the device.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from longvid.seeds import derive_seed
from longvid.stages.audio import write_flac
from longvid.stages.base import Output, StageSpec
from longvid.stages.pipelines import cpu_generator, hold, ran, settings_for
from longvid.tasks import SoundParams, Task

SECTION_OVERLAP = 1.0  # seconds, at most a quarter of a section
ACE_STEP_SECONDS = 240.0  # the longest piece ACE-Step is trained to make
# how pipelines name a length in seconds: Stable Audio, AudioLDM2, ACE-Step, Stable Audio 3
LENGTH_ARGUMENTS = ("audio_end_in_s", "audio_length_in_s", "audio_duration", "duration")


def _loader(p: SoundParams):
    def load(path: str, dtype):
        import diffusers

        if p.pipeline_class:
            cls = getattr(diffusers, p.pipeline_class, None)
            if cls is None or not hasattr(cls, "from_pretrained"):
                raise ValueError(f"`pipeline` ({p.pipeline_class!r}) is not a diffusers pipeline class")
        else:
            cls = diffusers.AutoPipelineForText2Audio if p.role == "sound" else diffusers.DiffusionPipeline
        return cls.from_pretrained(path, dtype=dtype)

    return load


def max_seconds(pipe: Any, asked: float | None) -> float | None:
    """The longest piece to make in one go: the storyboard's `max_seconds`, within what the model can (None: no
    limit)."""
    name = type(pipe).__name__
    own = None
    if name == "StableAudioPipeline":  # a fixed latent length: its transformer's sample_size
        own = pipe.transformer.config.sample_size * pipe.vae.hop_length / pipe.vae.config.sampling_rate
    elif name.startswith("AceStep"):
        own = ACE_STEP_SECONDS
    return min(x for x in (own, asked) if x is not None) if own or asked else None


def sampling_rate(pipe: Any) -> int:
    """The rate of what the pipeline returns: ACE-Step says it, AudioLDM2's vocoder makes it, else its VAE's."""
    if hasattr(pipe, "sample_rate"):
        return int(pipe.sample_rate)
    if getattr(pipe, "vocoder", None) is not None:
        return int(pipe.vocoder.config.sampling_rate)
    return int(pipe.vae.config.sampling_rate)


def generate(pipe: Any, p: SoundParams, seconds: float, seed: int) -> tuple[np.ndarray, int]:
    """One section: (channels x samples float32, rate). Each pipeline names the length its own way; the call's
    signature says which, and whether it takes a negative prompt, lyrics and a tempo."""
    import inspect

    takes = inspect.signature(pipe.__call__).parameters
    length = next((a for a in LENGTH_ARGUMENTS if a in takes), None)
    if length is None:
        raise ValueError(f"{type(pipe).__name__} takes no length ({', '.join(LENGTH_ARGUMENTS)}): it cannot make "
                         f"a sound of a given length")
    optional = {"negative_prompt": p.negative_prompt or None, "lyrics": p.lyrics, "bpm": p.bpm}
    kwargs = {"prompt": p.prompt, length: seconds, "num_inference_steps": p.pipeline.steps,
              "guidance_scale": p.pipeline.guidance, "generator": cpu_generator(seed), "output_type": "np"}
    kwargs |= {k: v for k, v in optional.items() if k in takes and v is not None}
    audio = np.asarray(pipe(**kwargs).audios[0], dtype=np.float32)
    audio = audio[None] if audio.ndim == 1 else audio
    rate = sampling_rate(pipe)
    # models round a length to whole latent frames (ACE-Step to even ones); the piece is exactly as long as asked
    n = round(seconds * rate)
    return np.pad(audio[:, :n], ((0, 0), (0, max(0, n - audio.shape[1])))), rate


class GeneratedSound:
    """A `prompt` sound, generated and stored as FLAC."""

    spec = StageSpec(name="diffusers.sound", kind="sound", code_version="1", params=SoundParams, output="audio",
                     resources={"gpus": 1}, low_memory={"offload": "model"})

    def __call__(self, task: Task, inputs: Mapping[str, Any]) -> Output:
        # 1. load the pipeline (kept while tasks for it remain)
        p: SoundParams = task.params
        pipe = hold(settings_for(p), _loader(p))

        # 2. the sections: one, or as many as the model's maximum length asks, overlapping for their crossfades
        longest = max_seconds(pipe, p.max_seconds)
        if longest is None or p.seconds <= longest:
            spans = [p.seconds]
            overlap = 0.0
        else:
            overlap = min(SECTION_OVERLAP, longest / 4)
            count = math.ceil((p.seconds - overlap) / (longest - overlap))
            spans = [min(longest, p.seconds - i * (longest - overlap)) for i in range(count)]

        # 3. generate each from its own seed, and join them with linear crossfades
        track, rate = None, None
        for i, seconds in enumerate(spans):
            seed = task.seed if i == 0 else derive_seed(p.base_seed, p.owner, p.role, i)
            part, rate = generate(pipe, p, seconds, seed)
            if track is None:
                track = part
                continue
            n = min(round(overlap * rate), track.shape[1], part.shape[1])
            if part.shape[0] != track.shape[0]:
                part = np.broadcast_to(part, track.shape[:1] + part.shape[1:])
            fade = (np.arange(n) + 0.5) / n
            joined = track[:, track.shape[1] - n:] * (1 - fade) + part[:, :n] * fade
            track = np.concatenate([track[:, :track.shape[1] - n], joined, part[:, n:]], axis=1)

        # 4. stored as FLAC at the model's rate
        path = inputs.scratch(".flac")
        write_flac(path, np.clip(track, -1, 1), rate)
        return Output(path, {"rate": rate, "channels": int(track.shape[0]), "samples": int(track.shape[1]),
                             "sections": len(spans), "ran": ran(pipe, {})})
