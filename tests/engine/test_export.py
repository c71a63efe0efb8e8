"""`longvid export`: a real preview render as an editor's timeline, read back through OpenTimelineIO's adapters."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import longvid
from longvid.errors import MissingDependencyError
from longvid.manifest import manifest_path
from tests.conftest import decode, requires, run_cli, write
from tests.sound import read_sound, tone, write_wav

needs_otio = requires("opentimelineio", "export")

# 24 fps (EDL timecode has no 12 fps); crossfades of 9, 3 and 12 frames, so the split around the cut is uneven
# twice: 4 before and 5 after, 1 and 2, then 6 and 6. Cuts at 0, 18, 30, 45, 63 and 75.
STORY = """\
title: Harbour
fps: 24
width: 160
height: 96
seed: 5
audio: {loudness: null}
shots:
  - id: dawn
    prompt: a lighthouse at dawn
    duration: 0.75
    transition: {type: crossfade, duration: 0.375}
  - id: gulls
    prompt: gulls over the waves
    duration: 0.5
    sound: {file: gulls.wav}
    keyframes:
      - {at: 0.5, prompt: the gulls dive}
  - id: boat
    prompt: a fishing boat leaves the harbour
    duration: 0.625
    transition: {type: crossfade, duration: 0.125}
  - id: storm
    prompt: a storm rolls in
    duration: 0.75
    transition: {type: crossfade, duration: 0.5}
  - id: night
    prompt: the beam sweeps the night
    duration: 0.5
"""
CUTS = [0, 18, 30, 45, 63, 75]
SPLITS = {"gulls": (4, 5), "storm": (1, 2), "night": (6, 6)}  # the dissolve into a shot: (before, after) its cut


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, dict, Path]:
    """The render (video, manifest, cache), made once for the module: exports never change it."""
    folder = tmp_path_factory.mktemp("render")
    write_wav(folder / "gulls.wav", tone(880, 0.5))
    cache = folder / "cache"
    manifest = longvid.render(write(folder / "harbour.yaml", STORY), folder / "harbour.mp4", cache_dir=cache)
    return folder / "harbour.mp4", manifest, cache


def read(path: Path):
    import opentimelineio as otio

    return otio.adapters.read_from_file(str(path))


def frames(t) -> int:
    return round(t.to_frames())


def record_ranges(track) -> list[tuple[str, int, int]]:
    """(name, first, end) of each clip on the track, in output frames."""
    out = []
    for clip in track.find_clips():
        span = track.range_of_child(clip)
        out.append((clip.name, frames(span.start_time), frames(span.end_time_exclusive())))
    return out


@needs_otio
def test_the_otio_timeline_places_every_shot_and_crossfade_exactly(rendered, tmp_path):
    import opentimelineio as otio

    video, manifest, _ = rendered
    result = longvid.export_timeline(video, tmp_path / "cut.otio")
    assert (result["clips"], result["transitions"], result["audio"], result["notes"]) == (5, 3, True, [])
    timeline = read(tmp_path / "cut.otio")
    [track], [sound] = timeline.video_tracks(), timeline.audio_tracks()
    shots = manifest["shots"]
    assert [s["frames"] for s in shots] == [list(c) for c in zip(CUTS, CUTS[1:], strict=False)]

    # one clip per shot, named by its id, at the manifest's frames on the track and in the video
    assert record_ranges(track) == [(s["id"], *s["frames"]) for s in shots]
    for clip, shot in zip(track.find_clips(), shots, strict=True):
        source = clip.source_range
        assert (frames(source.start_time), frames(source.duration)) == (shot["frames"][0], shot["frames"][1] - shot["frames"][0])
        assert source.start_time.rate == 24
        assert clip.media_reference.target_url == video.resolve().as_uri()
        assert frames(clip.media_reference.available_range.duration) == 75
        # what the clip shows, dissolves included, is what the shot rendered: its frames and its handles
        visible = clip.visible_range()
        assert [frames(visible.start_time), frames(visible.end_time_exclusive())] == shot["rendered"]
        meta = clip.metadata["longvid"]
        assert (meta["shot"], meta["prompt"], meta["seed"], list(meta["frames"])) == \
            (shot["id"], shot["prompt"], shot["seed"], shot["frames"])
        assert {c["task"]: c["cache_key"] for c in shot["chunks"]}.items() <= dict(meta["cache_keys"]).items()
    gulls = track.find_clips()[1].metadata["longvid"]
    assert [k["prompt"] for k in gulls["keyframes"]] == ["gulls over the waves", "the gulls dive"]
    assert [k["frame"] for k in gulls["keyframes"]] == [18, 29]  # on the output: its first frame and its last

    # a dissolve where each crossfade is, split around the cut as the render mixed it
    transitions = [(i, t) for i, t in enumerate(track) if isinstance(t, otio.schema.Transition)]
    assert [track[i + 1].name for i, _ in transitions] == list(SPLITS)
    for i, transition in transitions:
        before, after = SPLITS[track[i + 1].name]
        assert transition.transition_type == otio.schema.TransitionTypes.SMPTE_Dissolve
        assert (frames(transition.in_offset), frames(transition.out_offset)) == (before, after)
        cut = frames(track.range_of_child(track[i + 1]).start_time)
        assert frames(track.range_of_child(transition).start_time) == cut - before
        crossfade = shots[[s["id"] for s in shots].index(track[i + 1].name) - 1]["transition"]
        assert before + after == round(crossfade["duration"] * 24)

    # the soundtrack: one clip over the whole video, from the video's AAC
    [clip] = sound.find_clips()
    assert frames(clip.source_range.duration) == 75 and clip.media_reference.target_url == video.resolve().as_uri()
    assert timeline.metadata["longvid"]["storyboard_hash"] == manifest["storyboard_hash"]


@needs_otio
def test_fcpxml_and_edl_keep_the_cut_points(rendered, tmp_path):
    import opentimelineio as otio

    video, manifest, _ = rendered
    shots = manifest["shots"]

    result = longvid.export_timeline(video, tmp_path / "cut.fcpxml")
    assert result["transitions"] == 0 and "writes no transitions" in result["notes"][0]
    [track] = read(tmp_path / "cut.fcpxml").video_tracks()
    assert record_ranges(track) == [(s["id"], *s["frames"]) for s in shots]

    result = longvid.export_timeline(video, tmp_path / "cut.edl")
    assert result["transitions"] == 3 and "soundtrack is not in cut.edl; it is in the video" in result["notes"][0]
    assert result["audio"] is False  # the summary claims no soundtrack the EDL does not hold
    said = run_cli("export", str(video), "-o", str(tmp_path / "again.edl"))
    assert said.returncode == 0 and "a soundtrack" not in said.stdout and "soundtrack is not in" in said.stderr
    [track] = read(tmp_path / "cut.edl").video_tracks()
    # CMX 3600 starts a dissolve on its edit: the incoming event begins where the dissolve begins, before the cut
    heads = [SPLITS.get(s["id"], (0, 0))[0] for s in shots] + [0]
    assert record_ranges(track) == [(s["id"], s["frames"][0] - heads[i], s["frames"][1] - heads[i + 1])
                                    for i, s in enumerate(shots)]
    dissolves = [(track[i + 1].name, frames(track.range_of_child(t).start_time), frames(t.duration()))
                 for i, t in enumerate(track) if isinstance(t, otio.schema.Transition)]
    assert dissolves == [(name, CUTS[[s["id"] for s in shots].index(name)] - before, before + after)
                         for name, (before, after) in SPLITS.items()]
    for clip, shot in zip(track.find_clips(), shots, strict=True):  # the source side: the same frames of the video
        start = shot["frames"][0] - heads[shots.index(shot)]
        assert frames(clip.source_range.start_time) == start


@needs_otio
def test_per_shot_media_holds_each_shots_own_frames_with_handles(rendered, tmp_path):
    video, manifest, cache = rendered
    result = longvid.export_timeline(video, tmp_path / "cut.otio", media="per-shot", cache_dir=cache)
    assert result["handles"] == dict.fromkeys([s["id"] for s in manifest["shots"]], "cache")
    assert result["notes"] == []
    media = tmp_path / "cut_media"
    whole = decode(video).astype(float)
    [track], [sound] = (timeline := read(tmp_path / "cut.otio")).video_tracks(), timeline.audio_tracks()
    assert record_ranges(track) == [(s["id"], *s["frames"]) for s in manifest["shots"]]
    shots = manifest["shots"]
    for i, (clip, shot) in enumerate(zip(track.find_clips(), shots, strict=True)):
        path = media / f"{i + 1:03d}-{shot['id']}.mp4"
        own = decode(path).astype(float)
        first, end = shot["rendered"]
        head = shot["handles"]["head"]
        assert len(own) == end - first
        assert clip.media_reference.target_url == path.resolve().as_uri()
        assert frames(clip.media_reference.available_range.duration) == end - first
        assert (frames(clip.source_range.start_time), frames(clip.source_range.duration)) == \
            (head, shot["frames"][1] - shot["frames"][0])
        # the frames the video shows alone are the same; in a crossfade the file keeps the shot's own frames
        solo = range(shot["frames"][0] + (shots[i - 1]["handles"]["tail"] if i else 0),
                     shot["frames"][1] - (shots[i + 1]["handles"]["head"] if i + 1 < len(shots) else 0))
        assert max(np.abs(own[t - first] - whole[t]).mean() for t in solo) < 3
    assert np.abs(decode(media / "002-gulls.mp4")[0].astype(float) - whole[14]).mean() > 10  # a real head handle
    assert np.abs(decode(media / "001-dawn.mp4")[-1].astype(float) - whole[22]).mean() > 10  # a real tail handle
    mix = manifest["soundtrack"]  # the mix itself, sample for sample: as long as the video
    assert read_sound(media / "soundtrack.wav", rate=mix["rate"]).shape[1] == mix["samples"] == 75 * mix["rate"] // 24
    assert sound.find_clips()[0].media_reference.target_url == (media / "soundtrack.wav").resolve().as_uri()


@needs_otio
def test_per_shot_media_is_cut_from_the_video_when_the_storyboard_is_gone(rendered, tmp_path):
    video, manifest, cache = rendered
    moved = tmp_path / "moved.mp4"
    shutil.copy(video, moved)
    manifest_path(moved).write_text(json.dumps(manifest | {"storyboard": str(tmp_path / "gone.yaml")}))
    result = longvid.export_timeline(moved, tmp_path / "cut.otio", media="per-shot", cache_dir=cache)
    assert set(result["handles"].values()) == {"video"}
    assert result["notes"] == [f"the media of every shot was cut from moved.mp4, so the dissolves' handles are the "
                               f"crossfaded frames: its storyboard {tmp_path / 'gone.yaml'} is not there any more "
                               f"(give it with --storyboard)"]
    whole = decode(video).astype(float)
    for i, shot in enumerate(manifest["shots"]):
        own = decode(tmp_path / "cut_media" / f"{i + 1:03d}-{shot['id']}.mp4").astype(float)
        first, end = shot["rendered"]
        assert len(own) == end - first
        assert max(np.abs(own[t] - whole[first + t]).mean() for t in range(len(own))) < 3  # frame for frame
    # the storyboard given again: the cache's frames
    again = longvid.export_timeline(moved, tmp_path / "again.otio", media="per-shot", cache_dir=cache,
                                    storyboard=video.with_name("harbour.yaml"))
    assert set(again["handles"].values()) == {"cache"} and again["notes"] == []
    # the cache cleaned: the video's frames again, and the soundtrack from its AAC
    empty = longvid.export_timeline(video, tmp_path / "empty.otio", media="per-shot", cache_dir=tmp_path / "none")
    assert set(empty["handles"].values()) == {"video"} and empty["audio"]
    assert f"its frames are no longer in the cache at {tmp_path / 'none'}" in empty["notes"][0]
    assert (tmp_path / "empty_media" / "soundtrack.wav").stat().st_size > 0


@needs_otio
def test_a_ntsc_timeline_counts_frames_at_the_exact_rate():
    import opentimelineio as otio

    from longvid.export import Media, build_timeline

    shot = {"frames": [0, 48], "rendered": [0, 50], "handles": {"head": 0, "tail": 2}, "seed": 1,
            "transition": {"type": "crossfade", "duration": 0.125}, "keyframes": [], "chunks": []}
    manifest = {"title": "ntsc", "video": {"path": "n.mp4", "fps": 23.976, "frames": 96},
                "shots": [shot | {"id": "a"},
                          shot | {"id": "b", "frames": [48, 96], "rendered": [47, 96], "handles": {"head": 1, "tail": 0}}]}
    media = [Media("file:///n.mp4", 96, 0), Media("file:///n.mp4", 96, 48)]
    timeline = build_timeline(otio, manifest, 24000 / 1001, media, None)
    [track] = timeline.video_tracks()
    assert record_ranges(track) == [("a", 0, 48), ("b", 48, 96)]
    assert otio.opentime.to_timecode(track.range_of_child(track[2]).start_time) == "00:00:02:00"
    edl = otio.adapters.write_to_string(timeline, adapter_name="cmx_3600")
    assert "00:00:01:23 00:00:04:00" in edl  # the dissolve starts a frame before the cut at 2 s, in NTSC timecode


@needs_otio
def test_the_cli_says_what_it_wrote_and_refuses_bad_input(rendered, tmp_path):
    video, manifest, _ = rendered
    ok = run_cli("export", str(video), "-o", str(tmp_path / "cut.otio"))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"wrote {tmp_path / 'cut.otio'} (otio_json): 5 clips, 3 dissolves, a soundtrack; " \
                                f"media: {video}"

    alone = tmp_path / "alone.mp4"
    shutil.copy(video, alone)
    missing = run_cli("export", str(alone), "-o", str(tmp_path / "a.otio"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip() == f"error: {tmp_path / 'alone.manifest.json'} not found: `longvid export` reads " \
                                     f"a video longvid rendered and the manifest written beside it"
    suffix = run_cli("export", str(video), "-o", str(tmp_path / "cut.xml"))
    assert suffix.returncode == 2
    assert f"the timeline must be a .otio, .fcpxml, .edl file (got '{tmp_path / 'cut.xml'}')" in suffix.stderr

    # a draft, a manifest of another render, and a rate EDL timecode does not have
    for name, change, message in [
            ("draft", {"draft": True}, "is a --draft render (the draft pass alone, at 160x96)"),
            ("other", {"frames": 80}, "has 75 frames and its manifest says 80: they come from different renders"),
            ("slow", {"fps": 12}, "an EDL counts SMPTE timecode, which has no 12 fps")]:
        copy = tmp_path / f"{name}.mp4"
        shutil.copy(video, copy)
        manifest_path(copy).write_text(json.dumps(manifest | {"video": manifest["video"] | change}))
        result = run_cli("export", str(copy), "-o", str(tmp_path / f"{name}.edl"))
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.glob("*.*") if p.suffix not in (".mp4", ".json")) == ["cut.otio"]


def test_without_opentimelineio_the_error_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "opentimelineio", None)  # as if it were not installed
    with pytest.raises(MissingDependencyError, match=r"^`longvid export` needs OpenTimelineIO: pip install "
                                                     r"'longvid\[export\]'"):
        longvid.export_timeline(tmp_path / "out.mp4", tmp_path / "cut.otio")
    assert not (tmp_path / "cut.otio").exists()


@needs_otio
def test_without_the_edl_adapter_the_error_names_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "otio_cmx3600_adapter", None)
    with pytest.raises(MissingDependencyError, match=r"^writing \.edl needs otio-cmx3600-adapter: pip install "
                                                     r"'longvid\[export\]'"):
        longvid.export_timeline(tmp_path / "out.mp4", tmp_path / "cut.edl")
