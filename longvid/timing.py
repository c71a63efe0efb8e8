"""Seconds and frames: cut points, crossfade handles, chunk windows, legal frame counts, frame-rate ratios.

The rules (docs/architecture.md, "Time"):

* A cut falls at ``round(t * fps)`` of cumulative shot time, so the output has exactly
  ``round(total_duration * fps)`` frames. Rounding is half-up, the same on every platform.
* A crossfade of ``d`` seconds is centred on its cut: ``L = round(d * fps)`` output frames, ``L // 2`` before the
  cut and the rest after. The outgoing shot is rendered ``L - L // 2`` frames past its end (its *tail* handle), the
  incoming one ``L // 2`` frames before its start (its *head* handle), so the total duration never changes.
* A shot is generated at the base rate ``fps / factor`` in chunks of a legal length that overlap by a fixed number
  of frames; the chunk after the last full one is shortened to the smallest legal length that reaches the end.

Pure Python: no numpy, no I/O, so the planner and the validator can use it on any machine.
"""

from __future__ import annotations

import itertools
import math
import re
from bisect import bisect_right
from dataclasses import dataclass
from fractions import Fraction


def seconds_to_frames(seconds: float, fps: float) -> int:
    """``round(seconds * fps)``, half-up; the epsilon absorbs float error such as ``0.1 * 3 * 10 = 2.9999``."""
    return math.floor(seconds * fps + 0.5 + 1e-9)


def frames_to_timecode(frame: int, fps: float) -> str:
    """``HH:MM:SS:FF`` for display (frames counted at the nearest integer rate)."""
    rate = max(1, round(fps))
    ff = frame % rate
    s = frame // rate
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}:{ff:02d}"


# --------------------------------------------------------------------------------------------------------------
# Legal frame counts


@dataclass(frozen=True)
class FrameRule:
    """The frame counts a video model can generate: ``step * k + offset`` (k >= 0), or a fixed set.

    Examples: Wan ``4k+1``, CogVideoX and LTX ``8k+1``, SVD ``14,25``, AnimateDiff ``16``, anything ``any``.
    """

    step: int = 1
    offset: int = 0
    fixed: tuple[int, ...] = ()

    @classmethod
    def parse(cls, text: str) -> FrameRule:
        """Parse ``"4k+1"``, ``"8k+1"``, ``"14,25"``, ``"16"`` or ``"any"``."""
        text = text.replace(" ", "").lower()
        if text == "any":
            return cls()
        match = re.fullmatch(r"(\d+)k(?:\+(\d+))?", text)
        if match:
            return cls(step=int(match[1]), offset=int(match[2] or 0))
        if re.fullmatch(r"\d+(,\d+)*", text):
            return cls(fixed=tuple(sorted({int(n) for n in text.split(",")})))
        raise ValueError(f"frame rule {text!r} is not of the form '4k+1', '14,25' or 'any'")

    def __str__(self) -> str:
        if self.fixed:
            return ",".join(map(str, self.fixed))
        if self.step == 1:
            return "any"
        return f"{self.step}k+{self.offset}" if self.offset else f"{self.step}k"

    def is_legal(self, n: int) -> bool:
        if self.fixed:
            return n in self.fixed
        return n >= max(1, self.offset) and (n - self.offset) % self.step == 0

    def at_least(self, n: int) -> int:
        """The smallest legal count >= n; for a fixed set, the largest one when n exceeds them all."""
        if self.fixed:
            return next((f for f in self.fixed if f >= n), self.fixed[-1])
        n = max(n, 1, self.offset)
        return n + (-(n - self.offset)) % self.step


# --------------------------------------------------------------------------------------------------------------
# Shots on the output timeline


@dataclass(frozen=True)
class ShotTiming:
    """Where one shot sits on the output timeline, in output frames.

    Args:
        index: the shot's position in the storyboard.
        start: its first frame (the cut point before it).
        end: one past its last frame (the cut point after it).
        head: handle frames rendered before `start` for a crossfade in.
        tail: handle frames rendered after `end` for a crossfade out.
    """

    index: int
    start: int
    end: int
    head: int = 0
    tail: int = 0

    @property
    def frames(self) -> int:
        return self.end - self.start

    @property
    def render_start(self) -> int:
        return self.start - self.head

    @property
    def render_end(self) -> int:
        return self.end + self.tail

    @property
    def rendered(self) -> int:
        """How many output frames the shot renders, handles included."""
        return self.render_end - self.render_start


def crossfade_split(seconds: float, fps: float) -> tuple[int, int]:
    """Frames of a crossfade before and after its cut."""
    total = seconds_to_frames(seconds, fps)
    return total // 2, total - total // 2


# The longest storyboard longvid plans: 432,000 output frames (5 hours at 24 fps, 4 at 30, 2 at 60). Planning
# grows linearly with the frames (about 1 s of planning per hour of video at 24 fps, docs/benchmarks.md); past this
# a render is better made of several storyboards, each resumable and editable on its own.
MAX_FRAMES = 432_000


def plan_shots(durations: list[float], crossfades_out: list[float], fps: float) -> list[ShotTiming]:
    """Place shots on the timeline.

    Args:
        durations: each shot's duration in seconds.
        crossfades_out: per shot, the crossfade into the next shot in seconds (0 for a cut; the last is ignored).
        fps: output frame rate.
    """
    # each cut at the correctly rounded sum of the durations before it (as math.fsum of them), kept exactly as a
    # running Fraction: summing every prefix again would be quadratic in the number of shots
    exact, sums = Fraction(0), [0.0]
    for d in durations:
        exact += Fraction(d)
        sums.append(float(exact))
    cuts = [seconds_to_frames(t, fps) for t in sums]
    splits = [crossfade_split(d, fps) for d in crossfades_out[:-1]] + [(0, 0)]
    return [
        ShotTiming(
            index=i,
            start=cuts[i],
            end=cuts[i + 1],
            head=splits[i - 1][0] if i else 0,
            tail=splits[i][1],
        )
        for i in range(len(durations))
    ]


@dataclass(frozen=True)
class Segment:
    """A run of output frames: from one shot, or a crossfade from shot `a` into shot `b`.

    `a_offset` and `b_offset` index the first frame taken from each shot's rendered frames.
    """

    start: int
    end: int
    a: int
    a_offset: int
    b: int | None = None
    b_offset: int = 0

    @property
    def frames(self) -> int:
        return self.end - self.start


def timeline_segments(shots: list[ShotTiming]) -> list[Segment]:
    """Cut the output timeline into solo runs and crossfades, in order, each output frame exactly once.

    Raises:
        ValueError: when two crossfades overlap inside one shot (the validator reports this first).
    """
    segments: list[Segment] = []
    for i, shot in enumerate(shots):
        prev_tail = shots[i - 1].tail if i else 0
        next_head = shots[i + 1].head if i + 1 < len(shots) else 0
        solo_start, solo_end = shot.start + prev_tail, shot.end - next_head
        if solo_end < solo_start:
            raise ValueError(f"crossfades overlap inside shot {i} ({shot.frames} frames)")
        if shot.head + prev_tail:
            segments.append(
                Segment(
                    start=shot.render_start,
                    end=solo_start,
                    a=i - 1,
                    a_offset=shot.render_start - shots[i - 1].render_start,
                    b=i,
                )
            )
        if solo_end > solo_start:
            segments.append(Segment(solo_start, solo_end, a=i, a_offset=solo_start - shot.render_start))
    return segments


# --------------------------------------------------------------------------------------------------------------
# Chunks within a shot


@dataclass(frozen=True)
class ChunkWindow:
    """One generated chunk, in base-rate frames of its shot's rendered range.

    Args:
        index: position within the shot.
        start: first frame it covers.
        frames: how many frames the model generates (a legal count).
        used: how many of them the shot keeps (the rest are trimmed).
        overlap: frames shared with the previous chunk (0 for the first).
    """

    index: int
    start: int
    frames: int
    used: int
    overlap: int

    @property
    def end(self) -> int:
        return self.start + self.used

    @property
    def trimmed(self) -> int:
        return self.frames - self.used


def chunk_windows(total: int, chunk: int, overlap: int, rule: FrameRule = FrameRule()) -> list[ChunkWindow]:
    """Cover `total` frames with chunks of `chunk` frames that overlap by `overlap`.

    Consecutive chunks step by ``chunk - overlap``; the last one is shortened to the smallest legal count that
    reaches the end (the extra frames are trimmed). Any frame is covered by at most two chunks.

    Raises:
        ValueError: when the arguments break the rules above (the message names the value).
    """
    if total < 1:
        raise ValueError(f"`total` ({total}) must be at least 1 frame")
    if not rule.is_legal(chunk):
        raise ValueError(f"`chunk` ({chunk}) is not a legal frame count for rule {rule}")
    if not 0 <= overlap <= (chunk - 1) // 2:
        raise ValueError(
            f"`overlap` ({overlap}) must be between 0 and {(chunk - 1) // 2}, "
            f"less than half the chunk length ({chunk})"
        )
    if total <= chunk:
        return [ChunkWindow(0, 0, rule.at_least(total), total, 0)]
    step = chunk - overlap
    count = math.ceil((total - chunk) / step) + 1
    windows = [ChunkWindow(i, i * step, chunk, chunk, overlap if i else 0) for i in range(count - 1)]
    last_start = (count - 1) * step
    need = total - last_start
    windows.append(ChunkWindow(count - 1, last_start, rule.at_least(need), need, overlap))
    return windows


def legal_overlaps(chunk: int, latent: int | None = None) -> range:
    """The overlaps a chunk of `chunk` frames can have: less than half of it, and, where overlapping frames must
    be whole latent frames (`latent`: the video frames per latent frame), 1 more than a multiple of `latent`."""
    top = (chunk - 1) // 2
    return range(1, top + 1, latent) if latent else range(top + 1)


def nearest_overlap(wanted: int, chunk: int, latent: int | None = None) -> int:
    """The legal overlap nearest `wanted` (the larger of two as near); `wanted` itself when none is legal."""
    legal = legal_overlaps(chunk, latent)
    return min(legal, key=lambda o: (abs(o - wanted), -o)) if legal else wanted


def span_windows(total: int, anchors: list[int], chunk: int, overlap: int, rule: FrameRule = FrameRule()) -> list[list[ChunkWindow]]:
    """Windows for a shot whose frames `anchors` (indices strictly inside it) must begin or end a chunk.

    The shot splits into spans from anchor to anchor, each covered by `chunk_windows`; neighbouring spans share
    their anchor frame (an overlap of one), so a chunk conditioned on the keyframes at both ends of its span
    needs nothing from any other chunk. Returns the windows grouped by span, indexed across the whole shot.
    """
    bounds = [0, *sorted(set(anchors)), total - 1]
    if any(not 0 < a < total - 1 for a in anchors):
        raise ValueError(f"`anchors` ({anchors}) must lie strictly inside the shot's {total} frames")
    spans: list[list[ChunkWindow]] = []
    index = 0
    for s, (a, b) in enumerate(itertools.pairwise(bounds)):
        length = b - a + 1 if s < len(bounds) - 2 else total - a
        span = []
        for w in chunk_windows(length, chunk, overlap, rule):
            joined = w.overlap if w.index else (1 if s else 0)
            span.append(ChunkWindow(index, a + w.start, w.frames, w.used, joined))
            index += 1
        spans.append(span)
    return spans


# --------------------------------------------------------------------------------------------------------------
# Blend ramps

RAMPS = ("linear", "cosine", "pyramid")


def ramp(frames: int, kind: str = "cosine") -> list[float]:
    """The weight of the incoming source over `frames` overlapping frames, strictly between 0 and 1.

    The outgoing source gets ``1 - w``, so every blended frame's weights sum to exactly one. Samples sit at
    ``(j + 1) / (frames + 1)``, so neither source is ever dropped inside an overlap.

    Args:
        frames: length of the overlap.
        kind: ``linear``; ``cosine`` (eases in and out, so brightness changes have no kink at the ends); or
            ``pyramid``, the per-frame weights of AnimateDiff's context windows (each frame weighs its distance to
            the nearer end of its chunk), normalised over the two chunks. While an overlap is under half a chunk,
            as longvid requires, the pyramid's two slopes meet only at chunk ends, and it equals ``linear``.
    """
    x = [(j + 1) / (frames + 1) for j in range(frames)]
    if kind == "linear":
        return x
    if kind == "pyramid":
        return [(j + 1) / ((j + 1) + (frames - j)) for j in range(frames)]
    if kind == "cosine":
        return [0.5 - 0.5 * math.cos(math.pi * v) for v in x]
    raise ValueError(f"`kind` ({kind!r}) must be one of {', '.join(RAMPS)}")


def between(positions: list[float], at: float) -> list[tuple[int, float]]:
    """Linear interpolation weights at `at` over ascending `positions`: ``[(i, 1.0)]`` on a position or beyond
    the ends, else the one before and the one after as ``[(i, 1 - w), (i + 1, w)]``.

    What a chunk's colours are anchored to (and its colour drift measured against): the keyframes it moves between.
    """
    after = bisect_right(positions, at)
    if after == 0 or after == len(positions):
        return [(max(after - 1, 0), 1.0)]
    w = (at - positions[after - 1]) / (positions[after] - positions[after - 1])
    return [(after - 1, 1 - w), (after, w)] if w > 0 else [(after - 1, 1.0)]


# --------------------------------------------------------------------------------------------------------------
# Frame rates


def base_frame_count(output_frames: int, factor: float) -> int:
    """Base-rate frames whose interpolation by `factor` reaches `output_frames` frames."""
    return math.ceil((output_frames - 1) / factor - 1e-9) + 1


def resample_positions(output_frames: int, factor: float) -> list[tuple[int, float]]:
    """Per output frame, the base frame before it and the timestep in [0, 1) towards the next one.

    ``factor`` is output fps over base fps; 16 -> 24 fps is 1.5 and gives timesteps 0, 2/3, 1/3, 0, ...
    """
    positions = []
    for j in range(output_frames):
        pos = j / factor
        i = math.floor(pos + 1e-9)
        t = pos - i
        positions.append((i, 0.0 if t < 1e-9 else t))
    return positions


# --------------------------------------------------------------------------------------------------------------
# Chunks on the output timeline (for seam QA)


@dataclass(frozen=True)
class ChunkSpan:
    """A chunk on the output timeline: the frames it shows, and the pairs of frames across its seam.

    Args:
        index: the chunk's position in its shot.
        frames: the output frames it covers.
        seam_pairs: ``t`` in it means the pair of frames ``(t - 1, t)`` crosses the seam into this chunk (empty for
            a shot's first chunk).
    """

    index: int
    frames: range
    seam_pairs: range


def chunk_spans(windows: list[tuple[int, int, int]], render_start: int, factor: float, frames: range) -> list[ChunkSpan]:
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
