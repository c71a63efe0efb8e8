"""Sound files made by tests, and the soundtrack of a rendered video read back with the real ffmpeg."""

from __future__ import annotations

import json
import subprocess
import wave
from pathlib import Path

import imageio_ffmpeg
import numpy as np

RATE = 48000


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    """`samples` (channels x n, or n for mono) in [-1, 1] as a 16-bit WAV."""
    x = np.atleast_2d(samples)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[0])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.rint(np.clip(x.T, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def tone(hz: float, seconds: float, amplitude: float = 0.5, rate: int = RATE) -> np.ndarray:
    """A cosine, so it starts at full amplitude: its onset is its first sample."""
    return amplitude * np.cos(2 * np.pi * hz * np.arange(round(seconds * rate)) / rate)


def read_sound(path: Path, rate: int = RATE) -> np.ndarray:
    """The first audio stream of a file (an MP4's AAC, a WAV), decoded to stereo float at `rate`: 2 x n."""
    raw = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac",
                          "2", "-ar", str(rate), "-f", "f32le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, "<f4").reshape(-1, 2).T


def has_audio(path: Path) -> bool:
    info = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True,
                          text=True).stderr
    return " Audio: " in info


def onset(x: np.ndarray, after: float = 0.0, rate: int = RATE, threshold: float = 0.1) -> float:
    """Seconds of the first sample after `after` s where either channel exceeds `threshold`."""
    loud = np.flatnonzero(np.abs(x).max(axis=0)[round(after * rate):] > threshold)
    return after + loud[0] / rate


def loudness(path: Path) -> dict:
    """Integrated loudness (LUFS) and true peak (dBTP) of a file's sound, by ffmpeg's EBU R128 meter (loudnorm)."""
    err = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path), "-map",
                          "0:a:0", "-af", "loudnorm=print_format=json", "-f", "null", "-"], capture_output=True,
                         text=True, check=True).stderr
    figures = json.loads(err[err.rindex("{"):err.rindex("}") + 1])
    return {"integrated": float(figures["input_i"]), "true_peak": float(figures["input_tp"])}


def level_db(x: np.ndarray, hz: float, start: float, seconds: float, rate: int = RATE) -> float:
    """The level (dBFS) of the `hz` component of the left channel over [start, start + seconds)."""
    part = x[0, round(start * rate):round((start + seconds) * rate)]
    t = np.arange(len(part)) / rate
    amplitude = 2 * abs(np.mean(part * np.exp(-2j * np.pi * hz * t)))
    return 20 * np.log10(max(amplitude, 1e-12))
