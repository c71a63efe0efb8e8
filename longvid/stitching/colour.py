"""Colour in CIE Lab (D65) without OpenCV, and colour anchoring: match a chunk's Lab statistics to a reference.

Generators drift in brightness and colour chunk after chunk; anchoring every chunk of a shot to its keyframes (mean
and standard deviation per Lab channel, moved part of the way by `strength`) holds the shot's look. A chunk between
two keyframes is anchored to their statistics interpolated at its position (`at`): a shot that moves on purpose from
one look to another is followed, not pulled back to its opening.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from longvid.timing import between

_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]], dtype=np.float32)
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ).astype(np.float32)
_WHITE = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
_EPS, _KAPPA = 216 / 24389, 24389 / 27
MAX_CONTRAST = 1.5  # anchoring scales a chunk's spread by at most this, or its inverse


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 (or 0-255 float) sRGB, any leading shape, to float32 Lab (L in 0-100)."""
    c = np.asarray(rgb, dtype=np.float32) / 255
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _WHITE
    f = np.where(xyz > _EPS, np.cbrt(xyz), (_KAPPA * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """float Lab to uint8 sRGB (out-of-gamut colours clipped)."""
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], axis=-1)
    xyz = np.where(f ** 3 > _EPS, f ** 3, (116 * f - 16) / _KAPPA) * _WHITE
    linear = np.clip(xyz @ _XYZ_TO_RGB.T, 0, 1)
    c = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.clip(np.rint(c * 255), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class LabStats:
    mean: np.ndarray  # (3,)
    std: np.ndarray  # (3,): the spread within a frame, pooled over the frames

    @classmethod
    def of(cls, frames: np.ndarray) -> LabStats:
        """The statistics of an image or of a stack of frames, from a grid of about 256 pixels across.

        The spread is within each frame, not over the whole stack: a chunk that moves from one look to another
        has a wide spread over time, and matching that to a keyframe's would flatten its every frame.
        """
        frames = np.asarray(frames)
        step = max(1, frames.shape[-2] // 256)
        sample = frames[..., ::step, ::step, :]
        lab = rgb_to_lab(sample).reshape(-1, sample.shape[-3] * sample.shape[-2], 3)
        return cls(lab.mean(axis=(0, 1)), np.sqrt(lab.var(axis=1).mean(axis=0)))


def at(keyframes: list[tuple[float, LabStats]], frames: Iterable[float]) -> LabStats:
    """The statistics a run of frames should have: at each frame, linear between the ``(position, stats)``
    keyframes around it (held beyond the first and the last), averaged over the frames, as a chunk's own statistics
    are. A chunk that reaches a keyframe halfway through is still partly on its way there."""
    positions, weights, count = [p for p, _ in keyframes], np.zeros(len(keyframes)), 0
    for frame in frames:
        for i, w in between(positions, frame):
            weights[i] += w
        count += 1
    weights /= max(count, 1)
    return LabStats(sum(w * s.mean for w, (_, s) in zip(weights, keyframes, strict=True)),
                    sum(w * s.std for w, (_, s) in zip(weights, keyframes, strict=True)))


def delta_e(a: np.ndarray, b: np.ndarray) -> float:
    """CIE76 colour difference between two Lab colours."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def anchor_colours(frames: np.ndarray, reference: LabStats, strength: float = 1.0) -> np.ndarray:
    """`frames` with their Lab mean and standard deviation moved `strength` of the way to `reference`'s (the
    spread scaled by at most `MAX_CONTRAST`)."""
    if strength <= 0:
        return frames
    own = LabStats.of(frames)
    # a generator drifts in contrast by tens of percent; a spread further from the reference's is the picture's
    # own (a title, a shot that moves to another look), and matching it would flatten or harshen every frame
    ratio = np.clip(reference.std / np.maximum(own.std, 1e-3), 1 / MAX_CONTRAST, MAX_CONTRAST)
    scale = 1 + strength * (ratio - 1)
    shift = own.mean + strength * (reference.mean - own.mean)
    out = np.empty_like(frames)
    for i, frame in enumerate(frames.reshape(-1, *frames.shape[-3:])):  # a frame at a time: Lab is float32
        out.reshape(-1, *frames.shape[-3:])[i] = lab_to_rgb((rgb_to_lab(frame) - own.mean) * scale + shift)
    return out
