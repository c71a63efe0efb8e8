"""SkyReels-V2 through `longvid render`, on tiny real pipelines of its shapes loaded with `from_pretrained`: plain
T2V and I2V, and diffusion forcing, where each chunk continues the previous chunk's overlap through the DF
video-to-video pipeline as a cached task of its own, so a shot killed after its first chunk resumes at the second."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="needs the [diffusers] extra")

import longvid  # noqa: E402
from longvid.cache import ArtifactStore  # noqa: E402
from tests.conftest import ROOT, decode, faults, probe, run_cli, write  # noqa: E402
from tests.engine.test_execution import read_events  # noqa: E402
from tests.stages.conftest import calls_to, storyboard  # noqa: E402

FORCING = {"strategy": "diffusion-forcing", "overlap": 5, "addnoise_condition": 20}


def forcing_board(tmp_path: Path, model: str, *, seed: int = 7, durations=(1.5,)) -> Path:
    board = storyboard(tmp_path, {"family": "skyreels", "model": model, "chunk_frames": 13}, fps=24,
                       durations=durations, seed=seed)
    return write(board, json.dumps(json.loads(board.read_text()) | {"continuity": FORCING}))


@pytest.mark.slow  # whole renders; both stages are pinned quickly in test_pinned_outputs.py
@pytest.mark.parametrize("kind", ["skyreels-t2v", "skyreels-i2v"])
def test_plain_t2v_and_i2v_render_exactly(kind, tiny, tmp_path):
    board = storyboard(tmp_path, {"family": "skyreels", "model": str(tiny(kind)), "chunk_frames": 9}, fps=24,
                       durations=(0.5, 0.75), keyframes=str(tiny("sd")) if kind.endswith("i2v") else None)
    out = tmp_path / "out.mp4"
    result = run_cli("render", str(board), "-o", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    info = probe(out)
    assert (info["frames"], info["width"], info["height"]) == (30, 64, 64)  # 0.5 + 0.75 s at its native 24 fps
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    assert all(s["factor"] == 1 for s in manifest["shots"])


def test_each_chunk_continues_the_previous_chunks_overlap(tiny, tmp_path, monkeypatch, private_cache):
    from diffusers import SkyReelsV2DiffusionForcingPipeline, SkyReelsV2DiffusionForcingVideoToVideoPipeline

    board = forcing_board(tmp_path, str(tiny("skyreels-df")))
    opening = calls_to(monkeypatch, SkyReelsV2DiffusionForcingPipeline)
    continued = calls_to(monkeypatch, SkyReelsV2DiffusionForcingVideoToVideoPipeline)
    manifest = longvid.render(board, tmp_path / "a.mp4")
    chunks = manifest["shots"][0]["chunks"]
    assert len(chunks) == 4 and manifest["video"]["frames"] == 36  # 13 frames every 8
    assert len(opening) == 1 and "video" not in opening[0] and opening[0]["base_num_frames"] == 13
    store = ArtifactStore(private_cache)
    for call, (before, chunk) in zip(continued, zip(chunks, chunks[1:], strict=False), strict=True):
        start = chunk["window"][0] - before["window"][0]
        overlap = store.load(before["cache_key"])[start:start + 5]  # the previous chunk's overlap frames, given
        assert call["overlap_history"] == 5 and np.array_equal(np.stack([np.asarray(f) for f in call["video"]]),
                                                                overlap)
        assert (call["addnoise_condition"], call["ar_step"], call["fps"]) == (20, 0, 24)
        assert chunk["anchors"] == [{"task": before["task"], "frame": start, "count": 5, "index": 0}]
    assert len(continued) == 3


def test_same_seed_same_frames_another_seed_other_frames(tiny, tmp_path):
    model = str(tiny("skyreels-df"))
    (tmp_path / "b").mkdir()
    first = longvid.render(forcing_board(tmp_path, model), tmp_path / "a.mp4", cache_dir=tmp_path / "c1")
    again = longvid.render(forcing_board(tmp_path, model), tmp_path / "b.mp4", cache_dir=tmp_path / "c2")
    assert again["execution"]["cached"] == 0
    assert np.array_equal(decode(tmp_path / "a.mp4"), decode(tmp_path / "b.mp4"))
    longvid.render(forcing_board(tmp_path / "b", model, seed=8), tmp_path / "c.mp4", cache_dir=tmp_path / "c3")
    assert np.abs(decode(tmp_path / "c.mp4").astype(int) - decode(tmp_path / "a.mp4")).mean() > 0.5
    assert first["shots"][0]["continuity"]["strategy"] == "diffusion-forcing"


def test_a_shot_killed_after_its_first_chunk_resumes_at_the_second(tiny, tmp_path, monkeypatch, private_cache):
    board = forcing_board(tmp_path, str(tiny("skyreels-df")))
    output = tmp_path / "out.mp4"
    faults(tmp_path, monkeypatch, {"chunk:s0:1": ["exit"]})  # the render's process dies as chunk 1 starts

    def render(log: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "longvid", "render", str(board), "-o", str(output), "-q",
                               "--log-json", str(log)], cwd=ROOT, capture_output=True, text=True)

    killed = render(tmp_path / "killed.jsonl")
    assert killed.returncode == -9 and not output.exists()
    events = read_events(tmp_path / "killed.jsonl")
    assert {e["task"] for e in events if e["type"] == "succeeded" and e["kind"] == "chunk"} == {"chunk:s0:0"}

    resumed = render(tmp_path / "resumed.jsonl")
    assert resumed.returncode == 0, resumed.stderr
    events = read_events(tmp_path / "resumed.jsonl")
    assert "chunk:s0:0" in {e["task"] for e in events if e["type"] == "cached"}
    assert {e["task"] for e in events if e["type"] == "started" and e["kind"] == "chunk"} == \
        {"chunk:s0:1", "chunk:s0:2", "chunk:s0:3"}
    monkeypatch.delenv("LONGVID_FAULTS")
    longvid.render(board, tmp_path / "whole.mp4", cache_dir=tmp_path / "other-cache")
    assert output.read_bytes() == (tmp_path / "whole.mp4").read_bytes()


def test_diffusion_forcing_needs_a_df_checkpoint_and_whole_latent_frames(tiny, tmp_path):
    board = forcing_board(tmp_path, str(tiny("skyreels-t2v")))
    result = run_cli("validate", str(board))
    assert result.returncode == 2 and "is not a SkyReels-V2 diffusion-forcing model" in result.stderr
    board = write(board, board.read_text().replace(str(tiny("skyreels-t2v")), str(tiny("skyreels-df")))
                  .replace('"overlap": 5', '"overlap": 6'))
    result = run_cli("validate", str(board))
    assert result.returncode == 2 and "`overlap` (6) must be 1 more than a multiple of 4" in result.stderr
