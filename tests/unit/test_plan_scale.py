"""Planning grows with the work: a segment of a long shot carries what it shows, not the shot; past the documented
maximum a storyboard is refused at once, where it crosses it. (The times themselves: benchmarks/plan_time.py.)"""

from __future__ import annotations

import subprocess
import sys

from longvid import timing
from longvid.planners.compile import compile_storyboard
from longvid.storyboard.load import validate_data
from tests.conftest import ROOT, write


def long_shot(seconds: float):
    return compile_storyboard(validate_data({"fps": 24, "shots": [{"id": "walk", "prompt": "a walk",
                                                                   "duration": seconds}]}))


def test_a_segment_of_a_long_shot_carries_only_the_chunks_it_shows():
    sizes = {}
    for seconds in (60, 600):
        plan = long_shot(seconds)
        middle = plan.graph.of_kind("encode")[len(plan.graph.of_kind("encode")) // 2]
        (piece,) = middle.params.pieces
        blended = piece.a.blended
        assert len(blended.chunks) <= 4 and list(middle.deps) == sorted(set(middle.deps), key=middle.deps.index)
        assert set(blended.chunks) <= set(middle.deps)  # it reads the chunks it carries (and its lead frames')
        sizes[seconds] = len(str(middle.params.content()))
    assert sizes[600] <= sizes[60] * 1.1, sizes  # ten times the shot, the same segment


def test_every_chunk_is_read_by_the_segments_over_its_frames():
    plan = long_shot(120)
    for chunk in plan.graph.of_kind("chunk"):
        readers = plan.graph.consumers(chunk.id)
        assert readers and all(r.startswith("encode:") for r in readers), chunk.id
        start, end = chunk.window  # the shot's base frames: here, with no handles, the output's
        for reader in readers:
            seg = plan.graph[reader].window
            assert seg[0] - 1 < end and start < seg[1] + 1, (chunk.id, reader)  # a frame each side: the QA's lead


def test_a_storyboard_past_the_maximum_is_refused_at_once_where_it_crosses_it(tmp_path):
    story = write(tmp_path / "year.yaml", "fps: 24\nshots:\n  - {prompt: a day, duration: 3600}\n"
                                          "  - {prompt: a year, duration: 31536000}\n")
    result = subprocess.run([sys.executable, "-m", "longvid", "validate", str(story)], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"{story}:4:32: the storyboard reaches 756,950,400 frames by shot 'shot02'")
    assert f"longvid plans at most {timing.MAX_FRAMES:,} frames (5 h at 24 fps)" in result.stderr
    # the maximum itself is planned
    limit = timing.MAX_FRAMES / 24
    assert len(long_shot(limit).graph) > 0
