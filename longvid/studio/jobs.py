"""The studio's renders: one at a time, in a thread of the server, so closing the page never stops one.

A render runs through the same `longvid.render` as the CLI, with the options the studio was started with. Its
progress events are kept in order, so a page that connects (or reconnects) mid-render replays them and then
follows live.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longvid.errors import LongvidError, StoryboardError
from longvid.execution.events import Event


@dataclass
class RenderOptions:
    """What `longvid render` would be given: the studio passes them to every render it starts."""

    output: Path
    cache_dir: Path | None = None
    workers: int = 1
    devices: list[str] | None = None
    crf: int = 18
    preset: str = "medium"


@dataclass
class Job:
    """One render started from the page: its events so far and how it ended."""

    number: int
    events: list[dict] = field(default_factory=list)
    state: str = "running"  # running | succeeded | failed
    error: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    ended: float | None = None
    summary: dict | None = None

    def add(self, event: Event) -> None:
        self.events.append({k: v for k, v in event.__dict__.items() if v is not None})

    def live(self) -> dict[str, str]:
        """Each task's state in this render as the events tell it: running, done, cached or failed."""
        out: dict[str, str] = {}
        for e in self.events:
            if e.get("task") and e["type"] in ("started", "succeeded", "cached", "failed", "retried"):
                out[e["task"]] = {"started": "running", "succeeded": "done", "retried": "running"}.get(e["type"],
                                                                                                    e["type"])
        return out

    def view(self) -> dict:
        return {"number": self.number, "state": self.state, "error": self.error, "started": self.started,
                "ended": self.ended, "summary": self.summary, "events": len(self.events)}


class Renders:
    """Starts renders, one at a time, and keeps the last one's events."""

    def __init__(self, storyboard, options: RenderOptions):
        self.storyboard = storyboard  # a StoryboardFile
        self.options = options
        self.job: Job | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.state == "running"

    def start(self) -> Job:
        """Start rendering what is stale.

        Raises:
            RuntimeError: a render is already running.
            StoryboardError: the storyboard on disk is not valid (nothing starts).
        """
        with self._lock:
            if self.running:
                raise RuntimeError(f"render {self.job.number} is still running: one render at a time")
            spec = self.storyboard.spec()
            job = Job(self.job.number + 1 if self.job else 1)
            self.job = job
        threading.Thread(target=self._run, args=(job, spec), name=f"longvid-studio-render-{job.number}",
                         daemon=True).start()
        return job

    def _run(self, job: Job, spec) -> None:
        from longvid.rendering import render

        o = self.options
        try:
            manifest = render(spec, o.output, cache_dir=o.cache_dir, workers=o.workers, devices=o.devices,
                              crf=o.crf, preset=o.preset, report=job.add)
            run = manifest["execution"]
            job.summary = {"ran": run["ran"], "cached": run["cached"], "seconds": manifest["render_seconds"],
                           "frames": manifest["video"]["frames"]}
            job.state = "succeeded"
        except StoryboardError as exc:
            job.error, job.state = [str(p) for p in exc.problems], "failed"
        except LongvidError as exc:
            job.error, job.state = [str(exc)], "failed"
        except Exception as exc:  # noqa: BLE001 - a bug must reach the page, not vanish in a thread
            job.error, job.state = [f"{type(exc).__name__}: {exc}", traceback.format_exc()], "failed"
        finally:
            job.ended = time.time()
            job.add(Event("job", message=job.state))

    def status(self) -> dict[str, Any] | None:
        return self.job.view() if self.job else None
