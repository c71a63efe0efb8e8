"""Honest seam QA on real preview renders: crossfades are not seams, and a shot that moves on purpose from one
keyframe to another has not drifted."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

import longvid
from longvid.qa import qa_video
from tests.conftest import write

BOARD = """\
fps: 12
width: 160
height: 96
seed: 3
continuity: {{overlap: 8, colour_anchor: {anchor}}}
shots:
  - {{id: harbour, prompt: a harbour at dawn, duration: 3, camera: push-in, transition: {{type: crossfade, duration: 1}}}}
  - id: sunset
    prompt: the sun sets over the sea
    duration: 6
    keyframes: [{{at: 0, image: warm.png}}, {{at: 5, image: cold.png}}]
    transition: {{type: crossfade, duration: 1}}
  - {{id: lighthouse, prompt: a lighthouse, duration: 4, camera: pan-left, transition: {{type: crossfade, duration: 1}}}}
  - id: gulls
    prompt: gulls over the waves
    duration: 3
    keyframes: [{{at: 2, prompt: gulls landing}}]
    transition: {{type: crossfade, duration: 1}}
  - {{id: night, prompt: night falls, duration: 3, camera: pull-out}}
"""


def pictures(folder) -> None:
    """Two keyframes as unlike as can be: a warm dusk of round suns, a cold night of square windows."""
    rng = np.random.default_rng(0)
    warm, cold = Image.new("RGB", (320, 192), (240, 150, 40)), Image.new("RGB", (320, 192), (20, 30, 90))
    for image, fill, shape in ((warm, (255, 220, 90), "ellipse"), (cold, (200, 220, 255), "rectangle")):
        draw = ImageDraw.Draw(image)
        for _ in range(20):
            x, y = (int(v) for v in rng.integers(0, (320, 192)))
            getattr(draw, shape)((x, y, x + 25, y + 25), fill=fill)
    warm.save(folder / "warm.png")
    cold.save(folder / "cold.png")


@pytest.mark.parametrize("anchor", [0.0, 0.8])
def test_crossfades_and_a_shot_between_two_keyframes_raise_no_false_alarms(anchor, tmp_path):
    pictures(tmp_path)
    board = write(tmp_path / "board.yaml", BOARD.format(anchor=anchor))
    manifest = longvid.render(board, tmp_path / "out.mp4")
    qa = manifest["qa"]
    shots = {s["id"]: s for s in manifest["shots"]}

    # a chunk of the harbour takes over inside its crossfade into the sunset: measured on the harbour's own frames
    crossfade = range(shots["sunset"]["rendered"][0], shots["harbour"]["rendered"][1])
    inside = [s for s in qa["seams"] if s["shot"] == "harbour" and s["frames"][1] in crossfade]
    assert inside, qa["seams"]
    assert len(qa["seams"]) == 8 and max(s["score"] for s in qa["seams"]) < 2.0, qa["seams"]
    # the sunset turns from warm to cold on purpose: measured against the keyframes it moves between
    sunset = [c["colour_drift"] for c in qa["chunks"] if c["shot"] == "sunset"]
    assert len(sunset) == 4 and max(c["colour_drift"] for c in qa["chunks"]) <= 15, qa["chunks"]

    # `longvid qa` measures the finished video again, its crossfades left out
    again = qa_video(tmp_path / "out.mp4")
    assert max(s["score"] for s in again["seams"]) < 2.0, again["seams"]
    assert max(c["colour_drift"] for c in again["chunks"]) <= 15, again["chunks"]
