"""Colour anchoring and seam QA on synthetic frames whose right answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from longvid.stitching.colour import LabStats, anchor_colours, at, delta_e, lab_to_rgb, rgb_to_lab
from longvid.stitching.seams import FrameMeter, SeamReport, ShotSpan, chunk_spans, measure
from longvid.stitching.seams import layout as qa_layout


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
    shots[0].anchors = [(0, LabStats.of(video[:15]))]
    drift = {d["chunk"]: d["colour_drift"] for d in measure(video, shots, flow=False)["chunks"]}
    expected = delta_e(LabStats.of(video[15:]).mean, LabStats.of(video[:15]).mean)
    assert drift[0] < 1 and drift[1] == pytest.approx(expected, rel=0.1) and drift[1] > 5


def test_a_crossfade_is_not_scored_as_a_seam():
    # shot a pans, its chunk 1 taking over inside the crossfade into shot b (another picture): the encode stage
    # gives the meter each shot's own frames there, so the seam scores as it would with no crossfade at all
    a, b = moving(40), 255 - moving(40, seed=1)
    shots = [ShotSpan("a", range(0, 28), chunk_spans([(0, 26, 0), (18, 40, 8)], 0, 1.0, range(0, 28))),
             ShotSpan("b", range(28, 40), chunk_spans([(0, 40, 0)], 0, 1.0, range(28, 40)))]
    meter = FrameMeter([("a", 28), ("b", 12)], flow=False)
    for own_a, own_b in zip(a, b, strict=True):  # as `stages.encode.piece_frames` gives them
        meter.add({"a": own_a, "b": own_b})
    report = SeamReport(shots)
    report.add(0, meter.measures())
    (seam,) = report.report()["seams"]
    (alone,) = measure(a[:28], shots[:1], flow=False)["seams"]
    assert seam == alone and seam["score"] == pytest.approx(1.0, abs=0.1)


def test_longvid_qa_leaves_a_finished_videos_crossfades_out():
    a, b = moving(40), 255 - moving(40, seed=1)
    weights = np.clip((np.arange(40) - 20) / 16, 0, 1)[:, None, None, None]
    video = np.rint(a * (1 - weights) + b * weights).astype(np.uint8)
    manifest = {"shots": [
        {"id": "a", "frames": [0, 28], "rendered": [0, 36], "chunks": [
            {"window": [0, 26], "overlap": 0}, {"window": [18, 36], "overlap": 8}]},
        {"id": "b", "frames": [28, 40], "rendered": [20, 40], "chunks": [{"window": [0, 20], "overlap": 0}]}]}
    shots = qa_layout(manifest)
    assert shots[0].mixed == [range(20, 36)] and shots[1].mixed == [range(20, 36)]
    (seam,) = measure(video, shots, flow=False)["seams"]
    assert seam["frames"] == [17, 19] and seam["score"] == pytest.approx(1.0, abs=0.1)  # its pairs before the mix


def test_a_still_shot_scores_a_slow_dissolve_as_motion_and_a_jump_as_a_seam():
    # a held picture (only a burn-in changes) dissolving into another over frames 20-60; a seam in the dissolve
    rng = np.random.default_rng(3)
    first, second = (rng.integers(0, 256, (48, 64, 3)).astype(np.float32) for _ in range(2))
    x = np.clip((np.arange(80) - 20) / 40, 0, 1)
    ease = (x * x * (3 - 2 * x))[:, None, None, None]
    video = np.rint(first * (1 - ease) + second * ease).astype(np.uint8)
    video[:, -4:, :8] = (np.arange(80) % 7 * 30)[:, None, None, None]  # a frame counter: the only other motion
    shots = layout(80, [(0, 44, 0), (36, 80, 8)])
    (seam,) = measure(video, shots, flow=False)["seams"]
    assert seam["score"] < 1.3
    still = np.repeat(first[None].astype(np.uint8), 80, axis=0)
    still[40:] = np.clip(still[40:].astype(int) + 12, 0, 255)  # a chunk 12 levels brighter, cut in
    (jump,) = measure(still, layout(80, [(0, 40, 0), (40, 80, 0)]), flow=False)["seams"]
    assert jump["score"] > 10  # against the floor on motion, not against a still shot's zero


def test_colour_drift_follows_a_shot_that_moves_between_two_keyframes():
    # the camera pans from a warm wall to a cold window on purpose: no chunk has drifted, measured against both
    warm, cold = np.full((48, 64, 3), (230, 140, 40), np.uint8), np.full((48, 64, 3), (30, 60, 160), np.uint8)
    video = np.stack([np.concatenate([warm[:, t:], cold[:, :t]], axis=1) for t in np.linspace(0, 64, 60).astype(int)])
    shots = layout(60, [(0, 20, 0), (20, 40, 0), (40, 60, 0)])
    shots[0].anchors = [(0, LabStats.of(warm)), (59, LabStats.of(cold))]
    assert max(d["colour_drift"] for d in measure(video, shots, flow=False)["chunks"]) < 2
    shots[0].anchors = shots[0].anchors[:1]  # against the opening alone, as before
    assert max(d["colour_drift"] for d in measure(video, shots, flow=False)["chunks"]) > 40


def test_anchoring_targets_the_keyframes_interpolated_over_a_chunks_frames():
    dark, bright = LabStats(np.array([20.0, 0, 0]), np.array([5.0, 1, 1])), LabStats(np.array([80.0, 10, 0]),
                                                                                     np.array([15.0, 3, 1]))
    keyframes = [(10, dark), (50, bright)]
    assert at(keyframes, [0, 5, 10]).mean[0] == pytest.approx(20)  # held before the first keyframe
    middle = at(keyframes, range(20, 41))  # frames 20-40: on average halfway
    np.testing.assert_allclose(middle.mean, [50, 5, 0])
    np.testing.assert_allclose(middle.std, [10, 2, 1])
    # a chunk that reaches the last keyframe halfway is still partly on its way there
    assert 65 < at(keyframes, range(40, 61)).mean[0] < 80


def test_a_stack_of_frames_is_spread_as_its_frames_are_not_as_its_changes_over_time():
    ramp_up = np.stack([np.full((8, 8, 3), v, np.uint8) for v in range(40, 200, 10)])  # flat frames, brightening
    stats = LabStats.of(ramp_up)
    assert stats.std.max() < 0.01
    # so anchoring such a chunk to a flat keyframe keeps its brightening, and moves its mean
    anchored = anchor_colours(ramp_up, LabStats(stats.mean + [5, 0, 0], stats.std), 1.0)
    assert np.all(np.diff(anchored[:, 0, 0, 0].astype(int)) > 0)


def test_without_opencv_the_report_says_why_warp_errors_are_missing(monkeypatch):
    video, shots = moving(40), layout(40, [(0, 20, 0), (20, 40, 0)])
    measured = measure(video, shots)
    assert measured["seams"][0]["warp_error"] is not None
    assert measured["summary"]["warp_error_not_measured"] is None
    monkeypatch.setitem(__import__("sys").modules, "cv2", None)  # cv2 cannot be imported, as on a bare install
    bare = measure(video, shots)
    assert bare["seams"][0]["warp_error"] is None and bare["seams"][0]["score"] == measured["seams"][0]["score"]
    assert bare["summary"]["warp_error_not_measured"] == (
        "OpenCV is not installed: pip install 'longvid[rife]' (or opencv-python-headless)")


def test_each_report_says_what_it_measured():
    shots = layout(40, [(0, 20, 0), (20, 40, 0)])
    assert measure(moving(40), shots)["summary"]["measured_on"] == "the encoded video, as decoded"
    assert SeamReport(shots, measured_on="frames").report()["summary"]["measured_on"] == (
        "the rendered frames, before H.264 encoding")
