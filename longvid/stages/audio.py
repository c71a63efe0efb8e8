"""The sound track, for models that make sound with their picture (LTX-2).

Each chunk's sound is stored with its frames. A shot's sound is its chunks' sound blended over their overlaps with
the same ramps as their frames, and the video's track is laid out by the same pieces as its segments, crossfades
mixed with the picture's weights. Weights are given per frame; between frame centres they are interpolated, so a
ramp's steps do not click. The track is exactly as long as the video and is encoded once, at the concat (AAC per
segment would leave a gap of encoder priming at every join).
"""

from __future__ import annotations

import subprocess
from typing import Any

import numpy as np

from longvid.stages.base import Output, StageSpec
from longvid.tasks import AudioParams, ShotFrames, ShotSound, Task
from longvid.timing import ramp


def chunk_gains(blend: ShotFrames, samples_per_frame: float, length: int) -> list[tuple[int, np.ndarray]]:
    """For each chunk of a shot: (first sample, its gain per sample over its frames), from the picture's ramps."""
    windows = [tuple(w) for w in blend.windows]
    gains = []
    for i, (start, _, used, overlap) in enumerate(windows):
        first = round(start * samples_per_frame)
        stop = min(length, round((start + used) * samples_per_frame))
        x = np.arange(first, stop) / samples_per_frame  # the generated frame each sample falls in, continuously
        gain = np.ones(len(x))
        if i and overlap:  # fades in over its overlap with the chunk before
            gain *= _ramp_at(x, start, overlap, blend.ramp)
        if i + 1 < len(windows) and windows[i + 1][3]:  # and out over the next one's
            nxt, ov = windows[i + 1][0], windows[i + 1][3]
            gain *= np.where(x >= nxt, 1 - _ramp_at(x, nxt, ov, blend.ramp), 1.0)
        gains.append((first, gain))
    return gains


def _ramp_at(x: np.ndarray, start: int, frames: int, kind: str) -> np.ndarray:
    """A ramp's weights (`timing.ramp`) at frame centres, interpolated between them; 0 before, 1 after."""
    centres = start + np.arange(frames) + 0.5
    inside = np.interp(x, centres, ramp(frames, kind))
    return np.where(x < start, 0.0, np.where(x >= start + frames, 1.0, inside))


class AudioMix:
    """The video's sound track, as a FLAC file (stored like a segment)."""

    spec = StageSpec(name="audio", kind="audio", code_version="1", params=AudioParams, inputs=("chunk",),
                     output="audio")

    def __call__(self, task: Task, inputs: Any) -> Output:
        # 1. check inputs: every chunk has sound, at one rate
        p: AudioParams = task.params
        sounds = {c: inputs.audio(c) for shot in p.shots for c in shot.blend.chunks}
        missing = [c for c, s in sounds.items() if s is None]
        if missing:
            raise ValueError(f"{', '.join(missing)}: no sound stored with the frames")
        rates = {rate for _, rate in sounds.values()}
        if len(rates) != 1:
            raise ValueError(f"the chunks' sound comes at several rates: {sorted(rates)}")
        rate = rates.pop()
        channels = max(s.shape[0] for s, _ in sounds.values())

        # 2. each shot's sound over its rendered frames, at the output rate
        per_frame = rate / p.fps
        shots = {s.shot: shot_sound(s, sounds, per_frame, channels) for s in p.shots}

        # 3. the track, piece by piece: one shot's sound, or two crossfaded with the picture's weights
        track = np.zeros((channels, round(p.frames * per_frame)), np.float32)
        t = 0
        for piece in p.pieces:
            lo, hi = round(t * per_frame), round((t + piece.frames) * per_frame)
            part = _take(shots[piece.a.shot], round(piece.a_offset * per_frame), hi - lo)
            if piece.b is not None:
                other = _take(shots[piece.b.shot], round(piece.b_offset * per_frame), hi - lo)
                weight = np.interp(np.arange(hi - lo) / per_frame, np.arange(piece.frames) + 0.5, piece.weights)
                part = part * (1 - weight) + other * weight
            track[:, lo:hi] = part
            t += piece.frames

        # 4. stored as FLAC
        path = inputs.scratch(".flac")
        write_flac(path, track, rate)
        return Output(path, {"rate": rate, "channels": channels, "samples": track.shape[1]})


def shot_sound(shot: ShotSound, sounds: dict, per_frame: float, channels: int) -> np.ndarray:
    """A shot's sound over its rendered frames (output rate): its chunks' sound, faded over their overlaps."""
    per_generated = per_frame * shot.factor
    last = shot.blend.windows[-1]
    length = round((last[0] + last[2]) * per_generated)
    out = np.zeros((channels, length), np.float32)
    for chunk, (first, gain) in zip(shot.blend.chunks, chunk_gains(shot.blend, per_generated, length), strict=True):
        sound = sounds[chunk][0]
        n = min(len(gain), sound.shape[1])
        out[:, first:first + n] += sound[:, :n] * gain[:n]
    return out


def _take(sound: np.ndarray, start: int, length: int) -> np.ndarray:
    """`length` samples from `start`, padded with silence past the end."""
    part = sound[:, start:start + length]
    return np.pad(part, ((0, 0), (0, length - part.shape[1]))) if part.shape[1] < length else part


def write_flac(path, track: np.ndarray, rate: int) -> None:
    """`track` (channels x samples, in [-1, 1]) as 16-bit FLAC at `path` (also used for generated sounds)."""
    import imageio_ffmpeg

    pcm = np.clip(np.rint(track.T * 32767), -32768, 32767).astype("<i2")
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-f", "s16le", "-ar", str(rate), "-ac",
                    str(track.shape[0]), "-i", "-", "-c:a", "flac", "-f", "flac", str(path)],
                   input=pcm.tobytes(), check=True, capture_output=True)
