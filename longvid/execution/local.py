"""Workers on this machine: threads of this process, or one long-lived process per device.

A pool offers the executor loop the same small interface whatever runs the tasks: which workers are idle, which
model each holds, which jobs a worker `accepts`, `submit` a job, and `wait` for outcomes. A worker process sets
``CUDA_VISIBLE_DEVICES`` before anything imports torch, keeps its stages (and so their loaded models) between
tasks, and answers each job with a small `Outcome`; its output goes through the cache. A worker that dies is noticed through its process sentinel,
reported as a failure of the task it held, and replaced: never a hang.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import threading
import time
from multiprocessing.connection import Connection, wait
from pathlib import Path

from longvid.cache import ArtifactStore
from longvid.execution.scheduler import Job
from longvid.execution.worker import JobSpec, Outcome, StageCache, run_job, worker_died


def device_env(device: str) -> dict[str, str]:
    """The environment that pins a worker to `device` (``cuda:1`` -> ``CUDA_VISIBLE_DEVICES=1``; ``cpu`` hides GPUs)."""
    if device.startswith("cuda"):
        index = device.partition(":")[2] or "0"
        return {"CUDA_VISIBLE_DEVICES": index, "LONGVID_DEVICE": "cuda"}
    return {"CUDA_VISIBLE_DEVICES": "", "LONGVID_DEVICE": "cpu"}


class ThreadPool:
    """Workers that are threads of this process: CPU lanes, and optionally `device_workers` that take any task.

    The rendering process itself: the default single worker (``local``, which also runs the model stages), and the
    lanes that encode segments and draw previews beside any pool. Stages release the GIL where the work is (ffmpeg
    runs in its own process, PIL and numpy in C), so lanes run in parallel. Each thread keeps its own stages.
    """

    def __init__(self, cache_root: str | Path, names: list[str], device_workers: set[str] = frozenset()):
        self.store = ArtifactStore(cache_root)
        self.names, self.device_workers = list(names), set(device_workers)
        self._outcomes: queue.Queue[Outcome] = queue.Queue()
        self._inboxes: dict[str, queue.Queue] = {}
        self._jobs: dict[str, JobSpec | None] = dict.fromkeys(self.names)
        self._holding: dict[str, str | None] = dict.fromkeys(self.names)

    def _loop(self, name: str, inbox: queue.Queue) -> None:
        stages = StageCache()
        while (job := inbox.get()) is not None:
            self._outcomes.put(run_job(job, self.store, stages, name))

    def workers(self) -> list[str]:
        return list(self.names)

    def idle(self) -> list[str]:
        return [name for name, job in self._jobs.items() if job is None]

    def holding(self, worker: str) -> str | None:
        return self._holding[worker]

    def accepts(self, worker: str, job: Job) -> bool:
        return job.where != "device" or worker in self.device_workers

    def submit(self, worker: str, job: JobSpec) -> None:
        if worker not in self._inboxes:  # a thread starts with its first job
            self._inboxes[worker] = queue.Queue()
            threading.Thread(target=self._loop, args=(worker, self._inboxes[worker]), name=f"longvid-{worker}",
                             daemon=True).start()
        self._jobs[worker] = job
        self._inboxes[worker].put(job)

    def wait(self, timeout: float | None) -> list[Outcome]:
        if not any(self._jobs.values()):
            return []
        try:
            outcomes = [self._outcomes.get(timeout=timeout) if timeout != 0 else self._outcomes.get_nowait()]
        except queue.Empty:
            return []
        while not self._outcomes.empty():
            outcomes.append(self._outcomes.get_nowait())
        for outcome in outcomes:
            self._holding[outcome.worker] = self._jobs[outcome.worker].task.model
            self._jobs[outcome.worker] = None
        return outcomes

    def close(self) -> None:
        # Threads finish the job they hold (a thread cannot be stopped); they are daemons, so the process can exit.
        for inbox in self._inboxes.values():
            inbox.put(None)


class Pools:
    """Several pools as one: their workers side by side, outcomes from whichever answers first."""

    POLL = 0.005  # seconds between looks at each pool while waiting

    def __init__(self, *pools):
        self.pools = pools
        self._owner = {worker: pool for pool in pools for worker in pool.workers()}

    def workers(self) -> list[str]:
        return list(self._owner)

    def idle(self) -> list[str]:
        return [worker for pool in self.pools for worker in pool.idle()]

    def holding(self, worker: str) -> str | None:
        return self._owner[worker].holding(worker)

    def accepts(self, worker: str, job: Job) -> bool:
        return self._owner[worker].accepts(worker, job)

    def submit(self, worker: str, job: JobSpec) -> None:
        self._owner[worker].submit(worker, job)

    def wait(self, timeout: float | None) -> list[Outcome]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            outcomes = [outcome for pool in self.pools for outcome in pool.wait(0)]
            if outcomes or (deadline is not None and time.monotonic() >= deadline):
                return outcomes
            time.sleep(self.POLL if deadline is None else max(0.0, min(self.POLL, deadline - time.monotonic())))

    def close(self) -> None:
        for pool in self.pools:
            pool.close()


def _worker_main(conn: Connection, name: str, device: str, cache_root: str) -> None:
    # Runs in a fresh (spawned) interpreter: pin the device before any stage imports torch.
    os.environ.update(device_env(device))
    # Ctrl-C reaches the whole process group: the parent handles it and closes the pool; workers stay quiet
    # (SIGINT is already ignored from the spawn on; this keeps it so whoever started the process).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    store, stages = ArtifactStore(cache_root), StageCache()
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if job is None:
            return
        outcome = run_job(job, store, stages, name)
        try:
            conn.send(outcome)
        except (BrokenPipeError, OSError):
            return


class ProcessPool:
    """One long-lived worker process per device.

    Args:
        devices: one entry per worker, e.g. ``["cuda:0", "cuda:1"]`` or ``["cpu", "cpu"]``.
        cache_root: the cache folder the workers read inputs from and publish outputs to.
    """

    def __init__(self, devices: list[str], cache_root: str | Path):
        self.context = multiprocessing.get_context("spawn")
        self.cache_root = str(cache_root)
        self.devices = {self._name(d, i, devices): d for i, d in enumerate(devices)}
        self._procs: dict[str, multiprocessing.Process] = {}
        self._conns: dict[str, Connection] = {}
        self._jobs: dict[str, JobSpec | None] = {}
        self._holding: dict[str, str | None] = {}
        self.restarts = 0
        for name in self.devices:  # a worker process starts with its first job: none when all is cached
            self._jobs[name], self._holding[name] = None, None

    @staticmethod
    def _name(device: str, index: int, devices: list[str]) -> str:
        return device if devices.count(device) == 1 else f"{device}#{index}"

    def _start(self, name: str) -> None:
        parent, child = self.context.Pipe()
        proc = self.context.Process(target=_worker_main, args=(child, name, self.devices[name], self.cache_root),
                                    name=f"longvid-worker-{name}", daemon=True)
        # Spawn with SIGINT ignored: an ignored signal stays ignored across exec, so a Ctrl-C that lands while the
        # worker is still importing cannot kill it with a traceback (its own handler is not installed yet).
        main = threading.current_thread() is threading.main_thread()  # only the main thread may set handlers
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            proc.start()
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)
        child.close()
        self._procs[name], self._conns[name], self._jobs[name], self._holding[name] = proc, parent, None, None

    def workers(self) -> list[str]:
        return list(self.devices)

    def idle(self) -> list[str]:
        return [name for name, job in self._jobs.items() if job is None]

    def holding(self, worker: str) -> str | None:
        return self._holding[worker]

    def accepts(self, worker: str, job: Job) -> bool:
        return job.where != "here"

    def submit(self, worker: str, job: JobSpec) -> None:
        if worker not in self._procs:
            self._start(worker)
        self._jobs[worker] = job
        self._conns[worker].send(job)

    def wait(self, timeout: float | None) -> list[Outcome]:
        busy = [name for name, job in self._jobs.items() if job is not None]
        if not busy:
            return []
        by_handle = {}
        for name in busy:
            by_handle[self._conns[name]] = name
            by_handle[self._procs[name].sentinel] = name
        outcomes = []
        for name in sorted({by_handle[h] for h in wait(list(by_handle), timeout)}):
            job, conn, proc = self._jobs[name], self._conns[name], self._procs[name]
            outcome = None
            try:  # read the pipe first: a worker may answer and then die
                if conn.poll():
                    outcome = conn.recv()
            except (EOFError, OSError):
                outcome = None
            if outcome is None and proc.is_alive():
                continue  # spurious wake-up
            if outcome is None:  # the process died under the job
                proc.join(timeout=1)
                outcome = worker_died(job, name, f"worker {name} died (exit code {proc.exitcode})")
                self.restarts += 1
                conn.close()
                self._start(name)
            else:
                self._holding[name] = job.task.model
            self._jobs[name] = None
            outcomes.append(outcome)
        return outcomes

    def close(self) -> None:
        for conn in self._conns.values():
            with contextlib.suppress(BrokenPipeError, OSError):
                conn.send(None)
        for proc in self._procs.values():
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
