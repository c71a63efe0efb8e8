"""A shot's frames as a stage reads them: blended from its chunks, or from its interpolation, any range of them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from longvid.stitching.blend import Alignment, blend_range, chunk_shift
from longvid.stitching.colour import LabStats, anchor_colours, at
from longvid.tasks import ShotFrames, ShotSource
from longvid.timing import ChunkWindow


def blended_frames(shot: ShotFrames, inputs: Any, start: int, stop: int) -> Iterator[np.ndarray]:
    """Frames ``[start, stop)`` of a shot at its base rate, blended from its chunks, colours anchored if asked.

    Chunks are asked for in order and let go once passed, so at most two are held at a time.
    """
    windows = [ChunkWindow(i, *w) for i, w in enumerate(shot.windows)]
    held: list[int] = []

    def let_go_before(i: int) -> None:
        for j in [j for j in held if j < i - 1]:
            inputs.release(shot.chunks[j])
            held.remove(j)
        held.append(i)

    if shot.colour_anchor:  # anchoring measures whole chunks, so whole chunks are read
        stats: dict[str, LabStats] = {}  # of each keyframe (or chunk 0), measured once

        def of(task: str) -> LabStats:
            if task not in stats:
                stats[task] = LabStats.of(inputs[task])
            return stats[task]

        def chunk(i: int, lo: int, hi: int) -> np.ndarray:
            let_go_before(i)
            target = at([(f, of(k)) for k, f in shot.colour_keyframes(i)], shot.kept(i)) if shot.keyframes else \
                of(shot.chunks[0])
            return anchor_colours(inputs[shot.chunks[i]], target, shot.colour_anchor)[lo:hi]
    else:
        def chunk(i: int, lo: int, hi: int) -> np.ndarray:
            let_go_before(i)
            return inputs.frames(shot.chunks[i], lo, hi)

    moves = None
    if shot.align == "flow":
        def shift(j: int) -> tuple[int, int]:
            a, b = Alignment.shared(windows, j)
            before, after = shot.chunks[j - 1], shot.chunks[j]

            def measure() -> tuple[int, int]:  # one frame of each, read alone: the chunks may be long gone
                return chunk_shift(next(iter(inputs.stream(before, a, a + 1))), next(iter(inputs.stream(after, b, b + 1))))

            if hasattr(inputs, "derived"):  # every segment of the shot adds up the same shifts: measured once
                return inputs.derived(after, ("chunk shift", inputs.content_key(before), a, b), measure)
            return measure()

        moves = Alignment(windows, shift)
    return blend_range(windows, chunk, shot.ramp, start, stop, moves)


def shot_frames(source: ShotSource, inputs: Any, start: int, stop: int) -> Iterator[np.ndarray]:
    """Frames ``[start, stop)`` of a shot's rendered frames at the output rate."""
    if source.interpolated:
        return inputs.stream(source.interpolated, start, stop)
    return blended_frames(source.blended, inputs, start, stop)
