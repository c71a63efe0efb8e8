"""The soundtrack: real WAV files made here, real preview renders, the MP4's AAC decoded and measured by ffmpeg."""

from __future__ import annotations

import json

import numpy as np
import pytest

import longvid
from longvid.manifest import manifest_path
from tests.conftest import run_cli, write
from tests.sound import RATE, has_audio, level_db, loudness, onset, read_sound, tone, write_wav

# 24 fps and shots of 1.3, 2.0 and 1.7 s: cuts at frames 31 and 79, i.e. 1.291667 s and 3.291667 s, not on a
# round number of milliseconds
TIMED = """\
fps: 24
width: 160
height: 96
audio: {{loudness: null, sample_rate: 48000}}
shots:
  - {{id: a, prompt: a harbour, duration: 1.3}}
  - id: b
    prompt: gulls over the water
    duration: 2.0
    sound: {{file: beep.wav}}
  - id: c
    prompt: a fisherman speaks
    duration: 1.7
    voice: [{{file: line.wav, at: 0.5}}]
{extra}"""


@pytest.fixture
def timed(tmp_path):
    write_wav(tmp_path / "beep.wav", tone(1000, 3.0))  # longer than its shot: trimmed at the cut
    write_wav(tmp_path / "line.wav", tone(600, 0.8, 0.4, rate=22050), rate=22050)  # resampled to the mix's rate
    return write(tmp_path / "timed.yaml", TIMED.format(extra=""))


def test_sound_starts_on_its_shots_first_frame_and_voice_at_its_time(timed, tmp_path):
    output = tmp_path / "timed.mp4"
    manifest = longvid.render(timed, output)
    sound = read_sound(output)
    # the AAC track lasts as long as the video, to within 30 ms (120 frames at 24 fps = 5 s)
    assert abs(sound.shape[1] / RATE - 120 / 24) < 0.030
    # onsets within 5 ms: shot b's sound on frame 31, the voice 0.5 s after shot c's cut on frame 79
    assert abs(onset(sound) - 31 / 24) < 0.005
    assert abs(onset(sound, after=3.4) - (79 / 24 + 0.5)) < 0.005
    # trimmed to its shot: silent between the cut into c and the voice line
    assert np.abs(sound[:, round((79 / 24 + 0.02) * RATE):round((79 / 24 + 0.45) * RATE)]).max() < 0.02
    # the manifest lists every source with its start, gain and length
    sources = {s["name"]: s for s in manifest["soundtrack"]["sources"]}
    assert sources["sound:b"]["start_sample"] == 31 * 2000 and sources["sound:b"]["length"] == pytest.approx(2.0)
    assert sources["voice:c:0"]["start"] == pytest.approx(79 / 24 + 0.5) and sources["voice:c:0"]["gain_db"] == 0
    assert sources["voice:c:0"]["length"] == pytest.approx(0.8, abs=1e-4)
    assert manifest["soundtrack"]["loudness"]["target"] is None
    assert json.loads(manifest_path(output).read_text())["soundtrack"] == manifest["soundtrack"]


def test_the_audio_only_track_is_sample_exact(timed, tmp_path):
    result = run_cli("render", str(timed), "--audio-only", str(tmp_path / "mix.wav"))
    assert result.returncode == 0, result.stderr
    sound = read_sound(tmp_path / "mix.wav")
    assert sound.shape[1] == 5 * RATE  # exactly the video's length, in samples
    first = np.flatnonzero(np.abs(sound[0]) > 0.1)[0]
    assert first == 31 * 2000  # 31 frames at 24 fps = 62000 samples at 48 kHz, to the sample
    assert not (tmp_path / "timed.mp4").exists()


def test_no_audio_writes_a_silent_video(timed, tmp_path):
    result = run_cli("render", str(timed), "-o", str(tmp_path / "silent.mp4"), "--no-audio")
    assert result.returncode == 0, result.stderr
    assert not has_audio(tmp_path / "silent.mp4")
    both = run_cli("render", str(timed), "-o", str(tmp_path / "x.mp4"), "--audio-only", str(tmp_path / "x.wav"))
    assert both.returncode == 2 and "one of them" in both.stderr and "Traceback" not in both.stderr
    not_wav = run_cli("render", str(timed), "--audio-only", str(tmp_path / "x.mp3"))
    assert not_wav.returncode == 2 and "--audio-only writes a .wav file" in not_wav.stderr
    silent = write(tmp_path / "silent.yaml", "fps: 12\nwidth: 160\nheight: 96\nshots: [{prompt: a cat, duration: 1}]\n")
    nothing = run_cli("render", str(silent), "--audio-only", str(tmp_path / "x.wav"))
    assert nothing.returncode == 2 and "the storyboard has no sound" in nothing.stderr
    assert not (tmp_path / "x.wav").exists() and not (tmp_path / "x.mp3").exists()


def test_loudness_meets_its_target_without_clipping(tmp_path):
    rng = np.random.default_rng(3)
    music = 0.05 * rng.standard_normal((2, 6 * RATE)) + tone(220, 6.0, 0.05)  # quiet: normalising raises it
    write_wav(tmp_path / "theme.wav", music)
    write_wav(tmp_path / "hit.wav", tone(1500, 0.3, 0.9))  # a loud transient the ceiling must hold
    board = write(tmp_path / "loud.yaml", """\
        fps: 12
        width: 160
        height: 96
        audio:
          music: {file: theme.wav, gain_db: -8, fade_in: 1.0, fade_out: 2.0}
          loudness: -16
        shots:
          - {id: a, prompt: a harbour, duration: 2.5, sound: {file: hit.wav, gain_db: 3}}
          - {id: b, prompt: the sea, duration: 2.5}
        """)
    manifest = longvid.render(board, tmp_path / "loud.mp4")
    measured = loudness(tmp_path / "loud.mp4")
    assert abs(measured["integrated"] - -16) < 1.0
    assert np.abs(read_sound(tmp_path / "loud.mp4")).max() < 1.0  # no clipping
    assert measured["true_peak"] < -0.5  # the -1 dBTP ceiling, with room for the AAC encoder
    recorded = manifest["soundtrack"]["loudness"]
    assert recorded["target"] == -16 and abs(recorded["integrated"] - -16) < 1.0 and recorded["true_peak"] <= -0.9


def test_music_ducks_under_voice(tmp_path):
    write_wav(tmp_path / "theme.wav", tone(200, 6.0, 0.3))
    write_wav(tmp_path / "line.wav", tone(3000, 1.0, 0.3))
    board = write(tmp_path / "duck.yaml", """\
        fps: 12
        width: 160
        height: 96
        audio: {music: {file: theme.wav}, loudness: null}
        shots:
          - {id: a, prompt: a harbour, duration: 2}
          - {id: b, prompt: a fisherman, duration: 3, voice: [{file: line.wav, at: 1.0}]}
        """)
    longvid.render(board, tmp_path / "duck.mp4")
    sound = read_sound(tmp_path / "duck.mp4")
    before = level_db(sound, 200, 1.0, 1.0)  # 200 Hz: the music alone, before the line at 3 s
    during = level_db(sound, 200, 3.3, 0.5)
    after = level_db(sound, 200, 4.5, 0.4)
    assert before - during >= 6.0 and abs(before - after) < 1.0
    assert level_db(sound, 3000, 3.3, 0.5) > during  # the voice is there, above the music


def test_a_crossfade_crossfades_the_sounds_over_its_frames(tmp_path):
    # shot a's sound on the left channel, shot b's on the right, both constant: each channel is its sound's gain
    left, right = np.zeros((2, 4 * RATE)), np.zeros((2, 4 * RATE))
    left[0], right[1] = 0.5, 0.5
    write_wav(tmp_path / "left.wav", left)
    write_wav(tmp_path / "right.wav", right)
    board = write(tmp_path / "fade.yaml", """\
        fps: 12
        width: 160
        height: 96
        audio: {loudness: null}
        shots:
          - {id: a, prompt: a harbour, duration: 2, sound: {file: left.wav}, transition: {type: crossfade, duration: 0.5}}
          - {id: b, prompt: the sea, duration: 2, sound: {file: right.wav}}
        """)
    spec = longvid.load_storyboard(board)
    a, b = spec.timings()
    assert (b.render_start, a.render_end) == (21, 27)  # the crossfade's frames: 3 on each side of the cut at 24
    result = run_cli("render", str(board), "--audio-only", str(tmp_path / "fade.wav"))
    assert result.returncode == 0, result.stderr
    sound = read_sound(tmp_path / "fade.wav")
    per_frame = RATE // 12
    a_plays = np.flatnonzero(np.abs(sound[0]) > 0)
    b_plays = np.flatnonzero(np.abs(sound[1]) > 0)
    assert (a_plays[0], a_plays[-1] + 1) == (0, 27 * per_frame)
    assert (b_plays[0], b_plays[-1] + 1) == (21 * per_frame, 48 * per_frame)
    both = np.intersect1d(a_plays, b_plays)
    assert (both[0], both[-1] + 1) == (21 * per_frame, 27 * per_frame)  # exactly the crossfade's frames
    fade = slice(21 * per_frame, 27 * per_frame)
    np.testing.assert_allclose(sound[0, fade] + sound[1, fade], 0.5, atol=1e-4)  # the gains sum to one
    assert np.all(np.diff(sound[0, fade]) <= 1e-6) and np.all(np.diff(sound[1, fade]) >= -1e-6)


def test_preview_clicks_mark_every_cut(tmp_path):
    board = write(tmp_path / "clicks.yaml", """\
        fps: 24
        width: 160
        height: 96
        audio: {preview_clicks: true, loudness: null}
        shots:
          - {id: a, prompt: a harbour, duration: 1.3}
          - {id: b, prompt: the sea, duration: 1.0}
          - {id: c, prompt: the sky, duration: 1.0}
        """)
    result = run_cli("render", str(board), "--audio-only", str(tmp_path / "clicks.wav"))
    assert result.returncode == 0, result.stderr
    sound = np.abs(read_sound(tmp_path / "clicks.wav")).max(axis=0)
    peaks = [np.argmax(sound[round(t * RATE) - 2400:round(t * RATE) + 2400]) + round(t * RATE) - 2400
             for t in (31 / 24, 55 / 24)]
    assert [abs(p / RATE - t) < 0.005 for p, t in zip(peaks, (31 / 24, 55 / 24), strict=True)] == [True, True]
    assert sound[:round(1.2 * RATE)].max() == 0 and sound[round(1.35 * RATE):round(2.2 * RATE)].max() == 0


def test_a_looped_sound_fills_its_shot_and_the_mix_is_cached(tmp_path):
    write_wav(tmp_path / "gulls.wav", tone(900, 0.7, 0.4))
    board = write(tmp_path / "loop.yaml", """\
        fps: 12
        width: 160
        height: 96
        audio: {loudness: null}
        shots:
          - {id: a, prompt: a harbour, duration: 2.5, sound: {file: gulls.wav, loop: true}}
          - {id: b, prompt: the sea, duration: 1}
        """)
    first = longvid.render(board, tmp_path / "loop.mp4")
    plays = np.flatnonzero(np.abs(read_sound(tmp_path / "loop.mp4")[0]) > 0.1)
    assert abs(plays[-1] / RATE - 2.5) < 0.005 and first["soundtrack"]["sources"][0]["length"] == 2.5
    again = longvid.render(board, tmp_path / "loop.mp4")
    assert again["soundtrack"]["cached"] and again["soundtrack"]["cache_key"] == first["soundtrack"]["cache_key"]
    write_wav(tmp_path / "gulls.wav", tone(900, 0.7, 0.2))  # new content, same path: the mix runs again
    changed = longvid.render(board, tmp_path / "loop.mp4")
    assert not changed["soundtrack"]["cached"] and changed["execution"]["ran"] == 2  # the mix and the concat


BAD = {  # the shot's sound or voice, the value the message points at, the message
    "missing file": ("sound: {file: nope.wav}", "nope.wav", "sound file not found: "),
    "not a sound": ("sound: {file: bad.wav}", "bad.wav", "cannot read "),
    "voice after its shot": ("voice: [{file: line.wav, at: 2.5}]", "2.5", "voice line `at` (2.5) starts after shot "
                             "'a' ends (2 s)"),
    "voice overruns the video": ("voice: [{file: line.wav, at: 1.5}]", "line.wav", "voice line line.wav (1.00 s from "
                                 "1.50 s) overruns the video, which ends at 2.00 s"),
    "prompt with no model": ("sound: {prompt: gulls and waves}", "gulls", "a `prompt` sound needs an audio model: "
                             "set models.audio.model"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_sound_exits_2_with_located_message(tmp_path, case):
    shot, value, message = BAD[case]
    write_wav(tmp_path / "line.wav", tone(440, 1.0))
    (tmp_path / "bad.wav").write_text("not a sound")
    board = tmp_path / "story.yaml"
    board.write_text(f"fps: 12\nwidth: 160\nheight: 96\nshots:\n  - id: a\n    {shot}\n    prompt: a harbour\n"
                     f"    duration: 2\n")
    where = f"6:{5 + shot.index(value)}"
    output = tmp_path / "out.mp4"
    result = run_cli("render", str(board), "-o", str(output))
    assert result.returncode == 2, result.stderr
    assert f"{board}:{where}: {message}" in result.stderr
    assert "Traceback" not in result.stderr and not output.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.wav", "line.wav", "story.yaml"]


def test_the_scene_api_takes_sound_and_voice(tmp_path):
    write_wav(tmp_path / "gulls.wav", tone(900, 1.0, 0.4))
    write_wav(tmp_path / "line.wav", tone(300, 0.5, 0.4))
    story = longvid.Storyboard("Scene", fps=12, width=160, height=96, audio={"loudness": None}, base_dir=tmp_path)
    story.shot("a", "a harbour", 1.0, sound={"file": "gulls.wav"})
    story.shot("b", "a fisherman", 1.0, voice=[{"file": "line.wav", "at": 0.25}])
    longvid.render(story, tmp_path / "scene.mp4")
    sound = read_sound(tmp_path / "scene.mp4")
    assert abs(onset(sound) - 0.0) < 0.005 and abs(onset(sound, after=1.05) - 1.25) < 0.005
