"""LTX-2 through `longvid render`, on tiny real pipelines of its shapes (Gemma 3 text encoder, video and audio VAEs,
vocoder) loaded with `from_pretrained`: keyframes as conditions at latent indices, and the sound each chunk makes
kept with its frames, crossfaded over the overlaps with the picture's ramps, and put in the MP4 as one AAC track."""

from __future__ import annotations

import json
import subprocess

import imageio_ffmpeg
import numpy as np
import pytest

pytest.importorskip("diffusers.pipelines.ltx2", reason="needs the [diffusers] extra with LTX-2")

import longvid  # noqa: E402
from longvid.cache import ArtifactStore  # noqa: E402
from longvid.timing import ramp  # noqa: E402
from tests.conftest import decode, probe, run_cli, write  # noqa: E402
from tests.stages.conftest import calls_to, storyboard  # noqa: E402


def ltx2_board(tmp_path, tiny, **extra):
    board = storyboard(tmp_path, {"family": "ltx2", "model": str(tiny("ltx2")), "chunk_frames": 17}, fps=24,
                       durations=(1.0, 0.5), **extra)
    data = json.loads(board.read_text())
    data["continuity"] = {"overlap": 4, "ramp": "linear"}
    data["shots"][0]["transition"] = {"type": "crossfade", "duration": 0.25}
    return write(board, json.dumps(data))


def decoded_audio(path) -> tuple[np.ndarray, int]:
    raw = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:a:0", "-f",
                          "s16le", "-ac", "2", "-ar", "24000", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.int16).reshape(-1, 2).T.astype(np.float32) / 32768, 24000


def test_the_sound_reaches_the_mp4_as_long_as_the_video(tiny, tmp_path, private_cache):
    out = tmp_path / "out.mp4"
    result = run_cli("render", str(ltx2_board(tmp_path, tiny)), "-o", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "sound: 1/1" in result.stderr  # its progress line
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    info = probe(out)
    assert (info["frames"], info["width"], info["height"]) == (36, 64, 64)
    streams = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-i", str(out)], capture_output=True, text=True).stderr
    assert "Audio: aac" in streams
    sound, rate = decoded_audio(out)
    assert abs(sound.shape[1] - 36 / 24 * rate) <= 1024  # one AAC frame
    assert np.abs(sound).max() > 0  # not silence
    assert {c["task"] for s in manifest["shots"] for c in s["chunks"]} == {"chunk:s0:0", "chunk:s0:1", "chunk:s1:0"}
    assert manifest["audio"]["task"] == "audio" and manifest["audio"]["stored"] and not manifest["audio"]["cached"]


def test_over_each_overlap_the_sound_is_the_crossfade_of_the_two_chunks(tiny, tmp_path, private_cache):
    manifest = longvid.render(ltx2_board(tmp_path, tiny), tmp_path / "out.mp4")
    store = ArtifactStore(private_cache)
    first, second = manifest["shots"][0]["chunks"]
    a, rate = store.audio(first["cache_key"])
    b, _ = store.audio(second["cache_key"])
    assert a.shape[1] == round(first["frames"] / 24 * rate)  # each chunk's sound as long as its frames
    track = _read_flac(store.path(manifest["audio"]["cache_key"]))  # the track, as the audio task stored it
    start, overlap = second["window"][0], second["overlap"]
    per_frame = rate / 24
    for j, weight in enumerate(ramp(overlap, "linear")):  # at each overlap frame's centre: the picture's weight
        n = round((start + j + 0.5) * per_frame)
        expected = (1 - weight) * a[:, n] + weight * b[:, n - round(start * per_frame)]
        assert np.allclose(track[:, n], expected, atol=2e-4), (j, track[:, n], expected)


def _read_flac(path) -> np.ndarray:
    raw = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "s16le", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.int16).reshape(-1, 2).T.astype(np.float32) / 32768


def test_keyframes_are_conditions_at_their_latent_index(tiny, tmp_path, monkeypatch, private_cache):
    from diffusers import LTX2ConditionPipeline

    seen = calls_to(monkeypatch, LTX2ConditionPipeline)
    board = storyboard(tmp_path, {"family": "ltx2", "model": str(tiny("ltx2")), "chunk_frames": 17}, fps=24,
                       durations=(0.75,), keyframes=str(tiny("sd")), shot_keyframes={0: [{"at": 0.375}]})
    manifest = longvid.render(board, tmp_path / "out.mp4")
    keys = [ArtifactStore(private_cache).load(k["cache_key"]) for k in manifest["shots"][0]["keyframes"]]
    conditions = [(c.index, np.asarray(c.frames), c.crf) for call in seen for c in call["conditions"]]
    # keyframe 1 at frame 9 closes the first span: latent index (9 - 1) // 8 + 1 = 2, whose first frame is 9
    assert [(i, crf) for i, _, crf in conditions[:2]] == [(0, 0), (2, 0)]
    assert np.array_equal(conditions[0][1], keys[0]) and np.array_equal(conditions[1][1], keys[1])
    assert decode(tmp_path / "out.mp4").shape[0] == 18


def test_same_seed_same_frames_and_sound_another_seed_other_frames(tiny, tmp_path):
    board = ltx2_board(tmp_path, tiny)
    longvid.render(board, tmp_path / "a.mp4", cache_dir=tmp_path / "c1")
    again = longvid.render(board, tmp_path / "b.mp4", cache_dir=tmp_path / "c2")
    assert again["execution"]["cached"] == 0
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    write(board, board.read_text().replace('"seed": 7', '"seed": 8'))
    longvid.render(board, tmp_path / "c.mp4", cache_dir=tmp_path / "c3")
    assert not np.array_equal(decode(tmp_path / "a.mp4"), decode(tmp_path / "c.mp4"))


def test_with_a_soundtrack_the_models_sound_is_one_source_of_the_mix(tiny, tmp_path, private_cache):
    from tests.sound import tone, write_wav

    write_wav(tmp_path / "theme.wav", tone(220, 3.0, 0.3))
    board = ltx2_board(tmp_path, tiny)
    data = json.loads(board.read_text())
    data["audio"] = {"music": {"file": "theme.wav", "gain_db": -6}, "loudness": None}
    write(board, json.dumps(data))
    manifest = longvid.render(board, tmp_path / "out.mp4")
    sources = {s["name"]: s for s in manifest["soundtrack"]["sources"]}
    assert sources["video"]["task"] == "audio" and sources["video"]["start_sample"] == 0
    assert sources["video"]["length"] == pytest.approx(36 / 24) and sources["music"]["gain_db"] == -6
    sound, rate = decoded_audio(tmp_path / "out.mp4")
    assert abs(sound.shape[1] - 36 / 24 * rate) <= 1024
