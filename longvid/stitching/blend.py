"""Blending: overlapping chunks into a shot's frames, and two shots into a crossfade.

Everything streams. A shot's frames come out of `blend_range` for any range of them, touching only the chunks over
that range; at most two chunks are alive at once, so memory does not grow with the length of the video.

Two chunks a few pixels apart ghost where a plain ramp mixes them: a still scene shows it, a moving one hides it.
The flow-aligned blend (`Alignment`) measures, by optical flow on a frame the two chunks share, how far the incoming
chunk sits off the outgoing one, and moves the whole incoming chunk by that many pixels before the ramp: the
overlap mixes two aligned pictures, and the chunk goes on in its predecessor's place instead of jumping back to its
own. The moves add up along the shot, so a still shot stays still from its first chunk to its last.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from longvid.stitching.flow import offset, translate
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


class Alignment:
    """Where each chunk of a shot is moved, ``(dy, dx)`` in whole pixels, to continue in its predecessor's place.

    `shift(i)` is how far chunk i sits off chunk i - 1 (`chunk_shift` on the middle frame of their overlap); chunk
    i's move is the sum of those up to it, from the shot's first chunk, which stays where it is.
    """

    def __init__(self, windows: list[ChunkWindow], shift: Callable[[int], tuple[int, int]]):
        self.windows, self.shift = windows, shift
        self._moves: list[tuple[int, int]] = [(0, 0)]

    def __call__(self, i: int) -> tuple[int, int]:
        while len(self._moves) <= i:
            dy, dx = self.shift(len(self._moves)) if self.windows[len(self._moves)].overlap else (0, 0)
            y, x = self._moves[-1]
            self._moves.append((y + dy, x + dx))
        return self._moves[i]

    @staticmethod
    def shared(windows: list[ChunkWindow], i: int) -> tuple[int, int]:
        """The frames of chunks i - 1 and i (chunk-relative) at the middle of their overlap."""
        frame = windows[i].start + windows[i].overlap // 2
        return frame - windows[i - 1].start, frame - windows[i].start


def chunk_shift(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """How far `b` sits off `a`, the same frame of two overlapping chunks (`flow.offset`), when it is a chunk a
    little off its place: a shift above 2% of the width is two chunks that disagree on the picture, not on where it
    is, and (0, 0) is returned."""
    dy, dx = offset(a, b)
    return (dy, dx) if max(abs(dy), abs(dx)) <= max(2, a.shape[1] // 50) else (0, 0)


def blend_range(windows: list[ChunkWindow], chunk: ChunkFrames, kind: str, start: int, stop: int,
                moves: Callable[[int], tuple[int, int]] | None = None) -> Frames:
    """Frames ``[start, stop)`` of a shot, from its chunks, each overlap blended with a `kind` ramp.

    A frame inside the overlap of chunks i - 1 and i is their blend; any other frame is one chunk's own. Only the
    chunks over ``[start, stop)`` are asked for, each once, and only for the frames needed.

    Args:
        windows: the shot's chunk windows, in order (from `timing.chunk_windows`).
        chunk: returns frames ``[lo, hi)`` of chunk i (chunk-relative).
        kind: the ramp, see `timing.ramp`.
        moves: where chunk i's frames are moved, ``(dy, dx)`` (an `Alignment`); None: nowhere.
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
        if moves is not None and any(move := moves(w.index)):
            frames = np.stack([translate(frame, *move) for frame in frames])
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


def blend_chunks(windows: list[ChunkWindow], chunk: Callable[[int], np.ndarray], kind: str = "cosine",
                 align: str = "none") -> Frames:
    """A whole shot's frames from its chunks (`chunk(i)` returns all of chunk i's frames, the same each time),
    aligned by optical flow with ``align="flow"``."""
    moves = None
    if align == "flow":
        def shift(i: int) -> tuple[int, int]:
            a, b = Alignment.shared(windows, i)
            return chunk_shift(chunk(i - 1)[a], chunk(i)[b])

        moves = Alignment(windows, shift)
    total = windows[-1].end
    return blend_range(windows, lambda i, lo, hi: chunk(i)[lo:hi], kind, 0, total, moves)
