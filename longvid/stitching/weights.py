"""Blend ramps: the weight of the incoming source over an overlap, strictly between 0 and 1.

The outgoing source gets ``1 - w``, so every blended frame's weights sum to exactly one.
"""

from __future__ import annotations

import numpy as np

RAMPS = ("linear", "cosine", "pyramid")


def ramp(frames: int, kind: str = "cosine") -> np.ndarray:
    """Weights of the incoming source over `frames` overlapping frames.

    Samples sit at ``(j + 1) / (frames + 1)``, so neither source is ever dropped inside an overlap.

    Args:
        frames: length of the overlap.
        kind: ``linear``; ``cosine`` (eases in and out, so brightness changes have no kink at the ends); or
            ``pyramid``, the per-frame weights of AnimateDiff's context windows (each frame weighs its distance to
            the nearer end of its chunk), normalised over the two chunks. While an overlap is under half a chunk,
            as longvid requires, the pyramid's two slopes meet only at chunk ends, and it equals ``linear``.
    """
    x = np.arange(1, frames + 1, dtype=np.float64) / (frames + 1)
    if kind == "linear":
        return x
    if kind == "pyramid":
        incoming = np.arange(1, frames + 1, dtype=np.float64)  # distance from the incoming chunk's start
        return incoming / (incoming + incoming[::-1])
    if kind == "cosine":
        return 0.5 - 0.5 * np.cos(np.pi * x)
    raise ValueError(f"`kind` ({kind!r}) must be one of {', '.join(RAMPS)}")
