"""Cast and places on the preview backend: a reference's image is an input like any other, so swapping it re-renders
exactly the shots that show its character, and `status` says why first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

import longvid
from longvid.rendering import status
from tests.conftest import decode, write
from tests.engine.test_execution import ran_of_kind

STORY = """\
fps: 12
width: 160
height: 96
seed: 11
characters:
  fox: {description: a red fox with a white-tipped tail, reference: fox.png}
  owl: {description: a grey owl, reference: owl.png}
places:
  wood: a birch wood in the snow
shots:
  - {id: a, prompt: "{fox} trots through {wood}", duration: 2, transition: {type: crossfade, duration: 0.5}}
  - {id: b, prompt: "{owl} watches from a branch", duration: 4, transition: {type: crossfade, duration: 0.5}}
  - {id: c, prompt: "{fox} curls up to sleep", duration: 2}
  - {id: d, prompt: "{owl} flies over {wood}", duration: 1.5}
"""


def picture(path: Path, colour: tuple[int, int, int]) -> None:
    image = np.full((64, 48, 3), colour, np.uint8)
    image[20:44, 12:36] = 255 - np.array(colour, np.uint8)
    Image.fromarray(image).save(path)


def test_swapping_a_characters_image_rerenders_exactly_its_shots(tmp_path, private_cache):
    board = write(tmp_path / "story.yaml", STORY)
    picture(tmp_path / "fox.png", (200, 80, 20))
    picture(tmp_path / "owl.png", (120, 120, 130))
    before = longvid.render(board, tmp_path / "before.mp4")
    assert {r["task"]: r["shots"] for r in before["references"]} == {
        "reference:fox": ["a", "c"], "reference:owl": ["b", "d"], "reference:wood": ["a", "d"]}
    assert [r["generated"] for r in before["references"]] == [False, False, True]

    picture(tmp_path / "fox.png", (30, 90, 200))
    rows = {row.task: row for row in status(board)}
    # b's preview chunks are not stored: they are drawn again, unchanged, for the crossfades into a and c
    needed = {task for task, row in rows.items() if row.reasons and all(r.startswith("needed_by") for r in row.reasons)}
    assert needed == {"chunk:b:0", "chunk:b:1"}
    stale = {task for task, row in rows.items() if row.state != "fresh"} - needed
    fox_shots = {t for t in rows if t.startswith(("keyframe:a:", "chunk:a:", "encode:a", "keyframe:c:", "chunk:c:",
                                                  "encode:c", "encode:b>c"))}
    assert stale == {"reference:fox", "concat"} | fox_shots
    assert rows["reference:fox"].reasons[0].startswith("param_changed: images")
    assert all("input_changed: reference:fox" in rows[t].reasons for t in fox_shots if t.startswith("keyframe:"))

    events = []
    after = longvid.render(board, tmp_path / "after.mp4", report=events.append)
    assert ran_of_kind(events, "reference") == {"reference:fox"}
    assert ran_of_kind(events, "keyframe") == {t for t in fox_shots if t.startswith("keyframe:")}
    old, new = decode(tmp_path / "before.mp4"), decode(tmp_path / "after.mp4")
    changed = np.abs(old.astype(int) - new.astype(int)).reshape(len(old), -1).max(axis=1) > 8
    frames = {s["id"]: range(*s["frames"]) for s in after["shots"]}
    for shot in "ac":  # the fox's shots change from their first frame to their last
        assert changed[frames[shot].start] and changed[frames[shot].stop - 1]
    crossfades = {s["task"]: range(*s["frames"]) for s in after["segments"] if ">" in s["task"]}
    assert changed[crossfades["encode:a>b"]].all() and changed[crossfades["encode:b>c"]].all()
    untouched = set(range(len(old))) - {*frames["a"], *frames["c"], *crossfades["encode:a>b"], *crossfades["encode:b>c"]}
    assert untouched and not changed[sorted(untouched)].any()  # b (outside its crossfades) and d stay as they were
