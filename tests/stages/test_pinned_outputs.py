"""Each family's stage, run on its tiny pipeline with a known seed, gives known frames.

A change that alters what a stage makes (an adapter's noise layout, its call arguments, a scheduler default in
diffusers) shows here as a failed comparison, task by task, instead of as a vague change in a render.

The pins are pixels: every frame sampled on an 8 x 8 grid, all three channels (tiny random models make noise-like
frames whose averages hardly depend on the seed, so averages would pin nothing). The tolerance: a mean difference
of at most 0.1 level of 255 and no pixel more than 4 levels off. The same seed on another CPU or BLAS build moves a
few pixels by a level of rounding; another seed moves the mean by at least five times the tolerance (the tiny Wan,
the least sensitive, by about 1 level), which the test checks too, so the pin means something. To pin again after an intended change: ``LONGVID_REPIN=1 pytest
tests/stages/test_pinned_outputs.py``, and say why in the commit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="needs the [diffusers] extra")

from longvid.cache import Latents  # noqa: E402
from longvid.stages import get_stage  # noqa: E402
from longvid.stages.pipelines import release  # noqa: E402
from longvid.tasks import (  # noqa: E402
    Anchor,
    ChunkParams,
    KeyframeLabel,
    KeyframeParams,
    Pipeline,
    Task,
)
from tests.stages.conftest import decode  # noqa: E402

PINS = Path(__file__).parent / "pinned_outputs.json"
MEAN_TOLERANCE, PIXEL_TOLERANCE = 0.1, 4  # levels of 255

# family: (tiny model, stage, frames, size, fps, conditioned on an image)
CASES = {
    "sd": ("sd", "diffusers.keyframe", 1, 64, None, False),
    "svd": ("svd", "svd.chunk", 14, 64, 7, True),
    "cogvideox": ("cogvideox", "cogvideox.chunk", 9, 64, 8, False),
    "wan": ("wan", "wan.chunk", 9, 64, 16, False),
    "wan-i2v": ("wan-i2v", "wan.chunk", 9, 64, 16, True),
    "wan-vace": ("wan-vace", "wan.chunk", 9, 64, 16, True),
    "wan22-t2v": ("wan22-t2v", "wan.chunk", 9, 64, 16, False),
    "wan22-i2v": ("wan22-i2v", "wan.chunk", 9, 64, 16, True),
    "wan22-ti2v": ("wan22-ti2v", "wan.chunk", 9, 64, 24, True),
    "skyreels-t2v": ("skyreels-t2v", "skyreels.chunk", 9, 64, 24, False),
    "skyreels-i2v": ("skyreels-i2v", "skyreels.chunk", 9, 64, 24, True),
    "skyreels-df": ("skyreels-df", "skyreels.chunk", 9, 64, 24, True),
    "hunyuan15": ("hunyuan15", "hunyuanvideo15.chunk", 9, 64, 24, False),
    "hunyuan15-i2v": ("hunyuan15-i2v", "hunyuanvideo15.chunk", 9, 64, 24, True),
    "ltx2": ("ltx2", "ltx2.chunk", 9, 64, 24, True),
    "ltx": ("ltx", "ltx.chunk", 9, 64, 24, True),
    "animatediff": ("animatediff", "animatediff.chunk", 16, 64, 8, False),
}


def samples(frames: np.ndarray) -> np.ndarray:
    """Every frame's pixels on an 8 x 8 grid."""
    f, h, w, _ = frames.shape
    return frames[:, h // 16::h // 8, w // 16::w // 8, :].astype(int)


def start_image(size: int) -> np.ndarray:
    """A fixed picture to start image-conditioned chunks from: colour ramps and a bright square."""
    y, x = np.mgrid[0:size, 0:size]
    image = np.stack([x * 255 / size, y * 255 / size, np.full_like(x, 96)], axis=-1)
    image[size // 4:size // 2, size // 4:size // 2] = 230
    return image.astype(np.uint8)


def task_for(case: str, folder: Path, seed: int) -> Task:
    _, stage, frames, size, fps, conditioned = CASES[case]
    pipeline = Pipeline(path=str(folder), steps=2, guidance=5.0, family=stage.split(".")[0])
    if stage == "diffusers.keyframe":
        params = KeyframeParams(width=size, height=size, prompt="a lighthouse at dusk",
                                label=KeyframeLabel(shot="s", keyframe=0, timecode="00:00:00:00"),
                                pipeline=pipeline.model_copy(update={"family": None}))
        return Task("keyframe:s:0", "keyframe", stage, "s", 0, seed, (0, 1), "shot-output", str(folder), params)
    params = ChunkParams(width=size, height=size, prompt="a boat at sea", fps=fps, start=0, frames=frames,
                         used=frames, overlap=0, pipeline=pipeline,
                         anchors=[Anchor(task="keyframe:s:0", index=0)] if conditioned else [])
    return Task("chunk:s:0", "chunk", stage, "s", 0, seed, (0, frames), "shot-base", str(folder), params,
                ("keyframe:s:0",) if conditioned else ())


def decoded(out, chunk: Task):
    """A chunk's frames: its output, or (a family whose chunks store latents) its latents through the decode stage."""
    out = getattr(out, "value", out) if not getattr(out, "audio", None) else out  # an Output with facts
    if not isinstance(out, Latents):
        return out
    p = chunk.params
    return decode(out, p.pipeline.family, p.pipeline.path, (p.width, p.height), p.frames)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_known_seed_gives_known_frames(case, tiny):
    folder = tiny(CASES[case][0])
    stage = get_stage(CASES[case][1])
    inputs = {"keyframe:s:0": start_image(CASES[case][3])}
    try:
        out, other = (np.asarray(getattr(o, "value", o)) for o in  # an Output when the frames have sound (LTX-2)
                      (decoded(stage(task, inputs), task) for task in
                       (task_for(case, folder, seed=seed) for seed in (1234, 4321))))
    finally:
        release()
    frames, others = (x[None] if x.ndim == 3 else x for x in (out, other))
    pins = json.loads(PINS.read_text()) if PINS.exists() else {}
    if os.environ.get("LONGVID_REPIN"):
        pins[case] = {"shape": list(frames.shape), "pixels": samples(frames).tolist()}
        PINS.write_text(json.dumps(pins, sort_keys=True) + "\n")
    assert case in pins, f"no pin for {case}: run LONGVID_REPIN=1 pytest {Path(__file__).name}"
    assert list(frames.shape) == pins[case]["shape"]
    expected = np.asarray(pins[case]["pixels"])
    difference = np.abs(samples(frames) - expected)
    assert difference.mean() <= MEAN_TOLERANCE and difference.max() <= PIXEL_TOLERANCE, \
        f"{case}: the frames moved by {difference.mean():.2f} levels on average, {difference.max()} at most"
    # the pin means something: another seed is far outside the tolerance
    assert np.abs(samples(others) - expected).mean() > 5 * MEAN_TOLERANCE
