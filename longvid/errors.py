"""The exception tree. Every error longvid raises on purpose is a `LongvidError`; nothing else defines one.

```
LongvidError
├── UserError                   bad input: the CLI exits with code 2, no traceback
│   ├── StoryboardError         one or more `Problem`s, each with file:line:col where known
│   ├── MissingDependencyError  an optional extra is not installed (the message carries the pip command)
│   ├── OutputPathError         the output path cannot be written
│   ├── ModelLoadError          a model cannot be loaded as configured (raised in a worker: never retried)
│   └── TaskUserError           a user error raised inside a task, carried back from the worker
├── PlanError                   the render graph breaks a stage's declaration (a bug, or a hand-built graph)
├── PlanningError               the LLM planner never produced a valid storyboard
└── RenderError                 a render that started and failed: the CLI exits with code 1
    ├── TaskFailedError         tasks failed after their retries (`failures` holds their records)
    ├── DiskFullError           the cache's file system is full: the render stops at once
    └── DamagedArtifactError    a cached artifact does not match its record (it is rendered again)

InjectedFault (RuntimeError)    only from LONGVID_FAULTS, the fault injection of the tests
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class LongvidError(Exception):
    """Base class of every error longvid raises on purpose."""

    exit_code = 1


class UserError(LongvidError):
    """Invalid input: a bad storyboard, flag or path. The CLI exits with code 2."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a storyboard or a render graph.

    Args:
        message: what is wrong, naming the field and the value received.
        path: where, e.g. ``("shots", 1, "duration")``, or ``("chunk:a:0", "params", "frames")`` in a graph.
        file: the storyboard file, when it came from one.
        line: 1-based line in `file`.
        column: 1-based column in `file`.
    """

    message: str
    path: tuple = ()
    file: str | None = None
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.file and self.line:
            return f"{self.file}:{self.line}:{self.column}: {self.message}"
        if self.file:
            return f"{self.file}: {format_path(self.path) + ': ' if self.path else ''}{self.message}"
        if self.path:
            return f"{format_path(self.path)}: {self.message}"
        return self.message


def format_path(path: tuple) -> str:
    """``("shots", 1, "duration")`` -> ``shots[1].duration``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class StoryboardError(UserError):
    """A storyboard failed validation; `problems` lists every root cause found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class MissingDependencyError(UserError):
    """An optional dependency is needed for what was asked."""


class OutputPathError(UserError):
    """The output path is unusable (missing folder, a directory, wrong suffix)."""


class ModelLoadError(UserError):
    """A model that could not be loaded as configured; the message says what to check."""


class TaskUserError(UserError):
    """A user error raised inside a task (in any worker); the task was not retried."""

    def __init__(self, task: str, exception: str, message: str):
        self.task, self.exception = task, exception
        super().__init__(f"{task}: {message}")


class PlanError(LongvidError):
    """The whole-graph check found tasks that break their stage's declaration; `problems` lists every one."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("the render graph is inconsistent:\n" + "\n".join(f"  {p}" for p in self.problems))


class PlanningError(LongvidError):
    """The LLM planner never produced a valid storyboard, or its server kept failing (exit code 1)."""


class RenderError(LongvidError):
    """A render started and failed."""


class TaskFailedError(RenderError):
    """Tasks failed after their retries.

    Args:
        failures: task id -> the records of its failed attempts (task, exception, message, traceback, hint).
        blocked: how many tasks depending on them did not run.
        execution: what happened in the render, for callers that want more.
    """

    def __init__(self, failures: dict[str, list[dict]], blocked: int = 0, execution: Any = None):
        self.failures, self.execution = dict(failures), execution
        lines = [f"{len(self.failures)} task(s) failed; {blocked} task(s) depending on them did not run"]
        for task, records in self.failures.items():
            last = records[-1]
            lines.append(f"  {task}: {last['exception']}: {last['message']} after {len(records)} attempt(s); "
                         f"hint: {last['hint']}")
        super().__init__("\n".join(lines))


class DiskFullError(RenderError):
    """The file system holding the cache (or the output) is full."""


class DamagedArtifactError(RenderError):
    """A cached artifact does not match its record (size or sha256): it was cut short or changed on disk."""

    def __init__(self, key: str, why: str):
        self.key = key
        super().__init__(f"cached artifact {key[:12]} is damaged ({why})")


class InjectedFault(RuntimeError):
    """The failure an injected ``raise`` fault raises (`longvid.execution.faults`, tests only)."""
