"""Which pool runs a render's tasks: the workers the user asked for, plus CPU lanes in this process.

* one CPU worker (the default): this process; ``local`` runs every task, and lanes beside it take the tasks that
  need no device (encoding segments, drawing previews), one lane per further core;
* ``--workers N`` or ``--devices cuda:0,...``: one long-lived process per device, plus the lanes;
* ``--executor ray``: one Ray actor per device, plus the lanes (the concat always runs here: it writes the output).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from longvid.errors import UserError

DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


def resolve_devices(workers: int, devices: list[str] | None) -> list[str]:
    """One entry per worker: `devices` as given (``cuda:0``, ``cuda:1``, ``cpu``), else `workers` CPU workers."""
    if devices:
        bad = [d for d in devices if not DEVICE.match(d)]
        if bad:
            raise UserError(f"`devices` ({','.join(bad)}) must be cpu, cuda or cuda:N, e.g. --devices cuda:0,cuda:1")
        return list(devices)
    if workers < 1:
        raise UserError(f"`workers` ({workers}) must be at least 1")
    return ["cpu"] * workers


def device_memory(devices: list[str]) -> int | None:
    """The smallest total memory of the CUDA devices among `devices`, in bytes (None: no CUDA device here), so that
    `offload: auto` plans every task to fit on any of them."""
    cuda = [d for d in devices if d.startswith("cuda")]
    if not cuda:
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    return min(torch.cuda.get_device_properties(int(d.partition(":")[2] or 0)).total_memory for d in cuda)


def cores() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def make_pool(executor: str, devices: list[str], cache_root: Path, ray_address: str | None = None, gpus: float = 1,
              lanes: int | None = None):
    """The pool that runs tasks.

    Args:
        devices: one worker per entry (from `resolve_devices`).
        gpus: GPUs each Ray actor on a ``cuda`` device reserves.
        lanes: threads in this process that take CPU tasks (default: one per core not already given a CPU
            worker process; at least one). With the single default worker, ``local`` is one of them.
    """
    from longvid.execution.local import Pools, ProcessPool, ThreadPool

    if executor not in ("local", "ray"):
        raise UserError(f"`executor` ({executor!r}) must be local or ray")
    if lanes is not None and lanes < 1:
        raise UserError(f"`cpu_workers` ({lanes}) must be at least 1")
    single = executor == "local" and devices == ["cpu"]
    count = lanes or max(1, cores() - (0 if single else devices.count("cpu")))
    if single:
        return ThreadPool(cache_root, ["local", *(f"lane{i}" for i in range(1, count))], {"local"})
    threads = ThreadPool(cache_root, [f"lane{i}" for i in range(1, count + 1)])
    if executor == "ray":
        from longvid.execution.ray import RayPool

        return Pools(RayPool(devices, cache_root, address=ray_address, gpus=gpus), threads)
    return Pools(ProcessPool(devices, cache_root), threads)
