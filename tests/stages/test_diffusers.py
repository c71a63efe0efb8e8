"""Real diffusers pipelines, tiny and randomly initialised, driven through longvid as a user would.

Each pipeline is built offline (tests/tiny_models.py), saved with `save_pretrained` and named by folder in a
storyboard's ``model:``; longvid loads it with `from_pretrained` in its worker.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="needs the [diffusers] extra")

import longvid  # noqa: E402
from longvid.cache import ArtifactStore, Latents  # noqa: E402
from longvid.timing import FrameRule  # noqa: E402
from tests.conftest import probe, run_cli, write  # noqa: E402
from tests.stages.conftest import decode, frames_key, storyboard  # noqa: E402

# family case: (pipeline kind, video settings, fps, keyframe model kind, keyframes per shot)
CASES = {
    "svd": ("svd", {"family": "svd", "chunk_frames": 14}, 7, "sd", None),
    "cogvideox-t2v": ("cogvideox", {"family": "cogvideox", "chunk_frames": 9}, 8, None, None),
    "cogvideox-i2v": ("cogvideox-i2v", {"family": "cogvideox", "chunk_frames": 9}, 8, "sd", None),
    "wan-t2v": ("wan", {"family": "wan", "chunk_frames": 9}, 16, None, None),
    "wan-i2v": ("wan-i2v", {"family": "wan", "chunk_frames": 9}, 16, "sd", None),
    "wan-flf2v": ("wan-flf2v", {"family": "wan", "chunk_frames": 17}, 16, "sdxl",
                  {0: [{"at": 1.0}], 1: [{"at": 0.75}], 2: [{"at": 0.5}]}),
    "ltx-t2v": ("ltx", {"family": "ltx", "chunk_frames": 9}, 24, None, None),
    "ltx-condition": ("ltx", {"family": "ltx", "chunk_frames": 9}, 24, "sdxl", {0: [{"at": 0.5, "prompt": "dawn"}]}),
    "animatediff": ("animatediff", {"family": "animatediff"}, 8, None, None),
}


# A whole render per family is slow on two cores; each family's stage is pinned quickly in test_pinned_outputs.py,
# and one render here (an image-to-video model, chained chunks) stays in the quick run.
@pytest.mark.parametrize("case", [c if c == "wan-i2v" else pytest.param(c, marks=pytest.mark.slow)
                                  for c in sorted(CASES)])
def test_a_three_shot_storyboard_renders_through_each_family(case, tiny, tmp_path):
    kind, video, fps, keyframe_kind, shot_keyframes = CASES[case]
    board = storyboard(tmp_path, video | {"model": str(tiny(kind))}, fps=fps, shot_keyframes=shot_keyframes,
                       keyframes=str(tiny(keyframe_kind)) if keyframe_kind else None)
    out = tmp_path / "out.mp4"
    result = run_cli("render", str(board), "-o", str(out))
    assert result.returncode == 0, result.stderr[-3000:]

    info = probe(out)
    assert info["frames"] == round(2.25 * fps) and (info["width"], info["height"]) == (64, 64)
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    rule = FrameRule.parse(manifest["backends"]["video"]["frame_rule"])
    chunks = [c for s in manifest["shots"] for c in s["chunks"]]
    assert all(rule.is_legal(c["frames"]) and not c["cached"] for c in chunks)
    keyframes = [k for s in manifest["shots"] for k in s["keyframes"]]
    if keyframe_kind:
        # every chunk that opens a span starts on a drawn keyframe; the others continue the chunk before them
        assert keyframes and all(not k["cached"] for k in keyframes)
        for shot in manifest["shots"]:
            first = shot["chunks"][0]["anchors"][0]
            assert first == {"task": shot["keyframes"][0]["task"], "index": 0}
    else:
        assert keyframes == []  # a text-only start draws none
    if case == "wan-flf2v":  # each chunk spans a shot from keyframe to keyframe: no chunk waits for another
        assert all([a["task"].split(":")[0] for a in c["anchors"]] == ["keyframe", "keyframe"] for c in chunks)
    if case in ("wan-i2v", "ltx-t2v"):  # chained: chunk 1 starts on chunk 0's frame at its own start
        second = manifest["shots"][0]["chunks"][1]
        previous = "decode:s0:0" if case == "wan-i2v" else "chunk:s0:0"  # Wan's chunk frames are its decode's
        assert second["anchors"][0] == {"task": previous, "frame": second["window"][0], "index": 0}


@pytest.mark.parametrize("kind", ["wan-i2v", "wan-flf2v"])
def test_the_conditioning_images_reach_the_pipeline(kind, tiny, tmp_path, monkeypatch, private_cache):
    from diffusers import WanImageToVideoPipeline

    seen, made = [], []
    original = WanImageToVideoPipeline.__call__

    def spy(self, *args, **kwargs):
        seen.append({k: np.asarray(kwargs[k]) for k in ("image", "last_image") if kwargs.get(k) is not None})
        made.append(original(self, *args, **kwargs))
        return made[-1]

    monkeypatch.setattr(WanImageToVideoPipeline, "__call__", spy)
    flf2v = kind == "wan-flf2v"
    board = storyboard(tmp_path, {"family": "wan", "model": str(tiny(kind)), "chunk_frames": 17 if flf2v else 9},
                       fps=16, durations=(1.0,), keyframes=str(tiny("sd")),
                       shot_keyframes={0: [{"at": 1.0, "prompt": "a storm"}]} if flf2v else None)
    manifest = longvid.render(board, tmp_path / "out.mp4")
    store = ArtifactStore(private_cache)
    shot = manifest["shots"][0]
    keyframes = [store.load(k["cache_key"]) for k in shot["keyframes"]]
    if flf2v:  # one chunk from the opening keyframe to the closing one
        (call,) = seen
        assert np.array_equal(call["image"], keyframes[0]) and np.array_equal(call["last_image"], keyframes[1])
        # 16 frames kept of 17 generated: the last generated frame (the end keyframe's) is the shot's last frame
        (chunk,) = shot["chunks"]
        assert (chunk["frames"], chunk["used"]) == (17, 16)
        # decoded as generated (17 frames), not retimed
        generated = decode(Latents(store.latents(chunk["cache_key"]).array), "wan", str(tiny(kind)), (64, 64), 17)
        kept = store.load(frames_key(chunk))
        assert np.array_equal(kept[15], generated[16]) and np.array_equal(kept[0], generated[0])
    else:  # chunk 0 starts on the keyframe; chunk 1 continues from chunk 0's frame at its own start
        first_chunk = store.load(frames_key(shot["chunks"][0]))
        start = shot["chunks"][1]["window"][0]
        assert len(seen) == 2 and not any("last_image" in call for call in seen)
        assert np.array_equal(seen[0]["image"], keyframes[0])
        assert np.array_equal(seen[1]["image"], first_chunk[start])


def test_ltx_conditions_carry_the_keyframes_at_their_frame_index(tiny, tmp_path, monkeypatch, private_cache):
    from diffusers import LTXConditionPipeline

    seen = []
    original = LTXConditionPipeline.__call__

    def spy(self, *args, **kwargs):
        seen.append([(c.frame_index, np.asarray(c.image)) for c in kwargs["conditions"]])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LTXConditionPipeline, "__call__", spy)
    board = storyboard(tmp_path, {"family": "ltx", "model": str(tiny("ltx")), "chunk_frames": 17}, fps=24,
                       durations=(0.5,), keyframes=str(tiny("sd")), shot_keyframes={0: [{"at": 0.5}]})
    manifest = longvid.render(board, tmp_path / "out.mp4")
    store = ArtifactStore(private_cache)
    opening, closing = (store.load(k["cache_key"]) for k in manifest["shots"][0]["keyframes"])
    (conditions,) = seen
    assert [index for index, _ in conditions] == [0, 11]  # 12 frames: the closing keyframe is the last one kept
    assert np.array_equal(conditions[0][1], opening) and np.array_equal(conditions[1][1], closing)


@pytest.mark.slow  # three renders, one with two worker processes that each load the model
def test_same_seed_same_frames_other_seed_other_frames_any_worker_count(tiny, tmp_path):
    video = {"family": "wan", "model": str(tiny("wan-i2v")), "chunk_frames": 9}
    runs = {}
    for name, seed, workers in (("a", 7, 1), ("b", 7, 2), ("c", 8, 1)):
        folder = tmp_path / name
        folder.mkdir()
        board = storyboard(folder, video, fps=16, keyframes=str(tiny("sd")), seed=seed)
        longvid.render(board, folder / "out.mp4", cache_dir=folder / "cache", workers=workers)
        runs[name] = probe(folder / "out.mp4")["hashes"]
    assert runs["a"] == runs["b"]
    assert runs["a"] != runs["c"]


@pytest.mark.parametrize("kind", ["sd", pytest.param("sdxl", marks=pytest.mark.slow)])
def test_keyframes_come_from_the_image_model_one_seed_each(kind, tiny, tmp_path, private_cache):
    from longvid.rendering import status

    board = storyboard(tmp_path, {"family": "wan", "model": str(tiny("wan-i2v")), "chunk_frames": 9}, fps=16,
                       keyframes=str(tiny(kind)))
    manifest = longvid.render(board, tmp_path / "out.mp4")
    store = ArtifactStore(private_cache)
    images = [store.load(k["cache_key"]) for s in manifest["shots"] for k in s["keyframes"]]
    assert all(image.shape == (64, 64, 3) and image.dtype == np.uint8 for image in images)
    assert len({image.tobytes() for image in images}) == len(images)  # one seed and prompt per keyframe
    assert all(row.state == "fresh" for row in status(board))


def test_a_scheduler_override_changes_the_keyframes(tiny, tmp_path, private_cache):
    video = {"family": "wan", "model": str(tiny("wan-i2v")), "chunk_frames": 9}
    board = storyboard(tmp_path, video, fps=16, durations=(0.5,), keyframes=str(tiny("sd")))
    default = longvid.render(board, tmp_path / "a.mp4")
    data = json.loads(board.read_text())
    data["models"]["keyframes"]["scheduler"] = {"name": "EulerDiscreteScheduler", "config": {}}
    write(board, json.dumps(data))
    changed = longvid.render(board, tmp_path / "b.mp4")
    store = ArtifactStore(private_cache)
    first = [store.load(m["shots"][0]["keyframes"][0]["cache_key"]) for m in (default, changed)]
    assert not np.array_equal(*first)


def test_a_lora_changes_the_keyframes_and_its_weight_matters(tiny, tmp_path, private_cache):
    from tests.tiny_models import build_lora

    lora = build_lora(tiny("sd").parent)
    store = ArtifactStore(private_cache)
    firsts = []
    for loras in ([], [{"path": str(lora), "weight": 1.0}], [{"path": str(lora), "weight": 0.5}]):
        board = storyboard(tmp_path, {"family": "wan", "model": str(tiny("wan-i2v")), "chunk_frames": 9}, fps=16,
                           durations=(0.5,), keyframes=str(tiny("sd")))
        data = json.loads(board.read_text())
        data["models"]["keyframes"]["loras"] = loras
        write(board, json.dumps(data))
        manifest = longvid.render(board, tmp_path / "out.mp4")
        firsts.append(store.load(manifest["shots"][0]["keyframes"][0]["cache_key"]).tobytes())
    assert len(set(firsts)) == 3


def test_an_out_of_memory_chunk_is_retried_with_the_low_memory_settings(tiny, tmp_path, monkeypatch, private_cache):
    plan = tmp_path / "faults.json"
    plan.write_text(json.dumps({"chunk:s0:0": ["oom"]}))
    monkeypatch.setenv("LONGVID_FAULTS", str(plan))
    board = storyboard(tmp_path, {"family": "wan", "model": str(tiny("wan")), "chunk_frames": 9}, fps=16,
                       durations=(0.5,))
    manifest = longvid.render(board, tmp_path / "out.mp4")
    chunk = manifest["shots"][0]["chunks"][0]
    assert chunk["attempts"] == 2 and manifest["execution"]["retried"] == ["chunk:s0:0"]
    assert ArtifactStore(private_cache).record(chunk["cache_key"])["low_memory"] is True
    assert probe(tmp_path / "out.mp4")["frames"] == 8


def test_xformers_on_the_cpu_fails_with_a_clear_record(tiny, tmp_path):
    board = storyboard(tmp_path, {"family": "wan", "model": str(tiny("wan")), "chunk_frames": 9,
                                  "attention": "xformers"}, fps=16, durations=(0.5,))
    result = run_cli("render", str(board), "-o", str(tmp_path / "out.mp4"))
    assert result.returncode == 2  # a setting the user chose: fails at once, not retried
    assert "error: chunk:s0:0: attention: xformers needs a CUDA device" in result.stderr
    assert "retried" not in result.stderr
    assert not (tmp_path / "out.mp4").exists()


def test_a_user_image_keyframe_is_fitted_and_loads_no_image_model(tiny, tmp_path, monkeypatch):
    from diffusers import WanImageToVideoPipeline
    from PIL import Image

    seen = []
    original = WanImageToVideoPipeline.__call__

    def spy(self, *args, **kwargs):
        seen.append(np.asarray(kwargs["image"]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(WanImageToVideoPipeline, "__call__", spy)
    # 128x96 (4:3), a red left half: fitted to 64x64 it is cropped to the centre, then halved
    picture = np.zeros((96, 128, 3), np.uint8)
    picture[:, :64] = (255, 0, 0)
    Image.fromarray(picture).save(tmp_path / "start.png")
    board = storyboard(tmp_path, {"family": "wan", "model": str(tiny("wan-i2v")), "chunk_frames": 9}, fps=16,
                       durations=(0.5,), shot_keyframes={0: [{"at": 0, "image": "start.png"}]})
    manifest = longvid.render(board, tmp_path / "out.mp4")
    assert manifest["backends"]["keyframes"]["model"] is None  # no image model was configured or loaded
    (image,) = seen
    assert image.shape == (64, 64, 3)
    assert (image[:, :28] == (255, 0, 0)).all() and (image[:, 36:] == 0).all()


def test_a_worker_releases_its_pipeline_when_the_next_task_needs_another(tiny):
    import gc
    import weakref

    from longvid.stages import pipelines
    from longvid.stages.keyframes import _load

    settings = {"dtype": "float32", "offload": "none", "attention": "sdpa", "loras": [], "scheduler": None,
                "vae_tiling": False, "vae_slicing": False}
    first = pipelines.hold(settings | {"_path": str(tiny("sd"))}, _load)
    gone = weakref.ref(first)
    assert pipelines.hold(settings | {"_path": str(tiny("sd"))}, _load) is first  # kept while tasks need it
    # a pipeline built from the held one's modules (as LTX's condition pipeline is) goes with it
    built = weakref.ref(pipelines.derived("copy", lambda pipe: type(pipe).from_pipe(pipe)))
    assert pipelines.derived("copy", lambda pipe: None) is built()
    del first
    second = pipelines.hold(settings | {"_path": str(tiny("sdxl"))}, _load)
    gc.collect()
    assert gone() is None and built() is None and type(second).__name__ == "StableDiffusionXLPipeline"
    pipelines.release()
