"""The models section: what a storyboard asks of a model family is checked before anything loads.

Model folders here hold only the JSON a diffusers folder declares itself with (model_index.json, a transformer
config), which is all the validator reads; nothing here imports torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli, write


def fake_model(root: Path, name: str, cls: str | None, transformer: dict | None = None) -> str:
    folder = root / name
    folder.mkdir()
    if cls:
        (folder / "model_index.json").write_text(json.dumps({"_class_name": cls}))
    if transformer:
        (folder / "transformer").mkdir()
        (folder / "transformer" / "config.json").write_text(json.dumps(transformer))
    return f"./{name}"


def board(models: str, shots: str = "  - {prompt: a cat, duration: 2}\n", size: str = "width: 64\nheight: 64\n") -> str:
    return f"{size}models:\n{models}shots:\n{shots}"


CASES = {
    "unknown family": (lambda r: board("  video: {family: wann, model: x/y}\n"),
                       "`family` must be one of preview, svd, cogvideox, wan, ltx, ltx2, animatediff, skyreels, hunyuanvideo15 (got 'wann') (did you mean `wan`?)"),
    "family without a model": (lambda r: board("  video: {family: wan}\n"),
                               "family 'wan' needs `model`: a hub id such as 'Wan-AI/Wan2.1-T2V-1.3B-Diffusers'"),
    "folder not in diffusers format": (
        lambda r: board(f"  video: {{family: wan, model: {fake_model(r, 'raw', None)}}}\n"),
        "is not a model in diffusers format (no model_index.json)"),
    "missing folder": (lambda r: board("  video: {family: wan, model: ./models/nope}\n"),
                       "model folder not found: ./models/nope"),
    "checkpoint of another family": (
        lambda r: board(f"  video: {{family: wan, model: {fake_model(r, 'cog', 'CogVideoXPipeline')}}}\n"),
        "is a CogVideoXPipeline, not a wan model"),
    "last-frame anchoring on svd": (
        lambda r: board(f"  keyframes: {{model: {fake_model(r, 'sd', 'StableDiffusionPipeline')}}}\n"
                        f"  video: {{family: svd, model: {fake_model(r, 'svd', 'StableVideoDiffusionPipeline')}}}\n",
                        "  - prompt: a cat\n    duration: 2\n    keyframes: [{at: 2, prompt: the cat sleeps}]\n"),
        "conditions on the first frame only: it cannot pass through a keyframe at 2 s"),
    "svd without an image to start from": (
        lambda r: board(f"  video: {{family: svd, model: {fake_model(r, 'svd', 'StableVideoDiffusionPipeline')}}}\n"),
        "needs an image to start each shot: set models.keyframes.model"),
    "keyframes on a text-only model": (
        lambda r: board(f"  video: {{family: wan, model: {fake_model(r, 't2v', 'WanPipeline')}}}\n",
                        "  - prompt: a cat\n    duration: 2\n    keyframes: [{at: 0, prompt: a cat}]\n"),
        "generates from text only: it cannot start from or pass through a keyframe"),
    "size the family cannot take": (
        lambda r: board(f"  video: {{family: ltx, model: {fake_model(r, 'ltx', 'LTXPipeline')}}}\n",
                        size="width: 80\nheight: 64\n"),
        "`width` (80) must be a multiple of 32 for ltx"),
    "keyframe-anchored on svd": (
        lambda r: board(f"  keyframes: {{model: {fake_model(r, 'sd', 'StableDiffusionPipeline')}}}\n"
                        f"  video: {{family: svd, model: {fake_model(r, 'svd', 'StableVideoDiffusionPipeline')}}}\n"
                        "continuity: {strategy: keyframe-anchored}\n"),
        "cannot end a chunk on a keyframe: keyframe-anchored needs a first-last-frame model"),
    "prefix on a text-only model": (
        lambda r: board(f"  video: {{family: wan, model: {fake_model(r, 't2v', 'WanPipeline')}}}\n"
                        "continuity: {strategy: prefix}\n"),
        "generates from text only: prefix needs a model that continues from an image"),
    "several prefix frames on an image-to-video model": (
        lambda r: board(f"  keyframes: {{model: {fake_model(r, 'sd', 'StableDiffusionPipeline')}}}\n"
                        f"  video: {{family: wan, model: {fake_model(r, 'i2v', 'WanImageToVideoPipeline')}}}\n"
                        "continuity: {strategy: prefix, prefix_frames: 3}\n"),
        "`prefix_frames` (3): ./i2v (WanImageToVideoPipeline) continues from one image; only ltx takes several"),
    "shared-noise overlap off the latent grid": (
        lambda r: board(f"  video: {{family: wan, model: {fake_model(r, 't2v', 'WanPipeline')}}}\n"
                        "continuity: {strategy: shared-noise, overlap: 8}\n"),
        "`overlap` (8) must be 1 more than a multiple of 4 for wan, so that overlapping frames share whole latent "
        "frames (try 5 or 9)"),
    "shared-noise on ltx": (
        lambda r: board(f"  video: {{family: ltx, model: {fake_model(r, 'ltx', 'LTXPipeline')}}}\n"
                        "continuity: {strategy: shared-noise, overlap: 9}\n"),
        "ltx draws its own noise for conditioned chunks"),
    "a shot's own overlap too long": (
        lambda r: "models: {video: {chunk_frames: 9}}\nshots:\n  - {prompt: a cat, duration: 2, continuity: {overlap: 6}}\n",
        "`overlap` (6) must be less than half the chunk length (9 frames), at most 4"),
    "keyframe backend without a model": (lambda r: board("  keyframes: {backend: diffusers}\n"),
                                         "the diffusers keyframe backend needs `model`"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_model_settings_a_storyboard_cannot_use_exit_2(case, tmp_path):
    text, message = CASES[case]
    story = write(tmp_path / "story.yaml", text(tmp_path))
    result = run_cli("validate", str(story))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and f"{story}:" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_first_last_frame_model_gets_a_keyframe_at_each_shots_end(tmp_path):
    flf2v = fake_model(tmp_path, "flf2v", "WanImageToVideoPipeline", {"pos_embed_seq_len": 514})
    sd = fake_model(tmp_path, "sd", "StableDiffusionPipeline")
    models = f"  keyframes: {{model: {sd}}}\n  video: {{family: wan, model: {flf2v}}}\n"
    story = write(tmp_path / "story.yaml", board(models))
    # a shot without a keyframe at its end gets one drawn there: one chunk from keyframe to keyframe
    check = run_cli("validate", str(story))
    assert check.returncode == 0, check.stderr
    assert "note: shot 'shot01': a keyframe is drawn at its end (2 s) for the first-last-frame model" in check.stdout
    graph = run_cli("graph", str(story), "--format", "json")
    assert graph.returncode == 0, graph.stderr
    tasks = json.loads(graph.stdout)["tasks"]
    (chunk,) = [t for t in tasks if t["kind"] == "chunk"]
    keyframes = [t for t in tasks if t["kind"] == "keyframe"]
    assert [k["window"] for k in keyframes] == [[0, 1], [47, 48]]  # the last one on the shot's last frame
    assert keyframes[1]["params"]["opening"] == "keyframe:shot01:0"  # the same scene as the shot's first
    # 2 s at 24 fps is 48 frames; generated at Wan's 16 fps that is 33, a legal 4k+1: first and last are keyframes
    assert chunk["params"]["frames"] == 33 and chunk["params"]["used"] == 33
    assert [{k: a[k] for k in ("task", "index")} for a in chunk["params"]["anchors"]] == [
        {"task": "keyframe:shot01:0", "index": 0}, {"task": "keyframe:shot01:1", "index": 32}]
    assert chunk["deps"] == ["keyframe:shot01:0", "keyframe:shot01:1"]
    # keyframes further apart than a chunk can span cannot be met
    write(story, board(models.replace("video: {", "video: {chunk_frames: 17, "),
                       "  - prompt: a cat\n    duration: 3\n"))
    result = run_cli("render", str(story), "-o", str(tmp_path / "out.mp4"))
    assert result.returncode == 2, result.stderr
    assert "is a first-last-frame model: every chunk must end on a keyframe" in result.stderr
    assert "more than chunk_frames (17) frames apart" in result.stderr and not (tmp_path / "out.mp4").exists()



def test_models_list_prints_each_family_and_what_it_can_do():
    out = run_cli("models", "list").stdout
    lines = {line.split(":")[0]: line for line in out.splitlines() if not line.startswith(" ")}
    assert lines["skyreels"].endswith("continuity: cut, overlap-blend, shared-noise, latent-blend, prefix, "
                                      "diffusion-forcing")
    assert "hunyuanvideo15: 4k+1 frames, sizes in multiples of 16, 24 fps" in out
    assert "  WanVACEPipeline: text, first, last, any, references" in out and "Wan-AI/Wan2.2-TI2V-5B-Diffusers" in out
