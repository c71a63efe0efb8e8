"""Cast and places through tiny real keyframe models: references reach the pipeline the way it takes them (an
IP-Adapter on SD, an image-edit model), change their own shots' keyframes and no other's; LoRAs only where their
character is; later keyframes continue the shot's first."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("diffusers", reason="needs the [diffusers] extra")

import longvid  # noqa: E402
from longvid.cache import ArtifactStore  # noqa: E402
from tests.conftest import write  # noqa: E402
from tests.stages.conftest import calls_to  # noqa: E402
from tests.tiny_models import build_ip_adapter, build_lora  # noqa: E402


def picture(path: Path, colour: tuple[int, int, int], mark: tuple[int, int, int]) -> Path:
    image = np.zeros((96, 64, 3), np.uint8)  # taller than wide: fitted whole into a square, padded with grey
    image[:] = colour
    image[30:60, 20:44] = mark
    Image.fromarray(image).save(path)
    return path


def story(tmp_path: Path, keyframes: dict, *, lora: dict | None = None, end_keyframe: bool = False,
          video: dict | None = None) -> Path:
    mira: dict = {"description": "a young fisherwoman in a red knitted hat", "reference": "mira.png"}
    if lora:
        mira["lora"] = lora
    first = {"id": "pier", "prompt": "{mira} walks along the pier", "duration": 0.5}
    if end_keyframe:
        first["keyframes"] = [{"at": 0.5, "prompt": "{mira} waves from the end of the pier"}]
    models = {"keyframes": keyframes | {"steps": 2}} | ({"video": video | {"steps": 2}} if video else {})
    data = {"fps": 16 if video else 8, "width": 64, "height": 64, "seed": 5, "characters": {"mira": mira},
            "models": models,
            "shots": [first, {"id": "sea", "prompt": "the sea at dawn", "duration": 0.5}]}
    return write(tmp_path / "story.yaml", json.dumps(data))


def keyframes_of(manifest: dict, cache: Path) -> dict[str, np.ndarray]:
    store = ArtifactStore(cache)
    return {k["task"]: store.load(k["cache_key"]) for s in manifest["shots"] for k in s["keyframes"]}


def fitted(path: Path) -> np.ndarray:
    from longvid.stages.preview import fit_square

    return fit_square(str(path), 64)


def test_an_ip_adapter_takes_the_references_and_they_change_only_their_shots(tiny, tmp_path, monkeypatch,
                                                                               private_cache):
    from diffusers import StableDiffusionPipeline

    adapter = build_ip_adapter(tmp_path)
    keyframes = {"model": str(tiny("sd")), "ip_adapter": {"model": str(adapter), "subfolder": "models",
                                                          "weight_name": "ip-adapter.safetensors", "scale": 1.0}}
    board = story(tmp_path, keyframes)
    picture(tmp_path / "mira.png", (200, 40, 40), (250, 220, 30))
    calls = calls_to(monkeypatch, StableDiffusionPipeline)
    first = longvid.render(board, tmp_path / "a.mp4")
    by_prompt = {kwargs["prompt"]: kwargs for kwargs in calls}
    with_mira = next(k for p, k in by_prompt.items() if p.startswith("a young fisherwoman"))
    (images,) = with_mira["ip_adapter_image"]  # one adapter, its images
    assert len(images) == 1 and np.array_equal(np.asarray(images[0]), fitted(tmp_path / "mira.png"))
    nobody = by_prompt["the sea at dawn"]["ip_adapter_image"][0]
    assert np.asarray(nobody[0]).std() == 0, "a shot nobody is in gets a blank image prompt (at scale 0)"

    before = keyframes_of(first, private_cache)
    picture(tmp_path / "mira.png", (30, 60, 200), (10, 250, 120))  # another look for Mira
    rows = {row.task: row for row in longvid.status(board)}
    assert rows["keyframe:pier:0"].reasons == ("input_changed: reference:mira",)
    assert rows["keyframe:sea:0"].state == "fresh"
    second = longvid.render(board, tmp_path / "b.mp4")
    after = keyframes_of(second, private_cache)
    assert np.abs(after["keyframe:pier:0"].astype(int) - before["keyframe:pier:0"]).mean() > 1
    assert np.array_equal(after["keyframe:sea:0"], before["keyframe:sea:0"])
    assert {k["task"] for s in second["shots"] for k in s["keyframes"] if k["cached"]} == {"keyframe:sea:0"}


def test_an_edit_model_takes_the_references_with_the_prompt(tiny, tmp_path, monkeypatch, private_cache):
    from diffusers import FluxKontextPipeline

    board = story(tmp_path, {"model": str(tiny("flux-kontext"))})
    picture(tmp_path / "mira.png", (200, 40, 40), (250, 220, 30))
    calls = calls_to(monkeypatch, FluxKontextPipeline)
    first = longvid.render(board, tmp_path / "a.mp4")
    with_mira = next(k for k in calls if k["prompt"].startswith("a young fisherwoman"))
    image = np.asarray(with_mira["image"])
    assert image.shape == (64, 64, 3) and np.abs(image.astype(int) - fitted(tmp_path / "mira.png")).mean() < 3
    assert "image" not in next(k for k in calls if k["prompt"] == "the sea at dawn")

    before = keyframes_of(first, private_cache)
    picture(tmp_path / "mira.png", (30, 60, 200), (10, 250, 120))
    after = keyframes_of(longvid.render(board, tmp_path / "b.mp4"), private_cache)
    # a one-layer random Kontext barely looks at its image tokens: the pixels move, if only a little
    assert not np.array_equal(after["keyframe:pier:0"], before["keyframe:pier:0"])
    assert np.array_equal(after["keyframe:sea:0"], before["keyframe:sea:0"])


def test_a_characters_lora_is_active_only_in_its_shots(tiny, tmp_path, monkeypatch, private_cache):
    from diffusers import StableDiffusionPipeline

    picture(tmp_path / "mira.png", (200, 40, 40), (250, 220, 30))
    plain = keyframes_of(longvid.render(story(tmp_path, {"model": str(tiny("sd"))}), tmp_path / "a.mp4"),
                         private_cache)
    lora = {"path": str(build_lora(tmp_path)), "weight": 1.0, "trigger": "m1ra"}
    calls = calls_to(monkeypatch, StableDiffusionPipeline)
    with_lora = keyframes_of(longvid.render(story(tmp_path, {"model": str(tiny("sd"))}, lora=lora),
                                            tmp_path / "b.mp4"), private_cache)
    assert np.abs(with_lora["keyframe:pier:0"].astype(int) - plain["keyframe:pier:0"]).mean() > 1
    assert np.array_equal(with_lora["keyframe:sea:0"], plain["keyframe:sea:0"]), "no Mira, no LoRA"
    assert [k["prompt"].split(",")[0] for k in calls if "fisherwoman" in k["prompt"]] == ["m1ra"]


def test_a_later_keyframe_continues_the_shots_first(tiny, tmp_path, monkeypatch, private_cache):
    from diffusers import StableDiffusionImg2ImgPipeline

    picture(tmp_path / "mira.png", (200, 40, 40), (250, 220, 30))
    calls = calls_to(monkeypatch, StableDiffusionImg2ImgPipeline)
    manifest = longvid.render(story(tmp_path, {"model": str(tiny("sd"))}, end_keyframe=True), tmp_path / "a.mp4")
    frames = keyframes_of(manifest, private_cache)
    (kwargs,) = calls  # the end keyframe only: redrawn from the shot's first, with its own prompt
    assert np.array_equal(np.asarray(kwargs["image"]), frames["keyframe:pier:0"])
    assert kwargs["prompt"].startswith("a young fisherwoman in a red knitted hat waves") and kwargs["strength"] < 1


def test_wan_vace_takes_the_references_in_the_chunk_and_the_keyframes_at_their_frames(tiny, tmp_path, monkeypatch,
                                                                                       private_cache):
    from diffusers import WanVACEPipeline

    video = {"family": "wan", "model": str(tiny("wan-vace")), "chunk_frames": 17}
    board = story(tmp_path, {"model": str(tiny("sd"))}, end_keyframe=True, video=video)
    picture(tmp_path / "mira.png", (200, 40, 40), (250, 220, 30))
    calls = calls_to(monkeypatch, WanVACEPipeline)
    first = longvid.render(board, tmp_path / "a.mp4")
    store = ArtifactStore(private_cache)
    pier, sea = first["shots"]
    (chunk,) = pier["chunks"]
    assert (chunk["frames"], chunk["used"]) == (9, 8)  # 0.5 s at 16 fps
    with_mira = next(k for k in calls if k["prompt"].startswith("a young fisherwoman"))
    (reference,) = with_mira["reference_images"]
    assert np.array_equal(np.asarray(reference), fitted(tmp_path / "mira.png"))
    # both keyframes kept at their own frames (black in the mask), the frame after the end one left to the model
    keys = [store.load(k["cache_key"]) for k in pier["keyframes"]]
    masks = [np.asarray(m)[..., 0].mean() for m in with_mira["mask"]]
    assert masks[0] == masks[7] == 0 and all(m == 255 for i, m in enumerate(masks) if i not in (0, 7))
    assert np.array_equal(np.asarray(with_mira["video"][0]), keys[0])
    assert np.array_equal(np.asarray(with_mira["video"][7]), keys[1])
    assert "reference_images" not in next(k for k in calls if k["prompt"] == "the sea at dawn")

    # another look for Mira: her shot's chunk is generated again with it (a random one-layer control branch moves
    # the pixels by about 1e-5, so what is checked is that the new image reaches the call); the sea's is cached
    picture(tmp_path / "mira.png", (30, 60, 200), (10, 250, 120))
    calls.clear()
    second = longvid.render(board, tmp_path / "b.mp4")
    chunks = {c["task"]: c for s in second["shots"] for c in s["chunks"]}
    assert chunks["chunk:sea:0"]["cached"] and not chunks["chunk:pier:0"]["cached"]
    (again,) = calls
    assert np.array_equal(np.asarray(again["reference_images"][0]), fitted(tmp_path / "mira.png"))
