"""Where the output is cut into H.264 segments, each encoded by its own task and stored by its content.

The rules, in order:

1. **Every cut and every crossfade edge is a boundary.** A segment never holds frames of two shots except a
   crossfade, which is a segment of its own. Editing a shot therefore re-encodes its own segments and the crossfades
   that touch it, and no segment of any other shot.
2. **A shot's solo run is split into pieces of about `SEGMENT_SECONDS`**, so one long shot still encodes in
   parallel and an edit re-encodes its shot on every core: ``n = max(1, round(frames / target))`` pieces of equal
   length.
3. **Each split point snaps to the nearest frame where a chunk takes over alone** (the first frame after its
   overlap with the chunk before), when one lies within half a piece: a segment then rarely needs a chunk that its
   neighbour needs too. Shots that are interpolated read their frames from one stored artifact, so any frame will
   do and nothing snaps.

Boundaries depend only on the shot's own length, transitions and chunk layout, never on its place in the video, so
moving a shot leaves its segments' content, and so their cache keys, unchanged.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from longvid.timing import Segment, ShotTiming

SEGMENT_SECONDS = 3.0


def split_run(start: int, end: int, target: int, takeovers: list[int]) -> list[int]:
    """Split points strictly inside ``[start, end)``: rule 2, each snapped to the nearest takeover (rule 3)."""
    length = end - start
    pieces = max(1, round(length / max(1, target)))
    takeovers = sorted(t for t in takeovers if start < t < end)
    points = []
    for k in range(1, pieces):
        ideal = start + round(k * length / pieces)
        reach = length / pieces / 2
        # the takeovers within reach, by bisection: a long shot's split costs its pieces, not pieces x chunks
        lo, hi = bisect_left(takeovers, ideal - reach), bisect_right(takeovers, ideal + reach)
        near = takeovers[lo:hi]
        points.append(min(near, key=lambda t: (abs(t - ideal), t)) if near else ideal)
    return sorted(set(points))


def encode_segments(timeline: list[Segment], shots: list[ShotTiming], takeovers: dict[int, list[int]],
                    fps: float) -> list[Segment]:
    """The encode segments, in order: `timeline`'s crossfades as they are, its solo runs split by `split_run`.

    Args:
        timeline: from `timing.timeline_segments`: solo runs and crossfades.
        shots: where each shot sits.
        takeovers: per shot index, output frames where a chunk takes over alone (empty for interpolated shots).
        fps: the output rate, for the target length.
    """
    target = max(1, round(SEGMENT_SECONDS * fps))
    out: list[Segment] = []
    for run in timeline:
        if run.b is not None:
            out.append(run)
            continue
        bounds = [run.start, *split_run(run.start, run.end, target, takeovers.get(run.a, [])), run.end]
        render_start = shots[run.a].render_start
        for a, b in zip(bounds, bounds[1:], strict=False):
            out.append(Segment(a, b, run.a, a - render_start))
    return out
