"""Identity QA through a tiny real CLIP vision model, loaded with `from_pretrained` as users load theirs: a keyframe
equal to its reference scores 1.0, another image less; renders report it in the manifest and `longvid qa`, and
`--qa-retry` draws an unlike keyframe again with a new seed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("transformers", reason="needs the [diffusers] extra")

import longvid  # noqa: E402
from longvid.stages.identity import IdentityQA  # noqa: E402
from longvid.tasks import IdentityParams, IdentitySample, Task  # noqa: E402
from tests.conftest import run_cli, write  # noqa: E402
from tests.tiny_models import build_embedder  # noqa: E402


@pytest.fixture(scope="module")
def embedder(tmp_path_factory) -> Path:
    return build_embedder(tmp_path_factory.mktemp("embedder"))


def noise(seed: int, shape=(48, 64, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_a_keyframe_equal_to_its_reference_scores_one_and_another_image_less(embedder):
    reference = noise(1, (64, 64, 3))
    samples = [IdentitySample(task=f"keyframe:a:{k}", frame=0, output_frame=k) for k in range(3)]
    params = IdentityParams(shot="a", model="clip", path=str(embedder), references=["reference:mira"],
                            samples=samples)
    inputs = {"reference:mira": reference[None], "keyframe:a:0": reference, "keyframe:a:1": noise(2, (64, 64, 3)),
              "keyframe:a:2": np.full((64, 64, 3), 200, np.uint8)}
    out = IdentityQA()(Task("identity:a", "identity", "identity", "a", 0, None, (0, 1), "image", "clip", params),
                       inputs)
    scores = [s["scores"]["mira"] for s in out.record["identity"]["samples"]]
    assert scores[0] == pytest.approx(1.0, abs=1e-4)
    assert all(score < 0.999 for score in scores[1:]) and scores[1] != scores[2]
    # the contact sheet: a row for mira, her reference and the three samples
    assert out.value.shape == (64 + 12, 4 * 64, 3) and out.value.dtype == np.uint8
    # several reference images: the best of them counts
    inputs["reference:mira"] = np.stack([noise(3, (64, 64, 3)), reference])
    again = IdentityQA()(Task("identity:a", "identity", "identity", "a", 0, None, (0, 1), "image", "clip", params),
                         inputs)
    assert again.record["identity"]["samples"][0]["scores"]["mira"] == pytest.approx(1.0, abs=1e-4)


def story(tmp_path: Path, qa: dict | None) -> Path:
    Image.fromarray(noise(5, (96, 64, 3))).save(tmp_path / "fox.png")
    data = {"fps": 8, "width": 96, "height": 64, "seed": 3,
            "characters": {"fox": {"description": "a red fox", "reference": "fox.png"}},
            "places": {"wood": "a birch wood"},
            "shots": [{"id": "a", "prompt": "{fox} in {wood}", "duration": 1,
                       "keyframes": [{"at": 1, "prompt": "{fox} sits"}]},
                      {"id": "b", "prompt": "{wood} at night", "duration": 1}]}
    if qa:
        data["qa"] = qa
    return write(tmp_path / "story.yaml", json.dumps(data))


def test_a_render_reports_identity_per_shot_and_qa_measures_it_again(embedder, tmp_path, private_cache):
    manifest = longvid.render(story(tmp_path, {"identity_model": str(embedder)}), tmp_path / "out.mp4")
    identity = manifest["qa"]["identity"]
    (shot,) = identity["shots"]  # b shows no character: nothing to score
    assert shot["shot"] == "a" and set(shot["characters"]) == {"fox"}
    tasks = [s["task"] for s in shot["samples"]]
    assert tasks[:2] == ["keyframe:a:0", "keyframe:a:1"] and all(t.startswith("chunk:a:") for t in tasks[2:])
    scores = [s["scores"]["fox"] for s in shot["samples"]]
    assert all(-1 <= v <= 1 for v in scores) and len(set(scores)) > 1
    assert identity["summary"]["worst"] == min(scores)

    result = run_cli("qa", str(tmp_path / "out.mp4"), "--json")
    assert result.returncode == 0, result.stderr
    again = json.loads(result.stdout)["identity"]
    assert again["not_measured"] is None and again["shots"][0]["rendered"] == shot["characters"]
    video = again["shots"][0]["video"]["fox"]  # the same samples, as the encoded video shows them
    assert abs(video["mean"] - shot["characters"]["fox"]["mean"]) < 0.05
    table = run_cli("qa", str(tmp_path / "out.mp4")).stdout
    assert "identity (" in table and "fox" in table


def test_without_a_model_no_likeness_is_claimed(tmp_path, private_cache):
    manifest = longvid.render(story(tmp_path, None), tmp_path / "out.mp4")
    assert manifest["qa"]["identity"] is None
    assert not any(t.startswith("identity:") for t in json.dumps(manifest).split('"'))
    assert "identity: not measured" in run_cli("qa", str(tmp_path / "out.mp4")).stdout


def test_qa_retry_draws_an_unlike_keyframe_again_with_a_new_seed(embedder, tmp_path, private_cache):
    board = story(tmp_path, {"identity_model": str(embedder), "identity_threshold": 0.9999})
    manifest = longvid.render(board, tmp_path / "out.mp4", qa_retry=2)
    attempts = manifest["qa"]["attempts"]
    assert len(attempts) == 3
    redrawn = [[(r["task"], r["seed"]) for r in a["regenerate"]] for a in attempts]
    assert [t for t, _ in redrawn[0]] == ["keyframe:a:0", "keyframe:a:1"]  # both below a threshold no frame reaches
    seeds = [dict(r)["keyframe:a:0"] for r in redrawn]
    assert len(set(seeds)) == 3  # a new seed each round
    final = {k["task"]: k["seed"] for k in manifest["shots"][0]["keyframes"]}
    assert final["keyframe:a:0"] == seeds[-1]
    assert manifest["qa"]["identity"]["summary"]["keyframes_below"] == 2
