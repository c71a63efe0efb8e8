"""Real renders on the preview backend, checked with the ffmpeg that imageio-ffmpeg ships."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import longvid
from longvid import timing
from longvid.manifest import manifest_path
from tests.conftest import SMALL, decode, probe, write


def test_render_matches_the_storyboard_exactly(small_storyboard, tmp_path):
    output = tmp_path / "small.mp4"
    manifest = longvid.render(small_storyboard, output)
    info = probe(output)
    spec = longvid.load_storyboard(small_storyboard)
    assert spec.total_frames == 84  # (2 + 3.5 + 1.5) s at 12 fps
    assert (info["frames"], info["width"], info["height"], info["fps"]) == (84, 160, 96, 12.0)
    assert (info["codec"], info["pix_fmt"]) == ("h264", "yuv420p")
    assert json.loads(manifest_path(output).read_text()) == manifest


def test_manifest_follows_the_timing_rules(small_storyboard, tmp_path):
    manifest = longvid.render(small_storyboard, tmp_path / "small.mp4")
    shots = {s["id"]: s for s in manifest["shots"]}
    # cuts at round(t * fps) of cumulative time: 2 s -> 24, 5.5 s -> 66, 7 s -> 84
    assert [shots[i]["frames"] for i in ("wake", "hunt", "night")] == [[0, 24], [24, 66], [66, 84]]
    # the 0.5 s crossfade is 6 frames centred on frame 24: wake renders 3 past its end, hunt 3 before its start
    assert shots["wake"]["rendered"] == [0, 27] and shots["hunt"]["rendered"] == [21, 66]
    assert shots["night"]["rendered"] == [66, 84]
    for shot in manifest["shots"]:
        rendered = shot["rendered"][1] - shot["rendered"][0]
        chunks = shot["chunks"]
        assert chunks[0]["window"][0] == 0 and chunks[-1]["window"][1] == shot["base_frames"] == rendered
        for before, after in zip(chunks, chunks[1:], strict=False):
            assert before["window"][1] - after["window"][0] == after["overlap"] == 8
        assert all(timing.FrameRule.parse("4k+1").is_legal(c["frames"]) for c in chunks)
        assert all(len(c["cache_key"]) == 64 for c in chunks + shot["keyframes"])
    assert len({s["seed"] for s in shots.values()}) == 1  # no per-shot seed override here
    # within the shot: head handle + 0, + last frame of the shot; `frame` is on the output, as the timecode
    hunt = shots["hunt"]
    assert [k["shot_frame"] for k in hunt["keyframes"]] == [3, 44]
    assert [k["frame"] for k in hunt["keyframes"]] == [hunt["rendered"][0] + 3, hunt["rendered"][0] + 44]
    for k in hunt["keyframes"]:
        h, m, s, f = map(int, k["timecode"].split(":"))
        assert ((h * 60 + m) * 60 + s) * manifest["video"]["fps"] + f == k["frame"]
    assert manifest["backends"]["keyframes"]["backend"] == "preview"
    assert manifest["storyboard_hash"] == longvid.load_storyboard(small_storyboard).content_hash()
    assert manifest["backends"]["video"]["family"] == "preview"


def test_rendering_twice_gives_identical_frames(small_storyboard, tmp_path):
    longvid.render(small_storyboard, tmp_path / "a.mp4")
    longvid.render(small_storyboard, tmp_path / "b.mp4")
    assert probe(tmp_path / "a.mp4")["hashes"] == probe(tmp_path / "b.mp4")["hashes"]


def test_another_seed_gives_other_frames(small_storyboard, tmp_path):
    other = write(tmp_path / "other.yaml", SMALL.replace("seed: 7", "seed: 8"))
    longvid.render(small_storyboard, tmp_path / "a.mp4")
    longvid.render(other, tmp_path / "b.mp4")
    a, b = probe(tmp_path / "a.mp4")["hashes"], probe(tmp_path / "b.mp4")["hashes"]
    assert len(a) == len(b) and all(x != y for x, y in zip(a, b, strict=True))


def test_crossfade_blends_the_two_shots_around_the_cut(tmp_path):
    # Two flat-looking shots from user images: pure red then pure blue, with a 1 s crossfade at 12 fps.
    Image.new("RGB", (64, 64), (250, 0, 0)).save(tmp_path / "red.png")
    Image.new("RGB", (64, 64), (0, 0, 250)).save(tmp_path / "blue.png")
    board = write(tmp_path / "fade.yaml", """\
        fps: 12
        width: 160
        height: 96
        shots:
          - prompt: red
            duration: 2
            keyframes: [{at: 0, image: red.png}]
            transition: {type: crossfade, duration: 1}
          - prompt: blue
            duration: 2
            keyframes: [{at: 0, image: blue.png}]
        """)
    longvid.render(board, tmp_path / "fade.mp4", crf=0)
    frames = decode(tmp_path / "fade.mp4").astype(float)
    red = frames[:, 10:60, 20:140, 0].mean(axis=(1, 2))  # above the burned-in timecode
    assert len(frames) == 48
    assert red[:18].min() > 240 and red[30:].max() < 10  # solo frames untouched
    fade = red[18:30]  # 12 frames centred on the cut at frame 24
    assert np.all(np.diff(fade) < 0), "red falls steadily through the crossfade"
    assert 100 < fade[5] < 150 and 100 < fade[6] < 150  # the middle of the fade is half and half


def test_interpolation_factor_renders_at_the_base_rate_and_keeps_the_frame_count(small_storyboard, tmp_path):
    board = write(tmp_path / "interp.yaml", SMALL + "models:\n  interpolation: {backend: linear, factor: 2}\n")
    manifest = longvid.render(board, tmp_path / "interp.mp4")
    assert probe(tmp_path / "interp.mp4")["frames"] == 84
    hunt = next(s for s in manifest["shots"] if s["id"] == "hunt")
    assert hunt["base_frames"] == timing.base_frame_count(45, 2) == 23  # 45 rendered frames at 6 fps


def test_user_image_is_the_keyframe(tmp_path):
    pattern = np.zeros((96, 160, 3), np.uint8)
    pattern[:, :80] = (30, 200, 60)
    pattern[:, 80:] = (200, 40, 180)
    Image.fromarray(pattern).save(tmp_path / "key.png")
    board = write(tmp_path / "image.yaml", """\
        fps: 12
        width: 160
        height: 96
        shots:
          - prompt: my own picture
            duration: 1
            keyframes: [{at: 0, image: key.png}]
        """)
    longvid.render(board, tmp_path / "image.mp4", crf=0)
    first = probe(tmp_path / "image.mp4")["first"].astype(int)
    assert np.abs(first[:70, 10:70] - (30, 200, 60)).max() < 12
    assert np.abs(first[:70, 90:150] - (200, 40, 180)).max() < 12


def test_a_failing_task_is_retried_then_reported_while_independent_tasks_finish(small_storyboard, tmp_path,
                                                                                monkeypatch, private_cache):
    from longvid.errors import TaskFailedError
    from longvid.stages import encode

    real = encode.Encode.__call__
    attempts = []

    def failing(self, task, inputs):
        if task.id == "encode:hunt:0":
            attempts.append(task.id)
            raise ValueError("the encoder fell over")
        return real(self, task, inputs)

    monkeypatch.setattr(encode.Encode, "__call__", failing)
    with pytest.raises(TaskFailedError) as info:
        longvid.render(small_storyboard, tmp_path / "out" / "small.mp4", max_attempts=2)
    assert attempts == ["encode:hunt:0"] * 2
    record = info.value.failures["encode:hunt:0"][-1]
    assert (record["exception"], record["message"], record["attempt"]) == ("ValueError", "the encoder fell over", 2)
    assert "Traceback" in record["traceback"] and record["hint"]
    assert "encode:hunt:0: ValueError: the encoder fell over after 2 attempt(s)" in str(info.value)
    assert sorted(info.value.execution.ran) == sorted(
        ["reference:fox", "keyframe:wake:0", "keyframe:hunt:0", "keyframe:hunt:1", "keyframe:night:0",
         "encode:wake:0", "encode:wake>hunt", "encode:night:0"])
    assert not (tmp_path / "out" / "small.mp4").exists()
