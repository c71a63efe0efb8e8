"""Fault injection for tests: make chosen tasks fail, run out of memory, kill their worker or run slowly.

Set ``LONGVID_FAULTS`` to a JSON file mapping task ids to the faults of successive attempts::

    {"chunk:hunt:1": ["raise", "oom"], "chunk:wake:0": ["exit"], "keyframe:hunt:0": ["sleep:2"],
     "encode:wake:0": ["enospc"], "chunk:night:0": ["user"]}

``raise`` raises `InjectedFault`, ``oom`` a MemoryError, ``enospc`` a full disk (OSError ENOSPC), ``user`` a
`UserError`; ``exit`` kills the worker process; ``sleep:S`` waits S seconds, then runs the task.

Attempt n of a task gets the n-th fault (then none). Attempts are counted with files created beside the JSON, so
the count holds across worker processes, Ray actors and restarts. Never set in normal use.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import time
from pathlib import Path

from longvid.errors import InjectedFault, UserError

ENV = "LONGVID_FAULTS"


def maybe_inject(task_id: str) -> None:
    """Apply the fault planned for this attempt of `task_id`, if any."""
    plan_path = os.environ.get(ENV)
    if not plan_path:
        return
    faults = json.loads(Path(plan_path).read_text()).get(task_id, [])
    counters = Path(plan_path + ".attempts")
    counters.mkdir(exist_ok=True)
    attempt = 0
    while True:  # claim the next attempt number atomically
        try:
            os.close(os.open(counters / f"{task_id.replace(':', '_')}.{attempt}", os.O_CREAT | os.O_EXCL))
            break
        except FileExistsError:
            attempt += 1
    if attempt >= len(faults):
        return
    fault = faults[attempt]
    if fault == "raise":
        raise InjectedFault(f"injected failure of {task_id} (attempt {attempt + 1})")
    if fault == "oom":
        raise MemoryError(f"injected out-of-memory in {task_id} (attempt {attempt + 1})")
    if fault == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), f"injected full disk in {task_id}")
    if fault == "user":
        raise UserError(f"injected user error in {task_id} (attempt {attempt + 1})")
    if fault == "exit":
        os.kill(os.getpid(), signal.SIGKILL)
    if fault.startswith("sleep:"):
        time.sleep(float(fault.split(":", 1)[1]))
