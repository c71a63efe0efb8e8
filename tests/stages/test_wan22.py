"""Wan 2.2 through `longvid render`, on tiny real pipelines of its shapes loaded with `from_pretrained`: the A14B
models' two experts (both used, `guidance_2` reaching the call, latent-blend serialising both), and TI2V-5B (its
48-channel VAE's size multiple of 32 checked at validation, text and image modes, its native 24 fps)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("diffusers", reason="needs the [diffusers] extra")

import longvid  # noqa: E402
from tests.conftest import decode, probe, run_cli, write  # noqa: E402
from tests.stages.conftest import calls_to, storyboard  # noqa: E402


def folder(path: Path) -> Path:
    path.mkdir()
    return path


def frames_of(board: Path, out: Path, cache: Path) -> np.ndarray:
    longvid.render(board, out, cache_dir=cache)
    return decode(out)


def test_a14b_renders_through_both_experts_and_takes_guidance_2(tiny, tmp_path, monkeypatch):
    from diffusers import WanPipeline

    video = {"family": "wan", "model": str(tiny("wan22-t2v")), "chunk_frames": 9, "guidance_2": 3.0}
    board = storyboard(tmp_path, video, fps=16, durations=(1.0,))
    out = tmp_path / "a.mp4"
    result = run_cli("render", str(board), "-o", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    info = probe(out)
    assert (info["frames"], info["width"], info["height"]) == (16, 64, 64)

    seen = calls_to(monkeypatch, WanPipeline)
    first = frames_of(board, tmp_path / "b.mp4", tmp_path / "c1")
    monkeypatch.undo()
    assert seen and all(k["guidance_scale_2"] == 3.0 for k in seen)
    assert np.array_equal(first, frames_of(board, tmp_path / "c.mp4", tmp_path / "c2")), "same seed, same frames"
    reseeded = storyboard(folder(tmp_path / "seed"), video, fps=16, durations=(1.0,), seed=8)
    assert not np.array_equal(first, frames_of(reseeded, tmp_path / "d.mp4", tmp_path / "c3"))
    # a model that differs only in its low-noise expert renders differently: the second expert is used
    other = storyboard(folder(tmp_path / "other"), video | {"model": str(tiny("wan22-t2v-other-expert"))}, fps=16,
                       durations=(1.0,))
    assert np.abs(frames_of(other, tmp_path / "e.mp4", tmp_path / "c4").astype(int) - first).mean() > 0.5


def test_guidance_2_on_a_one_expert_model_is_refused(tiny, tmp_path):
    board = storyboard(tmp_path, {"family": "wan", "model": str(tiny("wan")), "guidance_2": 3.0}, fps=16,
                       durations=(1.0,))
    result = run_cli("validate", str(board))
    assert result.returncode == 2 and "`guidance_2` is for two-expert models" in result.stderr


@pytest.mark.slow  # six renders; each strategy's code path is also covered by the Wan 2.1 tests
@pytest.mark.parametrize("strategy", [{"strategy": "latent-blend", "overlap": 5},
                                      {"strategy": "shared-noise", "overlap": 5},
                                      {"strategy": "prefix", "overlap": 4}])
def test_continuity_strategies_work_with_two_experts(strategy, tiny, tmp_path):
    kind = "wan22-i2v" if strategy["strategy"] == "prefix" else "wan22-t2v"
    board = storyboard(tmp_path, {"family": "wan", "model": str(tiny(kind)), "chunk_frames": 13}, fps=16,
                       durations=(1.5,), keyframes=str(tiny("sd")) if kind == "wan22-i2v" else None)
    data = json.loads(board.read_text()) | {"continuity": strategy}
    write(board, json.dumps(data))
    manifest = longvid.render(board, tmp_path / "a.mp4", cache_dir=tmp_path / "c1")
    assert manifest["video"]["frames"] == 24 and len(manifest["shots"][0]["chunks"]) >= 1
    again = longvid.render(board, tmp_path / "b.mp4", cache_dir=tmp_path / "c2")
    assert again["execution"]["cached"] == 0
    assert np.array_equal(decode(tmp_path / "a.mp4"), decode(tmp_path / "b.mp4"))  # threads share both experts


def test_ti2v_sizes_are_multiples_of_32_at_validation(tiny, tmp_path):
    board = storyboard(tmp_path, {"family": "wan", "model": str(tiny("wan22-ti2v"))}, fps=24, durations=(1.0,))
    write(board, board.read_text().replace('"width": 64, "height": 64', '"width": 80, "height": 80'))
    out = tmp_path / "out.mp4"
    result = run_cli("render", str(board), "-o", str(out))
    assert result.returncode == 2
    assert "`width` (80) must be a multiple of 32" in result.stderr and "the next legal width is 96" in result.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["story.yaml"]


def test_ti2v_renders_from_text_and_from_an_image_at_24_fps(tiny, tmp_path, monkeypatch):
    from diffusers import WanImageToVideoPipeline

    model = str(tiny("wan22-ti2v"))
    text = storyboard(tmp_path, {"family": "wan", "model": model, "chunk_frames": 9}, fps=24, durations=(0.75,))
    manifest = longvid.render(text, tmp_path / "t.mp4", cache_dir=tmp_path / "c0")
    assert manifest["shots"][0]["factor"] == 1 and manifest["video"]["frames"] == 18  # generated at 24 fps

    seen = calls_to(monkeypatch, WanImageToVideoPipeline)
    videos = []
    starts = []
    for colour in [(220, 40, 40), (30, 60, 220)]:
        seen.clear()
        Image.fromarray(np.full((64, 64, 3), colour, np.uint8)).save(tmp_path / "start.png")
        board = storyboard(tmp_path, {"family": "wan", "model": model, "chunk_frames": 9}, fps=24,
                           durations=(0.75,), shot_keyframes={0: [{"at": 0, "image": "start.png"}]})
        videos.append(frames_of(board, tmp_path / f"{colour[0]}.mp4", tmp_path / f"c{colour[0]}"))
        starts.append(np.asarray(seen[0]["image"])[0, 0].tolist())  # the first chunk's; the later ones continue from the chunk before
    assert starts == [[220, 40, 40], [30, 60, 220]]  # the start image reaches the call
    assert np.abs(videos[0].astype(int) - videos[1]).mean() > 1, "two start images, two videos"


def test_every_known_hub_id_is_classified_by_its_whole_name(tmp_path):
    from longvid.families import FAMILIES, KNOWN_CHECKPOINTS, checkpoint

    expected = {
        "stabilityai/stable-video-diffusion-img2vid-xt": ({"first"}, 64, 7),
        "stabilityai/stable-video-diffusion-img2vid": ({"first"}, 64, 7), "THUDM/CogVideoX-2b": ({"text"}, 16, 8), "THUDM/CogVideoX-5b": ({"text"}, 16, 8),
        "THUDM/CogVideoX-5b-I2V": ({"first"}, 16, 8),
        "Wan-AI/Wan2.1-T2V-1.3B-Diffusers": ({"text"}, 16, 16), "Wan-AI/Wan2.1-T2V-14B-Diffusers": ({"text"}, 16, 16),
        "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers": ({"first"}, 16, 16),
        "Wan-AI/Wan2.1-I2V-14B-720P-Diffusers": ({"first"}, 16, 16),
        "Wan-AI/Wan2.1-FLF2V-14B-720P-Diffusers": ({"first", "last", "needs-last"}, 16, 16),
        "Wan-AI/Wan2.1-VACE-1.3B-diffusers": ({"text", "first", "last", "any", "references"}, 16, 16),
        "Wan-AI/Wan2.1-VACE-14B-diffusers": ({"text", "first", "last", "any", "references"}, 16, 16),
        "Wan-AI/Wan2.2-T2V-A14B-Diffusers": ({"text"}, 16, 16), "Wan-AI/Wan2.2-I2V-A14B-Diffusers": ({"first"}, 16, 16),
        "Wan-AI/Wan2.2-TI2V-5B-Diffusers": ({"text", "first"}, 32, 24),
        "Skywork/SkyReels-V2-DF-1.3B-540P-Diffusers": ({"text", "first", "forcing"}, 16, 24),
        "Skywork/SkyReels-V2-DF-14B-540P-Diffusers": ({"text", "first", "forcing"}, 16, 24),
        "Skywork/SkyReels-V2-DF-14B-720P-Diffusers": ({"text", "first", "forcing"}, 16, 24),
        "Skywork/SkyReels-V2-T2V-14B-540P-Diffusers": ({"text"}, 16, 24),
        "Skywork/SkyReels-V2-I2V-1.3B-540P-Diffusers": ({"first"}, 16, 24),
        "Skywork/SkyReels-V2-I2V-14B-540P-Diffusers": ({"first"}, 16, 24),
        "hunyuanvideo-community/HunyuanVideo-1.5-480p_t2v": ({"text"}, 16, 24),
        "hunyuanvideo-community/HunyuanVideo-1.5-720p_t2v": ({"text"}, 16, 24),
        "hunyuanvideo-community/HunyuanVideo-1.5-480p_i2v": ({"first"}, 16, 24),
        "hunyuanvideo-community/HunyuanVideo-1.5-720p_i2v": ({"first"}, 16, 24),
        "Lightricks/LTX-2": ({"text", "first", "last", "any", "sound"}, 32, 24),
        "Lightricks/LTX-Video": ({"text", "first", "last", "any"}, 32, 24),
        "Lightricks/LTX-Video-0.9.5": ({"text", "first", "last", "any"}, 32, 24),
        "Lightricks/LTX-Video-0.9.7-dev": ({"text", "first", "last", "any"}, 32, 24),
    }
    assert set(expected) == set(KNOWN_CHECKPOINTS)
    known = {m for f in FAMILIES.values() for m in f.known_models if " " not in m}  # not "an SD 1.5 model plus ..."
    assert known <= set(KNOWN_CHECKPOINTS), "every family's known model is classified"
    family_of = {m: f for f in FAMILIES.values() for m in f.known_models}
    for model, (abilities, multiple, fps) in expected.items():
        found = checkpoint(family_of[model], model, tmp_path)
        assert (found.abilities, found.size_multiple, found.native_fps) == (frozenset(abilities), multiple, fps), model
    assert checkpoint(FAMILIES["wan"], "Wan-AI/Wan2.2-T2V-A14B-Diffusers", tmp_path).experts == 2
    # an unknown id by its tokens: "TI2V" is not "I2V"
    assert checkpoint(FAMILIES["wan"], "someone/Wan2.2-TI2V-5B-finetune", tmp_path).abilities == {"text", "first"}
    assert checkpoint(FAMILIES["wan"], "someone/wan-i2v-finetune", tmp_path).abilities == {"first"}
