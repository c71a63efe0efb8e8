"""Frame interpolation: raise a shot's frame rate by resampling its base-rate frames at fractional positions.

Runs per shot, so it never blends across a cut. ``linear`` (a crossfade between neighbours) is the baseline.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np

from longvid import timing
from longvid.graph import Task
from longvid.stages.base import StageSpec
from longvid.stitching.blend import blend_chunks, mix


def resample(frames: Iterator[np.ndarray], output_frames: int, factor: float, between) -> Iterator[np.ndarray]:
    """Stream `output_frames` frames at ``factor`` times the rate of `frames`, holding two input frames at most.

    Args:
        frames: the base-rate frames, at least ``timing.base_frame_count(output_frames, factor)`` of them.
        output_frames: how many frames to produce.
        factor: output rate over input rate (2 doubles it; 1.5 turns 16 fps into 24).
        between: ``between(a, b, t)`` gives the frame at timestep t in (0, 1) from a towards b.
    """
    source = iter(frames)
    index, current, following = 0, next(source), None
    for i, t in timing.resample_positions(output_frames, factor):
        while index < i:
            current, following = (following if following is not None else next(source)), None
            index += 1
        if t == 0.0:
            yield current
            continue
        if following is None:
            following = next(source)
        yield between(current, following, t)


def shot_frames(task: Task, inputs: Mapping[str, np.ndarray]) -> Iterator[np.ndarray]:
    """A shot's base-rate frames, blended from its chunks (listed in the task's params), one chunk in memory."""
    p = task.params
    windows = [timing.ChunkWindow(i, *w) for i, w in enumerate(p["windows"])]

    def chunk(i: int) -> np.ndarray:
        if i and hasattr(inputs, "release"):
            inputs.release(p["chunks"][i - 1])
        return inputs[p["chunks"][i]]

    return blend_chunks(windows, chunk, p["ramp"])


class LinearInterpolate:
    """Crossfades neighbouring frames."""

    spec = StageSpec(name="interpolate.linear", kind="interpolate", code_version="1", inputs=("chunk",))

    def __call__(self, task: Task, inputs: Mapping[str, np.ndarray]) -> Iterator[np.ndarray]:
        p = task.params
        return resample(shot_frames(task, inputs), p["frames"], p["factor"], mix)
