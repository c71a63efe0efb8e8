"""Continuity strategies through tiny real diffusers pipelines: the noise, the frames and the output they pass."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="needs the [diffusers] extra")

import longvid  # noqa: E402
from longvid.cache import ArtifactStore  # noqa: E402
from tests.conftest import write  # noqa: E402
from tests.stages.conftest import frames_key, storyboard  # noqa: E402


def spy_on(monkeypatch, cls, record):
    original = cls.__call__

    def spy(self, *args, **kwargs):
        record(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "__call__", spy)


@pytest.mark.parametrize("mode", ["repeat", "shuffle"])
def test_shared_noise_chunks_share_the_noise_of_their_overlap(mode, tiny, tmp_path, monkeypatch):
    from diffusers import WanPipeline

    latents = []
    spy_on(monkeypatch, WanPipeline, lambda kwargs: latents.append(kwargs["latents"].clone()))
    board = storyboard(tmp_path, {"family": "wan", "model": str(tiny("wan")), "chunk_frames": 17}, fps=16,
                       durations=(1.8125,))  # 29 frames: two chunks of 17 overlapping by 5 (2 latent frames)
    data = json.loads(board.read_text())
    data["continuity"] = {"strategy": "shared-noise", "overlap": 5, "noise": mode}
    write(board, json.dumps(data))
    longvid.render(board, tmp_path / "out.mp4")

    first, second = latents  # [1, 16, 5 latent frames, h, w]; the second chunk starts 3 latent frames later
    assert first.shape[2] == 5 and second.shape[2] == 5
    assert np.array_equal(first[:, :, 3:], second[:, :, :2])  # the overlap: identical noise
    later = [second[:, :, j] for j in range(2, 5)]  # past the first window: its noise frames come round again
    picks = [next(k for k in range(5) if np.array_equal(frame, first[:, :, k])) for frame in later]
    if mode == "repeat":
        assert picks == [0, 1, 2]  # in order
    else:
        assert picks != [0, 1, 2] and len(set(picks)) == 3  # shuffled within the window


def test_without_shared_noise_the_overlap_has_independent_noise(tiny, tmp_path, monkeypatch):
    from diffusers import WanPipeline

    latents = []
    spy_on(monkeypatch, WanPipeline, lambda kwargs: latents.append(kwargs["latents"].clone()))
    board = storyboard(tmp_path, {"family": "wan", "model": str(tiny("wan")), "chunk_frames": 17}, fps=16,
                       durations=(1.8125,))
    data = json.loads(board.read_text())
    data["continuity"] = {"overlap": 5}
    write(board, json.dumps(data))
    longvid.render(board, tmp_path / "out.mp4")
    first, second = latents
    assert not np.array_equal(first[:, :, 3:], second[:, :, :2])


def test_prefix_passes_the_previous_chunks_frames_at_its_start(tiny, tmp_path, monkeypatch, private_cache):
    from diffusers import LTXConditionPipeline

    seen = []
    spy_on(monkeypatch, LTXConditionPipeline, lambda kwargs: seen.append(
        [(c.frame_index, c.strength, [np.asarray(f) for f in c.video] if c.video is not None else [np.asarray(c.image)])
         for c in kwargs["conditions"]]))
    board = storyboard(tmp_path, {"family": "ltx", "model": str(tiny("ltx")), "chunk_frames": 9}, fps=24,
                       durations=(0.75,), keyframes=str(tiny("sd")))  # 18 frames: chunks at 0, 6 and 12
    data = json.loads(board.read_text())
    data["continuity"] = {"strategy": "prefix", "overlap": 3, "prefix_frames": 3, "prefix_strength": 0.7}
    write(board, json.dumps(data))
    manifest = longvid.render(board, tmp_path / "out.mp4")

    store = ArtifactStore(private_cache)
    shot = manifest["shots"][0]
    keyframe = store.load(shot["keyframes"][0]["cache_key"])
    chunks = [store.load(frames_key(c)) for c in shot["chunks"]]
    assert len(seen) == len(chunks) == 3
    (opening,) = seen[0]
    assert opening[0] == 0 and np.array_equal(opening[2][0], keyframe)
    for i in (1, 2):
        ((index, strength, frames),) = seen[i]
        start = shot["chunks"][i]["window"][0] - shot["chunks"][i - 1]["window"][0]
        assert index == 0 and strength == 0.7 and len(frames) == 3
        assert all(np.array_equal(f, chunks[i - 1][start + j]) for j, f in enumerate(frames))


def test_a_single_window_over_the_whole_shot_is_exactly_the_plain_pipeline(tiny, tmp_path, private_cache):
    import torch
    from diffusers import WanPipeline

    board = storyboard(tmp_path, {"family": "wan", "model": str(tiny("wan")), "chunk_frames": 9}, fps=16,
                       durations=(0.5625,))  # 9 frames: one chunk, nothing trimmed or blended
    manifest = longvid.render(board, tmp_path / "out.mp4")
    (chunk,) = manifest["shots"][0]["chunks"]
    assert chunk["frames"] == chunk["used"] == 9
    ours = ArtifactStore(private_cache).load(frames_key(chunk))

    pipe = WanPipeline.from_pretrained(tiny("wan"))
    plain = pipe(prompt="a boat at sea", num_frames=9, height=64, width=64, num_inference_steps=2, guidance_scale=5.0,
                 generator=torch.Generator("cpu").manual_seed(chunk["seed"]), output_type="np").frames[0]
    assert np.array_equal(ours, np.clip(np.rint(plain * 255), 0, 255).astype(np.uint8))


def test_colour_anchoring_pulls_chunks_to_the_keyframe_and_qa_lands_in_the_manifest(tiny, tmp_path):
    board = storyboard(tmp_path, {"family": "wan", "model": str(tiny("wan-i2v")), "chunk_frames": 9}, fps=16,
                       durations=(1.0,), keyframes=str(tiny("sd")))
    plain = longvid.render(board, tmp_path / "plain.mp4")
    data = json.loads(board.read_text())
    data["continuity"] = {"colour_anchor": 1.0, "overlap": 2}
    write(board, json.dumps(data))
    anchored = longvid.render(board, tmp_path / "anchored.mp4")
    # anchoring is applied when encoding: the chunks come from the cache, only the segments are made again
    assert all(c["cached"] for s in anchored["shots"] for c in s["chunks"] + s["keyframes"])
    assert not any(s["cached"] for s in anchored["segments"])
    drift = [[c["colour_drift"] for c in m["qa"]["chunks"]] for m in (plain, anchored)]
    assert max(drift[1]) < 0.6 * max(drift[0]) and np.mean(drift[1]) < np.mean(drift[0])
    assert len(anchored["qa"]["seams"]) == 1 and anchored["qa"]["seams"][0]["score"] > 0


# family: (pipeline kind, chunk frames, overlap, fps, seconds for two chunks, latent frames shared, latent axis)
TWO_CHUNKS = {"wan": ("wan", 17, 5, 16, 1.8125, 2, 2), "animatediff": ("animatediff", 16, 4, 8, 3.5, 4, 2)}


def render_two_chunks(tiny, folder, family: str, strategy: str) -> dict:
    kind, chunk, overlap, fps, seconds, _, _ = TWO_CHUNKS[family]
    folder.mkdir()
    board = storyboard(folder, {"family": family, "model": str(tiny(kind)), "chunk_frames": chunk}, fps=fps,
                       durations=(seconds,))
    data = json.loads(board.read_text())
    data["models"]["video"]["steps"] = 4
    data["continuity"] = {"strategy": strategy, "overlap": overlap}
    write(board, json.dumps(data))
    return longvid.render(board, folder / "out.mp4", cache_dir=folder / "cache")


@pytest.mark.parametrize("family", [f if f == "wan" else pytest.param(f, marks=pytest.mark.slow)
                                    for f in sorted(TWO_CHUNKS)])
def test_latent_blend_makes_the_overlap_of_neighbouring_chunks_converge(family, tiny, tmp_path, monkeypatch):
    from longvid.stages import pipelines, video

    _, chunk, overlap, _, _, shared, axis = TWO_CHUNKS[family]
    # apart: the chunks denoised on their own (their frames are in the cache)
    manifest = render_two_chunks(tiny, tmp_path / "apart", family, "overlap-blend")
    store = ArtifactStore(tmp_path / "apart" / "cache")
    a0, a1 = (store.load(frames_key(c)).astype(np.float32) for c in manifest["shots"][0]["chunks"])

    # together: one task; catch each chunk's decoded frames on their way to the blend, and its final latents
    decoded, finals = [], {}
    blend, hold = video.blend_chunks, pipelines.hold
    monkeypatch.setattr(video, "blend_chunks", lambda windows, load, kind: decoded.extend(
        load(i).astype(np.float32) for i in range(len(windows))) or blend(windows, load, kind))

    def holding(settings, load):
        pipe = hold(settings, load)
        original = type(pipe).__call__

        def spy(self, *args, **kwargs):
            callback = kwargs["callback_on_step_end"]

            def recording(p, step, timestep, tensors):
                out = callback(p, step, timestep, tensors)
                finals[threading.get_ident()] = out["latents"].clone()  # one thread per chunk
                return out

            return original(self, *args, **(kwargs | {"callback_on_step_end": recording}))

        monkeypatch.setattr(type(pipe), "__call__", spy)
        return pipe

    monkeypatch.setattr(video, "hold", holding)
    manifest = render_two_chunks(tiny, tmp_path / "together", family, "latent-blend")
    (task,) = manifest["shots"][0]["chunks"]
    assert task["task"] == "chunk:s0:0" and [w[0] for w in task["windows"]] == [0, chunk - overlap]
    # after the last step both chunks hold the very same latents where they overlap
    assert len(finals) == 2, [(k, v.shape) for k, v in finals.items()]
    x, y = finals.values()
    n = x.shape[axis]
    pairs = [(x.narrow(axis, n - shared, shared), y.narrow(axis, 0, shared)),
             (y.narrow(axis, n - shared, shared), x.narrow(axis, 0, shared))]
    assert any(np.array_equal(a, b) for a, b in pairs)
    if family == "wan":  # its shot's latent timeline is decoded as one (tests/stages/test_decode.py): no blend
        assert not decoded and "decode" in task
        return
    assert len(decoded) == 2, ([len(d) for d in decoded], manifest["execution"])
    t0, t1 = decoded
    assert [len(f) for f in (t0, t1, a0, a1)] == [chunk] * 4, [len(f) for f in (t0, t1, a0, a1)]
    together = np.abs(t0[chunk - overlap:] - t1[:overlap]).mean()
    apart = np.abs(a0[chunk - overlap:] - a1[:overlap]).mean()
    assert together < 0.05 * apart  # frames decode one by one: the same latents are the same pixels


def test_qa_retry_regenerates_a_visible_seam_with_new_seeds_and_keeps_the_best_attempt(tiny, tmp_path):
    board = storyboard(tmp_path, {"family": "wan", "model": str(tiny("wan")), "chunk_frames": 9}, fps=16,
                       durations=(1.0,))
    data = json.loads(board.read_text())
    data["continuity"] = {"strategy": "cut"}
    write(board, json.dumps(data))
    plain = longvid.render(board, tmp_path / "plain.mp4", cache_dir=tmp_path / "cache", qa_retry=2)
    (seam,) = plain["qa"]["seams"]
    assert len(plain["qa"]["attempts"]) == 1 and seam["score"] < 2.0  # below the threshold: nothing redone

    # a threshold below the seam's score: the chunk after it is redone, twice at most
    manifest = longvid.render(board, tmp_path / "out.mp4", cache_dir=tmp_path / "cache", qa_retry=2,
                              qa_threshold=seam["score"] / 2)
    attempts = manifest["qa"]["attempts"]
    seeds = [a["regenerate"][0]["seed"] for a in attempts if a["regenerate"]]
    assert attempts[0]["regenerate"] == [{"shot": "s0", "chunk": 1, "score": seam["score"], "task": "chunk:s0:1",
                                          "seed": plain["shots"][0]["chunks"][1]["seed"]}]
    assert len(attempts) == 3 and len(set(seeds)) == len(seeds)  # a new seed every round, bounded by qa_retry
    final = manifest["shots"][0]["chunks"]
    assert final[0]["seed"] == plain["shots"][0]["chunks"][0]["seed"]  # the chunk before the seam is kept
    # the video is made of the attempt whose seam scored lowest, whichever round it came in
    scores = [a["regenerate"][0]["score"] for a in attempts]
    best = scores.index(min(scores))
    assert best != len(scores) - 1, scores  # this storyboard's last attempt is not its best
    assert final[1]["seed"] == seeds[best] and manifest["qa"]["kept"] == {"chunk:s0:1": seeds[best]}
    assert manifest["qa"]["seams"][0]["score"] == min(scores)
