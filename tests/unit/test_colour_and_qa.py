"""Colour anchoring and seam QA on synthetic frames whose right answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from longvid.stitching.colour import LabStats, anchor_colours, delta_e, lab_to_rgb, rgb_to_lab
from longvid.stitching.seams import ShotSpan, chunk_spans, measure


def test_lab_round_trips_and_matches_reference_values():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert np.abs(lab_to_rgb(rgb_to_lab(rgb)).astype(int) - rgb).max() <= 1
    # sRGB white, black and pure red in CIE Lab (D65)
    np.testing.assert_allclose(rgb_to_lab(np.array([255, 255, 255])), [100, 0, 0], atol=0.05)
    np.testing.assert_allclose(rgb_to_lab(np.array([0, 0, 0])), [0, 0, 0], atol=0.05)
    np.testing.assert_allclose(rgb_to_lab(np.array([255, 0, 0])), [53.24, 80.09, 67.20], atol=0.1)


def test_colour_anchoring_moves_a_chunk_to_its_reference_by_strength():
    rng = np.random.default_rng(1)
    reference = rng.integers(60, 190, (32, 48, 3), dtype=np.uint8)
    drifted = np.clip(reference.astype(int) * 0.8 + np.array([25, -10, 5]), 0, 255).astype(np.uint8)
    chunk = np.stack([drifted] * 4)
    target, before = LabStats.of(reference), LabStats.of(chunk)
    full = LabStats.of(anchor_colours(chunk, target, 1.0))
    half = LabStats.of(anchor_colours(chunk, target, 0.5))
    assert delta_e(before.mean, target.mean) > 8
    assert delta_e(full.mean, target.mean) < 0.5
    np.testing.assert_allclose(full.std, target.std, rtol=0.05)
    np.testing.assert_allclose(half.mean, (before.mean + target.mean) / 2, atol=0.5)
    assert anchor_colours(chunk, target, 0.0) is chunk


def moving(frames: int, seed: int = 0) -> np.ndarray:
    """A textured image panning one pixel a frame: every consecutive pair differs by about the same amount."""
    x = np.arange(200)[None, :, None]
    phase = np.random.default_rng(seed).uniform(0, 6, (48, 1, 3))
    texture = np.rint(128 + 60 * np.sin(x / 6 + phase)).astype(np.uint8)
    return np.stack([texture[:, i:i + 64] for i in range(frames)])


def layout(frames: int, windows: list[tuple[int, int, int]]) -> list[ShotSpan]:
    return [ShotSpan("s", range(frames), chunk_spans(windows, 0, 1.0, range(frames)))]


def test_an_invisible_seam_scores_one_and_a_jump_scores_high():
    video = moving(40)
    clean = measure(video, layout(40, [(0, 20, 0), (20, 40, 0)]))
    assert clean["seams"][0]["score"] == pytest.approx(1.0, abs=0.1)
    jumped = video.copy()
    jumped[20:] = np.clip(jumped[20:].astype(int) + 60, 0, 255)
    report = measure(jumped, layout(40, [(0, 20, 0), (20, 40, 0)]))
    (seam,) = report["seams"]
    assert seam["frames"] == [19, 20] and seam["score"] > 2
    assert report["summary"]["worst_seam_score"] == seam["score"]


def test_a_blended_seam_spreads_the_jump_over_its_overlap():
    video = moving(40).astype(np.float32)
    step = np.zeros(40)
    step[16:24] = np.arange(1, 9) / 9  # an 8-frame linear blend into a chunk 45 levels brighter
    step[24:] = 1
    video = np.clip(video + 45 * step[:, None, None, None], 0, 255).astype(np.uint8)
    (seam,) = measure(video, layout(40, [(0, 24, 0), (16, 40, 8)]))["seams"]
    assert seam["frames"] == [15, 24]  # from the outgoing chunk alone to the incoming one alone
    cut = video.copy()
    cut[20:] = np.clip(moving(40)[20:].astype(int) + 45, 0, 255)
    (hard,) = measure(cut, layout(40, [(0, 20, 0), (20, 40, 0)]))["seams"]
    assert hard["score"] > 3 * seam["score"] and seam["score"] < 2


def test_colour_drift_is_the_delta_e_of_each_chunk_against_the_anchor():
    video = moving(30)
    video[15:] = np.clip(video[15:].astype(int) + np.array([30, 0, 0]), 0, 255).astype(np.uint8)
    shots = layout(30, [(0, 15, 0), (15, 30, 0)])
    shots[0].anchor = LabStats.of(video[:15])
    drift = {d["chunk"]: d["colour_drift"] for d in measure(video, shots, flow=False)["chunks"]}
    expected = delta_e(LabStats.of(video[15:]).mean, LabStats.of(video[:15]).mean)
    assert drift[0] < 1 and drift[1] == pytest.approx(expected, rel=0.1) and drift[1] > 5
