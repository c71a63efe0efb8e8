"""In-process execution: tasks run on demand, in the order the stitcher asks for their outputs.

A task's inputs are computed first (depth first). An output that other tasks still need (a keyframe read by
several chunks) is held until its last reader has run, then dropped, so memory stays bounded on long renders.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from longvid.execution.events import Event, Reporter, ignore
from longvid.graph import RenderGraph
from longvid.stages.base import Stage


class InProcessRunner:
    """Runs the tasks of `graph` with `stages` (by stage name), reporting to `report`."""

    def __init__(self, graph: RenderGraph, stages: Mapping[str, Stage], report: Reporter = ignore):
        self.graph, self.stages, self.report = graph, stages, report
        self.seconds: dict[str, float] = {}
        self._held: dict[str, Any] = {}
        self._readers = {t.id: sum(graph[d].stage in stages for d in graph.dependents(t.id)) for t in graph}

    def output(self, task_id: str) -> Any:
        """Run `task_id` (and whatever it needs that is not held) and return its output."""
        if task_id in self._held:
            return self._held[task_id]
        task = self.graph[task_id]
        inputs = {dep: self.output(dep) for dep in task.deps}
        self.report(Event("started", task.kind, task.id, worker="local"))
        began = time.perf_counter()
        result = self.stages[task.stage](task, inputs)
        self.seconds[task.id] = time.perf_counter() - began
        self.report(Event("succeeded", task.kind, task.id, worker="local", seconds=self.seconds[task.id]))
        for dep in task.deps:
            self._readers[dep] -= 1
            if self._readers[dep] <= 0:
                self._held.pop(dep, None)
        if self._readers[task.id] > 0:
            self._held[task.id] = result
        return result
