"""Draft, then refine: chunks at 1/scale of the size, a refine pass at full size, the draft reused."""

from __future__ import annotations

import json

import numpy as np
import pytest

import longvid
from longvid.cache import ArtifactStore
from tests.conftest import probe, run_cli, write
from tests.stages.conftest import calls_to, storyboard


def _refined(board, **refine):
    data = json.loads(board.read_text())
    data["models"]["refine"] = {"scale": 2, "strength": 0.6, "steps": 2} | refine
    write(board, json.dumps(data))
    return board


def test_preview_drafts_at_half_size_and_refines_to_full_size(tmp_path, private_cache):
    board = write(tmp_path / "board.yaml", """\
        title: draft
        fps: 12
        width: 128
        height: 96
        models: {refine: {scale: 2}}
        shots:
          - {id: a, prompt: a lighthouse at dusk, duration: 2, camera: pan-right,
             transition: {type: crossfade, duration: 0.5}}
          - {id: b, prompt: waves on rocks, duration: 1.5}
        """)
    draft = run_cli("render", str(board), "-o", str(tmp_path / "draft.mp4"), "--draft", "--cache", str(private_cache))
    assert draft.returncode == 0, draft.stderr
    small = probe(tmp_path / "draft.mp4")
    assert (small["width"], small["height"]) == (64, 48) and small["frames"] == 42
    manifest = longvid.render(board, tmp_path / "full.mp4")
    full = probe(tmp_path / "full.mp4")
    assert (full["width"], full["height"]) == (128, 96) and full["frames"] == 42
    assert manifest["video"]["draft"] is False and "draft at 64x48, refined to 128x96" in manifest["notes"]
    # the full frames are the draft's, upscaled: close to them once both are brought to one size
    assert abs(full["first"].mean() - small["first"].mean()) < 3


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_wan_refines_its_draft_video_to_video_and_reuses_it(tiny, tmp_path, monkeypatch, private_cache):
    pytest.importorskip("diffusers", reason="needs the [diffusers] extra")
    from diffusers import WanPipeline, WanVideoToVideoPipeline

    board = _refined(storyboard(tmp_path, {"family": "wan", "model": str(tiny("wan")), "chunk_frames": 9}, fps=16,
                                durations=(1.0,)))
    sampled, refined = calls_to(monkeypatch, WanPipeline), calls_to(monkeypatch, WanVideoToVideoPipeline)
    draft = longvid.render(board, tmp_path / "draft.mp4", draft=True)
    assert (probe(tmp_path / "draft.mp4")["width"], draft["video"]["height"]) == (32, 32)
    assert [c["height"] for c in sampled] == [32, 32] and not refined

    full = longvid.render(board, tmp_path / "full.mp4")
    assert (probe(tmp_path / "full.mp4")["width"], full["video"]["height"]) == (64, 64)
    assert len(sampled) == 2  # the draft's chunks came from the cache
    assert all(c["cached"] and c["decode"]["cached"] for c in full["shots"][0]["chunks"])
    assert [(c["height"], c["strength"], len(c["video"]), c["video"][0].size) for c in refined] == \
        [(64, 0.6, 9, (64, 64))] * 2

    # only the refine settings change: every chunk and decode stays fresh, the refine tasks run again
    _refined(board, strength=1.0)  # two steps of two: with the tiny model's schedule, 0.4 would be the same one
    rows = {row.task: row for row in longvid.status(board)}
    assert all(rows[t].state == "fresh" for t in rows if t.startswith(("chunk:", "decode:", "keyframe:")))
    assert {t for t, row in rows.items() if row.state != "fresh" and t.startswith("refine:")} == \
        {"refine:s0:0", "refine:s0:1"}
    assert any("strength" in reason for reason in rows["refine:s0:0"].reasons)
    again = longvid.render(board, tmp_path / "again.mp4")
    assert len(sampled) == 2 and len(refined) == 4 and refined[-1]["strength"] == 1.0
    store = ArtifactStore(private_cache)
    before, after = ([store.load(c["refine"]["cache_key"]) for c in m["shots"][0]["chunks"]] for m in (full, again))
    assert before[0].shape == after[0].shape == (9, 64, 64, 3)
    assert not np.array_equal(before[0], after[0])
    assert again["video"]["width"] == 64


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_ltx_refines_through_its_latent_upsampler(tiny, tmp_path, monkeypatch, private_cache):
    pytest.importorskip("diffusers", reason="needs the [diffusers] extra")
    from diffusers import LTXConditionPipeline, LTXLatentUpsamplePipeline

    from tests.tiny_models import build_ltx_upsampler

    upsampler = build_ltx_upsampler(tiny("ltx").parent)
    board = _refined(storyboard(tmp_path, {"family": "ltx", "model": str(tiny("ltx")), "chunk_frames": 9}, fps=24,
                                durations=(0.375,)), upsampler=str(upsampler))
    upsampled, refined = calls_to(monkeypatch, LTXLatentUpsamplePipeline), calls_to(monkeypatch, LTXConditionPipeline)
    manifest = longvid.render(board, tmp_path / "out.mp4")
    assert (probe(tmp_path / "out.mp4")["width"], manifest["video"]["height"]) == (64, 64)
    (up,) = upsampled
    assert len(up["video"]) == 9 and up["video"][0].size == (32, 32)  # the draft's frames
    (call,) = refined
    # the upsampler's latents, twice the draft's side in latents (the tiny VAE compresses 4x)
    assert tuple(call["latents"].shape[-2:]) == (16, 16)
    assert (call["height"], call["denoise_strength"], call["num_frames"]) == (64, 0.6, 9)


def test_refine_settings_are_checked_against_the_family(tmp_path):
    board = _refined(storyboard(tmp_path, {"family": "ltx", "model": "Lightricks/LTX-Video", "chunk_frames": 9},
                                fps=24, durations=(0.375,)), scale=3)
    result = run_cli("validate", str(board))
    assert result.returncode == 2 and "doubles each side" in result.stderr and ":1:" in result.stderr
