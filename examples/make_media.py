"""Make the small sounds and reference pictures the README's examples name (examples/audio/, examples/refs/).

They are committed; this script says how they were made, and makes them again byte for byte:

    python examples/make_media.py

Sounds are 16 kHz mono 16-bit WAV, synthesised from seeded noise and tones; pictures are flat drawings.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).parent
RATE = 16000


def _wav(path: Path, x: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.rint(np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())


def _t(seconds: float) -> np.ndarray:
    return np.arange(round(seconds * RATE)) / RATE


def _lowpass(x: np.ndarray, width: int) -> np.ndarray:
    return np.convolve(x, np.ones(width) / width, mode="same")


def thunder(rng) -> np.ndarray:
    """A crack, then a long rumble: low-passed noise under a decaying envelope."""
    t = _t(2.5)
    rumble = _lowpass(rng.standard_normal(t.size), 60) * np.exp(-t / 0.9) * 6
    crack = rng.standard_normal(t.size) * np.exp(-t / 0.04) * 0.6
    return 0.8 * (rumble + crack) / np.max(np.abs(rumble + crack))


def line(rng) -> np.ndarray:
    """A voice line's stand-in: three vowel-like syllables (a pitch with its formants)."""
    out = []
    for pitch, formant in ((140, 700), (120, 1100), (160, 500)):
        t = _t(0.4)
        voice = sum(np.sin(2 * np.pi * pitch * k * t) / k * np.exp(-((pitch * k - formant) / 400) ** 2)
                    for k in range(1, 20))
        out += [voice * np.sin(np.pi * t / t[-1]) ** 2, np.zeros(round(0.1 * RATE))]
    x = np.concatenate(out)
    return 0.6 * x / np.max(np.abs(x))


def stairs(rng) -> np.ndarray:
    """Two footsteps on iron, one second: loops seamlessly."""
    t = _t(1.0)
    x = np.zeros(t.size)
    for start in (0.05, 0.55):
        n = round(0.25 * RATE)
        s = np.arange(n) / RATE
        ring = np.sin(2 * np.pi * 430 * s) * 0.5 + np.sin(2 * np.pi * 1170 * s) * 0.3
        thud = _lowpass(rng.standard_normal(n), 20) * 3
        i = round(start * RATE)
        x[i:i + n] += (ring + thud) * np.exp(-s / 0.06)
    return 0.7 * x / np.max(np.abs(x))


def theme(rng) -> np.ndarray:
    """A slow modal tune over a drone, 15 s (the length of examples/lighthouse.yaml)."""
    notes = [57, 60, 62, 64, 62, 60, 59, 57, 55, 57, 60, 57]
    t = _t(15.0)
    drone = 0.25 * (np.sin(2 * np.pi * 110 * t) + 0.5 * np.sin(2 * np.pi * 165 * t))
    melody = np.zeros(t.size)
    step = round(1.25 * RATE)
    for i, note in enumerate(notes):
        hz = 440 * 2 ** ((note - 69) / 12)
        s = np.arange(step) / RATE
        melody[i * step:(i + 1) * step] = np.sin(2 * np.pi * hz * s) * np.minimum(1, s / 0.05) * np.exp(-s / 0.8)
    x = drone + melody
    return 0.7 * x / np.max(np.abs(x))


def keeper() -> Image.Image:
    """The lighthouse keeper: a figure in a yellow raincoat with a grey beard, on a plain background."""
    image = Image.new("RGB", (128, 128), (200, 206, 212))
    d = ImageDraw.Draw(image)
    d.polygon([(40, 120), (88, 120), (78, 52), (50, 52)], fill=(236, 190, 32))  # the raincoat
    d.ellipse((50, 20, 78, 50), fill=(222, 184, 150))  # the face
    d.polygon([(52, 40), (76, 40), (64, 62)], fill=(150, 150, 150))  # the beard
    d.rectangle((48, 16, 80, 24), fill=(40, 44, 60))  # the cap
    return image


def lamp() -> Image.Image:
    """The lamp room: brass lamp in a glass room under a dark sky."""
    image = Image.new("RGB", (128, 128), (30, 38, 64))
    d = ImageDraw.Draw(image)
    d.rectangle((24, 40, 104, 110), outline=(180, 190, 200), width=3)  # the glazing
    d.ellipse((48, 56, 80, 92), fill=(214, 170, 60))  # the brass lamp
    d.polygon([(64, 74), (127, 50), (127, 98)], fill=(250, 240, 180))  # its beam
    d.rectangle((20, 108, 108, 118), fill=(120, 90, 40))  # the gallery
    return image


def main() -> None:
    rng = np.random.default_rng(2026)
    for name, make in (("thunder", thunder), ("line1", line), ("stairs", stairs), ("theme", theme)):
        _wav(HERE / "audio" / f"{name}.wav", make(rng))
    for name, make in (("keeper", keeper), ("lamp", lamp)):
        make().save(HERE / "refs" / f"{name}.png", optimize=True)


if __name__ == "__main__":
    main()
