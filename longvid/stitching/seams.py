"""Seam QA: measured on the output frames as they are encoded (segment by segment), or from a finished video.

Measured on each shot's own frames, before transitions: where a crossfade mixes two shots, each shot's side of it
is measured on that shot's frames alone, so a crossfade is never scored as a seam.

Per seam (where a chunk takes over from the one before it): the **seam score**, the mean absolute difference
between consecutive frames across the seam (every step of its blend, from the outgoing chunk alone to the incoming
one alone) divided by the motion around it: the median difference between consecutive frames over the pairs next
to the seam (as many as the seam has, at least `NEIGHBOURS`, on each side), never less than `MOTION_FLOOR`. 1.0
means the seam moves no more than the video around it does; a shot that dissolves slowly from one keyframe to
another is motion, and a near-still shot is measured against the floor, not against its noise. And the **warp
error**, the mean absolute error of warping one frame onto the next with optical flow across the seam (OpenCV DIS,
when OpenCV is installed; on the first, middle and last pairs of the seam during a render), which tells motion
from a jump.
Per chunk: the **colour drift**, the CIE76 delta-E between the chunk's mean Lab colour and its shot's keyframes
interpolated over the chunk's frames (`colour.at`), the keyframes the chunk moves between; the shot's first frame
for a shot without keyframes.

Two halves: a `FrameMeter` turns a run of frames into per-pair and per-frame measures (small: a few numbers a
frame, kept in each encode segment's cache record); a `SeamReport` turns the measures of the whole timeline into
the report, shot by shot, holding one shot's numbers at a time. Differences and warp errors are taken on a sample
about 160 pixels wide, colours on one about 80 wide: the same scores (ratios of differences) at a fraction of the
cost of full frames.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from longvid.errors import MissingDependencyError
from longvid.stitching.colour import LabStats, at, delta_e, rgb_to_lab
from longvid.stitching.flow import flow_missing, optical_flow, warp
from longvid.timing import ChunkSpan, chunk_spans

__all__ = ["ChunkSpan", "FrameMeter", "SeamReport", "ShotSpan", "chunk_spans", "layout", "measure", "warp_error"]

# The mean absolute difference between consecutive frames (0-255) that counts as motion at least: a level of change
# across a frame is invisible, and without a floor a still shot's seams are scored against its noise.
MOTION_FLOOR = 1.0
NEIGHBOURS = 8  # pairs on each side of a seam, at least, whose motion is its baseline


@dataclass
class ShotSpan:
    """A shot on the output timeline, with its chunks, its keyframes' colours as ``(output frame, stats)`` (none:
    the colour drift is measured against its first frame), and the frames a crossfade mixes with a neighbour in a
    finished video, which are not measured (a render measures each shot's own frames there)."""

    id: str
    frames: range
    chunks: list[ChunkSpan]
    anchors: list[tuple[float, LabStats]] = field(default_factory=list)
    mixed: list[range] = field(default_factory=list)


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
    entries = manifest["shots"]
    for n in range(1, len(shots)):  # a crossfade: from the incoming shot's head handle to the outgoing one's tail
        crossfade = range(entries[n]["rendered"][0], entries[n - 1]["rendered"][1])
        if crossfade:
            shots[n - 1].mixed.append(crossfade)
            shots[n].mixed.append(crossfade)
    return shots


def _small(frame: np.ndarray, width: int = 160) -> np.ndarray:
    step = max(1, frame.shape[1] // width)
    return frame[::step, ::step]


def warp_error(a: np.ndarray, b: np.ndarray) -> float | None:
    """Mean absolute error (0-255) of `b` against `a` warped onto it by DIS optical flow; None without OpenCV."""
    a, b = np.ascontiguousarray(_small(a)), np.ascontiguousarray(_small(b))
    try:
        warped = warp(a, optical_flow(b, a))
    except MissingDependencyError:
        return None
    return float(np.abs(warped.astype(np.float32) - b.astype(np.float32)).mean())


class FrameMeter:
    """Measures a run of frames fed in order.

    Args:
        shots: runs of ``(shot id, frames)`` covering the run: pairs are measured only inside one shot.
        seams: positions t whose pair ``(t - 1, t)`` crosses a seam: their warp error is measured too.
        lead: frames at the start that belong to a neighbour (measured as pairs, but their colour is not).
        flow: measure warp errors (needs OpenCV).

    `measures()` gives positions relative to the first frame after the lead: the pair ``(t - 1, t)`` under
    ``t``, so a lead frame's pair with the first frame is ``0``.
    """

    def __init__(self, shots: Iterable[tuple[str, int]], seams: Iterable[int] = (), *, lead: int = 0, flow: bool = True):
        self.owner = [sid for sid, count in shots for _ in range(count)]
        self.seams, self.lead, self.flow = set(seams), lead, flow
        self.diffs: list[list[float]] = []
        self.warps: list[list[float]] = []
        self.labs: list[list[float]] = []
        self._previous: np.ndarray | None = None
        self._index = 0

    def add(self, frame: np.ndarray | Mapping[str, np.ndarray]) -> None:
        """The next frame; or, where a transition mixes shots, each shot's own frame by shot id, of which the
        meter measures the one of the shot this position belongs to."""
        j = self._index
        if isinstance(frame, Mapping):
            frame = frame[self.owner[j]] if j < len(self.owner) and self.owner[j] in frame else next(iter(frame.values()))
        small = _small(frame)
        if self._previous is not None and j < len(self.owner) and self.owner[j] == self.owner[j - 1]:
            diff = np.abs(small.astype(np.int16) - self._previous).mean()
            self.diffs.append([j - self.lead, round(float(diff), 5)])
            if self.flow and j in self.seams and (warp := warp_error(self._previous, small)) is not None:
                self.warps.append([j - self.lead, round(warp, 5)])
        if j >= self.lead:
            self.labs.append([round(float(v), 4) for v in rgb_to_lab(_small(frame, 80)).reshape(-1, 3).mean(axis=0)])
        self._previous = small
        self._index += 1

    def measures(self) -> dict:
        """JSON-ready: ``diffs`` and ``warps`` as ``[t, value]`` pairs, ``labs`` one Lab mean per frame."""
        return {"diffs": self.diffs, "warps": self.warps, "labs": self.labs}


@dataclass
class _ShotState:
    diffs: dict[int, float] = field(default_factory=dict)
    warps: dict[int, float] = field(default_factory=dict)
    lab_sums: dict[int, np.ndarray] = field(default_factory=dict)
    lab_counts: dict[int, int] = field(default_factory=dict)
    first: np.ndarray | None = None


MEASURED_ON = {"frames": "the rendered frames, before H.264 encoding", "video": "the encoded video, as decoded"}


class SeamReport:
    """Feed it the measures of the timeline in order (`add`), then read `report()`; a shot's numbers are let go
    once it is reported, so memory stays flat in the length of the video."""

    def __init__(self, shots: list[ShotSpan], measured_on: str = "video"):
        self.shots, self.measured_on = shots, measured_on
        self._starts = [s.frames.start for s in shots]
        self._states: dict[int, _ShotState] = {}
        self._done = 0  # shots before this one are reported
        self.seams: list[dict] = []
        self.drifts: list[dict] = []

    def _shot(self, t: int) -> int | None:
        i = bisect_right(self._starts, t) - 1
        return i if i >= 0 and t in self.shots[i].frames else None

    def add(self, start: int, measures: Mapping) -> None:
        """The measures of frames from output frame `start` on (positions as `FrameMeter.measures` gives them)."""
        while self._done < len(self.shots) and self.shots[self._done].frames.stop <= start:
            self._finish(self._done)
        for key, values in (("diffs", measures["diffs"]), ("warps", measures["warps"])):
            for t, value in values:
                s = self._shot(start + t)
                if s is not None and not self._mixed(s, start + t - 1, start + t):
                    getattr(self._states.setdefault(s, _ShotState()), key)[start + t] = value
        for j, lab in enumerate(measures["labs"]):
            t = start + j
            s = self._shot(t)
            if s is None or self._mixed(s, t):
                continue
            state, lab = self._states.setdefault(s, _ShotState()), np.asarray(lab, dtype=np.float64)
            if state.first is None:
                state.first = lab
            for c in self.shots[s].chunks:
                if t in c.frames:
                    state.lab_sums[c.index] = state.lab_sums.get(c.index, 0) + lab
                    state.lab_counts[c.index] = state.lab_counts.get(c.index, 0) + 1

    def _mixed(self, s: int, *frames: int) -> bool:
        return any(t in r for r in self.shots[s].mixed for t in frames)

    def _finish(self, s: int) -> None:
        shot, state = self.shots[s], self._states.pop(s, _ShotState())
        self._done = s + 1
        seam_ts = {t for c in shot.chunks for t in c.seam_pairs}
        inside = sorted(t for t in state.diffs if t not in seam_ts)
        for c in shot.chunks[1:]:
            pairs = [t for t in c.seam_pairs if t in state.diffs]
            if not pairs:
                continue
            across = float(np.mean([state.diffs[t] for t in pairs]))
            warps = [state.warps[t] for t in pairs if t in state.warps]
            n = max(NEIGHBOURS, len(pairs))
            around = inside[max(0, bisect_right(inside, pairs[0]) - n):bisect_right(inside, pairs[0])] + \
                inside[bisect_right(inside, pairs[-1]):][:n]
            motion = max(float(np.median([state.diffs[t] for t in around])), MOTION_FLOOR) if around else None
            self.seams.append({"shot": shot.id, "chunk": c.index, "frames": [pairs[0] - 1, pairs[-1]],
                               "difference": round(across, 3),
                               "score": round(across / motion, 3) if motion is not None else None,
                               "warp_error": round(float(np.mean(warps)), 3) if warps else None})
        for c in shot.chunks:
            if not state.lab_counts.get(c.index):
                continue
            anchor = at(shot.anchors, c.frames).mean if shot.anchors else state.first
            if anchor is not None:
                mean = state.lab_sums[c.index] / state.lab_counts[c.index]
                self.drifts.append({"shot": shot.id, "chunk": c.index, "colour_drift": round(delta_e(mean, anchor), 3)})

    def report(self) -> dict:
        """``{"seams": [...], "chunks": [...], "summary": {...}}``, JSON-ready."""
        while self._done < len(self.shots):
            self._finish(self._done)
        scores = [s["score"] for s in self.seams if s["score"] is not None]
        drifts = [d["colour_drift"] for d in self.drifts]
        unmeasured = [s for s in self.seams if s["warp_error"] is None]
        return {"seams": self.seams, "chunks": self.drifts, "summary": {
            "seams": len(self.seams),
            "mean_seam_score": round(float(np.mean(scores)), 3) if scores else None,
            "worst_seam_score": round(max(scores), 3) if scores else None,
            "mean_colour_drift": round(float(np.mean(drifts)), 3) if drifts else None,
            # the render scores its frames before they are encoded, `longvid qa` the encoded video: they differ
            # by what H.264 did to the seams (scores are ratios of frame differences, so compression moves them)
            "measured_on": MEASURED_ON[self.measured_on],
            "warp_error_not_measured": (flow_missing() or "no optical flow was measured") if unmeasured else None}}


def measure(frames: Iterable[np.ndarray], shots: list[ShotSpan], *, flow: bool = True) -> dict:
    """QA of a whole frame sequence that starts at output frame 0 (see `FrameMeter` and `SeamReport`)."""
    end = max((s.frames.stop for s in shots), default=0)
    owner: list[tuple[str, int]] = []
    t = 0
    for shot in sorted(shots, key=lambda s: s.frames.start):
        if shot.frames.start > t:
            owner.append(("", shot.frames.start - t))
        owner.append((shot.id, len(shot.frames)))
        t = shot.frames.stop
    seams = {t for s in shots for c in s.chunks for t in c.seam_pairs}
    meter = FrameMeter(owner, seams, flow=flow)
    for i, frame in enumerate(frames):
        if i < end:
            meter.add(frame)
    report = SeamReport(shots)
    report.add(0, meter.measures())
    return report.report()
