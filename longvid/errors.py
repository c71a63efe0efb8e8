"""The exception tree. Every error longvid raises on purpose is a `LongvidError`.

```
LongvidError
├── UserError                  bad input: the CLI exits with code 2, no traceback
│   ├── StoryboardError        one or more `Problem`s, each with file:line:col where known
│   ├── MissingDependencyError an optional extra is not installed (message carries the pip command)
│   └── OutputPathError        the output path cannot be written
└── RenderError                a render that started and failed: the CLI exits with code 1
```
"""

from __future__ import annotations

from dataclasses import dataclass


class LongvidError(Exception):
    """Base class of every error longvid raises on purpose."""

    exit_code = 1


class UserError(LongvidError):
    """Invalid input: a bad storyboard, flag or path. The CLI exits with code 2."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a storyboard.

    Args:
        message: what is wrong, naming the field and the value received.
        path: where in the storyboard, e.g. ``("shots", 1, "duration")``.
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


class RenderError(LongvidError):
    """A render started and failed."""
