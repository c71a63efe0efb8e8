"""Streaming assembly: overlapping chunks into shots, shots and crossfades into the timeline.

Everything here is a generator over frames. At most two chunks of one shot, and two shots at a crossfade, are
alive at once, so memory does not grow with the length of the video.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from longvid.stitching.colour import LabStats, anchor_colours
from longvid.stitching.weights import ramp
from longvid.timing import ChunkWindow, Segment

Frames = Iterator[np.ndarray]


def mix(a: np.ndarray, b: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * a + weight * b``, rounded back to uint8."""
    out = a.astype(np.float32) * np.float32(1 - weight)
    out += b.astype(np.float32) * np.float32(weight)
    return np.rint(out, out=out).clip(0, 255).astype(np.uint8)


def blend_chunks(windows: list[ChunkWindow], chunk: Callable[[int], np.ndarray], kind: str = "cosine") -> Frames:
    """A shot's frames from its chunks, blending each overlap with a `kind` ramp.

    Args:
        windows: the shot's chunk windows, in order (from `timing.chunk_windows`).
        chunk: returns chunk `i`'s frames (at least ``windows[i].used`` of them); called once per chunk, in order.
        kind: the ramp, see `weights.ramp`.
    """
    carried: np.ndarray | None = None  # the previous chunk's frames inside the coming overlap
    for w in windows:
        frames = chunk(w.index)
        if len(frames) < w.used:
            raise ValueError(f"chunk {w.index} returned {len(frames)} frames, the window needs {w.used}")
        if w.overlap:
            for j, weight in enumerate(ramp(w.overlap, kind)):
                yield mix(carried[j], frames[j], weight)
        next_overlap = windows[w.index + 1].overlap if w.index + 1 < len(windows) else 0
        yield from frames[w.overlap : w.used - next_overlap]
        # A copy, not a view: a view would keep the whole chunk alive while the next one is generated.
        carried = frames[w.used - next_overlap : w.used].copy() if next_overlap else None
        del frames


def anchored(chunk: Callable[[int], np.ndarray], strength: float, reference: np.ndarray | None) -> Callable[[int], np.ndarray]:
    """`chunk` with every chunk's colours anchored to `reference` (an image; None: the shot's first chunk)."""
    if not strength:
        return chunk
    target = [LabStats.of(reference) if reference is not None else None]

    def load(i: int) -> np.ndarray:
        frames = chunk(i)
        if target[0] is None:
            target[0] = LabStats.of(frames)
        return anchor_colours(frames, target[0], strength)

    return load


def stitch_timeline(segments: list[Segment], shot: Callable[[int], Frames], kind: str = "linear") -> Frames:
    """The output timeline from shot streams: solo runs as they are, crossfades blended.

    Args:
        segments: from `timing.timeline_segments`, in order.
        shot: opens shot `i`'s stream of rendered frames (handles included); called once per shot.
        kind: the crossfade ramp.
    """
    streams: dict[int, Frames] = {}
    taken: dict[int, int] = {}

    def take(i: int, offset: int) -> Frames:
        if i not in streams:
            streams[i], taken[i] = shot(i), 0
        if taken[i] != offset:
            raise AssertionError(f"shot {i}: segment wants frame {offset}, stream is at {taken[i]}")
        return streams[i]

    for seg in segments:
        for i in [i for i in streams if i < seg.a]:
            streams.pop(i).close()  # that shot is finished: free its buffers before the next one renders
        a = take(seg.a, seg.a_offset)
        if seg.b is None:
            for _ in range(seg.frames):
                yield next(a)
        else:
            b = take(seg.b, seg.b_offset)
            for weight in ramp(seg.frames, kind):
                yield mix(next(a), next(b), weight)
            taken[seg.b] += seg.frames
        taken[seg.a] += seg.frames
