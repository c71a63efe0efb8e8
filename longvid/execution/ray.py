"""Ray: one actor per device, driven by the same scheduler and executor loop as local workers.

Artifacts travel through the cache folder, not Ray's object store: on a cluster of several nodes the cache must be
shared storage (NFS, a mounted bucket) that every node sees at the same path. Only small `Outcome`s travel back.
"""

from __future__ import annotations

import os
from pathlib import Path

from longvid._imports import require
from longvid.cache import ArtifactStore
from longvid.execution import faults
from longvid.execution.local import device_env
from longvid.execution.scheduler import Job
from longvid.execution.worker import JobSpec, Outcome, StageCache, run_job, worker_died


class _Actor:
    """Lives in a Ray worker process; keeps its stages (and their models) between tasks."""

    def __init__(self, name: str, device: str, cache_root: str, gpus: float):
        if not gpus:  # Ray sets CUDA_VISIBLE_DEVICES itself for actors that reserve GPUs
            os.environ.update(device_env(device))
        self.name, self.store, self.stages = name, ArtifactStore(cache_root), StageCache()

    def run(self, job: JobSpec) -> Outcome:
        return run_job(job, self.store, self.stages, self.name)


class RayPool:
    """One Ray actor per entry of `devices`.

    Args:
        devices: ``cuda:N`` entries get actors that reserve `gpus` GPUs each; ``cpu`` entries get CPU actors.
        cache_root: the cache folder; shared storage when the cluster has several nodes.
        address: a running cluster to join; by default a local one is started (and shut down at the end).
        gpus: GPUs per GPU actor, from the stages' declared resources.
    """

    def __init__(self, devices: list[str], cache_root: str | Path, *, address: str | None = None, gpus: float = 1):
        self.ray = require("ray", extra="ray", feature="`--executor ray`")
        self._owns = not self.ray.is_initialized()
        if self._owns:
            self.ray.init(address=address, num_cpus=None if address else len(devices), include_dashboard=False,
                          log_to_driver=False, configure_logging=False)
        self.devices = {(d if devices.count(d) == 1 else f"{d}#{i}"): d for i, d in enumerate(devices)}
        self.cache_root, self.gpus = str(cache_root), gpus
        self._actor_class = self.ray.remote(_Actor)
        self._actors = {name: self._start(name) for name in self.devices}
        self._pending: dict = {}  # object ref -> (worker, job)
        self._busy: dict[str, bool] = dict.fromkeys(self.devices, False)
        self._holding: dict[str, str | None] = dict.fromkeys(self.devices)
        self.restarts = 0

    def _start(self, name: str):
        gpus = self.gpus if self.devices[name].startswith("cuda") else 0
        # Actors start from the raylet's environment, not ours: forward what must reach them.
        env = {k: v for k, v in os.environ.items() if k == faults.ENV}
        options = {"num_cpus": 1, "num_gpus": gpus} | ({"runtime_env": {"env_vars": env}} if env else {})
        return self._actor_class.options(**options).remote(name, self.devices[name], self.cache_root, gpus)

    def workers(self) -> list[str]:
        return list(self.devices)

    def idle(self) -> list[str]:
        return [name for name, busy in self._busy.items() if not busy]

    def holding(self, worker: str) -> str | None:
        return self._holding[worker]

    def accepts(self, worker: str, job: Job) -> bool:
        return job.where != "here"  # that one writes the user's output path, which another node may not see

    def submit(self, worker: str, job: JobSpec) -> None:
        self._busy[worker] = True
        self._pending[self._actors[worker].run.remote(job)] = (worker, job)

    def wait(self, timeout: float | None) -> list[Outcome]:
        if not self._pending:
            return []
        ready, _ = self.ray.wait(list(self._pending), num_returns=1, timeout=timeout)
        outcomes = []
        for ref in ready:
            worker, job = self._pending.pop(ref)
            try:
                outcome = self.ray.get(ref)
                self._holding[worker] = job.task.model
            except self.ray.exceptions.RayError as exc:  # the actor died under the job
                outcome = worker_died(job, worker, f"Ray actor {worker} died: {exc}")
                self.restarts += 1
                self._actors[worker] = self._start(worker)
                self._holding[worker] = None
            self._busy[worker] = False
            outcomes.append(outcome)
        return outcomes

    def close(self) -> None:
        for actor in self._actors.values():
            self.ray.kill(actor)
        if self._owns:
            self.ray.shutdown()
