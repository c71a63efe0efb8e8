"""The Python scene API against YAML, and the shot and render graphs."""

from __future__ import annotations

import json

import networkx as nx
import pytest

import longvid
from longvid.graph import build_shot_graph, shot_graph_json, to_dot
from longvid.planners.compile import compile_storyboard
from tests.conftest import ROOT


def lighthouse_in_python() -> longvid.Storyboard:
    story = longvid.Storyboard("The Lighthouse Keeper", fps=24, width=832, height=480, seed=1234,
                               style="cinematic, 35mm film, moody light")
    story.character("keeper", "an old lighthouse keeper with a grey beard and a yellow raincoat")
    story.shot("establishing", "a lighthouse on a cliff at dusk, waves crashing", duration=4, camera="push-in")
    story.shot("climb", "{keeper} climbs the spiral stairs holding a lantern", duration=6) \
        .keyframe(at=6, prompt="{keeper} reaches the lamp room").crossfade(0.5)
    story.shot("storm", "storm clouds gather over the sea, lightning", duration=5)
    return story


def test_python_and_yaml_give_identical_shot_graphs():
    from_yaml = build_shot_graph(longvid.load_storyboard(ROOT / "examples" / "lighthouse.yaml"))
    from_python = build_shot_graph(lighthouse_in_python().build())
    assert shot_graph_json(from_yaml) == shot_graph_json(from_python)
    assert nx.utils.graphs_equal(from_yaml, from_python)


def test_python_and_yaml_give_identical_render_graphs():
    a = compile_storyboard(longvid.load_storyboard(ROOT / "examples" / "lighthouse.yaml")).graph
    b = compile_storyboard(lighthouse_in_python().build()).graph
    assert a.to_json() == b.to_json()


def test_shot_graph_edges():
    graph = build_shot_graph(lighthouse_in_python().build())
    kinds = sorted((u, v, d["kind"]) for u, v, d in graph.edges(data=True))
    assert kinds == [
        ("character:keeper", "shot:climb", "appears_in"),
        ("keyframe:climb:0", "shot:climb", "anchors"),  # the shot's prompt, at 0 s
        ("keyframe:climb:1", "shot:climb", "anchors"),  # its keyframe at 6 s
        ("keyframe:establishing:0", "shot:establishing", "anchors"),
        ("keyframe:storm:0", "shot:storm", "anchors"),
        ("shot:climb", "shot:storm", "next"),
        ("shot:establishing", "shot:climb", "next"),
    ]
    assert graph.edges["shot:climb", "shot:storm", "next"]["transition"] == {"type": "crossfade", "duration": 0.5}
    assert graph.nodes["shot:climb"]["prompt"].startswith("an old lighthouse keeper with a grey beard")


def test_character_continuity_edges_link_shots_showing_the_same_character():
    story = longvid.Storyboard().character("fox", "a red fox").character("owl", "a white owl")
    story.shot("a", "{fox} sleeps", 2)
    story.shot("b", "{owl} watches", 2)
    story.shot("c", "{fox} and {owl} meet", 2)
    graph = build_shot_graph(story.build())
    continuity = sorted((u, v, d["character"]) for u, v, d in graph.edges(data=True) if d["kind"] == "continuity")
    assert continuity == [("shot:a", "shot:c", "fox"), ("shot:b", "shot:c", "owl")]


def test_cast_and_places_are_nodes_with_edges_to_the_shots_they_appear_in(tmp_path):
    story = longvid.Storyboard(base_dir=tmp_path).character("fox", "a red fox").place("den", "a den under roots")
    story.shot("a", "{fox} sleeps in {den}", 2)
    story.shot("b", "snow falls", 2).keyframe(at=1, prompt="{fox} looks out")
    story.shot("c", "{den} stands empty", 2)
    graph = build_shot_graph(story.build())
    assert graph.nodes["character:fox"] == {"type": "character", "description": "a red fox", "reference": [],
                                            "lora": None}
    assert graph.nodes["place:den"]["type"] == "place"
    appears = sorted((u, v) for u, v, d in graph.edges(data=True) if d["kind"] == "appears_in")
    assert appears == [("character:fox", "shot:a"), ("character:fox", "shot:b"), ("place:den", "shot:a"),
                       ("place:den", "shot:c")]
    places = sorted((u, v) for u, v, d in graph.edges(data=True) if d.get("place"))
    assert places == [("shot:a", "shot:c")]
    dot = to_dot(graph, "x")
    assert '"character:fox" -> "shot:b" [label="appears_in"];' in dot


def test_scene_api_errors_name_the_path():
    story = longvid.Storyboard(width=830)
    story.shot("a", "{nobody} waves", duration=-2)
    with pytest.raises(longvid.StoryboardError) as info:
        story.build()
    assert [str(p) for p in info.value.problems] == [
        "width: `width` must be a multiple of 16, as video models need (got 830; try 832)",
        "shots[0].duration: `duration` should be greater than 0 (got -2)",
    ]


def test_render_graph_dependencies_and_windows():
    plan = compile_storyboard(lighthouse_in_python().build())
    graph = plan.graph
    assert [t.id for t in graph.of_kind("keyframe")] == [  # in shot order
        "keyframe:establishing:0", "keyframe:climb:0", "keyframe:climb:1", "keyframe:storm:0"]
    # chunks of one shot depend only on keyframes, never on each other: they can run in parallel
    for task in graph.of_kind("chunk"):
        assert all(dep.startswith(f"keyframe:{task.shot}:") for dep in task.deps)
    assert graph["chunk:climb:0"].deps == ("keyframe:climb:0", "keyframe:climb:1")
    # the encode segments tile the timeline; each reads only the chunks over its frames; the concat joins them all
    segments = graph.of_kind("encode")
    assert segments[0].window[0] == 0 and segments[-1].window[1] == 360
    assert all(a.window[1] == b.window[0] for a, b in zip(segments, segments[1:], strict=False))
    assert set().union(*(set(t.deps) for t in segments)) == {t.id for t in graph.of_kind("chunk")}
    concat = graph["concat"]
    assert concat.window == (0, 360) and concat.deps == tuple(t.id for t in segments)
    # seeds follow the seeding rule and differ per chunk
    seeds = [t.seed for t in graph.of_kind("chunk")]
    assert len(set(seeds)) == len(seeds)


def test_interpolate_tasks_sit_between_chunks_and_encoding():
    story = lighthouse_in_python()
    story._data["models"] = {"interpolation": {"factor": 2}}
    graph = compile_storyboard(story.build()).graph
    interpolate = graph["interpolate:climb"]
    assert set(interpolate.deps) == {t.id for t in graph.of_kind("chunk") if t.shot == "climb"}
    encoded = set().union(*(set(t.deps) for t in graph.of_kind("encode")))
    assert encoded == {"interpolate:establishing", "interpolate:climb", "interpolate:storm"}


def test_graph_exports():
    plan = compile_storyboard(lighthouse_in_python().build())
    dot = to_dot(plan.graph.graph, "x")
    assert dot.startswith('digraph "x" {') and '"keyframe:climb:1" -> "chunk:climb:5";' in dot
    tasks = json.loads(plan.graph.to_json())["tasks"]
    assert len(tasks) == len(plan.graph) == 27 and tasks[-1]["id"] == "concat"  # with reference:keeper
    assert tasks[-1]["params"]["segments"] == [t.id for t in plan.graph.of_kind("encode")]


def test_one_keyframe_has_one_id_in_every_graph_the_manifest_and_status(tmp_path):
    board = tmp_path / "s.yaml"
    board.write_text("fps: 12\nwidth: 64\nheight: 64\nshots:\n  - id: walk\n    prompt: a fox walks\n    duration: 5\n"
                     "    keyframes: [{at: 4, prompt: the fox sits}, {at: 2, prompt: the fox stops}]\n")
    spec = longvid.load_storyboard(board)
    shots = build_shot_graph(spec)
    by_id = {n: d for n, d in shots.nodes(data=True) if d["type"] == "keyframe"}
    assert {n: (d["at"], d["implied"]) for n, d in by_id.items()} == {
        "keyframe:walk:0": (0.0, True), "keyframe:walk:1": (2.0, False), "keyframe:walk:2": (4.0, False)}
    assert by_id["keyframe:walk:1"]["prompt"] == "the fox stops"
    plan = compile_storyboard(spec)
    rendered = {t.id: plan.graph[t.id].params.prompt for t in plan.graph if t.kind == "keyframe"}
    assert set(rendered) == set(by_id) and rendered["keyframe:walk:1"].startswith("the fox stops")
    manifest = longvid.render(board, tmp_path / "out.mp4")
    assert [k["task"] for k in manifest["shots"][0]["keyframes"]] == sorted(by_id)
    assert {row.task for row in longvid.status(board) if row.task.startswith("keyframe:")} == set(by_id)


def test_tasks_are_listed_in_shot_order_and_numbers_count_as_numbers(tmp_path):
    from longvid.rendering import status as task_status
    from longvid.storyboard.load import validate_data

    spec = validate_data({"fps": 8, "width": 64, "height": 64, "models": {"video": {"chunk_frames": 9}},
                          "continuity": {"overlap": 2},
                          "shots": [{"id": "rain", "prompt": "rain", "duration": 12},
                                    {"id": "after", "prompt": "sun", "duration": 2}]})
    rows = [r.task for r in task_status(spec, cache_dir=tmp_path) if r.task.startswith("chunk:")]
    assert rows == [f"chunk:rain:{i}" for i in range(14)] + ["chunk:after:0", "chunk:after:1"]


def test_a_character_or_place_no_shot_shows_gets_no_reference_and_a_note():
    from longvid.storyboard.load import validate_data

    spec = validate_data({"characters": {"fox": "a red fox", "owl": "a snowy owl"},
                          "places": {"harbour": "a harbour at dusk"},
                          "shots": [{"prompt": "{fox} runs", "duration": 2}]})
    plan = compile_storyboard(spec)
    assert [t.id for t in plan.graph.of_kind("reference")] == ["reference:fox"]
    assert "character 'owl', place 'harbour': in no shot's prompt (write `{owl}` in one), so no reference is made " \
           "for them" in plan.notes
