"""HunyuanVideo 1.5 through `longvid render`, on tiny real pipelines of its shapes (the 4x16x16 VAE with 32 latent
channels, Qwen2.5-VL and ByT5 text encoders, SigLIP for I2V) loaded with `from_pretrained`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("diffusers", reason="needs the [diffusers] extra")

import longvid  # noqa: E402
from tests.conftest import decode, probe, run_cli  # noqa: E402
from tests.stages.conftest import calls_to, storyboard  # noqa: E402


@pytest.mark.slow  # three renders; the stage is pinned quickly in test_pinned_outputs.py
def test_t2v_renders_exactly_and_a_seed_is_a_seed(tiny, tmp_path):
    model = str(tiny("hunyuan15"))
    board = storyboard(tmp_path, {"family": "hunyuanvideo15", "model": model, "chunk_frames": 9}, fps=24,
                       durations=(0.5,))
    out = tmp_path / "out.mp4"
    result = run_cli("render", str(board), "-o", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    info = probe(out)
    assert (info["frames"], info["width"], info["height"]) == (12, 64, 64)
    again = longvid.render(board, tmp_path / "again.mp4", cache_dir=tmp_path / "c1")
    assert again["execution"]["cached"] == 0 and np.array_equal(decode(out), decode(tmp_path / "again.mp4"))
    other = storyboard(tmp_path, {"family": "hunyuanvideo15", "model": model, "chunk_frames": 9}, fps=24,
                       durations=(0.5,), seed=8)
    longvid.render(other, tmp_path / "other.mp4", cache_dir=tmp_path / "c2")
    assert not np.array_equal(decode(out), decode(tmp_path / "other.mp4"))


def test_i2v_starts_on_the_keyframe_at_the_storyboards_size(tiny, tmp_path, monkeypatch, private_cache):
    from diffusers import HunyuanVideo15ImageToVideoPipeline

    seen = calls_to(monkeypatch, HunyuanVideo15ImageToVideoPipeline)
    videos = []
    for colour in [(220, 40, 40), (30, 60, 220)]:
        Image.fromarray(np.full((64, 96, 3), colour, np.uint8)).save(tmp_path / "start.png")
        board = storyboard(tmp_path, {"family": "hunyuanvideo15", "model": str(tiny("hunyuan15-i2v")),
                                      "chunk_frames": 9}, fps=24, durations=(0.375,),
                           shot_keyframes={0: [{"at": 0, "image": "start.png"}]})
        board.write_text(board.read_text().replace('"width": 64, "height": 64', '"width": 96, "height": 64'))
        manifest = longvid.render(board, tmp_path / f"{colour[0]}.mp4")
        videos.append(decode(tmp_path / f"{colour[0]}.mp4"))
        assert (manifest["video"]["width"], manifest["video"]["height"]) == (96, 64)
    assert [np.asarray(k["image"])[0, 0].tolist() for k in seen] == [[220, 40, 40], [30, 60, 220]]
    assert all("height" not in k and k["latents"].shape == (1, 32, 3, 4, 6) for k in seen)
    assert videos[0].shape == (9, 64, 96, 3) and np.abs(videos[0].astype(int) - videos[1]).mean() > 1


def test_its_frame_and_size_rules_are_checked(tiny, tmp_path):
    board = storyboard(tmp_path, {"family": "hunyuanvideo15", "model": str(tiny("hunyuan15")), "chunk_frames": 10},
                       fps=24, durations=(1.0,))
    board.write_text(board.read_text().replace('"width": 64', '"width": 72'))
    result = run_cli("validate", str(board))
    assert result.returncode == 2 and "must be a multiple of 16" in result.stderr
    board.write_text(board.read_text().replace('"width": 72', '"width": 64'))
    assert "chunk_frames 10 -> 13" in run_cli("validate", str(board)).stdout  # 4k+1
    assert json.loads(board.read_text())["models"]["video"]["family"] == "hunyuanvideo15"
