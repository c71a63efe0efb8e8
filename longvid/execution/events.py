"""Progress events: what a render reports, for live displays and for ``--log-json``.

Event types:

* per task: ``queued``, ``cached`` (found in the cache, will not run), ``started`` (with the worker and the
  attempt), ``succeeded`` (with seconds), ``retried`` and ``failed`` (with the exception and a hint), ``damaged``
  (its cached output did not match its record and is made again);
* ``note``: something the plan decided or assumed (printed once); ``warning``: something the user should act on,
  such as a disk too small for the render;
* ``qa``: a chunk generated again for its seam (``--qa-retry``); ``finished``: the render, with its seconds.

Kinds: ``keyframe``, ``chunk``, ``interpolate``, ``encode``, ``concat``. Events of encode tasks carry the number
of frames the segment holds (``frames``), so progress can count frames.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Event:
    type: str
    kind: str | None = None
    task: str | None = None
    worker: str | None = None
    seconds: float | None = None
    done: int | None = None
    total: int | None = None
    frames: int | None = None
    message: str | None = None
    time: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}, sort_keys=True)


Reporter = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The reporter that reports nothing."""


class JsonLinesLog:
    """Writes one JSON event per line to a file, flushed as it goes, so a dashboard can tail it."""

    def __init__(self, path: str | Path):
        self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def __call__(self, event: Event) -> None:
        self._file.write(event.to_json() + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def fan_out(*reporters: Reporter) -> Reporter:
    """One reporter that passes each event to all of `reporters`."""

    def report(event: Event) -> None:
        for reporter in reporters:
            reporter(event)

    return report
