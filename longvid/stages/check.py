"""The whole-graph check: every task against its stage's declaration, before any device work, every error at once.

For each task: its stage is known and runs its kind; its parameters validate against the stage's parameter type
(each error names the task and the field); every task it reads is one of its dependencies, every dependency is
read, and each is of a kind the stage takes. The graph itself (unknown dependencies, cycles) is checked when it is
built (`RenderGraph`).
"""

from __future__ import annotations

from pydantic import ValidationError

from longvid.errors import PlanError, Problem
from longvid.graph import RenderGraph
from longvid.stages import get_spec, known


def graph_problems(graph: RenderGraph) -> list[Problem]:
    """Every way the tasks of `graph` break their stages' declarations."""
    problems: list[Problem] = []
    for task in graph:
        try:
            spec = get_spec(task.stage)
        except KeyError:
            problems.append(Problem(f"unknown stage {task.stage!r}; known: {', '.join(known())}", (task.id, "stage")))
            continue
        if spec.kind != task.kind:
            problems.append(Problem(f"is a {task.kind} task, but stage {spec.name!r} runs {spec.kind} tasks",
                                    (task.id, "kind")))
        if not isinstance(task.params, spec.params):
            problems.append(Problem(f"parameters are a {type(task.params).__name__}; stage {spec.name!r} takes "
                                    f"{spec.params.__name__}", (task.id, "params")))
            continue
        try:
            spec.params.model_validate(task.params.model_dump(by_alias=True, warnings=False))
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                problems.append(Problem(f"{error['msg']} (got {error.get('input')!r})",
                                        (task.id, "params", *error["loc"])))
            continue
        reads, deps = task.params.reads(), set(task.deps)
        for name in reads:
            if name not in deps:
                problems.append(Problem(f"reads {name!r}, which is not among its dependencies", (task.id, "deps")))
        for name in sorted(deps - set(reads)):
            problems.append(Problem(f"depends on {name!r} but never reads it", (task.id, "deps")))
        for name in sorted(d for d in deps if d in graph):  # a set of every node per task: quadratic
            kind = graph[name].kind
            if kind not in spec.inputs:
                problems.append(Problem(f"reads {name!r}, a {kind} task; stage {spec.name!r} reads "
                                        f"{', '.join(spec.inputs) or 'nothing'}", (task.id, "deps")))
    return problems


def check_graph(graph: RenderGraph) -> None:
    """Raises:
        PlanError: with every problem `graph_problems` finds.
    """
    problems = graph_problems(graph)
    if problems:
        raise PlanError(problems)
