"""The whole-graph check: every task against its stage's declaration, before any device work, every error at once."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from longvid.errors import PlanError
from longvid.graph import RenderGraph
from longvid.planners.compile import compile_storyboard
from longvid.stages.check import check_graph, graph_problems
from longvid.storyboard import validate_data
from longvid.tasks import KeyframeParams, Task
from tests.conftest import SMALL


def plan():
    return compile_storyboard(validate_data(yaml.safe_load(SMALL)))


def rebuilt(graph: RenderGraph, **changed: Task) -> RenderGraph:
    return RenderGraph([changed.get(t.id, t) for t in graph])


def test_a_compiled_plan_passes():
    assert graph_problems(plan().graph) == []


def test_a_wrong_parameter_is_reported_with_the_task_and_the_field():
    graph = plan().graph
    chunk = graph["chunk:hunt:1"]
    bad = dataclasses.replace(chunk, params=chunk.params.model_copy(update={"frames": "many"}))
    with pytest.raises(PlanError) as info:
        check_graph(rebuilt(graph, **{"chunk:hunt:1": bad}))
    (problem,) = info.value.problems
    assert problem.path == ("chunk:hunt:1", "params", "frames")
    assert str(problem) == "chunk:hunt:1.params.frames: Input should be a valid integer, unable to parse string as an " \
                           "integer (got 'many')"


def test_every_problem_is_reported_at_once():
    graph = plan().graph
    keyframe, encode, chunk = graph["keyframe:wake:0"], graph["encode:night:0"], graph["chunk:wake:0"]
    tasks = {
        # a stage nobody knows
        "keyframe:wake:0": dataclasses.replace(keyframe, stage="sdxl.keyframe"),
        # a negative offset deep inside an encode's pieces, and a width under the minimum
        "encode:night:0": dataclasses.replace(encode, params=encode.params.model_copy(update={
            "width": 8, "pieces": [encode.params.pieces[0].model_copy(update={"a_offset": -3})]})),
        # parameters of another stage's type
        "chunk:wake:0": dataclasses.replace(chunk, params=KeyframeParams(
            width=160, height=96, prompt="x", label={"shot": "wake", "keyframe": 0, "timecode": "00:00:00:00"})),
    }
    problems = graph_problems(rebuilt(graph, **tasks))
    assert sorted(str(p) for p in problems) == sorted([
        "keyframe:wake:0.stage: unknown stage 'sdxl.keyframe'; known: animatediff.chunk, audio, cogvideox.chunk, "
        "concat, decode, diffusers.keyframe, diffusers.reference, diffusers.sound, encode, hunyuanvideo15.chunk, "
        "identity, interpolate, ltx.chunk, ltx2.chunk, mix, preview.chunk, preview.keyframe, preview.reference, "
        "preview.refine, refine, skyreels.chunk, svd.chunk, wan.chunk",
        "encode:night:0.params.width: Input should be greater than or equal to 16 (got 8)",
        "encode:night:0.params.pieces[0].a_offset: Input should be greater than or equal to 0 (got -3)",
        "chunk:wake:0.params: parameters are a KeyframeParams; stage 'preview.chunk' takes PreviewChunkParams",
    ])


def test_inputs_must_match_the_dependencies():
    graph = plan().graph
    encode = graph["encode:wake:0"]
    with_extra = dataclasses.replace(encode, deps=(*encode.deps, "keyframe:night:0"))  # depends, never reads
    without = dataclasses.replace(graph["encode:hunt:0"], deps=("chunk:hunt:0",))  # reads chunk:hunt:1 too
    problems = [str(p) for p in graph_problems(rebuilt(graph, **{"encode:wake:0": with_extra,
                                                                  "encode:hunt:0": without}))]
    assert problems == ["encode:wake:0.deps: depends on 'keyframe:night:0' but never reads it",
                        "encode:hunt:0.deps: reads 'chunk:hunt:1', which is not among its dependencies"]


def test_a_graph_with_unknown_dependencies_is_refused_whole():
    graph = plan().graph
    tasks = [dataclasses.replace(t, deps=(*t.deps, "chunk:ghost:0")) if t.kind == "encode" else t for t in graph]
    with pytest.raises(PlanError) as info:
        RenderGraph(tasks)
    assert len(info.value.problems) == 4 and all("unknown task 'chunk:ghost:0'" in str(p) for p in info.value.problems)
