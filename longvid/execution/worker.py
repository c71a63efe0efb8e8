"""Running one task where it lands (this process, a worker process or a Ray actor), failures as records.

A `JobSpec` carries everything a worker needs: the task, its cache key, its inputs' keys and the record to publish.
The worker reads its inputs from the cache, runs the stage and publishes the output to the cache; only a small
`Outcome` travels back, never the frames.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from longvid.cache import ArtifactStore
from longvid.execution import faults
from longvid.graph import Task
from longvid.stages import Stage, get_stage


@dataclass(frozen=True)
class JobSpec:
    task: Task
    key: str
    input_keys: dict[str, str]
    record: dict[str, Any]
    attempt: int = 1
    low_memory: bool = False


@dataclass
class Outcome:
    task: str
    worker: str
    ok: bool
    seconds: float = 0.0
    record: dict | None = None
    failure: dict | None = None  # task, stage, inputs, exception, message, traceback, hint, out_of_memory
    extra: dict = field(default_factory=dict)


class Inputs(Mapping):
    """A task's inputs from the cache, each loaded when first asked for."""

    def __init__(self, store: ArtifactStore, keys: Mapping[str, str]):
        self.store, self.keys, self._loaded = store, dict(keys), {}

    def __getitem__(self, task_id: str) -> np.ndarray:
        if task_id not in self._loaded:
            self._loaded[task_id] = self.store.load(self.keys[task_id])
        return self._loaded[task_id]

    def release(self, task_id: str) -> None:
        self._loaded.pop(task_id, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


class StageCache:
    """Stages a worker keeps between tasks, so a model is loaded once while tasks for it remain."""

    def __init__(self):
        self._stages: dict[str, Stage] = {}

    def get(self, name: str) -> Stage:
        if name not in self._stages:
            self._stages[name] = get_stage(name)
        return self._stages[name]


def is_out_of_memory(exc: BaseException) -> bool:
    """MemoryError, torch's OutOfMemoryError, or an older torch's RuntimeError saying so."""
    return isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def hint_for(exc: BaseException, job: JobSpec) -> str:
    if is_out_of_memory(exc):
        if job.low_memory:
            return ("still out of memory with the stage's low-memory settings: lower width/height or "
                    "models.video.chunk_frames, or use fewer workers per device")
        return "out of memory: retrying with the stage's low-memory settings"
    if isinstance(exc, FileNotFoundError):
        return "an input vanished from the cache (cleaned while rendering?): render again"
    return "see the traceback; run with --debug to see it in full"


def failed(job: JobSpec, worker: str, exception: str, message: str, *, traceback_text: str = "", hint: str = "",
           out_of_memory: bool = False, seconds: float = 0.0) -> Outcome:
    """The outcome of a job that failed, carrying its failure record."""
    return Outcome(job.task.id, worker, False, seconds, failure={
        "task": job.task.id, "stage": job.task.stage, "inputs": sorted(job.input_keys), "attempt": job.attempt,
        "exception": exception, "message": message, "traceback": traceback_text, "hint": hint,
        "out_of_memory": out_of_memory})


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
        if job.low_memory and stage.spec.low_memory:
            task = dataclasses.replace(task, params=task.params | {"low_memory": dict(stage.spec.low_memory)})
        result = stage(task, Inputs(store, job.input_keys))
        seconds = time.perf_counter() - began
        record = store.put(job.key, result, job.record | {"seconds": round(seconds, 4), "worker": worker,
                                                         "attempt": job.attempt, "low_memory": job.low_memory})
        return Outcome(task.id, worker, True, seconds, record)
    except Exception as exc:  # a failing task is a record, never a crash of the executor
        return failed(job, worker, type(exc).__name__, str(exc), traceback_text=traceback.format_exc(),
                      hint=hint_for(exc, job), out_of_memory=is_out_of_memory(exc),
                      seconds=time.perf_counter() - began)
