"""Seam QA, measured on the output frames as they stream past (during a render, or from a finished video).

Per seam (where a chunk takes over from the one before it): the **seam score**, the mean absolute difference
between consecutive frames across the seam (every step of its blend, from the outgoing chunk alone to the incoming
one alone) divided by the median difference between consecutive frames inside the shot's chunks, so 1.0 means the
seam moves no more than the video does; and the **warp error**, the mean absolute error of warping one frame onto
the next with optical flow across the seam (OpenCV DIS, when OpenCV is installed), which tells motion from a jump. Per chunk: the **colour drift**, the CIE76 delta-E
between the chunk's mean Lab colour and its shot's anchor (the opening keyframe, else the shot's first frame).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from longvid.stitching.colour import LabStats, delta_e, rgb_to_lab


@dataclass
class ChunkSpan:
    """A chunk on the output timeline: its frames, and the pairs of frames across its seam (none for the first)."""

    index: int
    frames: range
    seam_pairs: range  # t in it means the pair (t - 1, t)


@dataclass
class ShotSpan:
    id: str
    frames: range  # on the output timeline
    chunks: list[ChunkSpan]
    anchor: LabStats | None = None


def chunk_spans(windows: Iterable[tuple[int, int, int]], render_start: int, factor: float, frames: range) -> list[ChunkSpan]:
    """Chunks on the output timeline from their base-rate ``(start, end, overlap)`` windows.

    A seam's pairs run from the last frame of the outgoing chunk alone to the first of the incoming one alone: one
    pair for a cut, ``overlap + 1`` across a blend (at the base rate; more after interpolation).
    """
    spans = []
    for i, (first, end, overlap) in enumerate(windows):
        own = range(max(frames.start, render_start + math.ceil(first * factor - 1e-9)),
                    min(frames.stop, render_start + math.floor((end - 1) * factor + 1e-9) + 1))
        pairs = range(0)
        if i:
            pairs = range(max(frames.start + 1, render_start + math.floor(first * factor + 1e-9)),
                          min(frames.stop, render_start + math.ceil((first + overlap) * factor - 1e-9) + 1))
        spans.append(ChunkSpan(i, own, pairs))
    return spans


def layout(manifest: Mapping) -> list[ShotSpan]:
    """Where every shot and chunk of a render lies on its output timeline, from its manifest."""
    shots = []
    for shot in manifest["shots"]:
        frames = range(*shot["frames"])
        windows = [(c["window"][0], c["window"][1], c["overlap"]) for c in shot["chunks"]]
        if len(shot["chunks"]) == 1 and shot["chunks"][0].get("windows"):  # latent-blend: chunks in one task
            windows = [(a, a + used, o) for a, _, used, o in shot["chunks"][0]["windows"]]
        shots.append(ShotSpan(shot["id"], frames, chunk_spans(windows, shot["rendered"][0], shot.get("factor", 1.0),
                                                              frames)))
    return shots


def _small(frame: np.ndarray, width: int = 320) -> np.ndarray:
    step = max(1, frame.shape[1] // width)
    return frame[::step, ::step]


def warp_error(a: np.ndarray, b: np.ndarray) -> float | None:
    """Mean absolute error (0-255) of `b` against `a` warped onto it by DIS optical flow; None without OpenCV."""
    try:
        import cv2
    except ImportError:
        return None
    a, b = _small(a), _small(b)
    ga, gb = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST).calc(gb, ga, None)
    h, w = gb.shape
    grid = np.stack(np.meshgrid(np.arange(w), np.arange(h)), axis=-1).astype(np.float32)
    warped = cv2.remap(a, grid + flow, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return float(np.abs(warped.astype(np.float32) - b.astype(np.float32)).mean())


@dataclass
class _ShotState:
    diffs: dict[int, float] = field(default_factory=dict)  # t -> mean |frame t - frame t-1|
    warps: dict[int, float | None] = field(default_factory=dict)
    lab_sums: dict[int, np.ndarray] = field(default_factory=dict)
    lab_counts: dict[int, int] = field(default_factory=dict)
    first: LabStats | None = None


class SeamMeter:
    """Feed it the output frames in order (`add`), then read `report()`."""

    def __init__(self, shots: list[ShotSpan], *, flow: bool = True):
        self.shots, self.flow = shots, flow
        self._state = [_ShotState() for _ in shots]
        self._index = 0
        self._previous: np.ndarray | None = None
        self._shot_of = {t: s for s, shot in enumerate(shots) for t in shot.frames}

    def add(self, frame: np.ndarray) -> None:
        t = self._index
        s = self._shot_of.get(t)
        if s is not None:
            shot, state = self.shots[s], self._state[s]
            lab = rgb_to_lab(_small(frame, 160)).reshape(-1, 3)
            if state.first is None:
                state.first = LabStats(lab.mean(axis=0), lab.std(axis=0))
            for c in shot.chunks:
                if t in c.frames:
                    state.lab_sums[c.index] = state.lab_sums.get(c.index, 0) + lab.mean(axis=0)
                    state.lab_counts[c.index] = state.lab_counts.get(c.index, 0) + 1
            if self._previous is not None and t - 1 in shot.frames:
                state.diffs[t] = float(np.abs(frame.astype(np.float32) - self._previous.astype(np.float32)).mean())
                if self.flow and any(t in c.seam_pairs for c in shot.chunks):
                    state.warps[t] = warp_error(self._previous, frame)
        self._previous = frame
        self._index += 1

    def report(self) -> dict:
        """``{"seams": [...], "chunks": [...], "summary": {...}}``, JSON-ready."""
        seams, drifts = [], []
        for shot, state in zip(self.shots, self._state, strict=True):
            seam_ts = {t for c in shot.chunks for t in c.seam_pairs}
            inside = [d for t, d in state.diffs.items() if t not in seam_ts]
            typical = float(np.median(inside)) if inside else None
            for c in shot.chunks[1:]:
                pairs = [t for t in c.seam_pairs if t in state.diffs]
                if not pairs:
                    continue
                across = float(np.mean([state.diffs[t] for t in pairs]))
                warps = [w for t in pairs if (w := state.warps.get(t)) is not None]
                seams.append({"shot": shot.id, "chunk": c.index, "frames": [pairs[0] - 1, pairs[-1]],
                              "difference": round(across, 3),
                              "score": round(across / max(typical, 1e-6), 3) if typical is not None else None,
                              "warp_error": round(float(np.mean(warps)), 3) if warps else None})
            anchor = shot.anchor or state.first
            for c in shot.chunks:
                if state.lab_counts.get(c.index) and anchor is not None:
                    mean = state.lab_sums[c.index] / state.lab_counts[c.index]
                    drifts.append({"shot": shot.id, "chunk": c.index,
                                   "colour_drift": round(delta_e(mean, anchor.mean), 3)})
        scores = [s["score"] for s in seams if s["score"] is not None]
        return {"seams": seams, "chunks": drifts, "summary": {
            "seams": len(seams),
            "mean_seam_score": round(float(np.mean(scores)), 3) if scores else None,
            "worst_seam_score": round(max(scores), 3) if scores else None,
            "mean_colour_drift": round(float(np.mean([d["colour_drift"] for d in drifts])), 3) if drifts else None}}


def measure(frames: Iterable[np.ndarray], shots: list[ShotSpan], *, flow: bool = True) -> dict:
    """QA of a whole frame sequence (see `SeamMeter`)."""
    meter = SeamMeter(shots, flow=flow)
    for frame in frames:
        meter.add(frame)
    return meter.report()
