"""Which task runs next, and where: pure logic, no I/O, no clock of its own (time is passed in).

* Ready set: a task is ready when every task it depends on has succeeded (or was found in the cache).
* Priority: the critical path, i.e. a task's cost plus the longest chain of costs below it (its *upward rank*),
  so the work that gates the end of the render starts first.
* Model affinity: a free worker prefers tasks for the model it already holds; loading another model costs
  `load_cost[model]` seconds, which is weighed against priority.
* Placement: a task that needs a device runs only on a worker that has one; any free worker may take the rest
  (the executor's CPU lanes included), except tasks that must run in the rendering process.
* Retries: a failed task waits ``backoff * 2 ** (attempt - 1)`` seconds, up to `max_attempts` tries; an
  out-of-memory failure is retried once with the stage's low-memory settings; a fatal failure (a user error, a
  full disk) is never retried. A task that gives up blocks only the tasks that depend on it.
* Repairs: when a task finds an input damaged, that input runs again (`reopen`) and the task waits for it,
  without counting a try.

`simulate` runs the same scheduler against a cost model, for tests and benchmarks/schedule_sim.py.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Job:
    """A task as the scheduler sees it."""

    id: str
    deps: tuple[str, ...] = ()
    cost: float = 1.0
    model: str | None = None
    where: str = "any"  # any | device | here


@dataclass
class Attempt:
    """What the executor should run: a task, the try number, and whether to use low-memory settings."""

    task: str
    attempt: int
    low_memory: bool = False


@dataclass
class _State:
    status: str = "waiting"  # waiting | ready | running | succeeded | failed | blocked
    attempts: int = 0
    not_before: float = 0.0
    low_memory: bool = False
    oom_retried: bool = False
    errors: list[str] = field(default_factory=list)


class Scheduler:
    """List scheduling over a DAG of `Job`s.

    Args:
        jobs: every task to run, with its dependencies (ids outside `jobs` count as already done).
        done: ids already finished (cache hits): never scheduled.
        load_cost: seconds to load each model onto a worker.
        max_attempts: tries per task before it is reported failed.
        backoff: seconds before the first retry; doubles with each further try.
    """

    def __init__(self, jobs: Iterable[Job], done: Iterable[str] = (), *, load_cost: Mapping[str, float] | None = None,
                 max_attempts: int = 3, backoff: float = 1.0):
        self.jobs = {job.id: job for job in jobs}
        self.load_cost = dict(load_cost or {})
        self.max_attempts, self.backoff = max_attempts, backoff
        self.state = {task: _State() for task in self.jobs}
        self.children: dict[str, list[str]] = {task: [] for task in self.jobs}
        for job in self.jobs.values():
            for dep in job.deps:
                if dep in self.jobs:
                    self.children[dep].append(job.id)
        self.rank = self._upward_ranks()
        for task in done:
            if task in self.state:
                self.state[task].status = "succeeded"
        for task in self.jobs:
            self._maybe_ready(task)

    def _upward_ranks(self) -> dict[str, float]:
        rank: dict[str, float] = {}
        for task in reversed(self._topological()):
            rank[task] = self.jobs[task].cost + max((rank[c] for c in self.children[task]), default=0.0)
        return rank

    def _topological(self) -> list[str]:
        pending = {t: sum(d in self.jobs for d in j.deps) for t, j in self.jobs.items()}
        order, queue = [], sorted(t for t, n in pending.items() if n == 0)
        while queue:
            task = queue.pop(0)
            order.append(task)
            for child in self.children[task]:
                pending[child] -= 1
                if pending[child] == 0:
                    queue.append(child)
        if len(order) != len(self.jobs):
            raise ValueError("the task graph has a cycle")
        return order

    def _maybe_ready(self, task: str) -> None:
        state = self.state[task]
        if state.status != "waiting":
            return
        deps = [self.state[d].status for d in self.jobs[task].deps if d in self.jobs]
        if all(s == "succeeded" for s in deps):
            state.status = "ready"

    # ---------------------------------------------------------------------------------------------- queries

    def ready(self, now: float = 0.0) -> list[str]:
        """Tasks that may start at `now`, highest priority first."""
        tasks = [t for t, s in self.state.items() if s.status == "ready" and s.not_before <= now]
        return sorted(tasks, key=lambda t: (-self.rank[t], t))

    def pick(self, holding: str | None, now: float = 0.0, held_elsewhere: Mapping[str, int] | None = None,
             accepts: Callable[[Job], bool] | None = None) -> Attempt | None:
        """The best task for a free worker that holds model `holding` (None: no model loaded).

        Args:
            held_elsewhere: how many other workers hold each model; between equal scores, a model fewer workers
                hold is preferred, so loads spread over the devices instead of every worker loading the same one.
            accepts: which jobs this worker can run (default: all).
        """
        held_elsewhere = held_elsewhere or {}
        best, best_score = None, None
        for task in self.ready(now):
            if accepts is not None and not accepts(self.jobs[task]):
                continue
            model = self.jobs[task].model
            penalty = self.load_cost.get(model, 0.0) if model is not None and model != holding else 0.0
            score = (self.rank[task] - penalty, -held_elsewhere.get(model, 0) if model != holding else 0)
            if best_score is None or score > best_score:
                best, best_score = task, score
        if best is None:
            return None
        state = self.state[best]
        state.status = "running"
        state.attempts += 1
        return Attempt(best, state.attempts, state.low_memory)

    def next_wakeup(self, now: float) -> float | None:
        """The earliest time a waiting retry becomes ready, if one is pending."""
        times = [s.not_before for s in self.state.values() if s.status == "ready" and s.not_before > now]
        return min(times, default=None)

    @property
    def finished(self) -> bool:
        return all(s.status in ("succeeded", "failed", "blocked") for s in self.state.values())

    @property
    def running(self) -> list[str]:
        return [t for t, s in self.state.items() if s.status == "running"]

    def with_status(self, status: str) -> list[str]:
        return sorted(t for t, s in self.state.items() if s.status == status)

    # ---------------------------------------------------------------------------------------------- updates

    def succeeded(self, task: str) -> None:
        self.state[task].status = "succeeded"
        for child in self.children[task]:
            self._maybe_ready(child)

    def failed(self, task: str, now: float, error: str = "", *, out_of_memory: bool = False, fatal: bool = False
               ) -> str:
        """Record a failure; returns ``retry``, ``retry-low-memory`` or ``gave-up``.

        Args:
            out_of_memory: the task ran out of memory: retry once with low-memory settings.
            fatal: retrying cannot help (a user error, a full disk): give up at once.
        """
        state = self.state[task]
        state.errors.append(error)
        if fatal:
            state.status = "failed"
            self._block_below(task)
            return "gave-up"
        if out_of_memory and not state.oom_retried:
            state.oom_retried, state.low_memory = True, True
            state.status, state.not_before = "ready", now
            return "retry-low-memory"
        if out_of_memory or state.attempts >= self.max_attempts:
            state.status = "failed"
            self._block_below(task)
            return "gave-up"
        state.status = "ready"
        state.not_before = now + self.backoff * 2 ** max(0, state.attempts - 1)
        return "retry"

    def reopen(self, damaged: Job, reader: str) -> None:
        """`reader` found the output of `damaged` (a finished task, or one found in the cache) damaged: run
        `damaged` again, and `reader` after it, without counting the reader's try."""
        if damaged.id not in self.jobs:  # found in the cache when the render began: it becomes a task now
            self.jobs[damaged.id] = damaged
            self.children[damaged.id] = []
            self.rank[damaged.id] = self.rank.get(reader, 0.0) + damaged.cost
        if reader not in self.children[damaged.id]:
            self.children[damaged.id].append(reader)
        if damaged.id not in self.jobs[reader].deps:
            job = self.jobs[reader]
            self.jobs[reader] = Job(job.id, (*job.deps, damaged.id), job.cost, job.model, job.where)
        self.state.setdefault(damaged.id, _State()).status = "ready"
        self.state[damaged.id].not_before = 0.0
        reader_state = self.state[reader]
        reader_state.status, reader_state.attempts = "waiting", max(0, reader_state.attempts - 1)

    def _block_below(self, task: str) -> None:
        for child in self.children[task]:
            if self.state[child].status in ("waiting", "ready"):
                self.state[child].status = "blocked"
                self._block_below(child)


# -------------------------------------------------------------------------------------------------- simulation


@dataclass(frozen=True)
class SimulationResult:
    makespan: float
    busy: float
    loads: int
    order: list[tuple[float, str, str]]  # (start time, worker, task)


def simulate(jobs: list[Job], workers: int, *, load_cost: Mapping[str, float] | None = None) -> SimulationResult:
    """Discrete-event simulation: `workers` identical devices run `jobs` with the scheduler above.

    A worker that takes a task for a model it does not hold first spends ``load_cost[model]`` seconds loading it.
    """
    load_cost = dict(load_cost or {})
    scheduler = Scheduler(jobs, load_cost=load_cost)
    holding: dict[str, str | None] = {f"w{i}": None for i in range(workers)}
    free = sorted(holding)
    events: list[tuple[float, str, str]] = []  # (finish time, worker, task)
    now, busy, loads, order = 0.0, 0.0, 0, []
    while True:
        for worker in list(free):
            others = [m for w, m in holding.items() if w != worker and m is not None]
            attempt = scheduler.pick(holding[worker], now, {m: others.count(m) for m in set(others)})
            if attempt is None:
                break
            job = scheduler.jobs[attempt.task]
            duration = job.cost
            if job.model is not None and job.model != holding[worker]:
                duration += load_cost.get(job.model, 0.0)
                loads += 1
                holding[worker] = job.model
            free.remove(worker)
            busy += duration
            order.append((now, worker, job.id))
            heapq.heappush(events, (now + duration, worker, job.id))
        if not events:
            break
        now, worker, task = heapq.heappop(events)
        scheduler.succeeded(task)
        free.append(worker)
        free.sort()
    if not scheduler.finished:
        raise RuntimeError("simulation stalled with unfinished tasks")
    return SimulationResult(now, busy, loads, order)


def critical_path(jobs: list[Job]) -> float:
    """The longest chain of costs through the DAG: no schedule can finish sooner."""
    return max(Scheduler(jobs).rank.values(), default=0.0)
