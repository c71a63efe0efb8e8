"""The executor loop: the scheduler decides, a pool runs, the cache remembers.

1. What is done: every stored task whose artifact is in the cache, whole (its size matches its record).
2. What runs: the rest, except tasks whose output is not worth storing (preview chunks): the job that reads such
   a task computes it itself (its `inline` tasks), so it needs their inputs instead.
3. What will be read is checked against its record (size and sha256) before anything runs; a damaged artifact is
   reported once, discarded and made again. A task that finds an input damaged later makes the scheduler run
   that input again first.
4. The rest run in critical-path order on whatever pool is given (threads of this process, worker processes, Ray
   actors); each finished task is in the cache before it counts as done, so a killed render resumes where it
   stopped. A failing task is retried with backoff, then reported with its record while independent tasks
   finish; a user error or a full disk stops the render at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol

from longvid.cache import ArtifactStore, task_key
from longvid.execution.events import Event, Reporter, ignore
from longvid.execution.scheduler import Job, Scheduler
from longvid.execution.worker import Inline, JobSpec, Outcome
from longvid.graph import RenderGraph
from longvid.stages import StageSpec, get_spec
from longvid.tasks import Task

PRODUCT = ("qa", "shape", "frames", "sha256")  # facts of a record about the output, not about what made it


class Pool(Protocol):
    def workers(self) -> list[str]: ...
    def idle(self) -> list[str]: ...
    def holding(self, worker: str) -> str | None: ...
    def accepts(self, worker: str, job: Job) -> bool: ...
    def submit(self, worker: str, job: JobSpec) -> None: ...
    def wait(self, timeout: float | None) -> list[Outcome]: ...
    def close(self) -> None: ...


@dataclass
class Execution:
    """What happened: what ran, what came from the cache, what was computed inside other tasks, and failures."""

    ran: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    inline: dict[str, list[str]] = field(default_factory=dict)  # not-stored task -> the tasks that computed it
    records: dict[str, dict] = field(default_factory=dict)
    failures: dict[str, list[dict]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    fatal: dict | None = None  # the failure that stopped the render at once (a user error, a full disk)


def task_record(task: Task, code_version: str, keys: dict[str, str]) -> dict:
    """What decides a task's output, as stored in its cache record (and compared by `longvid status`)."""
    return {"task": task.id, "kind": task.kind, "stage": task.stage, "code_version": code_version,
            "params": task.params.content(), "seed": task.seed, "model": task.model,
            "inputs": {dep: keys[dep] for dep in task.deps}} | ({"take": task.take} if task.take else {})


def key_of(task: Task, keys: dict[str, str]) -> str:
    """A task's cache key, from its inputs' keys."""
    return task_key(task.stage, get_spec(task.stage).code_version, task.params.content(), task.seed, task.model,
                    [keys[d] for d in task.deps])


def with_low_memory(graph: RenderGraph, keys: dict[str, str], task_id: str) -> None:
    """Give `task_id` its stage's low-memory parameters (after running out of memory), and it and everything that
    reads it new keys: tiled frames are not untiled frames. Its record names the key it replaces, so the next
    render plans it so at once (`plan_low_memory`)."""
    task = graph[task_id]
    update = dict(get_spec(task.stage).low_memory)
    if not update:
        return
    before = keys[task_id]
    graph.replace(replace(task, params=task.params.model_copy(update=update)))
    graph.lowered[task_id] = before
    for tid in [task_id, *graph.descendants(task_id)]:
        keys[tid] = key_of(graph[tid], keys)


def plan_low_memory(graph: RenderGraph, keys: dict[str, str], last: Callable[[str], dict | None]) -> None:
    """Tasks whose last run fell back to low memory under the keys they have now start with it (only stages that
    have low-memory parameters look at their history: a render has thousands of tasks)."""
    for task in graph:
        keys[task.id] = key_of(task, keys)
        if get_spec(task.stage).low_memory and (last(task.id) or {}).get("low_memory_from") == keys[task.id]:
            with_low_memory(graph, keys, task.id)


def estimated_cost(task: Task) -> float:
    """Relative cost for priorities: work on frames grows with frames; a keyframe is one image."""
    if task.kind == "chunk":
        return float(task.params.frames)
    if task.kind in ("interpolate", "encode"):
        return 0.1 * task.frames
    return 1.0


def placement(spec: StageSpec) -> str:
    return "device" if spec.on_device else "here" if spec.here else "any"


class _Closure:
    """Per task, the stored outputs it reads and the not-stored tasks it computes, through inline tasks."""

    def __init__(self, graph: RenderGraph, specs: dict[str, StageSpec]):
        self.graph, self.specs = graph, specs
        self._memo: dict[str, tuple[frozenset[str], frozenset[str]]] = {}

    def stored(self, task_id: str) -> bool:
        return self.specs[self.graph[task_id].stage].cache

    def __call__(self, task_id: str) -> tuple[frozenset[str], frozenset[str]]:
        """(stored inputs, inline tasks) of `task_id`."""
        if task_id not in self._memo:
            reads, inline = set(), set()
            for dep in self.graph[task_id].deps:
                if self.stored(dep):
                    reads.add(dep)
                else:
                    inline.add(dep)
                    more_reads, more_inline = self(dep)
                    reads |= more_reads
                    inline |= more_inline
            self._memo[task_id] = (frozenset(reads), frozenset(inline))
        return self._memo[task_id]


def execute(graph: RenderGraph, keys: dict[str, str], store: ArtifactStore, pool: Pool, *, project: str,
            report: Reporter = ignore, max_attempts: int = 3, backoff: float = 0.5,
            targets: Iterable[str] | None = None) -> Execution:
    """Run the tasks of `graph` that are not in `store` (only those `targets` need, when given).

    Args:
        keys: cache key per task id.
        project: namespace for the per-task history that `longvid status` explains changes with.
        max_attempts: tries per task; backoff: seconds before the first retry, doubling after.
        targets: the tasks wanted (default: all); their dependencies come with them.
    """
    specs = {t.id: get_spec(t.stage) for t in graph}
    stage_specs = {t.stage: specs[t.id] for t in graph}
    wanted = set(graph.graph) if targets is None else _with_ancestors(graph, targets)
    order = [t for t in graph if t.id in wanted]
    closure = _Closure(graph, stage_specs)
    def record(task_id: str) -> dict:  # made when needed: a long render has thousands of tasks
        lowered = {"low_memory_from": graph.lowered[task_id]} if task_id in graph.lowered else {}
        return task_record(graph[task_id], specs[task_id].code_version, keys) | {"key": keys[task_id]} | lowered

    result = Execution()

    # 1-3. what is done, what runs, and a check of everything that will be read
    done = set()
    for task in order:
        if specs[task.id].cache:
            why = store.damage(keys[task.id], deep=False)
            if why is None:
                done.add(task.id)
            elif why != "missing":
                _report_damage(store, keys[task.id], task.id, task.kind, report, result, why)
    consumed = {dep for t in order for dep in t.deps}
    inline = {t.id for t in order if not specs[t.id].cache and t.id in consumed}
    while True:
        jobs = [t.id for t in order if t.id not in done and t.id not in inline]
        read = {r for j in jobs for r in closure(j)[0]}
        damaged = sorted(r for r in read & done if store.damage(keys[r]) is not None)
        if not damaged:
            break
        for task_id in damaged:
            _report_damage(store, keys[task_id], task_id, graph[task_id].kind, report, result)
            done.discard(task_id)
    for task in order:
        if task.id in done:
            result.cached.append(task.id)
            store.touch(keys[task.id])
            if (store.last(project, task.id) or {}).get("key") != keys[task.id]:  # a read, not an fsync'd write
                store.remember(project, task.id, record(task.id))
            report(Event("cached", task.kind, task.id, frames=_frames(task)))
        elif task.id not in inline:
            report(Event("queued", task.kind, task.id, frames=_frames(task)))

    # 4. run
    def job_of(task: Task) -> Job:
        return Job(task.id, tuple(sorted(closure(task.id)[0])), estimated_cost(task), task.model,
                   placement(specs[task.id]))

    scheduler = Scheduler([job_of(graph[j]) for j in jobs], done=done, max_attempts=max_attempts, backoff=backoff)
    began = time.monotonic()
    halted = False
    try:
        while not scheduler.finished and not (halted and not scheduler.running):
            now = time.monotonic() - began
            for worker in pool.idle() if not halted else []:
                others = [pool.holding(w) for w in pool.workers() if w != worker and pool.holding(w)]
                attempt = scheduler.pick(pool.holding(worker), now, {m: others.count(m) for m in set(others)},
                                         accepts=lambda job, w=worker: pool.accepts(w, job))
                if attempt is None:
                    continue
                task = graph[attempt.task]
                reads, computes = closure(task.id)
                pool.submit(worker, JobSpec(task, keys[task.id], {r: keys[r] for r in reads}, record(task.id),
                                            attempt.attempt, attempt.low_memory,
                                            {i: Inline(graph[i], keys[i]) for i in computes}, specs[task.id].cache))
                report(Event("started", task.kind, task.id, worker=worker, message=f"attempt {attempt.attempt}"
                             + (" (low memory)" if attempt.low_memory else "")))
            wakeup = scheduler.next_wakeup(now)
            if not scheduler.running:
                if halted:
                    break
                if wakeup is None and not scheduler.finished:
                    raise RuntimeError(f"scheduler stalled: nothing runs or waits; ready: {scheduler.ready(now)}")
                time.sleep(max(0.0, (wakeup or now) - now))  # only a retry waiting out its backoff
                continue
            for outcome in pool.wait(None if wakeup is None else max(0.0, wakeup - now)):
                task = graph[outcome.task]
                if outcome.ok:
                    _succeeded(outcome, task, closure(task.id)[1], record, scheduler, store, project, result, report)
                    continue
                failure = outcome.failure
                result.failures.setdefault(task.id, []).append(failure)
                producer = _producer(keys, failure.get("damaged"), closure(task.id)[0])
                if producer is not None and producer not in result.damaged:
                    _report_damage(store, keys[producer], producer, graph[producer].kind, report, result)
                    scheduler.reopen(job_of(graph[producer]), task.id)
                    continue
                fatal = failure["user_error"] or failure["disk_full"]
                decision = scheduler.failed(task.id, time.monotonic() - began, failure["message"],
                                            out_of_memory=failure["out_of_memory"], fatal=fatal)
                if fatal and result.fatal is None:
                    result.fatal, halted = failure, True
                if decision == "retry-low-memory":
                    with_low_memory(graph, keys, task.id)
                kind = "failed" if decision == "gave-up" else "retried"
                report(Event(kind, task.kind, task.id, worker=outcome.worker, seconds=outcome.seconds,
                             message=f"{failure['exception']}: {failure['message']} ({failure['hint']})"))
    finally:
        pool.close()
    result.failed = scheduler.with_status("failed")
    result.blocked = sorted(set(scheduler.with_status("blocked")) | set(scheduler.with_status("ready"))
                            | set(scheduler.with_status("waiting")))
    return result


def _with_ancestors(graph: RenderGraph, targets: Iterable[str]) -> set[str]:
    wanted, stack = set(), list(targets)
    while stack:
        task_id = stack.pop()
        if task_id not in wanted:
            wanted.add(task_id)
            stack.extend(graph[task_id].deps)
    return wanted


def _frames(task: Task) -> int | None:
    return task.frames if task.kind == "encode" else None


def _producer(keys: dict[str, str], key: str | None, reads: Iterable[str]) -> str | None:
    return next((r for r in reads if keys[r] == key), None) if key else None


def _report_damage(store: ArtifactStore, key: str, task_id: str, kind: str, report: Reporter, result: Execution,
                   why: str | None = None) -> None:
    why = why or store.damage(key) or "unreadable"
    store.discard(key)
    result.damaged.append(task_id)
    report(Event("damaged", kind, task_id, message=f"the cached output is damaged ({why}): rendering it again"))


def _succeeded(outcome: Outcome, task: Task, computed: Iterable[str], record_of: Callable[[str], dict],
               scheduler: Scheduler, store: ArtifactStore, project: str, result: Execution, report: Reporter) -> None:
    scheduler.succeeded(task.id)
    result.ran.append(task.id)
    # the history keeps what made it, not what it measured (an encode's QA numbers stay in its cache record); this
    # process keeps only what the manifest reports, so memory stays flat in the number of tasks
    store.remember(project, task.id, {k: v for k, v in outcome.record.items() if k not in PRODUCT})
    result.records[task.id] = {k: outcome.record.get(k) for k in ("seconds", "worker", "attempt", "low_memory", "ran")}
    for inline in computed:  # outputs not stored: their history still explains later changes
        if inline not in result.inline:
            store.remember(project, inline, record_of(inline))
        result.inline.setdefault(inline, []).append(task.id)
    report(Event("succeeded", task.kind, task.id, worker=outcome.worker, seconds=outcome.seconds,
                 frames=_frames(task)))
