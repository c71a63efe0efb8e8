"""Orchestration overhead: a longvid render against calling the diffusers pipeline directly for the same chunks.

    python benchmarks/diffusers_overhead.py [--size 256] [--steps 8] [--layers 4] [--seconds 1.5]

A small randomly initialised Wan text-to-video model (real diffusers classes, larger than the test suite's) is
saved in diffusers format. The direct run loads it once and calls the pipeline for every chunk of the plan with the
same arguments longvid passes (the same CPU noise and seeds), summing the pipeline calls after one warm-up call,
once before and once after the longvid run (their mean is the baseline). The longvid run renders
the same three-shot storyboard in this process into an empty cache, with the pipeline already loaded, so it pays
for planning, the cache (lossless writes and reads), overlap blending, the H.264 encode and the manifest. The two
must produce identical chunk frames, which the script checks. Goal: under 10% extra.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import longvid  # noqa: E402
from longvid.cache import ArtifactStore  # noqa: E402
from longvid.planners.compile import compile_storyboard  # noqa: E402
from longvid.stages import pipelines  # noqa: E402
from longvid.stages.video import WanChunk, _load, call_arguments  # noqa: E402
from longvid.storyboard import load_storyboard  # noqa: E402
from tests import tiny_models  # noqa: E402


def small_wan(folder: Path, layers: int) -> Path:
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=16, z_dim=16, dim_mult=[1, 2, 2, 2], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    transformer = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=8, attention_head_dim=32,
                                        in_channels=16, out_channels=16, text_dim=32, freq_dim=256, ffn_dim=1024,
                                        num_layers=layers, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                                        rope_max_seq_len=64)
    WanPipeline(tokenizer=tiny_models.t5_tokenizer(), text_encoder=tiny_models.t5_text(umt5=True), vae=vae,
                transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0)).save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=1.5, help="per shot; three shots")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="longvid-overhead-"))
    model = small_wan(work / "wan", args.layers)
    board = work / "story.yaml"
    board.write_text(json.dumps({
        "title": "overhead", "fps": 16, "width": args.size, "height": args.size, "seed": 1,
        "models": {"video": {"family": "wan", "model": str(model), "chunk_frames": 17, "steps": args.steps}},
        "continuity": {"overlap": 4},
        "shots": [{"id": f"s{i}", "prompt": p, "duration": args.seconds}
                  for i, p in enumerate(["a boat at sea", "the light house", "the sea at night"])]}))
    plan = compile_storyboard(load_storyboard(board))
    chunks = [t for t in plan.graph if t.kind == "chunk"]

    # direct: the same pipeline calls, nothing else (before and after the longvid render, so that drift in the
    # machine's speed shows rather than counting as overhead)
    adapter = WanChunk()
    settings = pipelines.settings_for(chunks[0].params)
    pipe = pipelines.hold(settings, lambda path, dtype: _load(path, dtype))

    def direct_run(warm_up: bool) -> tuple[float, dict]:
        seconds, frames = 0.0, {}
        for n, task in enumerate([chunks[0], *chunks] if warm_up else chunks):  # a warm-up call is not counted
            p = task.params
            kwargs = call_arguments(p, settings, task.seed, adapter.latents(pipe, p, task.seed))
            kwargs |= adapter.arguments(pipe, p, settings, {}, {})
            began = time.perf_counter()
            out = pipelines.to_uint8(pipe(**kwargs).frames[0])
            if n or not warm_up:
                seconds += time.perf_counter() - began
            frames[task.id] = out
        return seconds, frames

    direct_before, direct_frames = direct_run(warm_up=True)

    # longvid: the whole render, the pipeline already held by this process's worker slot
    began = time.perf_counter()
    manifest = longvid.render(board, work / "out.mp4", cache_dir=work / "cache")
    through_longvid = time.perf_counter() - began
    direct_after, _ = direct_run(warm_up=False)
    direct = (direct_before + direct_after) / 2

    store = ArtifactStore(work / "cache")
    same = all(np.array_equal(store.load(c["cache_key"]), direct_frames[c["task"]])
               for s in manifest["shots"] for c in s["chunks"])
    print(json.dumps({"chunks": len(chunks), "frames": manifest["video"]["frames"], "size": args.size,
                      "steps": args.steps, "direct_seconds_before": round(direct_before, 2),
                      "direct_seconds_after": round(direct_after, 2), "direct_seconds": round(direct, 2),
                      "longvid_seconds": round(through_longvid, 2),
                      "overhead_percent": round(100 * (through_longvid / direct - 1), 1),
                      "identical_chunks": same}, indent=1))


if __name__ == "__main__":
    main()
