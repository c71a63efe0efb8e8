"""The frame rules of docs/architecture.md, with property-based tests over random storyboards."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from longvid import timing
from longvid.planners.segments import encode_segments
from longvid.stitching.blend import blend_chunks, blend_range
from longvid.timing import FrameRule


def coded(index: int) -> np.ndarray:
    """A 1x1 frame that carries its own index, so a blend of two copies of the same frame is that frame."""
    return np.array([[[index // 256, index % 256, 7]]], dtype=np.uint8)


def index_of(frame: np.ndarray) -> int:
    return int(frame[0, 0, 0]) * 256 + int(frame[0, 0, 1])


def test_seconds_to_frames_rounds_half_up_and_absorbs_float_error():
    assert timing.seconds_to_frames(4, 24) == 96
    assert timing.seconds_to_frames(0.1 * 3, 10) == 3  # 2.9999999999999996 in floating point
    assert timing.seconds_to_frames(1 / 48, 24) == 1  # exactly half a frame rounds up
    assert timing.seconds_to_frames(0.02, 24) == 0


@pytest.mark.parametrize(
    "text, legal, illegal, at_least",
    [
        ("4k+1", [1, 5, 9, 81], [4, 8, 80], {2: 5, 81: 81, 82: 85}),
        ("8k+1", [1, 9, 49, 121], [8, 48], {10: 17, 49: 49}),
        ("14,25", [14, 25], [13, 15, 24], {3: 14, 15: 25, 30: 25}),
        ("16", [16], [15, 17], {5: 16, 40: 16}),
        ("any", [1, 2, 3, 77], [], {7: 7}),
    ],
)
def test_frame_rules(text, legal, illegal, at_least):
    rule = FrameRule.parse(text)
    assert str(FrameRule.parse(str(rule))) == str(rule)
    assert all(rule.is_legal(n) for n in legal)
    assert not any(rule.is_legal(n) for n in illegal)
    assert {n: rule.at_least(n) for n in at_least} == at_least


def test_frame_rule_rejects_nonsense():
    with pytest.raises(ValueError, match="not of the form"):
        FrameRule.parse("4k-1")


def test_cut_points_follow_cumulative_time():
    shots = timing.plan_shots([4, 6, 5], [0, 0.5, 0], 24)
    assert [(s.start, s.end) for s in shots] == [(0, 96), (96, 240), (240, 360)]
    # a 0.5 s crossfade = 12 frames centred on the cut: 6 rendered past shot 1's end, 6 before shot 2's start
    assert (shots[1].tail, shots[2].head) == (6, 6)
    assert [s.rendered for s in shots] == [96, 150, 126]


def test_odd_crossfade_splits_before_and_after_the_cut():
    assert timing.crossfade_split(0.5, 25) == (6, 7)  # round(12.5) = 13 frames, half-up


def test_chunk_windows_overlap_and_trim():
    windows = timing.chunk_windows(100, 33, 8, FrameRule.parse("4k+1"))
    assert [(w.start, w.frames, w.used, w.overlap) for w in windows] == [
        (0, 33, 33, 0), (25, 33, 33, 8), (50, 33, 33, 8), (75, 25, 25, 8),
    ]
    short = timing.chunk_windows(10, 33, 8, FrameRule.parse("4k+1"))
    assert [(w.start, w.frames, w.used, w.trimmed) for w in short] == [(0, 13, 10, 3)]


@pytest.mark.parametrize("overlap, chunk, message", [(17, 33, "between 0 and 16"), (12, 9, "between 0 and 4")])
def test_chunk_windows_name_the_bad_value(overlap, chunk, message):
    with pytest.raises(ValueError, match=rf"`overlap` \({overlap}\) must be {message}"):
        timing.chunk_windows(100, chunk, overlap, FrameRule.parse("4k+1"))


def test_resample_positions_for_16_to_24_fps():
    ratio = 24 / 16
    positions = timing.resample_positions(7, ratio)
    assert [i for i, _ in positions] == [0, 0, 1, 2, 2, 3, 4]
    assert [round(t, 6) for _, t in positions] == [0, round(2 / 3, 6), round(1 / 3, 6), 0, round(2 / 3, 6),
                                                  round(1 / 3, 6), 0]
    assert timing.base_frame_count(7, ratio) == 5


@given(out=st.integers(1, 400), factor=st.sampled_from([1, 2, 3, 4, 1.5, 2.5]))
def test_interpolation_never_reads_past_the_base_frames(out, factor):
    base = timing.base_frame_count(out, factor)
    positions = timing.resample_positions(out, factor)
    assert len(positions) == out
    needed = max(i + (1 if t > 0 else 0) for i, t in positions)
    assert needed == base - 1 or (needed < base and base == 1)


@st.composite
def storyboards(draw):
    fps = draw(st.sampled_from([8, 12, 15, 16, 24, 25, 30, 60, 23.976]))
    quantum = draw(st.sampled_from([0.25, 0.1, 1 / 3, 0.05]))
    durations = draw(st.lists(st.integers(1, 80).map(lambda n: round(n * quantum, 6)), min_size=1, max_size=7))
    fades = []
    for a, b in zip(durations, durations[1:], strict=False):
        fade = draw(st.sampled_from([0, 0, 0.25, 0.5, 1.0]))
        fades.append(fade if fade <= min(a, b) / 2 else 0)
    return durations, fades + [0], fps


@settings(max_examples=300, deadline=None)
@given(storyboards())
def test_every_output_frame_exactly_once_and_total_is_exact(board):
    durations, fades, fps = board
    shots = timing.plan_shots(durations, fades, fps)
    assume(all(s.frames >= 1 for s in shots))
    assume(all(shots[i - 1].tail + shots[i + 1].head <= shots[i].frames for i in range(1, len(shots) - 1)))
    total = timing.seconds_to_frames(math.fsum(durations), fps)
    assert shots[-1].end == total
    segments = timing.timeline_segments(shots)
    # the segments tile [0, total) in order
    assert segments[0].start == 0 and segments[-1].end == total
    assert all(a.end == b.start for a, b in zip(segments, segments[1:], strict=False))
    # each shot's rendered frames are consumed exactly once, in order
    consumed = {i: 0 for i in range(len(shots))}
    for seg in segments:
        for shot, offset in ((seg.a, seg.a_offset), (seg.b, seg.b_offset)):
            if shot is None:
                continue
            assert offset == consumed[shot]
            consumed[shot] += seg.frames
    assert consumed == {i: s.rendered for i, s in enumerate(shots)}

    # encode segments: the same tiling, crossfades kept whole, solo runs split only inside one shot
    encoded = encode_segments(segments, shots, {}, fps)
    assert encoded[0].start == 0 and encoded[-1].end == total
    assert all(a.end == b.start and a.frames > 0 for a, b in zip(encoded, encoded[1:], strict=False))
    assert [s for s in encoded if s.b is not None] == [s for s in segments if s.b is not None]
    for seg in encoded:
        if seg.b is None:  # its frames are its shot's own, where the timeline says
            assert shots[seg.a].start <= seg.start and seg.end <= shots[seg.a].end
            assert seg.a_offset == seg.start - shots[seg.a].render_start


@settings(max_examples=300, deadline=None)
@given(total=st.integers(1, 600), k=st.integers(1, 20), overlap_share=st.floats(0, 1), ramp=st.sampled_from(["linear", "cosine"]))
def test_blended_chunks_cover_each_frame_once(total, k, overlap_share, ramp):
    rule = FrameRule.parse("4k+1")
    chunk = 4 * k + 1
    overlap = int(overlap_share * ((chunk - 1) // 2))
    windows = timing.chunk_windows(total, chunk, overlap, rule)
    assert all(rule.is_legal(w.frames) and w.used <= w.frames for w in windows)
    assert all(w.overlap == overlap for w in windows[1:])
    coverage = np.zeros(total, int)
    for w in windows:
        coverage[w.start:w.end] += 1
    assert coverage.min() >= 1 and coverage.max() <= 2
    frames = list(blend_chunks(windows, lambda i: [coded(windows[i].start + j) for j in range(windows[i].frames)], ramp))
    assert [index_of(f) for f in frames] == list(range(total))
    # any range of the shot is the same frames, asking each chunk only for the frames it needs
    start, stop = sorted(((total * 3) // 7, (total * 5) // 6 + 1))
    asked = []

    def chunk(i, lo, hi):
        asked.append(i)
        return [coded(windows[i].start + j) for j in range(lo, hi)]

    part = list(blend_range(windows, chunk, ramp, start, stop))
    assert [index_of(f) for f in part] == list(range(start, stop))
    assert asked == [w.index for w in windows if w.start < stop and start < w.end]


def test_fractional_fps_is_kept_exact_by_the_writer():
    from longvid.stitching.encode import Mp4Writer

    assert Mp4Writer("x.mp4", 64, 64, 23.976).fps == Fraction(24000, 1001)
