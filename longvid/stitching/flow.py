"""Optical flow (OpenCV DIS, fast preset): the `flow` interpolation backend, the flow-aligned blend of overlapping
chunks (`stitching.blend`, through `offset`) and the seam QA's warp error all rest on it.

A DIS instance is kept per thread: it holds buffers and is not safe to share, and segments encode on several
threads of one process.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence

import numpy as np

from longvid._imports import require

FEATURE = "optical flow (the `flow` interpolation backend, `align: flow` blends, seam warp errors)"
_local = threading.local()


def flow_missing() -> str | None:
    """Why optical flow cannot run here (what to install), or None when it can."""
    try:
        import cv2  # noqa: F401
    except ImportError:
        return "OpenCV is not installed: pip install 'longvid[rife]' (or opencv-python-headless)"
    return None


def optical_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The flow from RGB frame `a` to `b` (H x W x 2, in pixels): ``a(x) ~ b(x + flow(x))``.

    DIS normalises the mean of each patch, so a brightness or colour difference between the frames (a chunk's
    drift) barely bends the flow.
    """
    cv2 = require("cv2", extra="rife", feature=FEATURE)
    if getattr(_local, "dis", None) is None:
        _local.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    gray_a, gray_b = (cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in (a, b))
    return _local.dis.calc(gray_a, gray_b, None)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """`image` sampled at ``x + flow(x)`` (bilinear, edges repeated): `image` moved onto the frame the flow starts
    from. A zero flow returns `image` exactly."""
    cv2 = require("cv2", extra="rife", feature=FEATURE)
    where = _grid(*flow.shape[:2]) + flow
    return cv2.remap(image, where[..., 0], where[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def offset(a: np.ndarray, b: np.ndarray, width: int = 640) -> tuple[int, int]:
    """The whole-pixel ``(dy, dx)`` by which `b` sits off `a`, two frames of one moment (the same frame of two
    overlapping chunks): the median of the optical flow from `a` to `b`, measured at most `width` pixels wide.
    ``translate(b, dy, dx)`` puts `b` onto `a`.

    The median is the picture's shift as a whole: parts that differ (a hand a little further on in one chunk) do
    not move it, and whole pixels move a frame without resampling it, so its grain stays as sharp as its
    neighbours'.
    """
    cv2 = require("cv2", extra="rife", feature=FEATURE)
    scale = max(1.0, a.shape[1] / width)
    if scale > 1:
        size = (round(a.shape[1] / scale), round(a.shape[0] / scale))
        a, b = (cv2.resize(np.ascontiguousarray(f), size, interpolation=cv2.INTER_AREA) for f in (a, b))
    flow = optical_flow(a, b)
    return round(float(np.median(flow[..., 1])) * scale), round(float(np.median(flow[..., 0])) * scale)


def translate(frame: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """`frame` sampled at ``(y + dy, x + dx)``, its edges repeated beyond its border (`frame` itself for no move)."""
    if not dy and not dx:
        return frame
    cv2 = require("cv2", extra="rife", feature=FEATURE)
    padded = cv2.copyMakeBorder(np.ascontiguousarray(frame), max(0, -dy), max(0, dy), max(0, -dx), max(0, dx),
                                cv2.BORDER_REPLICATE)
    y, x = max(0, dy), max(0, dx)
    return padded[y:y + frame.shape[0], x:x + frame.shape[1]]


@functools.lru_cache(maxsize=4)
def _grid(height: int, width: int) -> np.ndarray:
    grid = np.dstack(np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)))
    grid.setflags(write=False)
    return grid


class FlowInterpolator:
    """Frames between `a` and `b` at `timesteps` in (0, 1): flow both ways, backward warps from the in-between
    frame, blended by where each input is visible (occlusion-aware).

    Two uses: frames between two frames of a shot (interpolation), and the flow-aligned blend, where `a` and `b`
    are the same moment in two overlapping chunks, a few pixels apart, and ``t`` is the blend's ramp: both are
    moved to a geometry ``t`` of the way from `a`'s to `b`'s before they are mixed, so they do not ghost, and the
    overlap ends on `b` exactly as it starts on `a`.
    """

    def __init__(self):
        self.cv2 = require("cv2", extra="rife", feature=FEATURE)

    def __call__(self, a: np.ndarray, b: np.ndarray, timesteps: Sequence[float]) -> list[np.ndarray]:
        f01, f10 = optical_flow(a, b), optical_flow(b, a)

        def visible(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
            # A pixel is occluded in the other frame when going there and back does not return it.
            back = warp(backward, forward)
            error = ((forward + back) ** 2).sum(axis=2)
            bound = 0.01 * ((forward**2).sum(axis=2) + (back**2).sum(axis=2)) + 0.5
            return self.cv2.GaussianBlur((error <= bound).astype(np.float32), (5, 5), 0) + 0.02

        vis0, vis1 = visible(f01, f10), visible(f10, f01)
        out = []
        for t in timesteps:
            # Flow from the in-between frame to each input, from the two flows (a linear-motion approximation).
            ft0 = -(1 - t) * t * f01 + t * t * f10
            ft1 = (1 - t) * (1 - t) * f01 - t * (1 - t) * f10
            w0 = (1 - t) * warp(vis0, ft0)
            w1 = t * warp(vis1, ft1)
            warped0, warped1 = warp(a, ft0).astype(np.float32), warp(b, ft1).astype(np.float32)
            blend = (w0[..., None] * warped0 + w1[..., None] * warped1) / (w0 + w1)[..., None]
            out.append(np.clip(np.rint(blend), 0, 255).astype(np.uint8))
        return out
