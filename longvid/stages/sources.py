"""A shot's frames as a stage reads them: blended from its chunks, or from its interpolation, any range of them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from longvid.stitching.blend import anchored, blend_range
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
        reference = inputs[shot.reference] if shot.reference else None
        whole = anchored(lambda i: inputs[shot.chunks[i]], shot.colour_anchor, reference)

        def chunk(i: int, lo: int, hi: int) -> np.ndarray:
            let_go_before(i)
            return whole(i)[lo:hi]
    else:
        def chunk(i: int, lo: int, hi: int) -> np.ndarray:
            let_go_before(i)
            return inputs.frames(shot.chunks[i], lo, hi)

    return blend_range(windows, chunk, shot.ramp, start, stop)


def shot_frames(source: ShotSource, inputs: Any, start: int, stop: int) -> Iterator[np.ndarray]:
    """Frames ``[start, stop)`` of a shot's rendered frames at the output rate."""
    if source.interpolated:
        return inputs.stream(source.interpolated, start, stop)
    return blended_frames(source.blended, inputs, start, stop)
