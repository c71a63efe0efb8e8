"""What runs on a device: the `Stage` protocol and its declaration, `StageSpec`.

A stage declares, as data, its parameters' type, what it reads and writes, what it needs, its code version and
whether its output is worth storing; the whole-graph check, the scheduler and the cache read only the declaration,
so a graph is built and checked without loading a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from longvid.tasks import Params, Task


@dataclass(frozen=True)
class StageSpec:
    """The declaration of a stage.

    Args:
        name: the name tasks refer to, e.g. ``preview.chunk``.
        kind: the task kind it runs: ``keyframe``, ``chunk``, ``interpolate``, ``encode`` or ``concat``.
        code_version: bump it when a change alters the stage's output, so cached results are redone.
        params: the type of its tasks' parameters (`longvid.tasks`).
        inputs: the kinds of the tasks whose outputs it reads.
        output: ``image`` (H x W x 3 uint8), ``frames`` (F x H x W x 3 uint8), ``segment`` (an H.264 file),
            ``audio`` (a FLAC file) or
            ``file`` (the render's output, written where its parameters say; never stored).
        resources: ``{"gpus": 1}``: it runs on a device worker; ``{"here": True}``: it runs in the process that
            renders (it writes the user's output path); otherwise any worker may run it, the CPU lanes included.
        low_memory: parameter updates to retry with after an out-of-memory error; the retried task's key
            includes them (its output is not the same).
        cache: whether its output is worth storing. One that is not is made again, inside the task that reads it,
            whenever it is needed: a preview chunk costs less to draw than to write losslessly and read back.
    """

    name: str
    kind: str
    code_version: str
    params: type[Params]
    inputs: tuple[str, ...] = ()
    output: str = "frames"
    resources: Mapping[str, Any] = field(default_factory=dict)
    low_memory: Mapping[str, Any] = field(default_factory=dict)
    cache: bool = True

    @property
    def on_device(self) -> bool:
        return bool(self.resources.get("gpus"))

    @property
    def here(self) -> bool:
        return bool(self.resources.get("here"))


@dataclass
class Output:
    """A stage's result with facts to keep in its cache record (e.g. the QA measures of an encoded segment), and
    the sound of its frames where the model makes some (LTX-2)."""

    value: Any
    record: dict[str, Any] = field(default_factory=dict)
    audio: tuple[Any, int] | None = None  # frames' sound: (channels x samples float32, sample rate)


class Stage(Protocol):
    """Runs one task: ``stage(task, inputs)`` with the outputs of the task's dependencies by task id."""

    spec: StageSpec

    def __call__(self, task: Task, inputs: Any) -> Any: ...
