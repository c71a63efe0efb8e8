"""How continuity strategies shape the plan: overlaps, anchors and shared noise, per storyboard and per shot."""

from __future__ import annotations

import json
from pathlib import Path

from longvid.planners.compile import compile_storyboard
from longvid.storyboard import load_storyboard
from tests.conftest import write


def folder(root: Path, name: str, cls: str) -> str:
    (root / name).mkdir()
    (root / name / "model_index.json").write_text(json.dumps({"_class_name": cls}))
    return f"./{name}"


def plan(tmp_path: Path, video: str, continuity: dict, shots: list[dict], keyframes: bool = True):
    data = {"fps": 24, "width": 64, "height": 64, "models": {"video": json.loads(video)}, "continuity": continuity,
            "shots": shots}
    if keyframes:
        data["models"]["keyframes"] = {"model": folder(tmp_path, "sd", "StableDiffusionPipeline")}
    return compile_storyboard(load_storyboard(write(tmp_path / "s.yaml", json.dumps(data))))


def chunks(p, shot: str) -> list:
    return [t for t in p.graph if t.kind == "chunk" and t.shot == shot]


def test_a_shot_overrides_the_storyboards_continuity_key_by_key(tmp_path):
    ltx = folder(tmp_path, "ltx", "LTXPipeline")
    p = plan(tmp_path, json.dumps({"family": "ltx", "model": ltx, "chunk_frames": 17}),
             {"strategy": "prefix", "overlap": 4, "prefix_frames": 3, "prefix_strength": 0.8, "prefix_noise": 0.02},
             [{"id": "a", "prompt": "a cat", "duration": 2},
              {"id": "b", "prompt": "a dog", "duration": 2, "continuity": {"strategy": "cut"}}])
    a, b = chunks(p, "a"), chunks(p, "b")
    assert [t.params.overlap for t in a] == [0, 4, 4, 4] and all(t.params.overlap == 0 for t in b)
    # prefix: chunk 1 continues from chunk 0's three frames that it overlaps, with the given strength and noise
    start = a[1].params.start
    assert [x.content() for x in a[1].params.anchors] == [{"task": "chunk:a:0", "frame": start, "index": 0, "count": 3,
                                                           "strength": 0.8, "noise": 0.02}]
    assert a[1].deps == ("chunk:a:0",)
    # the cut shot keeps the storyboard's other keys (prefix_frames) but blends nothing
    assert p.shots[1].continuity.strategy == "cut" and p.shots[1].continuity.prefix_frames == 3


def test_shared_noise_gives_each_chunk_its_place_on_the_shots_latent_timeline(tmp_path):
    wan = folder(tmp_path, "wan", "WanPipeline")
    p = plan(tmp_path, json.dumps({"family": "wan", "model": wan, "chunk_frames": 17}),
             {"strategy": "shared-noise", "overlap": 5, "noise": "shuffle"},
             [{"id": "a", "prompt": "a cat", "duration": 2}], keyframes=False)
    noise = [t.params.noise.content() for t in chunks(p, "a")]
    starts = [t.params.start for t in chunks(p, "a")]
    assert starts == [0, 12, 24] and [n["offset"] for n in noise] == [0, 3, 6]  # 4 frames per latent frame
    assert {n["period"] for n in noise} == {5} and {n["mode"] for n in noise} == {"shuffle"}
    assert len({n["seed"] for n in noise}) == 1  # one noise timeline for the shot


def test_keyframe_anchored_chunks_do_not_wait_for_each_other(tmp_path):
    ltx = folder(tmp_path, "ltx", "LTXPipeline")
    p = plan(tmp_path, json.dumps({"family": "ltx", "model": ltx, "chunk_frames": 25}),
             {"strategy": "keyframe-anchored", "overlap": 4},
             [{"id": "a", "prompt": "a cat", "duration": 2,
               "keyframes": [{"at": 1, "prompt": "the cat jumps"}, {"at": 2, "prompt": "the cat lands"}]}])
    spans = chunks(p, "a")
    assert [t.deps for t in spans] == [("keyframe:a:0", "keyframe:a:1"), ("keyframe:a:1", "keyframe:a:2")]
