"""The streamed mix: every source decoded to a raw float file at the mix's rate, then summed block by block.

Memory stays flat in the video's length: a block of the output needs only the same block of each source, read from
its raw file. Gains are exact per sample: the user's gain and fades, the crossfades with neighbouring shots (linear,
over the picture's crossfade frames, so two crossfading sounds sum to one), and the music's ducking under voice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from longvid.tasks import MixParams, SoundSource

BLOCK = 1 << 15  # samples per block: about 0.7 s at 48 kHz
DUCK_ATTACK = 0.05  # seconds over which the music goes down before a voice line
DUCK_RELEASE = 0.25  # and comes back up after it
CLICK = (0.004, 2000.0, 0.5)  # a click at a cut: seconds, Hz, amplitude


@dataclass
class Placed:
    """A source and its decoded samples (`raw`: interleaved float32 at the mix's rate, `length` samples)."""

    source: SoundSource
    raw: Path
    length: int

    @property
    def end(self) -> int:
        """One past the last sample it plays, on the timeline."""
        s = self.source
        return s.start + (s.span if s.loop else min(s.span, self.length))


def gain(source: SoundSource, length: int, j: np.ndarray) -> np.ndarray:
    """The source's gain at its own samples `j` (0 is its first): level, fades and crossfades."""
    s = source
    plays = s.span if s.loop else min(s.span, length)
    g = np.full(len(j), 10 ** (s.gain_db / 20), np.float64)
    centre = j + 0.5  # ramps are sampled at sample centres, so a ramp and its mirror sum to exactly one
    if s.fade_in:
        g *= np.clip(centre / s.fade_in, 0, 1)
    if s.fade_out:
        g *= np.clip((plays - centre) / s.fade_out, 0, 1)
    if s.xfade_in:
        g *= np.clip(centre / s.xfade_in, 0, 1)
    if s.xfade_out:
        g *= np.clip((s.span - centre) / s.xfade_out, 0, 1)
    return g


def duck(voices: list[tuple[int, int]], depth_db: float, rate: int, t: np.ndarray) -> np.ndarray:
    """The music's gain at timeline samples `t`: lowered by `depth_db` over each voice line [start, end), with
    short ramps down before it and up after it."""
    if not voices or not depth_db:
        return np.ones(len(t))
    attack, release = DUCK_ATTACK * rate, DUCK_RELEASE * rate
    cover = np.zeros(len(t))
    for start, end in voices:
        down = np.clip((t + 0.5 - (start - attack)) / attack, 0, 1)
        up = np.clip(((end + release) - (t + 0.5)) / release, 0, 1)
        cover = np.maximum(cover, np.minimum(down, up))
    return 1 - (1 - 10 ** (-depth_db / 20)) * cover


def click(rate: int) -> np.ndarray:
    """A short tone burst with a Hann window (no click of its own at its edges)."""
    seconds, hz, amplitude = CLICK
    n = max(1, round(seconds * rate))
    return amplitude * np.hanning(n) * np.sin(2 * np.pi * hz * np.arange(n) / rate)


def read(f: BinaryIO, length: int, channels: int, first: int, count: int, loop: bool) -> np.ndarray:
    """`count` samples of a raw file from sample `first`, wrapping around when looped, silence past its end."""
    out = np.zeros((count, channels), np.float32)
    done = 0
    while done < count and length:
        at = (first + done) % length if loop else first + done
        if at >= length:
            break
        n = min(count - done, length - at)
        f.seek(at * channels * 4)
        out[done:done + n] = np.fromfile(f, "<f4", n * channels).reshape(n, channels)
        done += n
    return out


def blocks(p: MixParams, placed: list[Placed]) -> Iterator[np.ndarray]:
    """The mix, block by block: (samples x channels) float32, `p.samples` in all."""
    voices = [(x.source.start, x.end) for x in placed if x.source.role == "voice"]
    burst = click(p.rate)
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(open(x.raw, "rb")) for x in placed]
        for lo in range(0, p.samples, BLOCK):
            hi = min(p.samples, lo + BLOCK)
            out = np.zeros((hi - lo, p.channels), np.float32)
            t = np.arange(lo, hi)
            for x, f in zip(placed, files, strict=True):
                a, b = max(lo, x.source.start), min(hi, x.end)
                if a >= b:
                    continue
                j = np.arange(a, b) - x.source.start
                g = gain(x.source, x.length, j)
                if x.source.role == "music":
                    g *= duck(voices, p.duck_db, p.rate, t[a - lo:b - lo])
                out[a - lo:b - lo] += read(f, x.length, p.channels, a - x.source.start, b - a, x.source.loop) * \
                    g[:, None].astype(np.float32)
            for at in p.clicks:  # a click centred on its cut
                c0 = at - len(burst) // 2
                a, b = max(lo, c0), min(hi, c0 + len(burst))
                if a < b:
                    out[a - lo:b - lo] += burst[a - c0:b - c0, None].astype(np.float32)
            yield out
