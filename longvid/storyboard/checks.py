"""Meaning: every problem that needs the whole storyboard to see, once its structure is sound.

Duplicate shot ids, unknown ``{character}`` references, keyframes outside their shot, crossfades that do not fit,
shots too short to hold a frame, an overlap too long for the chunks, and what the models can and cannot do. Every
problem is collected, never just the first.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import longvid.timing as timing
from longvid.errors import Problem
from longvid.families import (
    KEYFRAME_PIPELINES,
    Family,
    get_family,
    keyframe_conditioning,
    looks_like_path,
    model_problem,
    pipeline_class,
)
from longvid.storyboard.schema import CHARACTER_REF, REFINERS, ContinuitySpec, StoryboardSpec


def check_semantics(spec: StoryboardSpec) -> list[Problem]:
    """Every problem that needs the whole storyboard to see, as `Problem`s with paths."""
    problems: list[Problem] = []

    def add(path: tuple, message: str) -> None:
        problems.append(Problem(message, path))

    if (too_long := _length_problem(spec)) is not None:  # refused before anything counts its frames
        return [too_long]

    names = sorted(spec.entities)
    for name in sorted(set(spec.characters) & set(spec.places)):
        add(("places", name), f"`{name}` is defined twice, as a character and as a place: `{{{name}}}` must mean one")
    for group in ("characters", "places"):
        for name, entity in getattr(spec, group).items():
            many = isinstance(entity.reference, list)
            for i, image in enumerate(entity.references):
                where = (group, name, "reference", *((i,) if many else ()))
                if (why := _unreadable_image(spec.base_dir / image)) is not None:
                    add(where, why)
            if entity.lora and _missing_lora(entity.lora.path, spec.base_dir):
                add((group, name, "lora", "path"), f"LoRA not found: {spec.base_dir / entity.lora.path}")
    seen: dict[str, int] = {}
    for i, shot in enumerate(spec.shots):
        if shot.shot_id in seen:
            add(("shots", i, "id"), f"duplicate shot id {shot.shot_id!r} (first used by shots[{seen[shot.shot_id]}])")
        seen.setdefault(shot.shot_id, i)
        prompts = [(("shots", i, "prompt"), shot.prompt)]
        prompts += [(("shots", i, "keyframes", k, "prompt"), kf.prompt) for k, kf in enumerate(shot.keyframes)]
        for path, prompt in prompts:
            for ref in CHARACTER_REF.findall(prompt or ""):
                if ref not in spec.entities:
                    known = ", ".join(names) if names else "none are defined under `characters` or `places`"
                    add(path, f"unknown character or place `{{{ref}}}`{did_you_mean(ref, names, '{', '}')}; "
                              f"defined: {known}")
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
            if kf.image is not None and (why := _unreadable_image(spec.base_dir / kf.image)) is not None:
                add(("shots", i, "keyframes", k, "image"), why)

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
    legal = spec.chunk_length
    for where, cont in _continuities(spec):
        if cont.overlap_frames > (legal - 1) // 2:
            add((*where, "overlap"), f"`overlap` ({cont.overlap}) must be less than half the chunk length "
                                     f"({legal} frames), at most {(legal - 1) // 2}")
    problems += _model_problems(spec)
    if not problems:  # the voice lines' checks need the shots' timing, sound only when the rest is sound
        problems += _sound_problems(spec)
    return problems


def _sound_problems(spec: StoryboardSpec) -> list[Problem]:
    """Sound files that cannot be read, voice lines outside their shot or the video, prompts with no model."""
    from longvid.audiofile import probe

    problems: list[Problem] = []

    def readable(where: tuple, file: str) -> float | None:
        try:
            return probe(spec.base_dir / file).duration
        except ValueError as exc:
            problems.append(Problem(str(exc), where))
            return None

    def prompt_model(where: tuple, role: str) -> None:
        if getattr(spec.models, role) is None or not getattr(spec.models, role).model:
            problems.append(Problem(f"a `prompt` sound needs an audio model: set models.{role}.model (a hub id or a "
                                    f"diffusers folder), or give a `file`", where))

    music = spec.audio.music
    if music is not None:
        if music.file is not None:
            readable(("audio", "music", "file"), music.file)
        else:
            prompt_model(("audio", "music", "prompt"), "music")
    total = spec.total_frames / spec.fps
    for i, (shot, span) in enumerate(zip(spec.shots, spec.timings(), strict=True)):
        if shot.sound is not None:
            if shot.sound.file is not None:
                readable(("shots", i, "sound", "file"), shot.sound.file)
            else:
                prompt_model(("shots", i, "sound", "prompt"), "audio")
        for k, line in enumerate(shot.voice):
            if line.at >= shot.duration:
                problems.append(Problem(f"voice line `at` ({line.at:g}) starts after shot {shot.shot_id!r} ends "
                                        f"({shot.duration:g} s)", ("shots", i, "voice", k, "at")))
                continue
            length = readable(("shots", i, "voice", k, "file"), line.file)
            start = span.start / spec.fps + line.at
            if length is not None and start + length > total + 0.01:  # ffmpeg reports lengths to 10 ms; the mix trims the rest
                problems.append(Problem(f"voice line {line.file} ({length:.2f} s from {start:.2f} s) overruns the "
                                        f"video, which ends at {total:.2f} s", ("shots", i, "voice", k, "file")))
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
    if keyframes.ip_adapter and keyframes.model:
        way, cls = keyframe_conditioning(keyframes.model, spec.base_dir, True)
        if cls and way != "ip-adapter":
            takes = {"edit": "takes the references itself (an image-edit model)",
                     "edit-list": "takes the references itself (a list of images)"}.get(way, "takes no IP-Adapter")
            problems.append(Problem(f"{keyframes.model} loads as {cls}, which {takes}; IP-Adapters work with "
                                    f"{', '.join(c for c, w in KEYFRAME_PIPELINES.items() if w == 'ip-adapter')}. "
                                    f"Remove ip_adapter or use one of those", ("models", "keyframes", "ip_adapter")))
    refine = spec.models.refine
    if refine and family.name not in REFINERS:
        problems.append(Problem(f"models.refine: the {family.name} family has no refine pass here yet; it works with "
                                f"{', '.join(REFINERS)}", ("models", "refine")))
    if refine and family.name == "ltx" and (refine.upsampler is None or refine.scale != 2):
        problems.append(Problem("models.refine: LTX refines through its latent upsampler, which doubles each side: "
                                "set `upsampler` (e.g. Lightricks/ltxv-spatial-upscaler-0.9.7) and `scale: 2`",
                                ("models", "refine")))
    if refine and refine.upsampler and family.name != "ltx":
        problems.append(Problem(f"models.refine.upsampler is for LTX; the {family.name} family refines video to "
                                f"video", ("models", "refine", "upsampler")))
    if family.name == "preview":
        return problems
    if not video.model:
        problems.append(Problem(f"family {family.name!r} needs `model`: a hub id such as "
                                f"{family.known_models[0]!r} or a local folder in diffusers format",
                                ("models", "video")))
        return problems
    found = spec.video_checkpoint()
    multiple = found.size_multiple
    for side in ("width", "height"):
        if (size := getattr(spec, side)) % multiple:
            why = f"{video.model}" if multiple != family.size_multiple else family.name
            problems.append(Problem(f"`{side}` ({size}) must be a multiple of {multiple} for {why} (its VAE's "
                                    f"spatial scale times its patch size); the next legal {side} is "
                                    f"{-(-size // multiple) * multiple}", (side,)))
    if video.guidance_2 is not None and found.pipeline and found.experts < 2:
        problems.append(Problem(f"`guidance_2` is for two-expert models (Wan 2.2 A14B); {video.model} has one "
                                f"transformer", ("models", "video", "guidance_2")))
    declared = pipeline_class(video.model, spec.base_dir)
    if declared and declared not in family.pipelines:
        problems.append(Problem(f"{video.model} is a {declared}, not a {family.name} model "
                                f"({', '.join(family.pipelines)}); check `family`", ("models", "video", "model")))
        return problems
    abilities, source = spec.video_abilities()
    what = f"{video.model} ({source})" if source else video.model
    drawn = keyframes.engine == "diffusers"
    for where, cont in _continuities(spec):
        problems += _strategy_problems(where, cont, family, abilities, what, drawn, spec.overlap_latent(cont.strategy))
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


def _continuities(spec: StoryboardSpec) -> list[tuple[tuple, ContinuitySpec]]:
    """The storyboard's continuity and each shot's own, as they apply (a default overlap made legal)."""
    return [(("continuity",), spec.continuity_for())] + [
        (("shots", i, "continuity"), spec.continuity_for(shot)) for i, shot in enumerate(spec.shots) if shot.continuity]


def _strategy_problems(where: tuple, cont: ContinuitySpec, family: Family, abilities: frozenset[str], what: str,
                       drawn: bool, latent: int | None) -> list[Problem]:
    """What a continuity strategy needs from the model family (`latent`: the frames per latent frame its
    overlaps must be whole multiples of, plus one; None: any overlap)."""
    strategy = cont.strategy
    if strategy == "keyframe-anchored" and not abilities & {"last", "any"}:
        return [Problem(f"{what} cannot end a chunk on a keyframe: keyframe-anchored needs a first-last-frame "
                        f"model (wan FLF2V, ltx)", (*where, "strategy"))]
    if strategy == "keyframe-anchored" and not drawn:
        return [Problem("keyframe-anchored needs keyframe images: set models.keyframes.model", (*where, "strategy"))]
    if strategy == "diffusion-forcing" and "forcing" not in abilities:
        return [Problem(f"{what} is not a SkyReels-V2 diffusion-forcing model: diffusion-forcing needs family "
                        f"skyreels and a DF checkpoint (e.g. Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers)",
                        (*where, "strategy"))]
    if strategy == "prefix" and "first" not in abilities:
        return [Problem(f"{what} generates from text only: prefix needs a model that continues from an image",
                        (*where, "strategy"))]
    if strategy == "prefix" and cont.prefix_frames > 1 and "any" not in abilities:
        return [Problem(f"`prefix_frames` ({cont.prefix_frames}): {what} continues from one image; only ltx "
                        f"takes several frames", (*where, "prefix_frames"))]
    if strategy in ("shared-noise", "latent-blend") and (family.name in ("ltx", "ltx2") or "forcing" in abilities):
        who, instead = (family.name, "prefix") if family.name != "skyreels" else ("SkyReels-V2 diffusion forcing",
                                                                      "diffusion-forcing")
        return [Problem(f"{who} draws its own noise for conditioned chunks: {strategy} cannot set it; use "
                        f"overlap-blend or {instead}", (*where, "strategy"))]
    if strategy == "latent-blend" and "text" not in abilities:
        return [Problem(f"latent-blend denoises a shot's chunks side by side, so none can start from another; "
                        f"{what} needs an image for every chunk: use prefix or overlap-blend", (*where, "strategy"))]
    # overlapping frames must be whole latent frames to share noise, to be averaged, or to be continued
    if latent and (cont.overlap < 1 or (cont.overlap - 1) % latent):
        near = sorted({max(1, cont.overlap - (cont.overlap - 1) % latent), cont.overlap - (cont.overlap - 1) % latent
                       + latent} - {0})
        return [Problem(f"`overlap` ({cont.overlap}) must be 1 more than a multiple of {latent} for {family.name}, so "
                        f"that overlapping frames share whole latent frames (try {' or '.join(map(str, near))})",
                        (*where, "overlap"))]
    return []


def _length_problem(spec: StoryboardSpec) -> Problem | None:
    """A storyboard past `timing.MAX_FRAMES`, located at the shot whose duration crosses it."""
    total = 0.0
    for i, shot in enumerate(spec.shots):
        total += shot.duration
        if total * spec.fps > timing.MAX_FRAMES:
            hours = timing.MAX_FRAMES / spec.fps / 3600
            return Problem(f"the storyboard reaches {total * spec.fps:,.0f} frames by shot {shot.shot_id!r} ("
                           f"{total / 3600:,.1f} h at {spec.fps:g} fps); longvid plans at most "
                           f"{timing.MAX_FRAMES:,} frames ({hours:g} h at {spec.fps:g} fps): split it into several "
                           f"storyboards", ("shots", i, "duration"))
    return None


def did_you_mean(word: str, choices: list[str], left: str = "`", right: str = "`") -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {left}{close[0]}{right}?)" if close else ""


def _missing_lora(path: str, base_dir) -> bool:
    """A LoRA named as a file or a folder that is not there (a hub id is taken on trust)."""
    local = path.endswith((".safetensors", ".bin", ".pt", ".ckpt")) or looks_like_path(path)
    return local and not (base_dir / path).exists() and not Path(path).expanduser().exists()


def _unreadable_image(path) -> str | None:
    """Why `path` is not an image longvid can read, or None."""
    if not path.is_file():
        return f"image file not found: {path}"
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.verify()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        return f"cannot read {path} as an image ({type(exc).__name__}: {exc})"
    return None
