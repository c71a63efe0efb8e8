"""Another take of a task (`reroll`) on real preview renders: only that task and what reads it run again, going
back to a take is all cached, and `status` says which take changed the seed.

The preview draws a chunk from time and the keyframes around it, never from its seed, so a chunk's take changes
keys and seeds (asserted) but not pixels; a keyframe's background is drawn from its seed, so a keyframe's take
changes the picture (asserted on the decoded frames).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import longvid
from longvid.rendering import status
from tests.conftest import decode, run_cli, write
from tests.engine.test_execution import lines

# `harbour` has 7 chunks of 9 frames in its first segment (frames 0-44) and 6 in its second (44-84); `quay` is
# another shot, which no take here touches
BOARD = """\
title: Takes
fps: 12
width: 160
height: 96
seed: 5
models: {video: {chunk_frames: 9}}
continuity: {overlap: 2}
shots:
  - id: harbour
    prompt: boats in a harbour at dawn
    duration: 7
    keyframes:
      - {at: 7, prompt: the sun above the boats}
REROLL
  - id: quay
    prompt: gulls on the quay
    duration: 1.5
"""


def board(path: Path, takes: str | None = None) -> Path:
    """The storyboard, with `takes` as harbour's `reroll` (None: no `reroll` at all, as before takes existed)."""
    return write(path, BOARD.replace("REROLL\n", f"    reroll: {takes}\n" if takes else ""))


def render(story: Path, output: Path) -> tuple[dict, set[str]]:
    """The manifest, and the stored tasks that ran (the preview's chunks are drawn inside them, never stored)."""
    events = []
    manifest = longvid.render(story, output, report=events.append)
    return manifest, {e.task for e in events if e.type == "succeeded"}


def harbour_chunks(manifest: dict) -> list[dict]:
    return next(s for s in manifest["shots"] if s["id"] == "harbour")["chunks"]


def test_a_chunk_take_runs_only_that_chunk_and_what_reads_it(tmp_path):
    story = board(tmp_path / "story.yaml")
    first, _ = render(story, tmp_path / "a.mp4")
    board(story, '{"chunk:2": 1}')
    second, ran = render(story, tmp_path / "b.mp4")

    # the chunk's segment and the join; the other segments, the keyframes and the other shot come from the cache
    assert ran == {"encode:harbour:0", "concat"}
    assert second["execution"]["ran"] == 2 and second["execution"]["cached"] == 5
    assert [s["task"] for s in second["segments"] if not s["cached"]] == ["encode:harbour:0"]
    # the chunks drawn: those the re-encoded segment shows (not stored, so drawn again with the new one)
    drawn = {c["task"] for s in second["shots"] for c in s["chunks"] if c["computed_in"]}
    assert drawn == {f"chunk:harbour:{i}" for i in range(7)}
    before, after = harbour_chunks(first)[2], harbour_chunks(second)[2]
    assert (before["take"], after["take"]) == (0, 1) and before["seed"] != after["seed"]
    assert before["cache_key"] != after["cache_key"]
    assert [c["seed"] for c in harbour_chunks(first) if c["task"] != "chunk:harbour:2"] == \
        [c["seed"] for c in harbour_chunks(second) if c["task"] != "chunk:harbour:2"]
    assert all(c["take"] == 0 for s in second["shots"] for c in s["chunks"] if c["task"] != "chunk:harbour:2")
    assert next(s for s in second["shots"] if s["id"] == "harbour")["reroll"] == {"chunk:2": 1}
    assert next(s for s in second["shots"] if s["id"] == "quay")["reroll"] is None


def test_going_back_to_take_0_is_all_cached_and_writes_the_same_bytes(tmp_path):
    story = board(tmp_path / "story.yaml")
    render(story, tmp_path / "a.mp4")
    board(story, '{"chunk:2": 1}')
    render(story, tmp_path / "b.mp4")
    board(story, '{"chunk:2": 0}')
    # before it runs, status says so: only the join, which is never stored
    stale = {row.task: row.reasons for row in status(story) if row.state != "fresh"}
    assert stale == {"concat": ("input_changed: encode:harbour:0",)}
    back, ran = render(story, tmp_path / "c.mp4")
    assert ran == {"concat"}
    assert (back["execution"]["ran"], back["execution"]["cached"], back["execution"]["computed_inline"]) == (1, 6, 0)
    assert (tmp_path / "c.mp4").read_bytes() == (tmp_path / "a.mp4").read_bytes()
    assert harbour_chunks(back)[2]["take"] == 0


def test_a_keyframe_take_redraws_it_and_what_depends_on_it(tmp_path):
    story = board(tmp_path / "story.yaml")
    first, _ = render(story, tmp_path / "a.mp4")
    board(story, '{"keyframe:0": 3}')
    second, ran = render(story, tmp_path / "b.mp4")
    # the later keyframe is drawn over the first one's background, so it reads it; the shot's chunks are anchored
    # on both, so both of its segments are made again
    assert ran == {"keyframe:harbour:0", "keyframe:harbour:1", "encode:harbour:0", "encode:harbour:1", "concat"}
    harbour = next(s for s in second["shots"] if s["id"] == "harbour")
    assert [(k["task"], k["take"]) for k in harbour["keyframes"]] == [("keyframe:harbour:0", 3),
                                                                      ("keyframe:harbour:1", 0)]
    assert harbour["keyframes"][0]["seed"] != next(s for s in first["shots"]
                                                   if s["id"] == "harbour")["keyframes"][0]["seed"]
    # the preview draws a keyframe's background from its seed: the shot looks different, the other shot does not
    a, b = decode(tmp_path / "a.mp4").astype(int), decode(tmp_path / "b.mp4").astype(int)
    assert (np.abs(a[:84] - b[:84]).mean(axis=(1, 2, 3)) > 1).all()
    assert (a[84:] == b[84:]).all()


def test_status_shows_the_take_and_what_it_reruns(tmp_path):
    story = board(tmp_path / "story.yaml")
    render(story, tmp_path / "a.mp4")
    board(story, '{"chunk:2": 1}')
    rows = {row.task: row for row in status(story)}
    stale = {task for task, row in rows.items() if row.state != "fresh"}
    # the take, the segment showing it and the join; the segment's other chunks are drawn again inside it
    assert stale == {f"chunk:harbour:{i}" for i in range(7)} | {"encode:harbour:0", "concat"}
    assert rows["chunk:harbour:2"].reasons == ("seed_changed: take 0 -> 1",)
    assert rows["chunk:harbour:3"].reasons == ("needed_by: encode:harbour:0",)
    assert rows["encode:harbour:0"].reasons == ("input_changed: chunk:harbour:2",)
    assert rows["concat"].reasons == ("input_changed: encode:harbour:0",)
    assert all(rows[t].state == "fresh" for t in ("keyframe:harbour:0", "keyframe:harbour:1", "chunk:harbour:7",
                                                  "encode:harbour:1", "chunk:quay:0", "encode:quay:0"))
    board(story, '{"chunk:2": 1, "keyframe:1": 2}')
    shown = lines(run_cli("status", str(story)).stdout)
    assert "keyframe:harbour:1 stale seed_changed: take 0 -> 2" in shown
    assert "chunk:harbour:2 stale seed_changed: take 0 -> 1; input_changed: keyframe:harbour:1" in shown
    assert "chunk:harbour:3 stale input_changed: keyframe:harbour:1" in shown
    assert "keyframe:harbour:0 fresh" in shown and "encode:quay:0 fresh" in shown
