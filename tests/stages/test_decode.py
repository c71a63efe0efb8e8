"""Latents as artifacts: a chunk of Wan or CogVideoX stores its latents, a decode task makes its frames.

Out of memory in the decode costs the decode alone; its settings are in its key; under latent-blend the shot's
latent timeline is decoded as one, so frames that neighbouring chunks share are the same pixels.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="needs the [diffusers] extra")

import longvid  # noqa: E402
from longvid.cache import ArtifactStore, Latents  # noqa: E402
from tests.conftest import probe, write  # noqa: E402
from tests.stages.conftest import calls_to, decode, storyboard  # noqa: E402

TWO_CHUNKS = {"family": "wan", "chunk_frames": 9}  # 16 fps, 1 s: two chunks of 9 frames


def _board(tmp_path, tiny, **video):
    return storyboard(tmp_path, TWO_CHUNKS | {"model": str(tiny("wan"))} | video, fps=16, durations=(1.0,))


def test_chunks_store_latents_and_decodes_store_frames(tiny, tmp_path, private_cache):
    manifest = longvid.render(_board(tmp_path, tiny), tmp_path / "out.mp4")
    store = ArtifactStore(private_cache)
    chunks = manifest["shots"][0]["chunks"]
    assert len(chunks) == 2
    for chunk in chunks:
        latents, frames = store.record(chunk["cache_key"]), store.record(chunk["decode"]["cache_key"])
        assert latents["artifact"] == "artifact.npy" and frames["artifact"] == "artifact.mkv"
        # [B, 16, latent frames, h, w]: 9 frames are 3 latent frames, 64 px are 8 latents
        assert latents["shape"] == [1, 16, 3, 8, 8] and latents["dtype"] == "float32"
        assert frames["frames"] == chunk["frames"] == 9 and frames["shape"][1:] == [64, 64, 3]
        assert store.latents(chunk["cache_key"]).array.shape == (1, 16, 3, 8, 8)
        # raw frames at uint8 are 9*64*64*3 bytes; the latents, at float32, 16*3*8*8*4: 9 times fewer
        assert latents["bytes"] < 9 * 64 * 64 * 3 / 6
    assert probe(tmp_path / "out.mp4")["frames"] == 16


def test_out_of_memory_in_the_decode_retries_only_the_decode_with_tiling(tiny, tmp_path, monkeypatch,
                                                                         private_cache):
    from diffusers import WanPipeline

    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps({"decode:s0:1": ["oom"]}))
    monkeypatch.setenv("LONGVID_FAULTS", str(faults))
    calls = calls_to(monkeypatch, WanPipeline)
    board = _board(tmp_path, tiny)
    manifest = longvid.render(board, tmp_path / "out.mp4")
    assert len(calls) == 2  # each chunk sampled once
    first, second = manifest["shots"][0]["chunks"]
    assert manifest["execution"]["retried"] == ["decode:s0:1"]
    assert (second["attempts"], second["decode"]["attempts"], first["decode"]["attempts"]) == (1, 2, 1)
    store = ArtifactStore(private_cache)
    # the retry decoded with tiling and slicing, and its key says so
    tiled = store.record(second["decode"]["cache_key"])
    assert second["decode"]["tiling"] is True and tiled["params"]["tiling"] and tiled["params"]["slicing"]
    assert not store.record(first["decode"]["cache_key"])["params"]["tiling"]
    assert probe(tmp_path / "out.mp4")["frames"] == 16

    # the next render knows: it plans that decode with tiling at once, and finds everything in the cache
    monkeypatch.delenv("LONGVID_FAULTS")
    again = longvid.render(board, tmp_path / "again.mp4")
    assert again["execution"]["ran"] == 1 and len(calls) == 2  # the concat, which writes the output
    assert again["shots"][0]["chunks"][1]["decode"]["cache_key"] == second["decode"]["cache_key"]
    assert (tmp_path / "again.mp4").read_bytes() == (tmp_path / "out.mp4").read_bytes()


def test_a_decode_setting_reruns_only_the_decodes(tiny, tmp_path, private_cache):
    board = _board(tmp_path, tiny)
    longvid.render(board, tmp_path / "out.mp4")
    data = json.loads(board.read_text())
    data["models"]["video"]["vae_tiling"] = True
    write(board, json.dumps(data))
    rows = {row.task: row for row in longvid.status(board)}
    assert all(rows[t].state == "fresh" for t in rows if t.startswith(("chunk:", "keyframe:")))
    assert {t for t in rows if t.startswith("decode:") and rows[t].state != "fresh"} == {"decode:s0:0", "decode:s0:1"}
    assert any("tiling" in reason for reason in rows["decode:s0:0"].reasons)


def test_latent_blend_decodes_the_shots_timeline_as_one(tiny, tmp_path, private_cache):
    board = _board(tmp_path, tiny, chunk_frames=17)
    data = json.loads(board.read_text())
    data["shots"][0]["duration"] = 1.8125  # 29 frames: two chunks of 17 overlapping by 5
    data["continuity"] = {"strategy": "latent-blend", "overlap": 5}
    write(board, json.dumps(data))
    manifest = longvid.render(board, tmp_path / "out.mp4")
    (task,) = manifest["shots"][0]["chunks"]
    assert [w[0] for w in task["windows"]] == [0, 12]
    store = ArtifactStore(private_cache)
    timeline = store.latents(task["cache_key"]).array  # the shot's latents: 8 latent frames for 29 frames
    assert timeline.shape == (1, 16, 8, 8, 8)
    shot = store.load(task["decode"]["cache_key"])
    assert len(shot) == 29

    # decoded chunk by chunk (as before), the frames both chunks cover differ between them; decoded as one
    # timeline there is one set of them, and it is what the shot shows
    a = decode(Latents(timeline[:, :, :5]), "wan", str(tiny("wan")), (64, 64), 17).astype(np.float32)
    b = decode(Latents(timeline[:, :, 3:]), "wan", str(tiny("wan")), (64, 64), 17).astype(np.float32)
    assert np.abs(a[12:] - b[:5]).mean() > 0.5  # the causal VAE decodes b's first latent frame alone
    whole = decode(Latents(timeline), "wan", str(tiny("wan")), (64, 64), 29)
    assert np.array_equal(shot, whole)
