"""A readable animatic: the preview's cards stay in view through every camera move, and one card changes to the
next with a short dissolve while the picture moves through the whole gap."""

from __future__ import annotations

import numpy as np
import pytest

from longvid.planners.compile import compile_storyboard
from longvid.stages.preview import (
    _CAMERA,
    CARD_DISSOLVE,
    PreviewChunk,
    PreviewKeyframe,
    _background,
    card_layout,
    safe_area,
    view_box,
)
from longvid.storyboard.load import validate_data

PROMPT = "a lighthouse keeper climbs the spiral stairs with a lantern, the storm rising outside the narrow windows"


def plan(camera: str, keyframes: list[dict] | None = None, duration: float = 4.0):
    return compile_storyboard(validate_data({
        "fps": 8, "width": 320, "height": 192, "seed": 3,
        "shots": [{"id": "climb", "prompt": PROMPT, "duration": duration, "camera": camera,
                   **({"keyframes": keyframes} if keyframes else {})}]}))


@pytest.mark.parametrize("camera", sorted(_CAMERA))
def test_the_card_is_drawn_only_where_the_camera_keeps_it_in_view(camera):
    graph = plan(camera).graph
    (task,) = graph.of_kind("keyframe")
    image = PreviewKeyframe()(task, {})
    p = task.params
    drawn = np.argwhere(np.any(image != np.asarray(_background(p.prompt, task.seed, p.width, p.height)), axis=2))
    (top, left), (bottom, right) = drawn.min(axis=0), drawn.max(axis=0)
    s_left, s_top, s_right, s_bottom = safe_area(camera, p.width, p.height)
    assert s_left <= left and right < s_right and s_top <= top and bottom < s_bottom, (camera, drawn)
    # and that area is in the picture at every moment of the move, a pan's end included
    for progress in np.linspace(0, 1, 41):
        x0, y0, x1, y1 = view_box(camera, progress, p.width, p.height)
        assert x0 <= s_left and s_right <= x1 + 1e-6 and y0 <= s_top and s_bottom <= y1 + 1e-6, (camera, progress)
    # the whole prompt is still readable: the card's lines hold every word
    layout = card_layout(p.prompt, 0, camera, p.width, p.height)
    assert " ".join(layout.lines).split() == PROMPT.split()


def test_cards_change_with_a_short_dissolve_while_the_picture_moves_through_the_gap():
    graph = plan("static", [{"at": 4.0, "prompt": "the keeper lights the great lamp at the top"}]).graph
    keyframes = graph.of_kind("keyframe")
    images = {k.id: PreviewKeyframe()(k, {}) for k in keyframes[:1]}
    images[keyframes[1].id] = PreviewKeyframe()(keyframes[1], images)
    (chunk,) = graph.of_kind("chunk")
    frames = PreviewChunk()(chunk, images)
    a, b = images[keyframes[0].id], images[keyframes[1].id]
    p = chunk.params
    layouts = [card_layout(k.card, k.references, "static", p.width, p.height) for k in p.keyframes]
    rows = slice(int(min(c.top for c in layouts)), int(max(c.bottom for c in layouts)) + 1)
    cols = slice(int(min(c.left for c in layouts)), int(max(c.right for c in layouts)) + 1)
    strip = slice(0, p.height - p.height // 10)  # above the burned-in frame number

    def at(seconds: float) -> np.ndarray:
        return frames[round(seconds * p.fps)].astype(int)

    # halfway: the first card alone, over a picture already half way to the second keyframe
    middle = at(2.0)
    assert np.array_equal(middle[rows, cols], a[rows, cols])
    outside = np.ones(a.shape[:2], bool)
    outside[rows, cols] = False
    outside[p.height - p.height // 10:] = False
    half = (a.astype(int) + b) / 2
    assert np.abs(middle[outside] - half[outside]).mean() < 3
    # just before the dissolve the first card still; at the keyframe's time the second whole
    assert np.array_equal(at(4.0 - CARD_DISSOLVE - 0.125)[rows, cols], a[rows, cols])
    assert np.array_equal(at(4.0)[strip], b[strip])
