"""Every render is constant frame rate: each video sample lasts exactly one frame, whatever the segments' lengths,
and the soundtrack lasts as long as the picture. Read from the MP4's own boxes (`stts`, `elst`) and, independently,
from the packets ffmpeg demuxes."""

from __future__ import annotations

import subprocess
from fractions import Fraction

import imageio_ffmpeg
import pytest

import longvid
from longvid import timing
from longvid.stitching.encode import video_rate
from longvid.stitching.mp4 import tracks
from tests.conftest import probe, write
from tests.sound import RATE, read_sound, tone, write_wav


def packet_durations(path) -> list[tuple[int, int, int]]:
    """(dts, pts, duration) of every video packet, as ffmpeg's demuxer reads them (stream copy, no decoding)."""
    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v", "-c", "copy",
                          "-f", "framemd5", "-"], capture_output=True, text=True, check=True).stdout
    rows = [line.split(",") for line in out.splitlines() if line and not line.startswith("#")]
    return [(int(r[1]), int(r[2]), int(r[3])) for r in rows]


def assert_constant_rate(path, frames: int, fps: float) -> Fraction:
    video = next(t for t in tracks(path) if t.handler == "vide")
    tick = Fraction(video.timescale) / video_rate(fps)
    assert tick.denominator == 1, f"timescale {video.timescale} does not hold a frame at {fps} fps"
    assert video.samples == frames
    assert set(video.sample_durations()) == {int(tick)}, video.durations  # one frame each, the last one too
    assert video.seconds == frames / video_rate(fps)
    packets = packet_durations(path)
    assert len(packets) == frames
    dts = [d for d, _, _ in packets]
    assert all(b - a == tick for a, b in zip(dts, dts[1:], strict=False))
    assert {d for _, _, d in packets} == {int(tick)}
    assert sorted(p for _, p, _ in packets) == [int(tick) * k for k in range(frames)]  # shown on every frame's time
    return video.seconds


# fps 25, the shots of the report: 0.52, 1.98 (crossfading out over 0.5 s), 0.6, 6.86 and 0.04 s (a 1-frame shot)
REPORTED = """\
    fps: 25
    width: 64
    height: 64
    shots:
      - {id: a, prompt: one, duration: 0.52}
      - {id: b, prompt: two, duration: 1.98, transition: {type: crossfade, duration: 0.5}}
      - {id: c, prompt: three, duration: 0.6}
      - {id: d, prompt: four, duration: 6.86}
      - {id: e, prompt: five, duration: 0.04}
    """


def test_a_one_frame_last_shot_keeps_the_frame_rate(tmp_path):
    out = tmp_path / "out.mp4"
    longvid.render(write(tmp_path / "s.yaml", REPORTED), out)
    assert_constant_rate(out, 250, 25)
    assert probe(out)["frames"] == 250


@pytest.mark.parametrize("fps", [24, 29.97])
def test_short_shots_anywhere_keep_the_frame_rate_and_the_sound_its_length(tmp_path, fps):
    # shots of 1, 2 and 3 frames first, in the middle and last, with music under the whole video
    write_wav(tmp_path / "music.wav", tone(220, 12))
    frame = 1 / fps
    durations = [frame, 2, 2 * frame, 1.5, 3 * frame, 1, frame]
    shots = "".join(f"  - {{id: s{i}, prompt: shot {i}, duration: {d!r}}}\n" for i, d in enumerate(durations))
    board = write(tmp_path / "s.yaml", f"fps: {fps}\nwidth: 64\nheight: 64\naudio:\n  music: {{file: music.wav}}\n"
                                       f"shots:\n{shots}")
    out = tmp_path / "out.mp4"
    longvid.render(board, out)
    frames = longvid.load_storyboard(board).total_frames
    assert frames == timing.seconds_to_frames(sum(durations), fps)
    seconds = assert_constant_rate(out, frames, fps)
    sound = next(t for t in tracks(out) if t.handler == "soun")
    assert abs(sound.seconds - seconds) <= Fraction(1024, RATE)  # one AAC frame
    assert abs(read_sound(out).shape[1] - seconds * RATE) <= 1024


def test_without_b_frames_the_clock_is_the_frames(tmp_path):
    # ultrafast: x264 uses no B-frames, so no segment delays its decode clock
    out = tmp_path / "out.mp4"
    longvid.render(write(tmp_path / "s.yaml", REPORTED), out, preset="ultrafast")
    assert_constant_rate(out, 250, 25)
    assert next(t for t in tracks(out) if t.handler == "vide").skipped == 0
