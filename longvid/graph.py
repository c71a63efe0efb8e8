"""The shot graph (what the story is) and the render graph (what must run), on networkx.

This is the only module that imports networkx.

Shot graph nodes are ``shot:ID``, ``keyframe:ID:K``, ``character:NAME`` and ``place:NAME``; its edges have a
``kind``:

* ``next``: shot to the following shot, with the transition between them;
* ``anchors``: keyframe to the shot it pins down;
* ``appears_in``: a character or place to each shot that refers to it (in its prompt or its keyframes');
* ``continuity``: an earlier shot to a later one that shows the same character or place (it should look the same).

Render graph nodes are task ids (``keyframe:ID:K``, ``chunk:ID:I``, ``interpolate:ID``, ``encode:ID:I``,
``concat``), each holding its `Task`; an edge runs from a task to a task that needs its output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import networkx as nx

from longvid.errors import PlanError, Problem
from longvid.storyboard import StoryboardSpec
from longvid.tasks import Task


def build_shot_graph(spec: StoryboardSpec) -> nx.MultiDiGraph:
    """The storyboard as a graph of shots, keyframes, transitions, its cast and places, and their continuity."""
    graph = nx.MultiDiGraph(title=spec.title, fps=spec.fps, width=spec.width, height=spec.height, seed=spec.seed)
    for group, kind in (("characters", "character"), ("places", "place")):
        for name, entity in getattr(spec, group).items():
            graph.add_node(f"{kind}:{name}", type=kind, description=entity.description, reference=entity.references,
                           lora=entity.lora.path if entity.lora else None)
    last_seen: dict[str, str] = {}
    for shot, span in zip(spec.shots, spec.timings(), strict=True):
        node = f"shot:{shot.shot_id}"
        graph.add_node(
            node,
            type="shot",
            prompt=spec.expand(shot.prompt),
            duration=shot.duration,
            frames=[span.start, span.end],
            camera=shot.camera,
            seed=spec.shot_seed(shot),
        )
        for k, kf in enumerate(spec.keyframes_of(shot, span.frames)):  # numbered as the render graph numbers them
            kf_node = f"keyframe:{shot.shot_id}:{k}"
            graph.add_node(kf_node, type="keyframe", at=kf.at, prompt=spec.expand(kf.prompt or shot.prompt),
                           image=kf.image, implied=all(kf is not own for own in shot.keyframes))
            graph.add_edge(kf_node, node, key="anchors", kind="anchors")
        for name in spec.mentions(shot):
            kind = "character" if name in spec.characters else "place"
            graph.add_edge(f"{kind}:{name}", node, key="appears_in", kind="appears_in")
            if name in last_seen:
                graph.add_edge(last_seen[name], node, key=f"continuity:{name}", kind="continuity", **{kind: name})
            last_seen[name] = node
    for before, after in zip(spec.shots, spec.shots[1:], strict=False):
        transition = before.transition.model_dump(exclude_none=True)
        graph.add_edge(f"shot:{before.shot_id}", f"shot:{after.shot_id}", key="next", kind="next", transition=transition)
    return graph


class RenderGraph:
    """Tasks and their dependencies; iteration is in a stable topological order."""

    KINDS = ("reference", "keyframe", "chunk", "decode", "refine", "interpolate", "identity", "encode", "audio", "concat")

    def __init__(self, tasks: list[Task]):
        """Raises:
            PlanError: with every duplicate id, unknown dependency and cycle.
        """
        self.graph = nx.DiGraph()
        problems = []
        for task in tasks:
            if task.id in self.graph:
                problems.append(Problem("two tasks have this id", (task.id,)))
            self.graph.add_node(task.id, task=task)
        for task in tasks:
            for dep in task.deps:
                if dep not in self.graph:
                    problems.append(Problem(f"depends on unknown task {dep!r}", (task.id, "deps")))
                    continue
                self.graph.add_edge(dep, task.id)
        if not problems and not nx.is_directed_acyclic_graph(self.graph):
            problems.append(Problem(f"the render graph has a cycle: {nx.find_cycle(self.graph)}"))
        if problems:
            raise PlanError(problems)
        self._shots = {shot: i for i, shot in enumerate(dict.fromkeys(t.shot for t in tasks if t.shot))}
        self._order = list(nx.lexicographical_topological_sort(self.graph, key=self._sort_key))
        self.lowered: dict[str, str] = {}  # task retried with its low-memory parameters -> the key it had

    def _sort_key(self, node: str) -> tuple:
        """Kind, then place on the timeline, then shot order, then the id with its numbers as numbers
        (``chunk:rain:2`` before ``chunk:rain:10``)."""
        task = self[node]
        rank = self.KINDS.index(task.kind) if task.kind in self.KINDS else len(self.KINDS)
        return (rank, task.window[0] if task.frame_space == "output" else 0, self._shots.get(task.shot, -1),
                tuple(int(p) if i % 2 else p for i, p in enumerate(re.split(r"(\d+)", node))))

    def __getitem__(self, task_id: str) -> Task:
        return self.graph.nodes[task_id]["task"]

    def __iter__(self) -> Iterator[Task]:
        return (self[node] for node in self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, task_id: str) -> bool:
        return task_id in self.graph

    def of_kind(self, kind: str) -> list[Task]:
        return [task for task in self if task.kind == kind]

    def replace(self, task: Task) -> None:
        """Put `task` in place of the task with its id (same dependencies): the low-memory retry's parameters."""
        if self[task.id].deps != task.deps:
            raise ValueError(f"{task.id}: a replacement keeps its dependencies")
        self.graph.nodes[task.id]["task"] = task

    def descendants(self, task_id: str) -> list[str]:
        """The tasks that read `task_id`'s output, directly or not, in topological order."""
        below = nx.descendants(self.graph, task_id)
        return [node for node in self._order if node in below]

    def consumers(self, task_id: str) -> list[str]:
        """The tasks that read `task_id`'s output."""
        return sorted(self.graph.successors(task_id))

    def to_json(self) -> str:
        return json.dumps({"tasks": [task.to_dict() for task in self]}, indent=2)


def shot_graph_json(graph: nx.MultiDiGraph) -> str:
    return json.dumps(nx.node_link_data(graph, edges="edges"), indent=2, default=str)


def to_dot(graph: nx.DiGraph | nx.MultiDiGraph, name: str = "longvid") -> str:
    """Graphviz DOT text (written here: networkx's own writer needs pydot or pygraphviz)."""

    def quote(value: Any) -> str:
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

    def label(node: str, attrs: dict) -> str:
        task = attrs.get("task")
        if task is not None:
            return f"{node} ({task.stage}, frames {task.window[0]}-{task.window[1]})"
        return node

    lines = [f"digraph {quote(name)} {{", "  rankdir=LR;", "  node [shape=box, fontname=Helvetica];"]
    for node, attrs in graph.nodes(data=True):
        # cast and places read as ellipses, apart from the boxes of shots and tasks
        shape = ", shape=ellipse" if attrs.get("type") in ("character", "place") else ""
        lines.append(f"  {quote(node)} [label={quote(label(node, attrs))}{shape}];")
    for u, v, attrs in graph.edges(data=True):
        kind = attrs.get("kind")
        if kind == "continuity":  # one per character or place the two shots share
            kind = f"continuity: {attrs.get('character') or attrs.get('place')}"
        lines.append(f"  {quote(u)} -> {quote(v)}" + (f" [label={quote(kind)}];" if kind else ";"))
    lines.append("}")
    return "\n".join(lines) + "\n"
