"""What runs on a device: the `Stage` protocol and its declaration, `StageSpec`.

A stage declares, as data, what it reads and writes, what it needs and its code version; the validator, scheduler
and cache read only the declaration, so a graph is built and checked without loading a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from longvid.graph import Task


@dataclass(frozen=True)
class StageSpec:
    """The declaration of a stage.

    Args:
        name: the name tasks refer to, e.g. ``preview.chunk``.
        kind: the task kind it runs: ``keyframe``, ``chunk`` or ``interpolate``.
        code_version: bump it when a change alters the stage's output, so cached results are redone.
        inputs: the kinds of the tasks whose outputs it reads.
        output: ``image`` (H x W x 3 uint8) or ``frames`` (F x H x W x 3 uint8).
        resources: what one run needs, e.g. ``{"gpus": 1}``.
        low_memory: settings to retry with after an out-of-memory error.
    """

    name: str
    kind: str
    code_version: str
    inputs: tuple[str, ...] = ()
    output: str = "frames"
    resources: Mapping[str, Any] = field(default_factory=dict)
    low_memory: Mapping[str, Any] = field(default_factory=dict)


class Stage(Protocol):
    """Runs one task: ``stage(task, inputs)`` with the outputs of the task's dependencies by task id."""

    spec: StageSpec

    def __call__(self, task: Task, inputs: Mapping[str, Any]) -> Any: ...
