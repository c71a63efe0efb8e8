"""Memory planning in the plan: every model task estimated from its checkpoint's configs, `offload: auto` picking
the settings that fit a device of a given size, offload out of the keys and tiling in them."""

from __future__ import annotations

import dataclasses
import json

import pytest

pytest.importorskip("diffusers", reason="needs the [diffusers] extra")

from longvid.memory import ModelConfigs, Settings, estimate  # noqa: E402
from longvid.planners.compile import Output, compile_storyboard  # noqa: E402
from longvid.rendering import prepare  # noqa: E402
from longvid.storyboard import load_storyboard  # noqa: E402
from tests.conftest import run_cli, write  # noqa: E402
from tests.stages.conftest import storyboard  # noqa: E402


def vae_alone(configs: ModelConfigs) -> ModelConfigs:
    """A decode task's model: it loads the VAE alone."""
    return dataclasses.replace(configs, components={"vae": configs.components["vae"]})


def _board(tmp_path, tiny):
    board = storyboard(tmp_path, {"family": "wan", "model": str(tiny("wan")), "chunk_frames": 17}, fps=16,
                       durations=(1.0,))
    data = json.loads(board.read_text())
    data["width"], data["height"] = 512, 320  # larger than the VAE's tiles (256): tiling changes the estimate
    write(board, json.dumps(data))
    return board


def test_validate_memory_prints_each_model_tasks_estimate(tiny, tmp_path):
    board = _board(tmp_path, tiny)
    configs = ModelConfigs.from_folder(tiny("wan"))
    result = run_cli("validate", str(board), "--memory")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith(("chunk:", "decode:"))}
    assert set(lines) == {"chunk:s0:0", "decode:s0:0"}
    from longvid.cache import human_bytes

    sample = estimate(configs, "sample", 512, 320, 17, "auto", Settings())
    decode = estimate(vae_alone(configs), "decode", 512, 320, 17, "auto", Settings())
    assert human_bytes(sample.peak) in lines["chunk:s0:0"] and "sample" in lines["chunk:s0:0"]
    assert human_bytes(decode.peak) in lines["decode:s0:0"] and "tiling off" in lines["decode:s0:0"]
    assert decode.peak > sample.peak  # at this size the decode, not the sampling, sets the peak


def test_offload_auto_tiles_the_decode_that_would_not_fit_and_keeps_the_chunks_key(tiny, tmp_path):
    spec = load_storyboard(_board(tmp_path, tiny))
    configs = vae_alone(ModelConfigs.from_folder(tiny("wan")))
    whole = estimate(configs, "decode", 512, 320, 17, "auto", Settings()).peak
    tiled = estimate(configs, "decode", 512, 320, 17, "auto", Settings(vae_tiling=True)).peak
    assert tiled < whole
    device = int((tiled + whole) / 2 / 0.9)  # fits tiled, not whole, with choose's headroom
    roomy, tight = (prepare(spec, Output(device_memory=memory)) for memory in (None, device))
    assert not roomy[0].graph["decode:s0:0"].params.tiling and tight[0].graph["decode:s0:0"].params.tiling
    assert roomy[1]["chunk:s0:0"] == tight[1]["chunk:s0:0"]  # sampling is shared across device sizes
    assert roomy[1]["decode:s0:0"] != tight[1]["decode:s0:0"]  # tiled frames are other frames
    (row,) = [r for r in tight[0].memory if r.task == "decode:s0:0"]
    assert row.choice.fits and row.choice.vae_tiling and row.estimate.peak == tiled


def test_offload_auto_offloads_a_model_whose_weights_do_not_fit(tiny, tmp_path):
    spec = load_storyboard(_board(tmp_path, tiny))
    plan = compile_storyboard(spec, output=Output(device_memory=1))  # nothing fits one byte
    chunk = plan.graph["chunk:s0:0"].params.pipeline
    assert chunk.offload == "sequential"
    assert any("may not fit" in note for note in plan.notes)
