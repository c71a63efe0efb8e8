"""Planning cost against storyboard length: validation, planning and `status` must grow with the tasks, not faster.

`longvid validate`, `render`, `status` and the studio all load the storyboard, compile the plan, check the whole
graph and key every task before anything runs. Measured in this process through the functions they call (the
loader, `compile_storyboard`, `check_graph`, `status` against an empty cache), on storyboards of 1 minute to 3 hours
at 24 fps, laid out two ways: one long shot (chunks and segments of one shot) and many 5-second shots (a crossfade
at every third cut). Each time is the median of `--repeat` runs; `per task` shows whether the cost per task stays
flat as the storyboard grows (linear) or rises with it (quadratic).

    python benchmarks/plan_time.py                       # 1, 10, 30, 60 and 180 minutes
    python benchmarks/plan_time.py --minutes 1 10 --repeat 1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from longvid.planners.compile import compile_storyboard
from longvid.rendering import status
from longvid.stages.check import check_graph
from longvid.storyboard import load_storyboard


def storyboard(minutes: float, layout: str) -> str:
    lines = ["title: Plan time", "fps: 24", "width: 832", "height: 480", "shots:"]
    if layout == "one long shot":
        return "\n".join([*lines, f"  - {{id: long, prompt: one long walk, duration: {minutes * 60:g}}}"]) + "\n"
    count = round(minutes * 60 / 5)
    for i in range(count):
        fade = ", transition: {type: crossfade, duration: 0.5}" if i % 3 == 2 and i + 1 < count else ""
        lines.append(f"  - {{id: s{i:04d}, prompt: shot number {i} of the film, duration: 5{fade}}}")
    return "\n".join(lines) + "\n"


def timed(call, repeat: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        value = call()
        times.append(time.perf_counter() - began)
    return statistics.median(times), value


def measure(minutes: float, layout: str, repeat: int, folder: Path) -> dict:
    path = folder / f"{layout.replace(' ', '-')}-{minutes:g}.yaml"
    path.write_text(storyboard(minutes, layout))
    load, spec = timed(lambda: load_storyboard(path), repeat)
    plan_s, plan = timed(lambda: compile_storyboard(spec), repeat)
    check_s, _ = timed(lambda: check_graph(plan.graph), repeat)
    status_s, rows = timed(lambda: status(path, cache_dir=folder / "cache"), repeat)
    tasks = len(plan.graph)
    validate = load + plan_s + check_s
    return {"minutes": minutes, "layout": layout, "tasks": tasks, "load": load, "plan": plan_s, "check": check_s,
            "validate": validate, "status": status_s, "per_task_ms": 1000 * validate / tasks, "rows": len(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 30, 60, 180])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="longvid-plan-bench-"))
    print("| storyboard | tasks | load | plan | check | validate | status | validate per task |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for layout in ("one long shot", "5 s shots"):
        for minutes in args.minutes:
            r = measure(minutes, layout, args.repeat, folder)
            print(f"| {minutes:g} min, {layout} | {r['tasks']} | {r['load']:.2f} s | {r['plan']:.2f} s | "
                  f"{r['check']:.2f} s | {r['validate']:.2f} s | {r['status']:.2f} s | {r['per_task_ms']:.3f} ms |",
                  flush=True)


if __name__ == "__main__":
    main()
