"""Colour in CIE Lab (D65) without OpenCV, and colour anchoring: match a chunk's Lab statistics to a reference.

Generators drift in brightness and colour chunk after chunk; anchoring every chunk of a shot to the shot's keyframe
(mean and standard deviation per Lab channel, moved part of the way by `strength`) holds the shot's look.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]], dtype=np.float32)
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ).astype(np.float32)
_WHITE = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
_EPS, _KAPPA = 216 / 24389, 24389 / 27


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
    std: np.ndarray  # (3,)

    @classmethod
    def of(cls, frames: np.ndarray) -> LabStats:
        """The statistics of an image or of a stack of frames, from a grid of about 256 pixels across."""
        frames = np.asarray(frames)
        step = max(1, frames.shape[-2] // 256)
        lab = rgb_to_lab(frames[..., ::step, ::step, :]).reshape(-1, 3)
        return cls(lab.mean(axis=0), lab.std(axis=0))


def delta_e(a: np.ndarray, b: np.ndarray) -> float:
    """CIE76 colour difference between two Lab colours."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def anchor_colours(frames: np.ndarray, reference: LabStats, strength: float = 1.0) -> np.ndarray:
    """`frames` with their Lab mean and standard deviation moved `strength` of the way to `reference`'s."""
    if strength <= 0:
        return frames
    own = LabStats.of(frames)
    scale = 1 + strength * (reference.std / np.maximum(own.std, 1e-3) - 1)
    shift = own.mean + strength * (reference.mean - own.mean)
    out = np.empty_like(frames)
    for i, frame in enumerate(frames.reshape(-1, *frames.shape[-3:])):  # a frame at a time: Lab is float32
        out.reshape(-1, *frames.shape[-3:])[i] = lab_to_rgb((rgb_to_lab(frame) - own.mean) * scale + shift)
    return out
