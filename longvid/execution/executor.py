"""The executor loop: the scheduler decides, a pool runs, the cache remembers.

Tasks whose key is already in the cache are skipped. The rest run in critical-path order on whatever pool is given
(this process, worker processes, Ray actors); each finished task is in the cache before it counts as done, so a
killed render resumes where it stopped. A failing task is retried with backoff, then reported with its record
while independent tasks finish.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from longvid.cache import ArtifactStore
from longvid.execution.events import Event, Reporter, ignore
from longvid.execution.scheduler import Job, Scheduler
from longvid.execution.worker import JobSpec, Outcome
from longvid.graph import Task
from longvid.planners.compile import RenderPlan


class Pool(Protocol):
    def workers(self) -> list[str]: ...
    def idle(self) -> list[str]: ...
    def holding(self, worker: str) -> str | None: ...
    def submit(self, worker: str, job: JobSpec) -> None: ...
    def wait(self, timeout: float | None) -> list[Outcome]: ...
    def close(self) -> None: ...


@dataclass
class Execution:
    """What happened: which tasks ran, which came from the cache, and the records of failures."""

    ran: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    records: dict[str, dict] = field(default_factory=dict)
    failures: dict[str, list[dict]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


def task_record(task: Task, code_version: str, keys: dict[str, str]) -> dict:
    """What decides a task's output, as stored in its cache record (and compared by `longvid status`)."""
    return {"task": task.id, "kind": task.kind, "stage": task.stage, "code_version": code_version,
            "params": task.params, "seed": task.seed, "model": task.model,
            "inputs": {dep: keys[dep] for dep in task.deps}}


def estimated_cost(task: Task) -> float:
    """Relative cost for priorities: chunk and interpolation work grows with frames; keyframes are one image."""
    if task.kind == "chunk":
        return float(task.params["frames"])
    if task.kind == "interpolate":
        return 0.1 * task.params["frames"]
    return 1.0


def execute(plan: RenderPlan, keys: dict[str, str], versions: dict[str, str], store: ArtifactStore, pool: Pool, *,
            project: str, report: Reporter = ignore, max_attempts: int = 3, backoff: float = 0.5) -> Execution:
    """Run every task of `plan` but the stitch, skipping those already in `store`.

    Args:
        keys: cache key per task id.
        versions: code version per stage name.
        project: namespace for the per-task history that `longvid status` explains changes with.
        max_attempts: tries per task; backoff: seconds before the first retry, doubling after.
    """
    work = [t for t in plan.graph if t.kind != "stitch"]
    result = Execution()
    records = {t.id: task_record(t, versions[t.stage], keys) for t in work}
    done = set()
    for task in work:
        if store.has(keys[task.id]):
            done.add(task.id)
            result.cached.append(task.id)
            store.touch(keys[task.id])
            if (store.last(project, task.id) or {}).get("key") != keys[task.id]:  # a read, not an fsync'd write
                store.remember(project, task.id, records[task.id] | {"key": keys[task.id]})
            report(Event("cached", task.kind, task.id))
        else:
            report(Event("queued", task.kind, task.id))
    tasks = {t.id: t for t in work}
    scheduler = Scheduler([Job(t.id, t.deps, estimated_cost(t), t.model) for t in work], done=done,
                          max_attempts=max_attempts, backoff=backoff)
    began = time.monotonic()
    try:
        while not scheduler.finished:
            now = time.monotonic() - began
            for worker in pool.idle():
                others = [pool.holding(w) for w in pool.workers() if w != worker and pool.holding(w)]
                attempt = scheduler.pick(pool.holding(worker), now, {m: others.count(m) for m in set(others)})
                if attempt is None:
                    break
                task = tasks[attempt.task]
                pool.submit(worker, JobSpec(task, keys[task.id], {d: keys[d] for d in task.deps}, records[task.id],
                                            attempt.attempt, attempt.low_memory))
                report(Event("started", task.kind, task.id, worker=worker, message=f"attempt {attempt.attempt}"
                             + (" (low memory)" if attempt.low_memory else "")))
            wakeup = scheduler.next_wakeup(now)
            if not scheduler.running:
                if wakeup is None and not scheduler.finished:
                    raise RuntimeError(f"scheduler stalled: nothing runs or waits; ready: {scheduler.ready(now)}")
                time.sleep(max(0.0, (wakeup or now) - now))  # only a retry waiting out its backoff
                continue
            for outcome in pool.wait(None if wakeup is None else max(0.0, wakeup - now)):
                _settle(outcome, tasks[outcome.task], scheduler, store, project, result, report,
                        time.monotonic() - began)
    finally:
        pool.close()
    result.failed, result.blocked = scheduler.with_status("failed"), scheduler.with_status("blocked")
    return result


def _settle(outcome: Outcome, task: Task, scheduler: Scheduler, store: ArtifactStore, project: str,
            result: Execution, report: Reporter, now: float) -> None:
    if outcome.ok:
        scheduler.succeeded(task.id)
        result.ran.append(task.id)
        result.records[task.id] = outcome.record
        store.remember(project, task.id, outcome.record)
        report(Event("succeeded", task.kind, task.id, worker=outcome.worker, seconds=outcome.seconds))
        return
    failure = outcome.failure
    result.failures.setdefault(task.id, []).append(failure)
    decision = scheduler.failed(task.id, now, failure["message"], out_of_memory=failure["out_of_memory"])
    kind = "failed" if decision == "gave-up" else "retried"
    report(Event(kind, task.kind, task.id, worker=outcome.worker, seconds=outcome.seconds,
                 message=f"{failure['exception']}: {failure['message']} ({failure['hint']})"))
