"""Running one task where it lands (a thread of this process, a worker process or a Ray actor), failures as records.

A `JobSpec` carries everything a worker needs: the task, its cache key, the keys of the stored outputs it reads,
the tasks it computes itself (`inline`: outputs not worth storing, such as preview chunks) and the record to
publish. The worker reads its inputs from the cache, runs the stage and publishes the output to the cache; only a
small `Outcome` travels back, never the frames.
"""

from __future__ import annotations

import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from longvid.cache import ArtifactStore, Latents, is_disk_full
from longvid.errors import DamagedArtifactError, UserError
from longvid.execution import faults
from longvid.stages import Output, Stage, get_stage
from longvid.tasks import Task


@dataclass(frozen=True)
class Inline:
    """A task whose output is not stored: the job that reads it computes it."""

    task: Task
    key: str


@dataclass(frozen=True)
class JobSpec:
    task: Task
    key: str
    input_keys: dict[str, str]  # every stored output the task and its inline tasks read, by task id
    record: dict[str, Any]
    attempt: int = 1
    low_memory: bool = False
    inline: dict[str, Inline] = field(default_factory=dict)
    store: bool = True  # publish the output to the cache


@dataclass
class Outcome:
    task: str
    worker: str
    ok: bool
    seconds: float = 0.0
    record: dict | None = None
    failure: dict | None = None  # task, stage, inputs, exception, message, traceback, hint, and what kind it is


class Inputs(Mapping):
    """A job's inputs, each loaded (or, for an inline task, computed) when first asked for.

    ``inputs[task]`` is a whole output; `frames` and `stream` give a range of frames without holding the rest;
    `path` is a stored output's file; `scratch` a file for the stage's own output, on the cache's file system.
    """

    def __init__(self, store: ArtifactStore, keys: Mapping[str, str], inline: Mapping[str, Inline] | None = None,
                 stages: StageCache | None = None):
        self.store, self.keys, self.inline = store, dict(keys), dict(inline or {})
        self.stages = stages or StageCache()
        self._loaded: dict[str, Any] = {}

    def __getitem__(self, task_id: str) -> np.ndarray:
        if task_id not in self._loaded:
            if task_id in self.inline:
                value = self.stages.get(self.inline[task_id].task.stage)(self.inline[task_id].task, self)
                self._loaded[task_id] = value if isinstance(value, np.ndarray) else np.stack(list(value))
            else:
                self._loaded[task_id] = self.store.load(self.keys[task_id])
        return self._loaded[task_id]

    def frames(self, task_id: str, lo: int, hi: int) -> Sequence[np.ndarray]:
        """Frames ``[lo, hi)`` of a frames output; an inline stage that can draw a window draws only those."""
        if task_id in self.inline and task_id not in self._loaded:
            task = self.inline[task_id].task
            stage = self.stages.get(task.stage)
            if hasattr(stage, "window"):
                return stage.window(task, self, lo, hi)
        return self[task_id][lo:hi]

    def stream(self, task_id: str, lo: int, hi: int) -> Iterator[np.ndarray]:
        """Frames ``[lo, hi)`` one at a time, read from the cache as they are needed."""
        if task_id in self.inline or task_id in self._loaded:
            return iter(self.frames(task_id, lo, hi))
        return self.store.frames(self.keys[task_id], lo, hi)

    def path(self, task_id: str) -> Path:
        return self.store.path(self.keys[task_id])

    def latents(self, task_id: str) -> Latents:
        """A model's stored latents with the facts their decode needs."""
        return self.store.latents(self.keys[task_id])

    def audio(self, task_id: str) -> tuple[np.ndarray, int] | None:
        """The sound stored with a task's frames, or None (an inline task's frames have none)."""
        return None if task_id in self.inline else self.store.audio(self.keys[task_id])

    def scratch(self, suffix: str) -> Path:
        return self.store.scratch(suffix)

    def release(self, task_id: str) -> None:
        self._loaded.pop(task_id, None)

    def content_key(self, task_id: str) -> str:
        """The cache key of `task_id`'s output: what it is, whatever its name."""
        return self.keys[task_id] if task_id in self.keys else self.inline[task_id].key

    def derived(self, task_id: str, what: tuple, make: Callable[[], Any]) -> Any:
        """Something a stage makes from the output of `task_id` (an enlarged keyframe), kept by the worker for
        its next jobs too, under the output's content key (so an edited keyframe is never mistaken for the old)."""
        return self.stages.derived((self.content_key(task_id), *what), make)

    def __iter__(self) -> Iterator[str]:
        return iter({**self.keys, **self.inline})

    def __len__(self) -> int:
        return len({**self.keys, **self.inline})


class StageCache:
    """Stages a worker keeps between tasks, so a model is loaded once while tasks for it remain; and the last few
    things stages derived from their inputs (`Inputs.derived`)."""

    DERIVED = 8  # entries: a shot's keyframes, prepared for its camera, on each side of a crossfade

    def __init__(self):
        self._stages: dict[str, Stage] = {}
        self._derived: OrderedDict[tuple, Any] = OrderedDict()

    def derived(self, key: tuple, make: Callable[[], Any]) -> Any:
        if key in self._derived:
            self._derived.move_to_end(key)
        else:
            self._derived[key] = make()
            if len(self._derived) > self.DERIVED:
                self._derived.popitem(last=False)
        return self._derived[key]

    def get(self, name: str) -> Stage:
        if name not in self._stages:
            self._stages[name] = get_stage(name)
        return self._stages[name]


def is_out_of_memory(exc: BaseException) -> bool:
    """MemoryError, torch's OutOfMemoryError, or an older torch's RuntimeError saying so."""
    return isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def hint_for(exc: BaseException, job: JobSpec) -> str:
    if is_disk_full(exc):
        return "the disk is full: the render stops"
    if isinstance(exc, UserError):
        return "fix the storyboard or the settings it names; a retry would fail the same way"
    if isinstance(exc, DamagedArtifactError):
        return "a cached input was damaged: it is rendered again"
    if is_out_of_memory(exc):
        if job.low_memory:
            return ("still out of memory with the stage's low-memory settings: lower width/height or "
                    "models.video.chunk_frames, or use fewer workers per device")
        return "out of memory: retrying with the stage's low-memory settings"
    if isinstance(exc, FileNotFoundError):
        return "an input vanished from the cache (cleaned while rendering?): render again"
    return "see the traceback; run with --debug to see it in full"


def failed(job: JobSpec, worker: str, exception: str, message: str, *, traceback_text: str = "", hint: str = "",
           seconds: float = 0.0, **kinds: Any) -> Outcome:
    """The outcome of a job that failed, carrying its failure record.

    Args:
        kinds: what the failure means for the executor: ``out_of_memory``, ``user_error``, ``disk_full`` (bool)
            and ``damaged`` (the key of a damaged input).
    """
    return Outcome(job.task.id, worker, False, seconds, failure={
        "task": job.task.id, "stage": job.task.stage, "inputs": sorted(job.input_keys), "attempt": job.attempt,
        "exception": exception, "message": message, "traceback": traceback_text, "hint": hint,
        "out_of_memory": False, "user_error": False, "disk_full": False, "damaged": None} | kinds)


def worker_died(job: JobSpec, worker: str, message: str) -> Outcome:
    """The outcome of a job whose worker died under it: it will run again on the replacement."""
    return failed(job, worker, "WorkerDied", message, hint="the worker was replaced and the task will run again")


def run_job(job: JobSpec, store: ArtifactStore, stages: StageCache, worker: str) -> Outcome:
    """Run one job and publish its output; any exception becomes a failure record."""
    task = job.task
    began = time.perf_counter()
    try:
        faults.maybe_inject(task.id)
        stage = stages.get(task.stage)
        result = stage(task, Inputs(store, job.input_keys, job.inline, stages))
        value, extra, audio = (result.value, result.record, result.audio) if isinstance(result, Output) else \
            (result, {}, None)
        record = job.record | extra | {"worker": worker, "attempt": job.attempt, "low_memory": job.low_memory}
        if job.store:
            record = store.put(job.key, value, record | {"seconds": round(time.perf_counter() - began, 4)}, audio)
        seconds = time.perf_counter() - began
        return Outcome(task.id, worker, True, seconds, record | {"seconds": round(seconds, 4)})
    except Exception as exc:  # a failing task is a record, never a crash of the executor
        return failed(job, worker, type(exc).__name__, str(exc), traceback_text=traceback.format_exc(),
                      hint=hint_for(exc, job), seconds=time.perf_counter() - began,
                      out_of_memory=is_out_of_memory(exc), user_error=isinstance(exc, UserError),
                      disk_full=is_disk_full(exc),
                      damaged=exc.key if isinstance(exc, DamagedArtifactError) else None)
