"""`longvid export`: a rendered video as an editor's timeline, through OpenTimelineIO (.otio, .fcpxml, .edl).

Read from the manifest beside the video: one video track with one clip per shot at its exact frames, named by its
shot id, with what made it (prompts, seed, cache keys) in its metadata under ``longvid``; each crossfade a
dissolve on its cut, ``head`` frames before it and ``tail`` after, exactly the frames the render mixed; the
soundtrack on an audio track. The clips cut the rendered video itself (``media="video"``), or one file per shot
(``media="per-shot"``) holding the shot's own frames with its handles, read back from the cache, so an editor can
recut a shot and a dissolve mixes real frames on both sides.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from longvid._imports import require
from longvid._version import __version__
from longvid.cache import ArtifactStore, default_cache_dir, write_atomic
from longvid.errors import OutputPathError, RenderError, UserError
from longvid.manifest import keyframe_frame, manifest_path
from longvid.planners.compile import Output
from longvid.rendering import as_spec, check_writable, prepare, project_id
from longvid.stitching.encode import Mp4Writer, video_rate, write_wav

# suffix -> (OpenTimelineIO adapter, the plugin package's module that provides it; None: built in)
FORMATS = {".otio": ("otio_json", None), ".fcpxml": ("fcpx_xml", "otio_fcpx_xml_adapter"),
           ".edl": ("cmx_3600", "otio_cmx3600_adapter")}
MEDIA = ("video", "per-shot")
# The fcpx_xml adapter knows these rates only (it reads a rate back as a whole number, so NTSC rates come back
# wrong): anything else would be written with no frame duration.
FCPXML_RATES = (24, 25, 30, 50, 60)


@dataclass(frozen=True)
class Media:
    """A file a clip cuts: its URL, how many frames it holds, and where in it the clip's first frame is."""

    url: str
    frames: int
    first: int = 0


def export_timeline(video: str | Path, output: str | Path, *, media: str = "video", storyboard: Any = None,
                    cache_dir: str | Path | None = None, draft: bool = False) -> dict:
    """Write the timeline of a rendered video for an editor.

    Args:
        video: an MP4 longvid rendered, with its ``.manifest.json`` beside it.
        output: the timeline: ``.otio`` (OpenTimelineIO), ``.fcpxml`` (Final Cut Pro X) or ``.edl`` (CMX 3600).
        media: ``video``: every clip cuts `video` (a dissolve's handles are then the video's own frames around the
            cut, which are the crossfade); ``per-shot``: one MP4 per shot with its handle frames, and the
            soundtrack as WAV, in ``TIMELINE_media/`` beside `output`.
        storyboard: ``per-shot``: the storyboard of the render (a path, `longvid.Storyboard` or spec), when the
            file the manifest names moved or it was built in Python.
        cache_dir: ``per-shot``: the cache the render used (default `default_cache_dir()`).
        draft: export a ``--draft`` render too (refused otherwise: it is not the video the storyboard makes).

    Returns:
        What was written: ``path``, ``format``, ``clips``, ``transitions`` (the dissolves in the file),
        ``audio``, ``media`` (the files the clips cut), ``folder`` (``per-shot``: where they are), ``handles``
        (per shot, where its media came from: ``video``, or ``cache`` for a per-shot file made of the shot's own
        frames) and ``notes`` (what the format leaves out, and why a shot's file was cut from the video).

    Raises:
        UserError: the video or its manifest is missing or they do not match; a draft without `draft`; a frame
            rate the format cannot express.
        OutputPathError: `output` is not a .otio, .fcpxml or .edl file.
        MissingDependencyError: OpenTimelineIO or the format's adapter is not installed.
    """
    # 1. check inputs, all before anything is written
    video, output = Path(video), Path(output)
    adapter, plugin = _format_of(output)
    if media not in MEDIA:
        raise UserError(f"`media` ({media!r}) must be one of {', '.join(MEDIA)}")
    otio = require("opentimelineio", extra="export", feature="`longvid export`")
    if plugin:
        require(plugin, extra="export", feature=f"writing {output.suffix.lower()}")
    manifest = read_manifest(video, draft=draft)
    fps = manifest["video"]["fps"]
    rate = float(video_rate(fps))  # the MP4's exact rate: 23.976 is 24000/1001
    _check_rate(otio, output, fps, rate)
    output.parent.mkdir(parents=True, exist_ok=True)

    # 2. the media the clips cut
    sound = manifest.get("soundtrack") or manifest.get("audio")
    whole = Media(video.resolve().as_uri(), manifest["video"]["frames"])
    notes: list[str] = []
    folder = output.with_name(f"{output.stem}_media") if media == "per-shot" else None
    if folder is None:
        shots = [Media(whole.url, whole.frames, s["frames"][0]) for s in manifest["shots"]]
        handles = dict.fromkeys((s["id"] for s in manifest["shots"]), "video")
        track_sound = whole if sound else None
    else:
        shots, handles, track_sound = write_shot_media(manifest, video, folder, storyboard, cache_dir, notes)

    # 3. the timeline, written by the format's adapter, atomically
    timeline = build_timeline(otio, manifest, rate, shots, track_sound, media)
    transitions = len(timeline.video_tracks()[0]) - len(shots)
    if adapter == "fcpx_xml" and transitions:
        notes.append(f"the fcpx_xml adapter writes no transitions: the {transitions} crossfade(s) are left out of "
                     f"{output.name} (its cut points are exact); .otio and .edl keep them as dissolves")
        transitions = 0
    if adapter == "cmx_3600" and track_sound:
        where = "soundtrack.wav in the media folder" if folder else f"the video ({video.name})"
        notes.append(f"an EDL holds the video track alone: the soundtrack is not in {output.name}; it is in {where}")
    text = otio.adapters.write_to_string(timeline.deepcopy(), adapter_name=adapter)  # cmx_3600 edits its input
    write_atomic(output, text)
    return {"path": str(output), "format": adapter, "clips": len(shots), "transitions": transitions,
            "audio": track_sound is not None and adapter != "cmx_3600",  # a soundtrack on the timeline
            "soundtrack_file": bool(folder and track_sound), "media": sorted({m.url for m in shots}), "handles": handles,
            "folder": str(folder) if folder else None, "notes": notes}


def read_manifest(video: Path, *, draft: bool = False) -> dict:
    """The manifest beside `video`, checked against it.

    Raises:
        UserError: either is missing, the manifest is not one longvid wrote, they are from different renders, or
            the video is a draft and `draft` is False.
    """
    path = manifest_path(video)
    for needed in (video, path):
        if not needed.is_file():
            raise UserError(f"{needed} not found: `longvid export` reads a video longvid rendered and the manifest "
                            f"written beside it")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not a longvid manifest ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("shots"), list) or \
            not isinstance(manifest.get("video"), dict) or not manifest["shots"]:
        raise UserError(f"{path} is not a longvid manifest (it has no `video` and `shots`)")
    info = manifest["video"]
    if info.get("draft") and not draft:
        raise UserError(f"{video} is a --draft render (the draft pass alone, at {info['width']}x{info['height']}): "
                        f"export the full render, or pass --draft to export the draft")
    counted = _frame_count(video)
    if counted != info["frames"]:
        raise UserError(f"{video} has {counted} frames and its manifest says {info['frames']}: they come from "
                        f"different renders (render again to write both)")
    return manifest


def build_timeline(otio: Any, manifest: dict, rate: float, shots: list[Media], sound: Media | None,
                   media: str = "video") -> Any:
    """The OpenTimelineIO timeline: a clip per shot cutting `shots[i]`, a dissolve per crossfade, the soundtrack.

    A crossfade between shots ``a`` and ``b`` mixed ``b``'s head handle before the cut and ``a``'s tail handle
    after it (`timing.crossfade_split`); a dissolve's ``in_offset`` and ``out_offset`` are those frames, so they
    add up to the crossfade's frame count exactly as rendered.
    """

    def at(frames: int):
        return otio.opentime.RationalTime(frames, rate)

    def span(start: int, frames: int):
        return otio.opentime.TimeRange(at(start), at(frames))

    info = manifest["video"]
    timeline = otio.schema.Timeline(name=manifest.get("title") or Path(info["path"]).stem, global_start_time=at(0))
    timeline.metadata["longvid"] = {"version": __version__, "rendered_by": manifest.get("longvid_version"),
                                    "storyboard": manifest.get("storyboard"),
                                    "storyboard_hash": manifest.get("storyboard_hash"), "video": info["path"],
                                    "fps": info["fps"], "frames": info["frames"], "media": media}
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    end = 0
    for i, (shot, file) in enumerate(zip(manifest["shots"], shots, strict=True)):
        start, stop = shot["frames"]
        if start != end:
            raise UserError(f"the manifest's shot {shot['id']} starts on frame {start}, not where the shot before "
                            f"it ends ({end})")
        end = stop
        before = manifest["shots"][i - 1] if i else None
        head, tail = shot["handles"]["head"], before["handles"]["tail"] if before else 0
        if head + tail:
            track.append(otio.schema.Transition(
                name=f"{before['id']}>{shot['id']}", transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve,
                in_offset=at(head), out_offset=at(tail),
                metadata={"longvid": {"crossfade": before["transition"], "frames": head + tail}}))
        reference = otio.schema.ExternalReference(target_url=file.url, available_range=span(0, file.frames))
        track.append(otio.schema.Clip(name=shot["id"], media_reference=reference,
                                      source_range=span(file.first, stop - start),
                                      metadata={"longvid": clip_metadata(shot)}))
    timeline.tracks.append(track)
    if sound is not None:
        audio = otio.schema.Track(name="A1", kind=otio.schema.TrackKind.Audio)
        reference = otio.schema.ExternalReference(target_url=sound.url, available_range=span(0, sound.frames))
        audio.append(otio.schema.Clip(name="soundtrack", media_reference=reference, source_range=span(0, end)))
        timeline.tracks.append(audio)
    return timeline


def clip_metadata(shot: dict) -> dict:
    """What a shot's clip carries under ``longvid``: enough to find it in the storyboard and the cache."""
    return {"shot": shot["id"], "prompt": shot.get("prompt"), "seed": shot.get("seed"),
            "frames": shot["frames"], "rendered": shot["rendered"], "handles": shot["handles"],
            "transition": shot.get("transition"),
            "keyframes": [{"frame": keyframe_frame(shot, k), "timecode": k.get("timecode"),
                           "prompt": k.get("prompt")} for k in shot.get("keyframes", [])],
            "cache_keys": recorded_keys(shot)}


def recorded_keys(shot: dict) -> dict[str, str]:
    """Task id -> cache key of every task of a shot's frames that the manifest records."""
    keys = {k["task"]: k["cache_key"] for k in shot.get("keyframes", [])}
    for chunk in shot.get("chunks", []):
        keys[chunk["task"]] = chunk["cache_key"]
        for step in ("decode", "refine"):
            if step in chunk:
                keys[chunk[step]["task"]] = chunk[step]["cache_key"]
    if shot.get("interpolation"):
        keys[shot["interpolation"]["task"]] = shot["interpolation"]["cache_key"]
    return keys


# -------------------------------------------------------------------------------------------------- per-shot media


def write_shot_media(manifest: dict, video: Path, folder: Path, storyboard: Any, cache_dir: str | Path | None,
                     notes: list[str]) -> tuple[list[Media], dict[str, str], Media | None]:
    """One MP4 per shot with its handles, and the soundtrack as WAV, in `folder`; where each shot's frames came
    from; the soundtrack's file (None: the video has none). A folder this call made is removed if it fails."""
    info = manifest["video"]
    store = ArtifactStore(cache_dir if cache_dir is not None else default_cache_dir())
    rebuilt = _rebuild_plan(manifest, storyboard, store)
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    digits = max(3, len(str(len(manifest["shots"]))))
    uncached: dict[str, list[str]] = {}  # why -> the shots whose frames came from the video for that reason
    try:
        files, handles = [], {}
        for i, shot in enumerate(manifest["shots"]):
            rendered = shot["rendered"][1] - shot["rendered"][0]
            frames = _cached_frames(rebuilt, i, shot, store)
            handles[shot["id"]] = "cache" if not isinstance(frames, str) else "video"
            if isinstance(frames, str):
                uncached.setdefault(frames, []).append(shot["id"])
                frames = _video_frames(video, *shot["rendered"], info["fps"])
            # numbered first: an EDL reel name is the file's first 8 letters and digits, and must tell shots apart
            path = folder / f"{i + 1:0{digits}d}-{shot['id']}.mp4"
            with Mp4Writer(path, info["width"], info["height"], info["fps"], crf=info.get("crf", 18),
                           preset=info.get("preset", "medium")) as out:
                for frame in frames:
                    out.write(frame)
            if out.frames != rendered:
                raise RenderError(f"shot {shot['id']}: wrote {out.frames} frames, it rendered {rendered}")
            files.append(Media(path.resolve().as_uri(), rendered, shot["handles"]["head"]))
        sound = manifest.get("soundtrack") or manifest.get("audio")
        track = None
        if sound:
            key = sound.get("cache_key")
            mix = store.path(key) if key and store.has(key) else video  # the mix itself, else the video's AAC
            write_wav(mix, folder / "soundtrack.wav")
            track = Media((folder / "soundtrack.wav").resolve().as_uri(), info["frames"])
    except BaseException:
        if made:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    for why, ids in uncached.items():
        which = "every shot" if len(ids) == len(files) else f"shot(s) {', '.join(ids)}"
        notes.append(f"the media of {which} was cut from {video.name}, so the dissolves' handles are the crossfaded "
                     f"frames: {why}")
    return files, handles, track


def _rebuild_plan(manifest: dict, storyboard: Any, store: ArtifactStore) -> tuple[Any, dict[str, str]] | str:
    """The render's plan and keys, compiled again from its storyboard with its settings; or why that failed.

    Preview chunks are not stored (the segments computed them); the plan says how to compute them again.
    """
    source = storyboard if storyboard is not None else manifest.get("storyboard")
    if source is None:
        return "the manifest names no storyboard file (one built in Python?): give it with --storyboard"
    if isinstance(source, str | Path) and not Path(source).is_file():
        return f"its storyboard {source} is not there any more (give it with --storyboard)"
    try:
        spec = as_spec(source)
    except UserError:
        return f"its storyboard {source} no longer loads"
    if spec.content_hash() != manifest.get("storyboard_hash"):
        return f"its storyboard {spec.source or spec.title!r} changed since the render"
    info, execution = manifest["video"], manifest.get("execution") or {}
    settings = Output(info.get("crf", 18), info.get("preset", "medium"), draft=bool(info.get("draft")),
                      device_memory=execution.get("device_memory"), audio=False)
    return prepare(spec, settings, execution.get("reseed") or {}, functools.partial(store.last, project_id(spec)))


def _cached_frames(rebuilt: tuple[Any, dict[str, str]] | str, index: int, shot: dict, store: ArtifactStore
                   ) -> Iterator[np.ndarray] | str:
    """A shot's rendered frames, handles included, from the cache exactly as the segments read them; or why not."""
    if isinstance(rebuilt, str):
        return rebuilt
    from longvid.execution.worker import Inline, Inputs
    from longvid.stages import get_spec
    from longvid.stages.sources import shot_frames

    plan, keys = rebuilt
    planned = plan.shots[index] if index < len(plan.shots) else None
    if planned is None or planned.shot.shot_id != shot["id"] or \
            [planned.timing.render_start, planned.timing.render_end] != shot["rendered"]:
        return "the storyboard places it elsewhere now"
    if any(keys.get(task) != key for task, key in recorded_keys(shot).items()):
        return "the plan compiled again has other tasks than the render's (other settings, or another longvid)"
    source = planned.source
    rendered = shot["rendered"][1] - shot["rendered"][0]
    stored: dict[str, str] = {}
    inline: dict[str, Inline] = {}
    todo = list(source.reads_range(0, rendered))
    while todo:  # what the frames read: stored outputs, and the tasks that are computed where they are read
        task = plan.graph[todo.pop()]
        if task.id in stored or task.id in inline:
            continue
        if get_spec(task.stage).cache:
            stored[task.id] = keys[task.id]
        else:
            inline[task.id] = Inline(task, keys[task.id])
            todo += task.deps
    if not all(store.has(key) for key in stored.values()):
        return f"its frames are no longer in the cache at {store.root} (give the render's with --cache)"
    return shot_frames(source, Inputs(store, stored, inline), 0, rendered)


def _video_frames(video: Path, start: int, stop: int, fps: float) -> Iterator[np.ndarray]:
    """Frames ``[start, stop)`` of an MP4, decoded.

    The seek aims half a frame early, so it lands exactly on `start`; frames pass through as decoded, since a
    constant-rate output would repeat the first one to fill that half frame.
    """
    import imageio_ffmpeg

    seek = ["-ss", f"{(start - 0.5) / float(video_rate(fps)):.6f}"] if start > 0 else []
    reader = imageio_ffmpeg.read_frames(str(video), pix_fmt="rgb24", input_params=seek,
                                        output_params=["-fps_mode", "passthrough"])
    try:
        width, height = next(reader)["size"]
        for _, raw in zip(range(stop - start), reader, strict=False):
            yield np.frombuffer(raw, np.uint8).reshape(height, width, 3)
    finally:
        reader.close()


# -------------------------------------------------------------------------------------------------- checks


def _format_of(output: Path) -> tuple[str, str | None]:
    """The adapter for `output`'s suffix (and the plugin providing it), or an `OutputPathError`."""
    suffix = output.suffix.lower()
    if suffix not in FORMATS:
        raise OutputPathError(f"the timeline must be a {', '.join(FORMATS)} file (got {str(output)!r})")
    check_writable(output)
    return FORMATS[suffix]


def _check_rate(otio: Any, output: Path, fps: float, rate: float) -> None:
    """EDL timecode exists at the SMPTE rates only, and the fcpx_xml adapter knows a few whole rates."""
    suffix = output.suffix.lower()
    if suffix == ".edl" and not otio.opentime.RationalTime.is_valid_timecode_rate(rate):
        raise UserError(f"an EDL counts SMPTE timecode, which has no {fps:g} fps (23.976, 24, 25, 29.97, 30, 48, "
                        f"50, 59.94 and 60 do): export .otio, or render at one of those rates")
    if suffix == ".fcpxml" and rate not in FCPXML_RATES:
        raise UserError(f"the fcpx_xml adapter writes {', '.join(map(str, FCPXML_RATES))} fps only, not {fps:g}: "
                        f"export .otio (or .edl), or render at one of those rates")


def _frame_count(video: Path) -> int:
    """The frames of the video stream, counted by ffmpeg from the container's packets (nothing is decoded)."""
    import imageio_ffmpeg

    result = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-i", str(video), "-map", "0:v:0",
                             "-c", "copy", "-f", "null", "-"], capture_output=True, text=True)
    counts = re.findall(r"frame=\s*(\d+)", result.stderr)
    if result.returncode != 0 or not counts:
        raise UserError(f"{video} is not a video ffmpeg can read: {result.stderr.strip()[-300:]}")
    return int(counts[-1])
