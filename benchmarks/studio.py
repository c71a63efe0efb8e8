"""The studio on long storyboards: how long the page waits for its state, for an edit, and for a take.

Every request of the page builds its state from the file, the plan, `status` and the manifest, so its cost grows
with the number of tasks. Measured in this process, through the same functions the server calls (`page_state`,
`StoryboardFile.edit_shot`, `StoryboardFile.set_take`), on storyboards of `--minutes` of 5-second shots at 24 fps
(a crossfade at every third cut), before any render and after one (the preview backend, at 160x96 so the render
itself is quick; the state does not depend on the picture size).

    python benchmarks/studio.py                  # 1 and 10 minutes
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from longvid.cache import ArtifactStore
from longvid.rendering import render
from longvid.studio.edits import StoryboardFile
from longvid.studio.jobs import RenderOptions, Renders
from longvid.studio.state import page_state


def storyboard(minutes: float) -> str:
    lines = ["title: Long", "fps: 24", "width: 160", "height: 96", "shots:"]
    count = round(minutes * 60 / 5)
    for i in range(count):
        lines += [f"  # shot {i}", f"  - id: s{i:03d}", f"    prompt: shot number {i} of the film", "    duration: 5"]
        if i % 3 == 2 and i + 1 < count:
            lines.append("    transition: {type: crossfade, duration: 0.5}")
    return "\n".join(lines) + "\n"


def timed(call, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def measure(minutes: float, rendered: bool) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="longvid-studio-bench-"))
    path = folder / "story.yaml"
    path.write_text(storyboard(minutes))
    options = RenderOptions(output=folder / "story.mp4", cache_dir=folder / "cache", preset="ultrafast")
    file = StoryboardFile(path)
    renders, store = Renders(file, options), ArtifactStore(options.cache_dir)
    render_seconds = None
    if rendered:
        began = time.perf_counter()
        render(path, options.output, cache_dir=options.cache_dir, preset="ultrafast")
        render_seconds = time.perf_counter() - began
    state, _ = page_state(renders, store)
    shot = state["shots"][len(state["shots"]) // 2]["id"]
    edit = timed(lambda: file.edit_shot(shot, {"prompt": f"changed {time.perf_counter()}"}, file.read()[1]))
    take = timed(lambda: file.set_take(f"chunk:{shot}:0", file.take_of(f"chunk:{shot}:0") + 1, file.read()[1]))
    return {"minutes": minutes, "rendered": rendered, "shots": len(state["shots"]), "tasks": len(state["tasks"]),
            "state_seconds": round(timed(lambda: page_state(renders, store)), 3),
            "state_kb": round(len(json.dumps(state)) / 1024), "edit_seconds": round(edit, 3),
            "take_seconds": round(take, 3), "render_seconds": round(render_seconds, 1) if rendered else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10])
    parser.add_argument("--render-up-to", type=float, default=1, help="render first only up to this many minutes")
    args = parser.parse_args()
    for minutes in args.minutes:
        for rendered in (False, True) if minutes <= args.render_up_to else (False,):
            print(json.dumps(measure(minutes, rendered)), flush=True)


if __name__ == "__main__":
    main()
