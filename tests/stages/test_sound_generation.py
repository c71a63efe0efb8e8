"""Generated sound through `longvid render`: a tiny, randomly initialised Stable Audio pipeline, saved and loaded
with `from_pretrained` through `AutoPipelineForText2Audio`, makes the sound of `prompt` shots; seeded, cached, and
regenerated only where a prompt changed."""

from __future__ import annotations

import json
import subprocess

import imageio_ffmpeg
import numpy as np
import pytest

pytest.importorskip("diffusers.pipelines.stable_audio", reason="needs the [diffusers] extra")

import longvid  # noqa: E402
from longvid.cache import ArtifactStore  # noqa: E402
from tests.conftest import write  # noqa: E402
from tests.sound import RATE, read_sound  # noqa: E402
from tests.tiny_audio import STABLE_AUDIO_RATE  # noqa: E402


def board(tmp_path, tiny, gulls: str = "gulls and waves", seed: int = 7):
    data = {"fps": 12, "width": 64, "height": 64, "seed": seed,
            "audio": {"loudness": None},
            "models": {"audio": {"model": str(tiny("stable-audio")), "steps": 2, "guidance": 3.0}},
            "shots": [{"id": "harbour", "prompt": "a harbour", "duration": 1.5, "sound": {"prompt": gulls}},
                      {"id": "storm", "prompt": "a storm", "duration": 3.0, "sound": {"prompt": "thunder"}}]}
    return write(tmp_path / "story.yaml", json.dumps(data))


def generated(manifest) -> dict:
    return {g["task"]: g for g in manifest["soundtrack"]["generated"]}


def flac(path) -> np.ndarray:
    raw = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "f32le", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, "<f4")


def test_prompt_sounds_are_generated_seeded_cached_and_redone_only_where_changed(tiny, tmp_path, private_cache):
    pytest.importorskip("torchsde", reason="Stable Audio's scheduler needs the [audio] extra")
    # 1. a render generates each shot's sound, as long as its shot, at the model's rate; the longer one in sections
    first = longvid.render(board(tmp_path, tiny), tmp_path / "a.mp4")
    made = generated(first)
    assert sorted(made) == ["sound:harbour", "sound:storm"] and not any(g["cached"] for g in made.values())
    assert made["sound:harbour"]["samples"] == 1.5 * STABLE_AUDIO_RATE and made["sound:harbour"]["sections"] == 1
    assert made["sound:storm"]["samples"] == 3.0 * STABLE_AUDIO_RATE and made["sound:storm"]["sections"] == 2
    sound = read_sound(tmp_path / "a.mp4")
    assert abs(sound.shape[1] / RATE - 4.5) < 0.030 and np.abs(sound).max() > 0.01
    store = ArtifactStore(private_cache)
    samples = {t: flac(store.path(g["cache_key"])) for t, g in made.items()}

    # 2. the same storyboard in a new cache: the same samples (noise is drawn on the CPU from the seeding rule)
    again = longvid.render(board(tmp_path, tiny), tmp_path / "b.mp4", cache_dir=tmp_path / "other-cache")
    other = ArtifactStore(tmp_path / "other-cache")
    for task, g in generated(again).items():
        np.testing.assert_array_equal(flac(other.path(g["cache_key"])), samples[task])

    # 3. again in the first cache: nothing is generated, nothing mixed
    cached = longvid.render(board(tmp_path, tiny), tmp_path / "a.mp4")
    assert all(g["cached"] for g in generated(cached).values()) and cached["soundtrack"]["cached"]

    # 4. one shot's prompt changed: only that sound is generated again (and the mix)
    edited = longvid.render(board(tmp_path, tiny, gulls="gulls and bells"), tmp_path / "a.mp4")
    made = generated(edited)
    assert not made["sound:harbour"]["cached"] and made["sound:storm"]["cached"]
    assert not edited["soundtrack"]["cached"]

    # 5. another seed: other samples
    reseeded = longvid.render(board(tmp_path, tiny, seed=8), tmp_path / "c.mp4")
    assert not np.array_equal(flac(store.path(generated(reseeded)["sound:storm"]["cache_key"])),
                              samples["sound:storm"])


def music_board(tmp_path, tiny, prompt: str = "a sea shanty, accordion"):
    data = {"fps": 12, "width": 64, "height": 64, "seed": 3,
            "audio": {"music": {"prompt": prompt, "lyrics": "[verse]\nheave away", "bpm": 96, "fade_out": 0.5},
                      "loudness": -20},
            "models": {"music": {"model": str(tiny("ace-step")), "steps": 2, "max_seconds": 2.0}},
            "shots": [{"id": "harbour", "prompt": "a harbour", "duration": 2.5},
                      {"id": "sea", "prompt": "the open sea", "duration": 2.0}]}
    return write(tmp_path / "music.yaml", json.dumps(data))


def test_a_music_bed_from_ace_step_in_sections(tiny, tmp_path, private_cache, monkeypatch):
    from diffusers.pipelines.ace_step import AceStepPipeline

    from tests.stages.conftest import calls_to
    from tests.tiny_audio import ACE_STEP_RATE

    calls = calls_to(monkeypatch, AceStepPipeline)
    first = longvid.render(music_board(tmp_path, tiny), tmp_path / "m.mp4")
    music = generated(first)["music"]
    # 4.5 s with at most 2 s a section overlapping by 0.5 s: three sections, each with its own seed
    assert music["sections"] == 3 and music["samples"] == 4.5 * ACE_STEP_RATE
    assert [c["audio_duration"] for c in calls] == [2.0, 2.0, 1.5]
    assert {(c["lyrics"], c["bpm"], c["prompt"]) for c in calls} == {("[verse]\nheave away", 96,
                                                                      "a sea shanty, accordion")}
    assert len({c["generator"].initial_seed() for c in calls}) == 3
    sources = {s["name"]: s for s in first["soundtrack"]["sources"]}
    assert sources["music"]["task"] == "music" and sources["music"]["length"] == pytest.approx(4.5)
    assert abs(first["soundtrack"]["loudness"]["integrated"] - -20) < 1.0
    store = ArtifactStore(private_cache)
    samples = flac(store.path(music["cache_key"]))

    # the same seed in a fresh cache: the same samples; a second render: nothing generated
    again = longvid.render(music_board(tmp_path, tiny), tmp_path / "n.mp4", cache_dir=tmp_path / "other")
    np.testing.assert_array_equal(flac(ArtifactStore(tmp_path / "other").path(generated(again)["music"]["cache_key"])),
                                  samples)
    calls.clear()
    assert generated(longvid.render(music_board(tmp_path, tiny), tmp_path / "m.mp4"))["music"]["cached"]
    assert calls == []


def test_audioldm2_through_the_text_to_audio_auto_pipeline(tiny, tmp_path, private_cache, monkeypatch):
    from diffusers import AudioLDM2Pipeline

    from tests.stages.conftest import calls_to

    calls = calls_to(monkeypatch, AudioLDM2Pipeline)
    data = {"fps": 12, "width": 64, "height": 64, "audio": {"loudness": None},
            "models": {"audio": {"model": str(tiny("audioldm2")), "steps": 2, "guidance": 3.0}},
            "shots": [{"id": "quay", "prompt": "a quay", "duration": 0.5, "sound": {"prompt": "rope creaking"}}]}
    manifest = longvid.render(write(tmp_path / "ldm.yaml", json.dumps(data)), tmp_path / "ldm.mp4")
    made = generated(manifest)["sound:quay"]
    assert (made["rate"], made["samples"], made["sections"]) == (16000, 8000, 1)  # the vocoder's rate
    assert [(c["prompt"], c["audio_length_in_s"]) for c in calls] == [("rope creaking", 0.5)]
