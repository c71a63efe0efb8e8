"""Blending: overlapping chunks into a shot's frames, and two shots into a crossfade.

Everything streams. A shot's frames come out of `blend_range` for any range of them, touching only the chunks over
that range; at most two chunks are alive at once, so memory does not grow with the length of the video.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from longvid.stitching.colour import LabStats, anchor_colours
from longvid.timing import ChunkWindow, ramp

Frames = Iterator[np.ndarray]
# (chunk index, first frame, one past the last frame) -> those frames of the chunk (an array or a list of frames)
ChunkFrames = Callable[[int, int, int], Sequence[np.ndarray]]


def mix(a: np.ndarray, b: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * a + weight * b``, rounded to uint8, with the weight in 256ths; equal inputs give the input.

    Fixed point in uint16 (``(a * (256 - w) + b * w + 128) >> 8``): every overlap and crossfade frame goes through
    here, and this is about twice as fast as float32 at 720p. A 256th of a weight moves no pixel by more than one
    level. Equal frames (overlapping chunks that agree, as preview chunks do) are found by a sparse look, then a full
    one, and returned as they are.
    """
    if a.shape == b.shape and np.array_equal(a[::16, ::16], b[::16, ::16]) and np.array_equal(a, b):
        return a
    w = min(256, max(0, round(float(weight) * 256)))
    out = np.multiply(a, 256 - w, dtype=np.uint16)
    out += np.multiply(b, w, dtype=np.uint16)
    out += 128
    out >>= 8
    return out.astype(np.uint8)


def blend_range(windows: list[ChunkWindow], chunk: ChunkFrames, kind: str, start: int, stop: int) -> Frames:
    """Frames ``[start, stop)`` of a shot, from its chunks, each overlap blended with a `kind` ramp.

    A frame inside the overlap of chunks i - 1 and i is their blend; any other frame is one chunk's own. Only the
    chunks over ``[start, stop)`` are asked for, each once, and only for the frames needed.

    Args:
        windows: the shot's chunk windows, in order (from `timing.chunk_windows`).
        chunk: returns frames ``[lo, hi)`` of chunk i (chunk-relative).
        kind: the ramp, see `timing.ramp`.
    """
    carried: np.ndarray | None = None  # frames of chunk i - 1 inside the coming overlap, from `carried_from` on
    carried_from = 0
    for w in windows:
        lo, hi = max(start, w.start), min(stop, w.end)
        if lo >= hi:
            continue
        frames = chunk(w.index, lo - w.start, hi - w.start)
        if len(frames) < hi - lo:
            raise ValueError(f"chunk {w.index} returned {len(frames)} frames, {hi - lo} were asked for")
        weights = ramp(w.overlap, kind)
        next_start = windows[w.index + 1].start if w.index + 1 < len(windows) else w.end
        for f in range(lo, min(hi, next_start)):
            j = f - w.start
            if j < w.overlap:
                yield mix(carried[f - carried_from], frames[f - lo], weights[j])
            else:
                yield frames[f - lo]
        # A copy, not a view: a view would keep the whole chunk alive while the next one is made.
        cut = max(next_start, lo)
        carried, carried_from = (frames[cut - lo:].copy(), cut) if hi > cut else (None, 0)
        del frames


def blend_chunks(windows: list[ChunkWindow], chunk: Callable[[int], np.ndarray], kind: str = "cosine") -> Frames:
    """A whole shot's frames from its chunks (`chunk(i)` returns all of chunk i's frames)."""
    total = windows[-1].end
    return blend_range(windows, lambda i, lo, hi: chunk(i)[lo:hi], kind, 0, total)


def anchored(chunk: Callable[[int], np.ndarray], strength: float, reference: np.ndarray | None) -> Callable[[int], np.ndarray]:
    """`chunk` with every chunk's colours anchored to `reference` (an image; None: the shot's first chunk)."""
    if not strength:
        return chunk
    target = [LabStats.of(reference) if reference is not None else None]

    def load(i: int) -> np.ndarray:
        if target[0] is None:
            target[0] = LabStats.of(chunk(0))
        return anchor_colours(chunk(i), target[0], strength)

    return load
