"""Another take of a task (a shot's `reroll`): how it reads, what seed it gives, which keys it changes, and the
tasks a shot can take again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import longvid
from longvid.cache import explain_change
from longvid.errors import StoryboardError
from longvid.planners.compile import Output, compile_storyboard
from longvid.rendering import prepare
from longvid.seeds import derive_seed
from longvid.storyboard import load_storyboard, validate_data
from tests.conftest import SMALL, write
from tests.unit.test_continuity_plan import chunks, folder, plan


def small(tmp_path: Path, **rerolls: dict) -> longvid.StoryboardSpec:
    """SMALL with `reroll` set on the shots named."""
    data = yaml.safe_load(SMALL)
    for shot in data["shots"]:
        if shot["id"] in rerolls:
            shot["reroll"] = rerolls[shot["id"]]
    return load_storyboard(write(tmp_path / "small.yaml", json.dumps(data)))


def seeds(spec) -> dict[str, int | None]:
    return {t.id: t.seed for t in compile_storyboard(spec).graph}


@pytest.mark.parametrize("text", [
    'reroll: {"chunk:1": 2, "keyframe:0": 1}',   # quoted keys: always safe
    "reroll: {chunk:1: 2, keyframe:0: 1}",       # unquoted flow keys: PyYAML reads `chunk:1` as one word
    "reroll:\n  chunk:1: 2\n  keyframe:0: 1",    # block style
])
def test_the_yaml_forms_that_read_as_a_reroll(text):
    assert yaml.safe_load(text) == {"reroll": {"chunk:1": 2, "keyframe:0": 1}}


def test_the_yaml_slips_that_do_not():
    # no space before the take: one key and no value; a bare kind: the index becomes the take
    assert yaml.safe_load("reroll: {chunk:1:2}") == {"reroll": {"chunk:1:2": None}}
    assert yaml.safe_load("reroll: {chunk: 2}") == {"reroll": {"chunk": 2}}


def test_take_0_is_the_original_seed_and_a_take_changes_only_its_tasks(tmp_path):
    original = seeds(small(tmp_path))
    assert seeds(small(tmp_path, hunt={"chunk:1": 0, "keyframe:1": 0})) == original
    taken = seeds(small(tmp_path, hunt={"chunk:1": 1, "keyframe:1": 3}))
    assert {t for t in original if taken[t] != original[t]} == {"chunk:hunt:1", "keyframe:hunt:1"}
    assert taken["chunk:hunt:1"] == derive_seed(7, "hunt", "chunk#take1", 1)
    assert taken["keyframe:hunt:1"] == derive_seed(7, "hunt", "keyframe#take3", 1)
    assert seeds(small(tmp_path, hunt={"chunk:1": 2}))["chunk:hunt:1"] not in (original["chunk:hunt:1"],
                                                                               taken["chunk:hunt:1"])


def test_a_take_composes_with_the_qa_retries(tmp_path):
    spec = small(tmp_path, hunt={"chunk:1": 1})
    retried = {t.id: t.seed for t in compile_storyboard(spec, reseed={"chunk:hunt:1": 1, "chunk:hunt:0": 2}).graph}
    assert retried["chunk:hunt:1"] == derive_seed(7, "hunt", "chunk#take1#qa1", 1)
    assert retried["chunk:hunt:0"] == derive_seed(7, "hunt", "chunk#qa2", 0)  # as before takes existed
    assert len({retried["chunk:hunt:1"], seeds(spec)["chunk:hunt:1"],
                seeds(small(tmp_path))["chunk:hunt:1"]}) == 3


def test_a_take_changes_the_keys_of_its_task_and_of_what_reads_it_only(tmp_path):
    before_plan, before = prepare(small(tmp_path), Output())
    after_plan, after = prepare(small(tmp_path, hunt={"chunk:1": 1}), Output())
    graph = after_plan.graph
    assert {t for t in before if before[t] != after[t]} == {"chunk:hunt:1", *graph.descendants("chunk:hunt:1")}
    assert set(graph.descendants("chunk:hunt:1")) == {"encode:hunt:0", "concat"}
    assert graph["chunk:hunt:1"].take == 1 and before_plan.graph["chunk:hunt:1"].take == 0


def test_latent_blend_has_one_chunk_task_whose_take_draws_new_noise(tmp_path):
    wan = folder(tmp_path, "wan", "WanPipeline")

    def blended(reroll: dict | None):
        shot = {"id": "a", "prompt": "a cat", "duration": 2} | ({"reroll": reroll} if reroll else {})
        return chunks(plan(tmp_path, json.dumps({"family": "wan", "model": wan, "chunk_frames": 17}),
                           {"strategy": "latent-blend", "overlap": 5}, [shot], keyframes=False), "a")

    (original,), (taken,) = blended(None), blended({"chunk:0": 1})
    assert original.id == taken.id == "chunk:a:0" and len(original.params.windows) > 1  # one task, many windows
    assert taken.seed != original.seed and taken.params.noise.seed != original.params.noise.seed
    assert original.params.noise.seed == derive_seed(0, "a", "noise", 0)  # take 0: the noise it always had
    with pytest.raises(StoryboardError) as info:
        blended({"chunk:1": 1})
    assert "`reroll`: shot 'a' has no task `chunk:1`; the tasks it can take again: chunk:0" in str(info.value)


def test_a_shared_noise_take_draws_that_chunk_new_noise(tmp_path):
    wan = folder(tmp_path, "wan", "WanPipeline")
    p = plan(tmp_path, json.dumps({"family": "wan", "model": wan, "chunk_frames": 17}),
             {"strategy": "shared-noise", "overlap": 5},
             [{"id": "a", "prompt": "a cat", "duration": 2, "reroll": {"chunk:1": 1}}], keyframes=False)
    noise = [t.params.noise.seed for t in chunks(p, "a")]
    assert noise[0] == noise[2] == derive_seed(0, "a", "noise", 0) and noise[1] != noise[0]


def test_a_reroll_names_only_tasks_the_shot_has(tmp_path):
    with pytest.raises(StoryboardError) as info:
        compile_storyboard(small(tmp_path, wake={"chunk:9": 1, "keyframe:0": 1}, hunt={"keyframe:2": 1}))
    messages = [p.message for p in info.value.problems]
    assert messages == [  # every shot's, not just the first
        "`reroll`: shot 'wake' has no task `chunk:9`; the tasks it can take again: keyframe:0, chunk:0",
        "`reroll`: shot 'hunt' has no task `keyframe:2`; the tasks it can take again: keyframe:0, keyframe:1, "
        "chunk:0, chunk:1"]
    assert [p.path for p in info.value.problems] == [("shots", 0, "reroll", "chunk:9"),
                                                     ("shots", 1, "reroll", "keyframe:2")]
    assert all(p.line for p in info.value.problems)  # located in the file


def test_a_users_keyframe_image_has_no_other_take(tmp_path):
    from PIL import Image

    Image.new("RGB", (32, 32), "red").save(tmp_path / "boat.png")
    board = write(tmp_path / "s.yaml", """\
        fps: 12
        width: 64
        height: 64
        shots:
          - id: a
            prompt: a boat
            duration: 1
            keyframes: [{at: 0, image: boat.png}, {at: 1, prompt: a boat at sea}]
            reroll: {keyframe:0: 1}
        """)
    with pytest.raises(StoryboardError) as info:
        compile_storyboard(load_storyboard(board))
    assert str(info.value.problems[0]) == (
        f"{board}:9:26: `reroll`: `keyframe:0` of shot 'a' is the user's image, used as it is: it has no other take; "
        f"the tasks it can take again: keyframe:1, chunk:0")


def test_the_scene_api_takes_reroll_and_writes_it_back():
    story = longvid.Storyboard("Takes", fps=12, width=64, height=64)
    story.shot("a", "a boat", duration=2, reroll={"chunk:0": 2})
    spec = story.build()
    assert spec.shots[0].reroll == {"chunk:0": 2} and spec.shots[0].take("chunk", 0) == 2
    assert validate_data(yaml.safe_load(story.to_yaml())).shots[0].reroll == {"chunk:0": 2}
    assert compile_storyboard(spec).graph["chunk:a:0"].take == 2


def test_status_says_which_take_changed_the_seed():
    last = {"seed": 1, "take": 1, "params": {}}
    assert explain_change(last, {"seed": 2, "params": {}}) == ["seed_changed: take 1 -> 0"]
    assert explain_change({"seed": 1, "params": {}}, {"seed": 2, "take": 2, "params": {}}) == [
        "seed_changed: take 0 -> 2"]
    assert explain_change({"seed": 1, "params": {}}, {"seed": 2, "params": {}}) == ["seed_changed"]  # a shot seed
