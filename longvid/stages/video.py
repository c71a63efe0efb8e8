"""Chunk generation through diffusers, one adapter per model family.

The family's declaration (frame rule, native fps, latent layout, conditioning) is data in `longvid.families`;
an adapter adds only what differs between pipelines: which class to run for a chunk's anchors, the shape of its
initial noise, and its call arguments. Every adapter draws the noise on the CPU from the chunk's seed and passes
it as ``latents=``, and passes a seeded CPU generator for the draws a pipeline makes itself (SVD's noise
augmentation, CogVideoX-I2V's image latents, LTX conditions), so a chunk is the same on any device.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from longvid.cache import Latents
from longvid.families import get_family
from longvid.seeds import derive_seed
from longvid.stages.base import Output, StageSpec
from longvid.stages.decode import DECODERS
from longvid.stages.pipelines import (
    cpu_generator,
    cpu_noise,
    derived,
    hold,
    ran,
    settings_for,
    to_pil,
    to_uint8,
)
from longvid.stitching.blend import blend_chunks
from longvid.tasks import ChunkParams, Task
from longvid.timing import ChunkWindow, FrameRule

LOW_MEMORY = {"vae_tiling": True, "vae_slicing": True, "offload": "model", "decode_chunk_size": 2}


def _load(path: str, dtype, motion_adapter: str | None = None):
    from diffusers import DiffusionPipeline

    if motion_adapter:  # a plain Stable Diffusion model turned into AnimateDiff by a motion adapter
        from diffusers import AnimateDiffPipeline, MotionAdapter

        adapter = MotionAdapter.from_pretrained(motion_adapter, dtype=dtype)
        return AnimateDiffPipeline.from_pretrained(path, motion_adapter=adapter, dtype=dtype)
    return DiffusionPipeline.from_pretrained(path, dtype=dtype)


def _hold(settings: Mapping[str, Any]) -> Any:
    return hold(settings, lambda path, dtype: _load(path, dtype, settings.get("motion_adapter")))


def _sibling(name: str) -> Any:
    """The diffusers pipeline class `name` built from the loaded pipeline's modules (`from_pipe`: no second copy),
    kept with it and released with it."""
    def make(pipe):
        import diffusers

        return getattr(diffusers, name).from_pipe(pipe)

    return derived(name, make)


def call_arguments(p: ChunkParams, settings: Mapping[str, Any], seed: int, latents) -> dict[str, Any]:
    """What every family's pipeline call takes: size, frames, steps, a seeded CPU generator, the noise."""
    kwargs = {"height": p.height, "width": p.width, "num_frames": p.frames,
              "num_inference_steps": settings["steps"], "generator": cpu_generator(seed), "output_type": "np"}
    # planned, the low-memory retry's, or the family's default (the one the planner counts): never the pipeline's
    # own (SVD's is every frame at once)
    family = get_family(p.pipeline.family) if p.pipeline.family else None
    if chunked := settings.get("decode_chunk_size") or (family and family.decode_chunk_size):
        kwargs["decode_chunk_size"] = chunked
    return kwargs if latents is None else kwargs | {"latents": latents}


def chunk_spec(family: str) -> StageSpec:
    """A family with a decoder here (`stages.decode`) stores its chunks' latents; the others their frames."""
    return StageSpec(name=f"{family}.chunk", kind="chunk", code_version="2" if family in DECODERS else "1",
                     params=ChunkParams, inputs=("keyframe", "chunk", "decode", "reference"),
                     output="latents" if family in DECODERS else "frames", resources={"gpus": 1},
                     low_memory={"low_memory": LOW_MEMORY})


class ChunkStage:
    """Generates one chunk with a family's pipeline; subclasses are the family adapters."""

    family: str
    frame_axis: int  # where the latent frames are in the initial noise
    spec: StageSpec

    def __call__(self, task: Task, inputs: Mapping[str, Any]) -> np.ndarray:
        # 1. check inputs
        p: ChunkParams = task.params
        family = get_family(self.family)
        rule = FrameRule.parse(family.frame_rule)
        for frames in [w[1] for w in p.windows] or [p.frames]:
            if not rule.is_legal(frames):
                raise ValueError(f"`frames` ({frames}) is not a legal {self.family} frame count ({rule})")
        settings = settings_for(p)
        if p.windows:  # latent-blend: the shot's chunks, denoised side by side
            return self.co_denoise(task, settings)

        # 2. prepare conditioning: the anchor images (or, for a prefix of several frames, clips) by frame index
        images, strengths = {}, {}
        rng = np.random.default_rng(task.seed)
        for anchor in p.anchors:
            image = inputs[anchor.task]
            if anchor.frame is not None:  # frames of the previous chunk
                count = anchor.count
                image = image[anchor.frame:anchor.frame + count] if count > 1 else image[anchor.frame]
            if anchor.noise:  # re-noised, so the chunk does not copy the previous one's artefacts
                image = np.clip(np.rint(image + rng.normal(0, anchor.noise * 255, image.shape)), 0, 255)
                image = image.astype(np.uint8)
            images[anchor.index] = image
            strengths[anchor.index] = anchor.strength

        # 3. load the pipeline, check what it can take, and prepare the latents on the CPU
        base = _hold(settings)
        known = family.pipelines.get(type(base).__name__)
        if known is None:
            raise ValueError(f"{task.model} loads as {type(base).__name__}, which is not a {self.family} pipeline "
                             f"({', '.join(family.pipelines)}); check models.video.family")
        pipe = self.pipeline_for(base, images)
        if not images and "text" not in known:
            raise ValueError(f"{task.model} ({type(pipe).__name__}) needs an image to start a chunk")
        if images and "first" not in family.pipelines.get(type(pipe).__name__, ()):
            raise ValueError(f"{task.model} ({type(pipe).__name__}) generates from text only; it cannot start "
                             f"from a keyframe")
        references = [image for r in p.references for image in inputs[r]]
        if references and "references" not in family.pipelines.get(type(pipe).__name__, ()):
            raise ValueError(f"{task.model} ({type(pipe).__name__}) takes no reference images")
        latents = self.latents(pipe, p, task.seed, len(references))

        # 4. generate (a pipeline that sizes itself from its image, HunyuanVideo 1.5 I2V, is given no size)
        takes = inspect.signature(type(pipe).__call__).parameters
        open_ended = any(t.kind == t.VAR_KEYWORD for t in takes.values())
        kwargs = {k: v for k, v in call_arguments(p, settings, task.seed, latents).items() if open_ended or k in takes}
        kwargs |= self.arguments(pipe, p, settings, images, strengths, references)
        facts = {"ran": ran(pipe, kwargs)}
        if self.family in DECODERS:  # the latents are the output; a decode task makes the frames
            out = pipe(**kwargs | {"output_type": "latent"})
            return Output(self.stored(out.frames, p, {"retime_to": self.retime_to(pipe, p, images)}), facts)
        out = pipe(**kwargs)

        # 5. decode to uint8, as the blend reads them, and check the count; the sound, where the model makes some
        frames = self.finish(pipe, p, images, to_uint8(out.frames[0]))
        if frames.shape != (p.frames, p.height, p.width, 3):
            raise RuntimeError(f"{type(pipe).__name__} returned {frames.shape}, expected "
                               f"({p.frames}, {p.height}, {p.width}, 3)")
        return Output(frames, facts, audio=self.sound(pipe, p, out))

    def stored(self, latents, p: ChunkParams, meta: Mapping[str, Any]) -> Latents:
        """Latents as stored: float16 when the model ran in half precision (bfloat16 fits in it), else float32;
        `drop`: the latent frames before the video's (reference images, CogVideoX 1.5's padding)."""
        import torch

        family = get_family(self.family)
        half = latents.dtype in (torch.float16, torch.bfloat16)
        array = latents.detach().to("cpu", torch.float16 if half else torch.float32).numpy()
        # (a shot's timeline under latent-blend has none: its frames past the shot's are cut after decoding)
        drop = 0 if p.windows else array.shape[self.frame_axis] - family.latent_frames(p.frames)
        return Latents(array, {k: v for k, v in {**meta, "drop": drop}.items() if v})

    def retime_to(self, pipe: Any, p: ChunkParams, images: dict[int, np.ndarray]) -> int | None:
        """How many frames the decoded chunk is retimed onto (`decode.retimed`), when it must be."""
        return None

    def sound(self, pipe: Any, p: ChunkParams, out: Any) -> tuple[np.ndarray, int] | None:
        """The chunk's sound (channels x samples float32, exactly as long as its frames), for a family whose model
        makes some; None otherwise."""
        return None

    def finish(self, pipe: Any, p: ChunkParams, images: dict[int, np.ndarray], frames: np.ndarray) -> np.ndarray:
        """The chunk's frames as the blend reads them (its first `used`): e.g. a family whose last image lands on
        the last generated frame moves it onto the last used one."""
        return frames

    def co_denoise(self, task: Task, settings: Mapping[str, Any]) -> np.ndarray | Latents:
        """latent-blend: denoise a shot's overlapping chunks in lockstep, one thread each, and after every step
        replace each latent frame the chunks share by their weighted mean (Gen-L-Video, AnimateDiff context
        windows). Every chunk keeps its own scheduler; the modules are shared. Returns the shot's latent timeline
        (a family with a decoder: one decode task makes the shot's frames from it, so frames the chunks share
        come out once), else the decoded chunks blended over their overlaps."""
        import copy
        import threading

        import torch

        p: ChunkParams = task.params
        family = get_family(self.family)
        windows = [ChunkWindow(i, *w) for i, w in enumerate(p.windows)]
        base = _hold(settings)
        pipes = [type(base).from_pipe(base, scheduler=copy.deepcopy(base.scheduler)) for _ in windows]
        for pipe in pipes:
            pipe.set_progress_bar_config(disable=True)
        tc, axis = family.temporal_compression, self.frame_axis
        latent = self.family in DECODERS
        offsets = [w.start // tc for w in windows]
        # each latent frame weighs its distance to the nearer end of its chunk (a pyramid), so chunk edges yield
        weights = []
        for w in windows:
            n = family.latent_frames(w.frames)
            weights.append(torch.minimum(torch.arange(1, n + 1), torch.arange(n, 0, -1)).float())
        current: list[Any] = [None] * len(windows)
        barrier = threading.Barrier(len(windows))
        errors: list[BaseException] = []

        def merge() -> None:  # run by one thread while the others wait
            total = max(o + c.shape[axis] for o, c in zip(offsets, current, strict=True))
            shape = list(current[0].shape)
            shape[axis] = total
            acc = torch.zeros(shape, dtype=torch.float32, device=current[0].device)
            norm = torch.zeros(total, dtype=torch.float32, device=current[0].device)
            view = [1] * len(shape)
            view[axis] = -1
            for o, c, wt in zip(offsets, current, weights, strict=True):
                wt = wt.to(c.device)
                acc.narrow(axis, o, c.shape[axis]).add_(c.float() * wt.view(view))
                norm[o:o + c.shape[axis]] += wt
            acc /= norm.view(view)
            for i, (o, c) in enumerate(zip(offsets, current, strict=True)):
                current[i] = acc.narrow(axis, o, c.shape[axis]).to(c.dtype).contiguous()

        def step_end(i: int):
            def callback(pipe, step, timestep, kwargs):
                current[i] = kwargs["latents"]
                if barrier.wait() == 0:
                    merge()
                barrier.wait()
                return {"latents": current[i]}
            return callback

        outputs: list[Any] = [None] * len(windows)

        def run(i: int) -> None:
            w = windows[i]
            chunk = p.model_copy(update={"frames": w.frames, "start": w.start,
                                         "noise": p.noise.model_copy(update={"offset": offsets[i]})})
            kwargs = call_arguments(chunk, settings, task.seed + i, self.latents(pipes[i], chunk, task.seed)) | {
                "callback_on_step_end": step_end(i), "callback_on_step_end_tensor_inputs": ["latents"]}
            kwargs |= self.arguments(pipes[i], chunk, settings, {}, {})
            if latent:
                kwargs["output_type"] = "latent"
            try:
                out = pipes[i](**kwargs).frames
                outputs[i] = out if latent else to_uint8(out[0])
            except BaseException as exc:  # noqa: BLE001 - re-raised below; the others must not wait forever
                errors.append(exc)
                barrier.abort()

        # The threads share the modules, and some keep state inside a call (Wan's causal VAE caches features
        # while it decodes): one call at a time into each, so chunks stay exactly what they would be alone.
        lock = threading.Lock()
        patched = []
        for module, method in ((getattr(base, n, None), m) for n, m in
                               (("transformer", "forward"), ("transformer_2", "forward"), ("unet", "forward"),
                                ("vae", "decode"))):
            if module is not None:
                bound = getattr(module, method)
                patched.append((module, method, module.__dict__.get(method)))
                setattr(module, method, _serialised(bound, lock))
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(windows))]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            for module, method, own in patched:
                if own is None:
                    delattr(module, method)
                else:
                    setattr(module, method, own)
        if errors:
            raise next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0])
        if not latent:
            return np.stack(list(blend_chunks(windows, lambda i: outputs[i], p.ramp)))
        # after the last step's merge the chunks agree on every latent frame they share: laid side by side
        length = max(o + c.shape[axis] for o, c in zip(offsets, outputs, strict=True))
        shape = list(outputs[0].shape)
        shape[axis] = length
        timeline = outputs[0].new_zeros(shape)
        for o, c in zip(offsets, outputs, strict=True):
            timeline.narrow(axis, o, c.shape[axis]).copy_(c)
        return self.stored(timeline, p, {})

    condition_pipeline: str | None = None  # the class that takes keyframes, derived from the loaded pipeline

    def pipeline_for(self, base: Any, images: dict[int, np.ndarray]) -> Any:
        """The pipeline that runs a chunk with these anchors: the loaded one, or with anchors the family's
        `condition_pipeline` built from its modules."""
        if not images or self.condition_pipeline in (None, type(base).__name__):
            return base
        return _sibling(self.condition_pipeline)

    def latents(self, pipe: Any, p: ChunkParams, seed: int, references: int = 0):
        """The initial noise, drawn on the CPU; None where the pipeline draws it from the generator. `references`:
        how many reference images the call takes (a model that takes them may give each latent frames)."""
        raise NotImplementedError

    def arguments(self, pipe: Any, p: ChunkParams, settings: Mapping[str, Any], images: dict[int, np.ndarray],
                  strengths: dict[int, float], references: Sequence[np.ndarray] = ()) -> dict[str, Any]:
        """The family's own call arguments; `references`: the images of the characters and places the chunk shows,
        for a pipeline that takes them."""
        raise NotImplementedError

    def frames_second_noise(self, pipe: Any, p: ChunkParams, seed: int, channels: int):
        """Initial noise laid out ``[B, C, F, h, w]`` from the pipeline's VAE scales (Wan, SkyReels, HunyuanVideo)."""
        frames = (p.frames - 1) // pipe.vae_scale_factor_temporal + 1
        scale = pipe.vae_scale_factor_spatial
        return self.noise((1, channels, frames, p.height // scale, p.width // scale), 2, p, seed)

    @staticmethod
    def noise(shape: tuple[int, ...], axis: int, p: ChunkParams, seed: int):
        """Initial noise with its latent frames along `axis`; under shared-noise, frame k of the shot's latent
        timeline gets the same noise in every chunk that covers it (FreeNoise: the first window's frames, repeated
        in order or shuffled within each later window)."""
        shared = p.noise
        if not shared:
            return cpu_noise(shape, seed)
        import torch

        period = shared.period
        base = cpu_noise(shape[:axis] + (period,) + shape[axis + 1:], shared.seed)
        picks = []
        for j in range(shape[axis]):
            block, k = divmod(shared.offset + j, period)
            if shared.mode == "shuffle" and block:
                k = int(np.random.default_rng([shared.seed % 2**32, block]).permutation(period)[k])
            picks.append(k)
        return base.index_select(axis, torch.tensor(picks))


def _serialised(call, lock):
    def serialised(*args, **kwargs):
        with lock:
            return call(*args, **kwargs)
    return serialised


def _text(p: ChunkParams, settings: Mapping[str, Any]) -> dict[str, Any]:
    return {"prompt": p.prompt, "negative_prompt": p.negative_prompt or None, "guidance_scale": settings["guidance"]}


def _experts(pipe: Any, settings: Mapping[str, Any]) -> dict[str, Any]:
    """A two-expert model's (Wan 2.2 A14B) guidance of its low-noise expert, when one is set."""
    if settings.get("guidance_2") is None:
        return {}
    if getattr(pipe.config, "boundary_ratio", None) is None:
        raise ValueError(f"`guidance_2` is for two-expert models; {type(pipe).__name__} has one transformer")
    return {"guidance_scale_2": settings["guidance_2"]}


def _last(p: ChunkParams, images: dict[int, np.ndarray]) -> np.ndarray | None:
    return next((image for index, image in images.items() if index > 0), None)


class SVDChunk(ChunkStage):
    family = "svd"
    spec = chunk_spec("svd")
    frame_axis = 1

    def latents(self, pipe, p, seed, references=0):
        scale = pipe.vae_scale_factor
        return self.noise((1, p.frames, pipe.unet.config.in_channels // 2, p.height // scale,
                           p.width // scale), 1, p, seed)

    def arguments(self, pipe, p, settings, images, strengths, references=()):
        return {"image": to_pil(images[0]), "min_guidance_scale": 1.0, "max_guidance_scale": settings["guidance"],
                "fps": max(1, round(p.fps)), "motion_bucket_id": 127, "noise_aug_strength": 0.02}


class CogVideoXChunk(ChunkStage):
    family = "cogvideox"
    spec = chunk_spec("cogvideox")
    frame_axis = 1

    def latents(self, pipe, p, seed, references=0):
        frames = (p.frames - 1) // pipe.vae_scale_factor_temporal + 1
        patch_t = pipe.transformer.config.patch_size_t
        if patch_t and frames % patch_t:  # CogVideoX 1.5 pads the latent frames to its temporal patch
            frames += patch_t - frames % patch_t
        scale = pipe.vae_scale_factor_spatial
        return self.noise((1, frames, pipe.vae.config.latent_channels, p.height // scale, p.width // scale), 1,
                          p, seed)

    def arguments(self, pipe, p, settings, images, strengths, references=()):
        kwargs = _text(p, settings) | {"max_sequence_length": pipe.transformer.config.max_text_seq_length}
        if images:
            kwargs["image"] = to_pil(images[0])
        return kwargs


class WanChunk(ChunkStage):
    family = "wan"
    spec = chunk_spec("wan")
    frame_axis = 2

    def latents(self, pipe, p, seed, references=0):
        noise = self.frames_second_noise(pipe, p, seed, pipe.vae.config.z_dim)
        if not references:
            return noise
        import torch

        # VACE gives each reference image a latent frame of its own, before the video's: its noise comes apart, so
        # the video's frames keep theirs (under shared-noise, the shot's)
        shape = tuple(noise.shape)
        extra = cpu_noise((*shape[:2], references, *shape[3:]), derive_seed(seed, "references", 0))
        return torch.cat([extra, noise], dim=2)

    def pipeline_for(self, base, images):
        if not images or type(base).__name__ != "WanPipeline" or not base.config.get("expand_timesteps"):
            return base
        return _sibling("WanImageToVideoPipeline")  # Wan 2.2 TI2V loads for text; its modules take an image so

    def arguments(self, pipe, p, settings, images, strengths, references=()):
        kwargs = _text(p, settings) | _experts(pipe, settings)
        if type(pipe).__name__ == "WanVACEPipeline":
            return kwargs | _vace(p, images, references)
        if images:
            kwargs["image"] = to_pil(images[0])
            last = _last(p, images)
            if last is not None:  # first-last-frame: the chunk ends on the keyframe
                kwargs["last_image"] = to_pil(last)
            elif pipe.transformer is not None and pipe.transformer.config.pos_embed_seq_len:
                # A first-last-frame checkpoint embeds two images. With no keyframe to end on, it sees the first
                # image twice in its image context, while its video condition pins only the first frame.
                kwargs["image_embeds"] = pipe.encode_image([kwargs["image"]] * 2, pipe._execution_device)
        return kwargs

    def retime_to(self, pipe, p, images):
        # FLF2V: the last image is the last generated frame, but a legal frame count (4k+1) can be up to 3 frames longer
        # than the chunk keeps: retimed onto `used` frames, the keyframe lands on the shot's frame. Frames past
        # `used` are never shown. VACE puts every anchor at its own index.
        if _last(p, images) is None or p.used >= p.frames or type(pipe).__name__ == "WanVACEPipeline":
            return None
        return p.used


def _vace(p: ChunkParams, images: dict[int, np.ndarray], references) -> dict[str, Any]:
    """Wan VACE's conditions: every anchor at its own frame index in `video`, kept where `mask` is black; grey
    (zero) frames where the model generates; the references as `reference_images`."""
    video = np.full((p.frames, p.height, p.width, 3), 128, np.uint8)
    mask = np.full((p.frames, p.height, p.width, 3), 255, np.uint8)
    for index, image in images.items():
        frames = image if image.ndim == 4 else image[None]
        video[index:index + len(frames)] = frames[:p.frames - index]
        mask[index:index + len(frames)] = 0
    kwargs: dict[str, Any] = {"video": [to_pil(f) for f in video], "mask": [to_pil(f) for f in mask]}
    if references:
        kwargs["reference_images"] = [to_pil(image) for image in references]
    return kwargs


class SkyReelsChunk(ChunkStage):
    """SkyReels-V2. A diffusion-forcing (DF) checkpoint generates a shot's first chunk from text or its opening
    keyframe, and under the diffusion-forcing strategy each later chunk continues the previous chunk's overlap
    through the DF video-to-video pipeline (`overlap_history`), one cached task per chunk."""

    family = "skyreels"
    spec = chunk_spec("skyreels")
    frame_axis = 2

    def pipeline_for(self, base, images):
        if "DiffusionForcing" not in type(base).__name__ or 0 not in images:
            return base
        return _sibling(f"SkyReelsV2DiffusionForcing{'VideoToVideo' if images[0].ndim == 4 else 'ImageToVideo'}"
                        f"Pipeline")

    def latents(self, pipe, p, seed, references=0):
        if "DiffusionForcing" in type(pipe).__name__:
            import torch

            # it draws its noise from the seeded CPU generator, but the noise `addnoise_condition` adds to the
            # frames it continues from torch's global one: seeded here, just before the call
            torch.manual_seed(seed)
            return None
        return self.frames_second_noise(pipe, p, seed, pipe.vae.config.z_dim)

    def arguments(self, pipe, p, settings, images, strengths, references=()):
        kwargs = _text(p, settings)
        first = images.get(0)
        if "DiffusionForcing" in type(pipe).__name__:
            forcing = p.forcing
            kwargs |= {"base_num_frames": p.frames, "fps": round(p.fps),
                       "addnoise_condition": forcing.addnoise_condition if forcing else 0,
                       "ar_step": forcing.ar_step if forcing else 0,
                       "causal_block_size": forcing.causal_block_size if forcing else None}
            if first is not None and first.ndim == 4:  # the previous chunk's overlap, continued
                return kwargs | {"video": [to_pil(f) for f in first], "overlap_history": len(first)}
        if first is not None:
            kwargs["image"] = to_pil(first if first.ndim == 3 else first[-1])
        return kwargs

    def finish(self, pipe, p, images, frames):
        # the video-to-video pipeline returns the frames it was given, then the chunk (which re-draws them first)
        return frames[-p.frames:] if "VideoToVideo" in type(pipe).__name__ else frames


class HunyuanVideo15Chunk(ChunkStage):
    """HunyuanVideo 1.5: T2V and I2V checkpoints (the I2V one with a SigLIP image encoder); guidance is its guider's."""

    family = "hunyuanvideo15"
    spec = chunk_spec("hunyuanvideo15")
    frame_axis = 2

    def latents(self, pipe, p, seed, references=0):
        return self.frames_second_noise(pipe, p, seed, pipe.num_channels_latents)

    def arguments(self, pipe, p, settings, images, strengths, references=()):
        if pipe.guider.guidance_scale != settings["guidance"]:
            pipe.guider = pipe.guider.new(guidance_scale=settings["guidance"])
        kwargs = {"prompt": p.prompt, "negative_prompt": p.negative_prompt or None}
        if images:
            # I2V picks a size bucket near its trained area from the image's shape; the chunk is the storyboard's
            # size, which the validator made legal, so the image's own size is the one used
            pipe.video_processor.calculate_default_height_width = lambda height, width, target_size: (height, width)
            kwargs["image"] = to_pil(images[0])
        return kwargs


class LTXChunk(ChunkStage):
    family = "ltx"
    spec = chunk_spec("ltx")
    frame_axis = 2
    condition_pipeline = "LTXConditionPipeline"

    def latents(self, pipe, p, seed, references=0):
        if type(pipe).__name__ == "LTXConditionPipeline":
            return None  # it takes clean latents to re-noise, not noise: its noise comes from the CPU generator
        frames = (p.frames - 1) // pipe.vae_temporal_compression_ratio + 1
        scale = pipe.vae_spatial_compression_ratio
        noise = cpu_noise((1, pipe.transformer.config.in_channels, frames, p.height // scale,
                           p.width // scale), seed)
        return pipe._pack_latents(noise, pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size)

    def arguments(self, pipe, p, settings, images, strengths, references=()):
        kwargs = _text(p, settings) | {"frame_rate": p.fps}
        if images:
            from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

            kwargs["conditions"] = [
                LTXVideoCondition(video=[to_pil(f) for f in image], frame_index=index, strength=strengths[index])
                if image.ndim == 4 else LTXVideoCondition(image=to_pil(image), frame_index=index,
                                                          strength=strengths[index])
                for index, image in sorted(images.items())]
        return kwargs


class LTX2Chunk(ChunkStage):
    """LTX-2: video and its sound from one call. Keyframes are conditions at latent indices: a latent frame holds 8
    frames after the first, and a condition sits on its latent frame's first frame, so a keyframe not on such a
    frame is reached up to 7 frames early. The sound is kept with the chunk's frames and blended like them."""

    family = "ltx2"
    spec = chunk_spec("ltx2")
    frame_axis = 2
    condition_pipeline = "LTX2ConditionPipeline"

    def latents(self, pipe, p, seed, references=0):
        return None  # the picture's and the sound's noise both come from the seeded CPU generator

    def arguments(self, pipe, p, settings, images, strengths, references=()):
        kwargs = _text(p, settings) | {"frame_rate": p.fps}
        if images:
            from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

            compression = pipe.vae_temporal_compression_ratio
            # crf 0: the images as they are (the default re-compresses them with H.264 first)
            kwargs["conditions"] = [
                LTX2VideoCondition(frames=[to_pil(f) for f in image] if image.ndim == 4 else to_pil(image),
                                   index=0 if index == 0 else (index - 1) // compression + 1,
                                   strength=strengths[index], crf=0)
                for index, image in sorted(images.items())]
        return kwargs

    def sound(self, pipe, p, out):
        audio = out.audio[0].float().cpu().numpy()
        rate = int(pipe.vocoder.config.output_sampling_rate)
        length = round(p.frames / p.fps * rate)  # the model's is a little short of its frames: padded with silence
        return np.pad(audio, ((0, 0), (0, max(0, length - audio.shape[1]))))[:, :length], rate


class AnimateDiffChunk(ChunkStage):
    family = "animatediff"
    spec = chunk_spec("animatediff")
    frame_axis = 2

    def latents(self, pipe, p, seed, references=0):
        scale = pipe.vae_scale_factor
        return self.noise((1, pipe.unet.config.in_channels, p.frames, p.height // scale, p.width // scale),
                          2, p, seed)

    def arguments(self, pipe, p, settings, images, strengths, references=()):
        return _text(p, settings)
