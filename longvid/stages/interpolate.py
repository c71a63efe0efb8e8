"""Frame interpolation: raise a shot's frame rate by making frames at fractional positions between its frames.

An interpolator takes two frames and timesteps in (0, 1) and returns one frame per timestep (batched, so a flow
is estimated once per pair). Backends:

* ``rife``: RIFE 4.0 in PyTorch (`longvid.stages.rife`), weights from ``longvid models fetch rife-4.0``;
* ``rife-ncnn``: rife-ncnn-vulkan-python with a RIFE ncnn model folder the user supplies (GPU through Vulkan, or
  the CPU);
* ``flow``: OpenCV DIS optical flow (fast preset) both ways, backward warping and an occlusion-aware blend
  (`stitching.flow`, which the flow-aligned blend of overlapping chunks also uses);
* ``linear``: a crossfade, the baseline.

It runs per shot, so it never blends across a cut; inside a shot a scene-change guard repeats the nearer frame
instead of blending two unrelated ones. Any ratio works: 16 -> 24 fps uses timesteps 1/3 and 2/3.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

import longvid.timing as timing
from longvid._imports import require
from longvid.stages.base import StageSpec
from longvid.stages.sources import blended_frames
from longvid.stitching.blend import mix
from longvid.stitching.flow import FlowInterpolator
from longvid.tasks import InterpolateParams, Task

Interpolator = Callable[[np.ndarray, np.ndarray, Sequence[float]], list[np.ndarray]]
# Colour-histogram distance (0 = same colours, 2 = disjoint) above which two frames are unrelated. On the clips in
# ../shared/data/clips, frames two apart inside a clip reach 0.34 (handheld, fast motion) while different clips
# start at 0.34 (two scenes of one room) and mostly lie above 0.5; see docs/benchmarks.md.
SCENE_THRESHOLD = 0.4


def scene_change(a: np.ndarray, b: np.ndarray, threshold: float = SCENE_THRESHOLD) -> bool:
    """Whether `a` and `b` show different scenes (a cut inside a clip).

    Compares colour histograms (16 bins a channel, on a 128 x 72 sample): unlike pixel differences they barely
    move when the camera or the subject moves, and change at a cut.
    """

    def histogram(frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        sample = frame[np.ix_(np.linspace(0, h - 1, 72).astype(int), np.linspace(0, w - 1, 128).astype(int))]
        counts = [np.bincount(sample[..., c].ravel() >> 4, minlength=16) for c in range(3)]
        return np.concatenate(counts) / (72 * 128)

    return float(np.abs(histogram(a) - histogram(b)).sum() / 3) > threshold


def resample(frames: Iterator[np.ndarray], output_frames: int, factor: float, between: Interpolator,
             scene_threshold: float | None = SCENE_THRESHOLD) -> Iterator[np.ndarray]:
    """Stream `output_frames` frames at ``factor`` times the rate of `frames`, holding two input frames at most.

    Args:
        frames: the input frames, at least ``timing.base_frame_count(output_frames, factor)`` of them.
        factor: output rate over input rate (2 doubles it; 1.5 turns 16 fps into 24).
        between: the interpolator.
        scene_threshold: above this colour-histogram distance a pair is not blended (None: always blend).
    """
    positions = timing.resample_positions(output_frames, factor)
    source = iter(frames)
    index, current, following = 0, next(source), None
    j = 0
    while j < len(positions):
        i = positions[j][0]
        while index < i:
            current, following = (following if following is not None else next(source)), None
            index += 1
        group = []
        while j < len(positions) and positions[j][0] == i:
            group.append(positions[j][1])
            j += 1
        steps = [t for t in group if t > 0]
        made: list[np.ndarray] = []
        if steps:
            if following is None:
                following = next(source)
            if scene_threshold is not None and scene_change(current, following, scene_threshold):
                made = [current if t < 0.5 else following for t in steps]
            else:
                made = between(current, following, steps)
        made_iter = iter(made)
        for t in group:
            yield current if t == 0 else next(made_iter)


# ---------------------------------------------------------------------------------------------------- backends


def linear(a: np.ndarray, b: np.ndarray, timesteps: Sequence[float]) -> list[np.ndarray]:
    """A crossfade."""
    return [mix(a, b, t) for t in timesteps]


class NcnnInterpolator:
    """rife-ncnn-vulkan-python with a RIFE ncnn model folder (``flownet.param`` and ``flownet.bin``).

    The folder's name says the RIFE version to the binding (``rife-v4...`` for arbitrary timesteps).
    """

    def __init__(self, model: str, gpu: int = -1, threads: int = 2):
        binding = require("rife_ncnn_vulkan_python", extra="rife", feature="the `rife-ncnn` interpolation backend")
        self.rife = binding.Rife(gpuid=gpu, model=str(model), num_threads=threads)

    def __call__(self, a: np.ndarray, b: np.ndarray, timesteps: Sequence[float]) -> list[np.ndarray]:
        return [np.array(self.rife.process_cv2(np.ascontiguousarray(a), np.ascontiguousarray(b), float(t)))
                for t in timesteps]


@functools.lru_cache(maxsize=4)
def make_interpolator(backend: str, model: str | None = None) -> Interpolator:
    """The interpolator for a backend (kept, so a worker loads a model once)."""
    if backend == "linear":
        return linear
    if backend == "flow":
        return FlowInterpolator()
    if backend == "rife":
        require("torch", extra="diffusers", feature="the `rife` interpolation backend")
        import longvid.models as models
        from longvid.stages.rife import RifeInterpolator

        weights = Path(model) if model and Path(model).is_file() else models.installed(model or "rife-4.0")
        if weights is None:
            raise FileNotFoundError(f"RIFE weights {model or 'rife-4.0'} are not installed: "
                                    f"run `longvid models fetch {model or 'rife-4.0'}`")
        return RifeInterpolator(weights)
    if backend == "rife-ncnn":
        if not model:
            raise ValueError("the rife-ncnn backend needs `model`: a RIFE ncnn model folder")
        # Vulkan GPU 0 on a GPU worker, the CPU otherwise; LONGVID_NCNN_GPU picks another (-1: the CPU).
        default = "0" if os.environ.get("LONGVID_DEVICE") == "cuda" else "-1"
        return NcnnInterpolator(model, gpu=int(os.environ.get("LONGVID_NCNN_GPU", default)))
    raise ValueError(f"unknown interpolation backend {backend!r}")


# ---------------------------------------------------------------------------------------------------- the stage


class Interpolate:
    """A shot's chunks, blended, then interpolated up to the output rate with the task's backend."""

    spec = StageSpec(name="interpolate", kind="interpolate", code_version="5", params=InterpolateParams,
                     inputs=("chunk", "decode", "refine", "keyframe"), resources={"gpus": 1})

    def __call__(self, task: Task, inputs: Mapping[str, np.ndarray]) -> Iterator[np.ndarray]:
        p: InterpolateParams = task.params
        between = make_interpolator(p.backend, p.model)
        frames = blended_frames(p.source, inputs, 0, p.base_frames)
        return resample(frames, p.frames, p.factor, between, p.scene_threshold)
